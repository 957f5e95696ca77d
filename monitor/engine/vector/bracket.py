"""Closed-form liquidation prices of single linear legs, many at once.

Binance's FAQ formula, bracket by bracket (solver.bracket_root_price, vectorised):
LP = (C - side x q x EP + cum - c) / (q x (rate + extra - side)), re-solved one bracket
further (down for a long, up for a short) until the price lies in the bracket it was
computed with. Regular tables make equity - MM concave, so that first consistent price
is the root whatever bracket the walk starts from on the near side; each pass retires
the legs that are done, and no leg takes more passes than its table has brackets.
"""

from __future__ import annotations

import numpy as np

Columns = dict[str, np.ndarray]


def bracket_price(
    leg_cols: Columns,
    tier_cols: Columns,
    rows: np.ndarray,
    constant: np.ndarray,
    start: np.ndarray,
) -> np.ndarray:
    """Liquidation price of each leg in `rows` with `constant` (its wallet, plus PnL
    minus MM of whatever is held still), the walk starting at bracket `start`."""
    sign = leg_cols["sign"][rows]
    qty = leg_cols["qty"][rows]
    extra = leg_cols["rate_extra"][rows]
    last = leg_cols["tier_count"][rows] - 1
    base = constant - sign * qty * leg_cols["entry"][rows] - leg_cols["mm_constant"][rows]
    rates, amounts, floors = tier_cols["rates"], tier_cols["amounts"], tier_cols["floors"]
    price = np.empty(rows.size)
    index = np.asarray(start, dtype=np.intp).copy()
    pending = np.arange(rows.size)
    while pending.size:
        leg, at = rows[pending], index[pending]
        q, s = qty[pending], sign[pending]
        found = (base[pending] + amounts[leg, at]) / (q * (rates[leg, at] + extra[pending] - s))
        top = last[pending]
        above = floors[leg, np.minimum(at + 1, top)]
        long = s > 0
        done = np.where(
            long, (at == 0) | (found * q >= floors[leg, at]), (at == top) | (found * q < above)
        )
        price[pending[done]] = found[done]
        pending = pending[~done]
        index[pending] += np.where(long[~done], -1, 1)
    return price


def move_to(price: np.ndarray, mark: np.ndarray, sign: np.ndarray) -> np.ndarray:
    """The adverse fractional move from `mark` to `price` (solver.move_to): 0 when already
    there or past it, NaN where a long's price is zero (nothing liquidates it)."""
    from monitor.engine.solver import AT_BOUND

    with np.errstate(invalid="ignore", divide="ignore"):
        move = price / mark - 1.0
    long = sign > 0
    past = np.where(long, price >= mark, price <= mark)
    unreachable = long & ~past & ~(price > AT_BOUND * mark)
    return np.where(past, 0.0, np.where(unreachable | np.isnan(price), np.nan, move))
