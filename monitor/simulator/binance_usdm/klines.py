"""`GET /fapi/v1/klines`: candles made from the venue's own price history.

The simulator records every mark it sets (`SimExchange.price_history`); a test may also
seed a past day there (monitor/simulator/candles.py makes the candles). The reply is
Binance's row of twelve: open time, O, H, L, C as strings, volume, close time, quote
volume, trade count, taker buy base and quote volumes, and "0". The venue simulates no
trading volume: those figures are "0". `/fapi/v1/markPriceKlines` answers from the
same history, since the history is of mark prices.
"""

from __future__ import annotations

from typing import Any

from monitor.simulator.binance_usdm import errors
from monitor.simulator.binance_usdm.errors import BinanceApiError
from monitor.simulator.binance_usdm.render import num
from monitor.simulator.binance_usdm.state import SimExchange
from monitor.simulator.candles import candles, window

MINUTE = 60_000
INTERVALS = {
    "1m": MINUTE, "3m": 3 * MINUTE, "5m": 5 * MINUTE, "15m": 15 * MINUTE,
    "30m": 30 * MINUTE, "1h": 60 * MINUTE, "2h": 120 * MINUTE, "4h": 240 * MINUTE,
    "6h": 360 * MINUTE, "8h": 480 * MINUTE, "12h": 720 * MINUTE, "1d": 1_440 * MINUTE,
    "3d": 4_320 * MINUTE, "1w": 10_080 * MINUTE,
}  # fmt: skip
"""Binance's fixed-length intervals (the calendar month, 1M, is not simulated)."""
DEFAULT_LIMIT, MAX_LIMIT = 500, 1_500


def _int_param(params: dict[str, str], name: str) -> int | None:
    raw = params.get(name) or None
    if raw is None:
        return None
    try:
        return int(raw)
    except ValueError:
        raise errors.invalid_param(name) from None


def klines(exchange: SimExchange, symbol: str, params: dict[str, str]) -> list[list[Any]]:
    interval = params.get("interval") or None
    if interval is None:
        raise errors.mandatory_param("interval")
    step = INTERVALS.get(interval)
    if step is None:
        raise BinanceApiError(-1120, "Invalid interval.")
    start, end = _int_param(params, "startTime"), _int_param(params, "endTime")
    limit = _int_param(params, "limit") or DEFAULT_LIMIT
    if not 0 < limit <= MAX_LIMIT:
        raise errors.invalid_param("limit")
    precision = exchange.market(symbol).price_precision
    rows = candles(exchange.price_history.get(symbol, []), step)
    chosen = window(rows, start, end, limit)
    return [
        [at, num(o, precision), num(h, precision), num(lo, precision), num(c, precision),
         "0", at + step - 1, "0", 0, "0", "0", "0"]
        for at, o, h, lo, c in chosen
    ]  # fmt: skip
