"""Betas and realised volatilities from candle closes (log returns)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np

HOURS_PER_DAY = 24


def log_returns(closes: Sequence[float]) -> np.ndarray:
    prices = np.asarray(closes, dtype=float)
    return np.diff(np.log(prices))


def beta(symbol_closes: Sequence[float], reference_closes: Sequence[float]) -> float | None:
    """cov(r, r_btc) / var(r_btc) over the common tail of both series; None when there
    are fewer than two returns or BTC did not move."""
    n = min(len(symbol_closes), len(reference_closes))
    if n < 3:
        return None
    r = log_returns(symbol_closes[-n:])
    m = log_returns(reference_closes[-n:])
    var = float(np.var(m, ddof=1))
    if var == 0.0:
        return None
    return float(np.cov(r, m, ddof=1)[0, 1] / var)


def daily_volatility(hourly_closes: Sequence[float]) -> float | None:
    """Sample standard deviation of hourly log returns, scaled to a day (x sqrt 24)."""
    if len(hourly_closes) < 3:
        return None
    return float(np.std(log_returns(hourly_closes), ddof=1)) * math.sqrt(HOURS_PER_DAY)


def betas(closes: Mapping[str, Sequence[float]], reference: str) -> dict[str, float | None]:
    return {s: beta(c, closes[reference]) for s, c in closes.items()}
