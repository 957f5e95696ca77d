"""Shared pieces of the benchmarks: a synthetic book and timing statistics."""

from __future__ import annotations

import random
import statistics
import time
from collections.abc import Callable

from monitor.domain import (
    AccountSnapshot,
    CrossPool,
    MarginMode,
    Position,
    Side,
    Tier,
    TierTable,
)

SYMBOLS = [f"S{i:02d}/USDT:USDT" for i in range(50)]


def symbol_names(count: int) -> list[str]:
    """`count` unified symbols in the SYMBOLS pattern (the first 50 are SYMBOLS)."""
    return [f"S{i:02d}/USDT:USDT" for i in range(count)]


def market_id(symbol: str) -> str:
    """Binance's market id of a synthetic symbol: "S07/USDT:USDT" -> "S07USDT"."""
    base, rest = symbol.split("/", 1)
    return base + rest.split(":", 1)[0]


def binance_like_tiers(scale: float) -> TierTable:
    """Ten brackets with continuous cum, shaped like Binance's BTCUSDT table."""
    floors = [0, 5e4, 2.5e5, 1e6, 1e7, 2e7, 5e7, 1e8, 2e8, 3e8]
    rates = [0.004, 0.005, 0.01, 0.025, 0.05, 0.1, 0.125, 0.15, 0.25, 0.5]
    tiers, cum = [], 0.0
    for i, (floor, rate) in enumerate(zip(floors, rates, strict=True)):
        if i:
            cum += floor * scale * (rate - rates[i - 1])
        cap = floors[i + 1] * scale if i + 1 < len(floors) else float("inf")
        tiers.append(Tier(floor * scale, cap, rate, cum))
    return TierTable(tuple(tiers))


def synthetic_book(
    accounts: int = 200,
    positions: int = 25,
    isolated: int = 5,
    seed: int = 7,
    symbols: int = len(SYMBOLS),
) -> tuple[list[AccountSnapshot], dict[str, float]]:
    """`accounts` hybrid accounts of `positions` positions, `isolated` of them isolated,
    drawn from `symbols` markets (the default reproduces the original 50-symbol book)."""
    rng = random.Random(seed)
    names = symbol_names(symbols)
    marks = {s: rng.uniform(1, 60_000) for s in names}
    tiers = {s: binance_like_tiers(rng.choice([0.1, 0.5, 1.0])) for s in names}
    books = []
    for a in range(accounts):
        held = []
        for i, symbol in enumerate(rng.sample(names, positions)):
            mode = MarginMode.ISOLATED if i < isolated else MarginMode.CROSS
            notional = rng.uniform(1e3, 2e6)
            mark = marks[symbol]
            contracts = notional / mark
            held.append(
                Position(
                    symbol,
                    rng.choice(list(Side)),
                    mode,
                    contracts,
                    1.0,
                    mark * rng.uniform(0.9, 1.1),
                    mark,
                    "USDT",
                    leverage=10,
                    isolated_margin=notional / rng.uniform(3, 20)
                    if mode is MarginMode.ISOLATED
                    else None,
                )
            )
        wallet = sum(p.contracts * p.mark_price for p in held) / 5
        books.append(
            AccountSnapshot(
                f"acct{a}", "binanceusdm", (CrossPool("USDT", wallet),), tuple(held), tiers
            )
        )
    return books, marks


def timed(run: Callable[[], object], repeats: int) -> list[float]:
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        samples.append(time.perf_counter() - start)
    return samples


def timed_alternating(runs: list[Callable[[], object]], repeats: int) -> list[list[float]]:
    """Samples of each run, taken in turn, so that all of them see the same machine: on a
    shared, noisy host a ratio of two series timed one after the other measures the
    neighbours as much as the code."""
    samples: list[list[float]] = [[] for _ in runs]
    for _ in range(repeats):
        for run, taken in zip(runs, samples, strict=True):
            start = time.perf_counter()
            run()
            taken.append(time.perf_counter() - start)
    return samples


def summary(samples: list[float]) -> tuple[float, float]:
    """(median, p99) in milliseconds."""
    ordered = sorted(samples)
    p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
    return statistics.median(ordered) * 1e3, p99 * 1e3
