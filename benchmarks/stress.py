"""`marginwatch stress` arithmetic for one account: time per full report.

A report plays every shock on the book as held, as all cross and as all isolated, and
for the chosen shock searches the smallest surviving changes. Cases: the eight uniform
moves, and the same plus a replayed day (288 five-minute candles: 864 waypoints). The
baseline, in the same process, tests eight points per segment for every target (what
the search must do where equity - MM is not provably concave) instead of only the
segment's end.

    python benchmarks/stress.py [--positions 25] [--repeats 10]
"""

from __future__ import annotations

import argparse
import math
import random

from common import summary, synthetic_book, timed

from monitor.stress import play
from monitor.stress.report import stress_account
from monitor.stress.shocks import UNIFORM_MOVES, replay, uniform


def random_day(symbols: list[str], seed: int = 3) -> dict[str, list[tuple]]:
    """288 five-minute candles per symbol, a random walk with a 12 % slide in the middle."""
    rng = random.Random(seed)
    out: dict[str, list[tuple]] = {}
    for symbol in symbols:
        price, rows = 100.0, []
        for k in range(288):
            drift = -0.12 / 48 if 120 <= k < 168 else 0.0
            close = price * math.exp(drift + rng.gauss(0, 0.003))
            high = max(price, close) * (1 + abs(rng.gauss(0, 0.001)))
            low = min(price, close) * (1 - abs(rng.gauss(0, 0.001)))
            rows.append((k * 300_000, price, high, low, close))
            price = close
        out[symbol] = rows
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--positions", type=int, default=25)
    parser.add_argument("--repeats", type=int, default=10)
    args = parser.parse_args()

    [snapshot], _ = synthetic_book(accounts=1, positions=args.positions)
    symbols = sorted({p.symbol for p in snapshot.positions})
    uniforms = [uniform(symbols, move) for move in UNIFORM_MOVES]
    day = replay("bench", random_day(symbols), symbols[0])
    cases = {"8 uniform": uniforms, "8 uniform + replay": [*uniforms, day]}
    concave = play.concave
    print(f"one account of {args.positions} positions (5 isolated, one cross pool)")
    for name, shocks in cases.items():

        def report(shocks: list = shocks) -> None:
            stress_account(snapshot, shocks)

        play.concave = concave
        fast = summary(timed(report, args.repeats))
        play.concave = lambda _book, _target: False
        slow = summary(timed(report, max(3, args.repeats // 3)))
        play.concave = concave
        print(f"{name:20}: median {fast[0]:8.1f} ms   p99 {fast[1]:8.1f} ms")
        print(f"{'  baseline (grid)':20}: median {slow[0]:8.1f} ms   p99 {slow[1]:8.1f} ms")
        print(f"{'  baseline / ours':20}: {slow[0] / fast[0]:.2f}x")


if __name__ == "__main__":
    main()
