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
