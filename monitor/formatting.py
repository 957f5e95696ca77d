"""How figures read to a person: one convention for the table, the live view and pages.

An unknown figure reads "unknown", never blank or zero; an unbounded ratio (no equity
left) reads "∞"; a figure that has no meaning for a row (a pool's mark) reads "—".
Sizes are in the instrument's own unit (base asset, or USD face value for an inverse
contract) with the exchange's contract count beside them where the two differ, and never
in exponent notation: a trader compares them with the exchange's screen.
"""

from __future__ import annotations

import math
from typing import Protocol

from monitor.engine.levels import Level, LevelLimits, keeping, level_thresholds

UNKNOWN = "unknown"
NOT_APPLICABLE = "—"
SHORT_LEVEL = {
    Level.OK: "OK",
    Level.WARN: "WARN",
    Level.UNKNOWN: "UNKNOWN",
    Level.CRITICAL: "CRIT",
    Level.IMMINENT: "IMMINENT",
}
"""Level names on screens: CRIT keeps the level column narrow at 80 columns."""
PRICE_DIGITS = 6
"""Significant digits of a price below 1."""
SIGNIFICANT_DIGITS = 9
"""Sizes keep up to this many digits: a 0.001 lot of a 100,000-unit position still shows."""


def pct(value: float | None) -> str:
    if value is None:
        return UNKNOWN
    return "∞" if not math.isfinite(value) else f"{value * 100:.2f}%"


def fraction(value: float | None) -> str:
    """A ratio as a plain fraction (0.500), ∞ when unbounded."""
    if value is None:
        return UNKNOWN
    return "∞" if not math.isfinite(value) else f"{value:.3f}"


def threshold(value: float) -> str:
    """A configured threshold as written (0.05 -> "5%", 0.075 -> "7.5%")."""
    return f"{value * 100:.4g}%"


def price(value: float | None) -> str:
    """Cents from 1 up; below, six significant digits, never in exponent form (a
    0.0000123456 mark reads so, not 1.23456e-05)."""
    if value is None:
        return UNKNOWN
    if not math.isfinite(value):
        return "∞"
    if abs(value) >= 1 or value == 0:
        return f"{value:,.2f}"
    decimals = PRICE_DIGITS - 1 - math.floor(math.log10(abs(value)))
    return f"{value:.{decimals}f}".rstrip("0").rstrip(".")


def money(value: float | None) -> str:
    """An amount of a settlement asset: cents, or 6 decimals below 1 (coin pools)."""
    if value is None:
        return UNKNOWN
    if not math.isfinite(value):
        return "∞"
    return f"{value:,.6f}" if abs(value) < 1 else f"{value:,.2f}"


def quantity(value: float) -> str:
    """Thousands separators, the decimals the value has (float dust dropped), no exponent:
    40000 -> "40,000", 5e7 -> "50,000,000", 30 x 0.1 -> "3", 0.0025 -> "0.0025"."""
    if not math.isfinite(value):
        return "∞"
    whole = len(str(int(abs(value))))
    decimals = min(8, max(0, SIGNIFICANT_DIGITS - whole))
    text = f"{value:,.{decimals}f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text == "-0" else text


class Sized(Protocol):
    symbol: str
    contracts: float
    contract_size: float
    inverse: bool


def size_unit(symbol: str, inverse: bool) -> str:
    """The unit of `contracts x contract_size`: the base asset of a linear contract, the
    quote (USD face value) of an inverse one. "BTC/USDT:USDT" -> "BTC"."""
    pair = symbol.partition(":")[0]
    base, _, quote = pair.partition("/")
    return (quote or base) if inverse else base


def size(item: Sized, count: float | None = None, *, contracts: bool = True) -> str:
    """`count` contracts (default: the whole position) in the instrument's unit, with the
    contract count when a contract is not one unit and `contracts`: OKX's 50 contracts
    read "0.5 BTC (50 ct)"."""
    count = item.contracts if count is None else count
    return size_of(item.symbol, count, item.contract_size, item.inverse, contracts=contracts)


def size_of(
    symbol: str, count: float, contract_size: float, inverse: bool, *, contracts: bool = True
) -> str:
    text = f"{quantity(count * contract_size)} {size_unit(symbol, inverse)}"
    if contracts and contract_size != 1:
        text += f" ({quantity(count)} ct)"
    return text


def short_symbol(symbol: str) -> str:
    """`BTC/USDT:USDT` -> `BTC/USDT`: the settle suffix repeats the quote on linear swaps."""
    base, _, settle = symbol.partition(":")
    return base if base.endswith(f"/{settle}") else symbol


def level_reason(
    level: Level,
    ratio: float | None,
    distance: float | None,
    limits: LevelLimits,
    *,
    compact: bool = False,
) -> str:
    """Which figure put a target at its level, against which threshold:
    "distance 4.10% ≤ 5%" (compact: "dist≤5%", the figure being in its own column).

    A level held by hysteresis (the figure back past the threshold, not yet past the
    clear margin) says until when: "distance 5.20%, held until > 5.25%". Empty for a
    level no threshold sets: OK, and unknown (its note says why).
    """
    thresholds = level_thresholds(limits)
    if all(at is not level for at, _, _ in thresholds):
        return ""
    ratio_word, distance_word = ("ratio", "dist") if compact else ("ratio", "distance")
    for at, ratio_at, distance_at in thresholds:
        if at is not level:
            continue
        if ratio is not None and ratio >= ratio_at:
            return _reason(ratio_word, ratio, "≥", ratio_at, compact)
        if distance is not None and distance <= distance_at:
            return _reason(distance_word, distance, "≤", distance_at, compact)
    keep = keeping(level, limits)
    if ratio is not None and keep.held_ratio is not None and ratio >= keep.held_ratio:
        return _held(ratio_word, ratio, "<", keep.held_ratio, compact)
    if distance is not None and keep.held_distance is not None and distance <= keep.held_distance:
        return _held(distance_word, distance, ">", keep.held_distance, compact)
    return "held"


def _reason(word: str, value: float, sign: str, limit: float, compact: bool) -> str:
    if compact:
        return f"{word}{sign}{threshold(limit)}"
    return f"{word} {pct(value)} {sign} {threshold(limit)}"


def _held(word: str, value: float, sign: str, clear: float, compact: bool) -> str:
    """Back past the threshold but not past its clear margin: "held until > 5.25%"."""
    if compact:
        return f"{word} held"
    return f"{word} {pct(value)}, held until {sign} {threshold(clear)}"
