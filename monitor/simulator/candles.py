"""Candles from a recorded price history, for every dialect's kline endpoint.

A candle is the open, high, low and close of the recorded prices whose time falls in
its interval; an interval with no record between two that have one is a flat candle at
the previous close (venues publish a candle for every interval, traded or not).
"""

from __future__ import annotations

from collections.abc import Iterable

Candle = tuple[int, float, float, float, float]
"""(open time ms, open, high, low, close)."""


def candles(history: Iterable[tuple[int, float]], step_ms: int) -> list[Candle]:
    out: list[Candle] = []
    for at, price in sorted(history):
        bucket = at - at % step_ms
        if out and out[-1][0] == bucket:
            _, o, h, lo, _ = out[-1]
            out[-1] = (bucket, o, max(h, price), min(lo, price), price)
            continue
        if out:
            close = out[-1][4]
            gap = out[-1][0] + step_ms
            while gap < bucket:
                out.append((gap, close, close, close, close))
                gap += step_ms
        out.append((bucket, price, price, price, price))
    return out


def window(rows: list[Candle], start: int | None, end: int | None, limit: int) -> list[Candle]:
    """Candles opening in [start, end], oldest first: the first `limit` after a start,
    else the latest `limit`."""
    chosen = [r for r in rows if (start is None or r[0] >= start) and (end is None or r[0] <= end)]
    return chosen[:limit] if start is not None else chosen[-limit:]
