"""Full mark-price update of 200 accounts x 25 positions: time per update.

Goal (issue 2): median and p99 <= 20 ms on one core. The baseline, run in the same
process, is the one-shot path that rebuilds each account's book from its snapshot on
every update (what `status` does once); the daemon keeps compiled books between ticks.

Goal (issue 14), the vectorised engine (monitor/engine/vector) evaluating every target
exactly from a dict of marks: median <= 3 ms at 200 x 25 and <= 15 ms at 1000 x 25 on one
core; its baseline is the compiled scalar books above, in the same process. A run at
another size also times the vectorised engine at 1000 x 25, so one run shows both goals.

Marks: by default each update draws every mark within +-3 % of the book's; `--step S`
walks them instead, each update moving every mark by a normal step of sd S (0.001 a calm
second, 0.02 a crash), as the tick-latency benchmark does.

    taskset -c 1 python benchmarks/engine_update.py [--repeats N] [--accounts 1000]
        [--step 0.02]
"""

from __future__ import annotations

import argparse
import gc
import itertools
import random
from dataclasses import replace

from common import summary, synthetic_book, timed, timed_alternating

from monitor.domain import AccountSnapshot, TierTable
from monitor.engine.book import AccountBook, evaluate_snapshot
from monitor.engine.vector import VectorEngine

VECTOR_GOALS = {200: 3.0, 1000: 15.0}
"""Issue 14's goals (median, ms) by account count, at 25 positions each."""


def on_generic_venue(snapshot: AccountSnapshot) -> AccountSnapshot:
    """The account as a venue without an exact model would give it: ccxt's unified tiers
    carry rates only, so the deductions are gone."""
    tiers = {
        symbol: TierTable(tuple(replace(t, maintenance_amount=0.0) for t in table.tiers))
        for symbol, table in snapshot.tiers.items()
    }
    return replace(snapshot, exchange="generic", tiers=tiers)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=200)
    parser.add_argument("--accounts", type=int, default=200)
    parser.add_argument("--positions", type=int, default=25)
    parser.add_argument(
        "--generic",
        type=float,
        default=0.0,
        help="share of accounts on a venue without an exact model, with ccxt's unified "
        "tiers (no deductions: MM jumps at each floor, the engines walk it)",
    )
    parser.add_argument("--step", type=float, default=None, help="walk the marks (sd)")
    args = parser.parse_args()

    snapshots, marks = synthetic_book(args.accounts, args.positions)
    generic = round(args.generic * len(snapshots))
    snapshots[:generic] = [on_generic_venue(s) for s in snapshots[:generic]]
    books = [AccountBook(s) for s in snapshots]
    updates = mark_updates(marks, args.step, 6 * args.repeats + 10)  # one walk, no wrap
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

    engine = VectorEngine()
    for snapshot in snapshots:
        engine.load(snapshot)

    def vectorised() -> None:
        engine.update(next_marks())

    compiled()  # warm up
    vectorised()
    gc.freeze()  # as the daemon does after its first evaluation
    fast = summary(timed(compiled, args.repeats))
    slow = summary(timed(rebuilt, max(20, args.repeats // 4)))
    positions = args.accounts * args.positions
    print(f"full update of {args.accounts} accounts x {args.positions} positions ({positions})")
    if generic:
        print(f"{generic} of them on a generic venue (tiers without deductions)")
    print(f"compiled books : median {fast[0]:7.2f} ms   p99 {fast[1]:7.2f} ms   (goal <= 20 ms)")
    print(f"rebuilt books  : median {slow[0]:7.2f} ms   p99 {slow[1]:7.2f} ms   (baseline)")
    print(f"baseline / compiled (median): {slow[0] / fast[0]:.2f}x")
    print(f"per position (compiled, median): {fast[0] * 1e3 / positions:.2f} us")
    vector = summary(timed(vectorised, args.repeats))
    goal = VECTOR_GOALS.get(args.accounts) if args.positions == 25 else None
    wanted = f"(goal <= {goal:g} ms)" if goal else "(goals at 200 and 1000 x 25)"
    print(f"vectorised     : median {vector[0]:7.2f} ms   p99 {vector[1]:7.2f} ms   {wanted}")
    print(f"compiled / vectorised (median): {fast[0] / vector[0]:.2f}x")
    # Timed in turn, frame for frame, so both see the same neighbours and the same cold
    # caches (each evicts the other's data): the ratio a busy daemon would see.
    vector_samples, compiled_samples = timed_alternating([vectorised, compiled], args.repeats)
    cold, beside = summary(vector_samples), summary(compiled_samples)
    print(f"in turn, vectorised: median {cold[0]:7.2f} ms   p99 {cold[1]:7.2f} ms")
    print(f"in turn, compiled  : median {beside[0]:7.2f} ms   ratio {beside[0] / cold[0]:.2f}x")
    print(f"per position (vectorised, median): {vector[0] * 1e3 / positions:.2f} us")

    polled = iter(range(10**9))

    def reloaded() -> None:
        """A poll's new snapshot of one account (same positions), then a frame."""
        engine.load(snapshots[next(polled) % len(snapshots)])
        engine.update(next_marks())

    reload = summary(timed(reloaded, args.repeats))
    print(f"reload 1 account + frame: median {reload[0]:7.2f} ms   p99 {reload[1]:7.2f} ms")
    if args.accounts != 1000 or args.positions != 25:
        large = summary(vectorised_at(1000, args))
        print(
            f"vectorised at 1000 x 25: median {large[0]:7.2f} ms   p99 {large[1]:7.2f} ms   "
            f"(goal <= {VECTOR_GOALS[1000]:g} ms)"
        )


def mark_updates(marks: dict[str, float], step: float | None, steps: int) -> list[dict[str, float]]:
    """16 independent draws within +-3 % of `marks`, or a walk of `steps` steps of sd
    `step` from them (each update one step on from the last)."""
    rng = random.Random(1)
    if step is None:
        return [{s: m * rng.uniform(0.97, 1.03) for s, m in marks.items()} for _ in range(16)]
    walk, current = [], dict(marks)
    for _ in range(steps):
        current = {s: m * (1.0 + rng.gauss(0.0, step)) for s, m in current.items()}
        walk.append(current)
    return walk


def vectorised_at(accounts: int, args: argparse.Namespace) -> list[float]:
    """Update times (s) of the vectorised engine over `accounts` x 25 positions."""
    snapshots, marks = synthetic_book(accounts, 25)
    engine = VectorEngine()
    for snapshot in snapshots:
        engine.load(snapshot)
    updates = itertools.cycle(mark_updates(marks, args.step, args.repeats + 1))
    engine.update(next(updates))
    return timed(lambda: engine.update(next(updates)), args.repeats)


if __name__ == "__main__":
    main()
