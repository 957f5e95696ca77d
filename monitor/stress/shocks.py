"""Shocks: a path of prices, as multipliers of today's marks, and a readable name.

A shock is a list of waypoints; between two waypoints every price moves in a straight
line, and the engine is asked exactly where along it each pool or position goes. A
single move (uniform, beta-scaled, N-sigma) is one waypoint; a replayed day is one per
candle extreme.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

PRICE_FLOOR = 0.01
"""A beta-scaled move is clamped to -99 %: no price goes to zero or below."""


@dataclass(frozen=True, slots=True)
class Waypoint:
    """Prices as multipliers of today's marks; `reference` is BTC's multiplier."""

    reference: float
    prices: Mapping[str, float]


@dataclass(frozen=True, slots=True)
class Shock:
    name: str
    kind: str
    """uniform, beta, sigma or replay."""
    path: tuple[Waypoint, ...]
    note: str | None = None

    @property
    def move(self) -> float:
        """BTC's move over the whole shock, as a signed fraction."""
        return self.path[-1].reference - 1.0


def pct_label(move: float) -> str:
    """-0.2 -> "-20%", 0.075 -> "+7.5%": shock names read as a trader says them."""
    return f"{move * 100:+.4g}%"


UNIFORM_MOVES = (-0.05, -0.10, -0.20, -0.30, 0.05, 0.10, 0.20, 0.30)
BETA_MOVES = (-0.10, -0.20, 0.10, 0.20)
SIGMA_WINDOWS = (1, 7, 30)
SIGMA_COUNT = 3.0


def uniform(symbols: Iterable[str], move: float) -> Shock:
    """Every price by the same fraction."""
    factor = 1.0 + move
    return Shock(
        f"uniform {pct_label(move)}", "uniform", (Waypoint(factor, dict.fromkeys(symbols, factor)),)
    )


def beta_scaled(betas: Mapping[str, float], btc_move: float) -> Shock:
    """Each symbol moves its beta times BTC's move (clamped at -99 %)."""
    prices = {s: max(PRICE_FLOOR, 1.0 + beta * btc_move) for s, beta in betas.items()}
    clamped = [s for s, beta in betas.items() if 1.0 + beta * btc_move < PRICE_FLOOR]
    note = f"clamped at -99%: {', '.join(clamped)}" if clamped else None
    return Shock(
        f"beta BTC {pct_label(btc_move)}", "beta", (Waypoint(1.0 + btc_move, prices),), note
    )


def n_sigma(
    daily_vol: Mapping[str, float], reference_vol: float, *, count: float, days: int, down: bool
) -> Shock:
    """A one-day move of `count` standard deviations of each symbol's own realised daily
    volatility (log returns over the last `days` days), all in the same direction."""
    sign = -1.0 if down else 1.0
    prices = {s: math.exp(sign * count * vol) for s, vol in daily_vol.items()}
    reference = math.exp(sign * count * reference_vol)
    name = f"{count:g}σ {days}d {'down' if down else 'up'}"
    return Shock(name, "sigma", (Waypoint(reference, prices),))


Candle = tuple[float, float, float, float, float]
"""(open time ms, open, high, low, close): ccxt's OHLCV row without the volume."""


def candle_points(candle: Candle) -> tuple[float, float, float]:
    """The prices a candle passes through after its open, in the order assumed: a candle
    that closed down is taken to have made its high first, one that closed up its low."""
    _, open_, high, low, close = candle
    return (high, low, close) if close < open_ else (low, high, close)


def replay(day: str, candles: Mapping[str, Sequence[Candle]], reference: str) -> Shock:
    """A real day's path, each symbol relative to its own open, applied to today's marks.

    Candles are aligned by open time; every symbol passes through its candle's extremes
    at the same waypoint, which is the harsher reading when symbols fell together (the
    days this is for). A symbol without candles moves with BTC, and the note says so.
    """
    ref = candles[reference]
    opens = {s: rows[0][1] for s, rows in candles.items() if rows}
    by_time = {s: {row[0]: row for row in rows} for s, rows in candles.items()}
    missing = sorted(s for s, rows in candles.items() if not rows)
    path: list[Waypoint] = []
    for ref_row in ref:
        rows = {s: by_time[s].get(ref_row[0]) for s in opens}
        for k, ref_price in enumerate(candle_points(ref_row)):
            ref_factor = ref_price / opens[reference]
            prices = {
                s: (candle_points(row)[k] / opens[s] if row is not None else None)
                for s, row in rows.items()
            }
            filled = {s: (p if p is not None else ref_factor) for s, p in prices.items()}
            filled.update(dict.fromkeys(missing, ref_factor))
            path.append(Waypoint(ref_factor, filled))
    note = f"no candles, moved with BTC: {', '.join(missing)}" if missing else None
    return Shock(f"replay {day}", "replay", tuple(path), note)


@dataclass(frozen=True, slots=True)
class WorstDay:
    day: str
    what: str
    source: str


WORST_DAYS = (
    WorstDay(
        "2025-10-10",
        "tariff shock; about $19bn liquidated in 24 h, the largest day on record",
        "CoinGlass liquidation data, 10-11 Oct 2025, and its 2025 annual report",
    ),
    WorstDay(
        "2021-05-19",
        "BTC about -30% intraday to near $30k; over $8.6bn liquidated",
        "Bybt (now CoinGlass) liquidation data for 19 May 2021",
    ),
    WorstDay(
        "2020-03-12",
        "'Black Thursday': BTC perpetuals from about $7,350 to under $4,000",
        'LedgerPrime, "Crypto\'s Black Thursday: the Market Crash of March 2020"',
    ),
)
