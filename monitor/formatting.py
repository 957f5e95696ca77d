"""How figures read to a person: one convention for the table, the live view and pages.

An unknown figure reads "unknown", never blank or zero; an unbounded ratio (no equity
left) reads "∞".
"""

from __future__ import annotations

import math


def pct(value: float | None) -> str:
    if value is None:
        return "unknown"
    return "∞" if not math.isfinite(value) else f"{value * 100:.2f}%"


def price(value: float | None) -> str:
    if value is None:
        return "unknown"
    return f"{value:,.6g}" if value < 1 else f"{value:,.2f}"


def money(value: float | None) -> str:
    """An amount in its asset: cents from 1 up, up to 8 decimals below (coin-sized
    figures such as 0.000025 BTC), never in exponent form."""
    if value is None:
        return "unknown"
    if abs(value) >= 1:
        return f"{value:,.2f}"
    return f"{value:.8f}".rstrip("0").rstrip(".") or "0"
