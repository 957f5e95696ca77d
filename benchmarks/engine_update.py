"""Full mark-price update of 200 accounts x 25 positions: time per update.

Goal (issue 2): median and p99 <= 20 ms on one core. The baseline, run in the same
process, is the one-shot path that rebuilds each account's book from its snapshot on
every update (what `status` does once); the daemon keeps compiled books between ticks.

    python benchmarks/engine_update.py [--repeats N]
"""

from __future__ import annotations

import argparse
import gc
import random

from common import summary, synthetic_book, timed

from monitor.engine.book import AccountBook, evaluate_snapshot


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=200)
    parser.add_argument("--accounts", type=int, default=200)
    parser.add_argument("--positions", type=int, default=25)
    args = parser.parse_args()

    snapshots, marks = synthetic_book(args.accounts, args.positions)
    books = [AccountBook(s) for s in snapshots]
    rng = random.Random(1)
    updates = [{s: m * rng.uniform(0.97, 1.03) for s, m in marks.items()} for _ in range(16)]
    state = {"i": 0}

    def next_marks() -> dict[str, float]:
        state["i"] += 1
        return updates[state["i"] % len(updates)]

    def compiled() -> None:
        tick = next_marks()
        for book in books:
            book.evaluate(tick)

    def rebuilt() -> None:
        tick = next_marks()
        for snapshot in snapshots:
            evaluate_snapshot(snapshot, tick)

    compiled()  # warm up
    gc.freeze()  # as the daemon does after its first evaluation
    fast = summary(timed(compiled, args.repeats))
    slow = summary(timed(rebuilt, max(20, args.repeats // 4)))
    positions = args.accounts * args.positions
    print(f"full update of {args.accounts} accounts x {args.positions} positions ({positions})")
    print(f"compiled books : median {fast[0]:7.2f} ms   p99 {fast[1]:7.2f} ms   (goal <= 20 ms)")
    print(f"rebuilt books  : median {slow[0]:7.2f} ms   p99 {slow[1]:7.2f} ms   (baseline)")
    print(f"baseline / compiled (median): {slow[0] / fast[0]:.2f}x")
    print(f"per position (compiled, median): {fast[0] * 1e3 / positions:.2f} us")


if __name__ == "__main__":
    main()
