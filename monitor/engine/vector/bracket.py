"""Closed-form liquidation prices of single linear legs, many at once.

Binance's FAQ formula, bracket by bracket (solver.bracket_root_price, vectorised):
LP = (C - side x q x EP + cum - c) / (q x (rate + extra - side)), re-solved one bracket
further (down for a long, up for a short) until the price lies in the bracket it was
computed with. Each pass retires the legs that are done; no leg takes more passes than
its table has brackets, and a warm start (last frame's bracket) usually takes one.
"""

from __future__ import annotations

import numpy as np

from monitor.engine.solver import AT_BOUND

Columns = dict[str, np.ndarray]


def bracket_price(
    leg_cols: Columns,
    tier_cols: Columns,
    rows: np.ndarray,
    constant: np.ndarray,
    start: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """(liquidation price, its bracket) of each leg in `rows` with `constant` (its wallet,
    plus PnL minus MM of whatever is held still), the search starting at bracket `start`.

    A single leg's equity - MM is strictly monotone in the price (slope q x (1 - rate)
    for a long, -q x (1 + rate) for a short), so exactly one bracket holds its own
    candidate price: the one the scalar walk stops at. Testing both edges lets the search
    start anywhere (the previous frame's answer, usually right) and step towards it.
    """
    sign = leg_cols["sign"][rows]
    qty = leg_cols["qty"][rows]
    extra = leg_cols["rate_extra"][rows]
    last = leg_cols["tier_count"][rows] - 1
    base = constant - sign * qty * leg_cols["entry"][rows] - leg_cols["mm_constant"][rows]
    width = tier_cols["rates"].shape[1]
    rates, amounts = tier_cols["rates"].ravel(), tier_cols["amounts"].ravel()
    floors = tier_cols["floors"].ravel()
    first = rows * width
    price = np.empty(rows.size)
    index = np.minimum(np.asarray(start, dtype=np.intp), last)
    pending = np.arange(rows.size)
    while pending.size:
        at, top = index[pending], last[pending]
        flat = first[pending] + at
        q, s = qty[pending], sign[pending]
        with np.errstate(divide="ignore", invalid="ignore"):
            found = (base[pending] + amounts.take(flat)) / (
                q * (rates.take(flat) + extra[pending] - s)
            )
        key = found * q
        below = (at > 0) & (key < floors.take(flat))
        above = (at < top) & (key >= floors.take(flat + (at < top)))
        done = ~below & ~above
        price[pending[done]] = found[done]
        index[pending] += np.where(below, -1, 0) + np.where(above, 1, 0)
        pending = pending[~done]
    return price, index


def move_to(price: np.ndarray, mark: np.ndarray, sign: np.ndarray) -> np.ndarray:
    """The adverse fractional move from `mark` to `price` (solver.move_to): 0 when already
    there or past it, NaN where a long's price is zero (nothing liquidates it)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        move = price / mark - 1.0
    long = sign > 0
    past = np.where(long, price >= mark, price <= mark)
    unreachable = long & ~past & ~(price > AT_BOUND * mark)
    return np.where(past, 0.0, np.where(unreachable | np.isnan(price), np.nan, move))
