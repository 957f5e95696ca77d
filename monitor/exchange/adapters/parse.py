"""Reading numbers out of exchange JSON, where "", "0" and null can all mean unknown."""

from __future__ import annotations

import math
from typing import Any


def number(value: Any) -> float | None:
    """A finite float, or None for missing, empty or unparseable values."""
    if value is None or value == "":
        return None
    try:
        result = float(value)
    except (TypeError, ValueError):
        return None
    return result if math.isfinite(result) else None


def required(value: Any, what: str) -> float:
    """A number the snapshot cannot do without; a bad reply otherwise."""
    result = number(value)
    if result is None:
        raise ValueError(f"exchange reply lacks a numeric {what}: {value!r}")
    return result


def price_or_unknown(value: Any) -> float | None:
    """Exchange-reported prices: 0 and negatives mean 'not given' (Gate returns 0,
    Binance cross and Bybit unified cross return ""), never 'safe'."""
    result = number(value)
    return result if result is not None and result > 0 else None
