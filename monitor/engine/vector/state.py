"""Per frame, per leg and per pool: marks -> value, PnL, tier, MM, pool sums, ratios.

The arithmetic of legs.Leg.state and book.evaluate_pool over every row at once. Pool sums
add each pool's contiguous members with `np.add.reduceat` (pairwise: a few ulps from the
scalar loop's order, far inside the 1e-9 the engines are held to).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from monitor.engine.vector.carry import Carried, Table, carried_at, move
from monitor.engine.vector.columns import Columns
from monitor.engine.vector.layout import Layout
from monitor.engine.vector.plan import Plan


@dataclass(frozen=True, slots=True)
class LegState:
    mark: np.ndarray
    value: np.ndarray
    pnl: np.ndarray
    tier: np.ndarray
    requirement: np.ndarray
    """MM plus any fees the exchange keeps apart (what equity must stay above); NaN
    where the leg has no margin terms."""
    fees: np.ndarray
    slope: np.ndarray
    const: np.ndarray
    """The solver's line in the tier in force (legs.Leg.slopes, consts): read for this
    frame only (the arrays are carried, and rewritten, frame to frame)."""


@dataclass(frozen=True, slots=True)
class PoolState:
    pnl: np.ndarray
    requirement: np.ndarray
    fees: np.ndarray
    balance: np.ndarray
    ratio: np.ndarray
    free: np.ndarray
    """Wallet + PnL - requirement: the constant of a member's own liquidation search."""
    has_legs: np.ndarray
    cross_pnl: np.ndarray
    cross_requirement: np.ndarray
    """The cross rows' (`Plan.cross`) PnL and requirement, as gathered for the sums."""


def leg_state(
    layout: Layout, plan: Plan, symbol_marks: np.ndarray, carried: Carried | None = None
) -> tuple[LegState, Carried]:
    """`symbol_marks` is per layout symbol; NaN (or a non-positive mark) falls back to the
    snapshot's mark, as the scalar book does for a symbol without a tick. `carried` (last
    frame's tiers and their terms, if any; `carry.py`) saves the search and the reads: a
    row whose key left its tier is searched in full and read again. Returns the state
    and what to carry to the next frame."""
    cols, tiers = layout.leg_cols, layout.tier_cols
    mark = symbol_marks.take(cols["symbol"])
    if not (symbol_marks > 0.0).all():  # some symbol has no tick (checked per symbol)
        mark = np.where(mark > 0.0, mark, cols["snapshot_mark"])
    qty, sign = cols["qty"], cols["sign"]
    if plan.any_inverse:
        inverse = cols["inverse"]
        value = np.where(inverse, qty / mark, qty * mark)
        pnl = np.where(
            inverse,
            sign * qty * (1.0 / cols["entry"] - 1.0 / mark),
            sign * (value - cols["cost"]),
        )
    else:
        value = qty * mark
        pnl = np.subtract(value, cols["cost"])
        pnl *= sign
    key = value
    if plan.any_by_contracts:
        key = np.where(cols["by_contracts"], cols["contracts"], value)
    tables = _tier_tables(tiers, plan)
    if carried is None:
        carried = carried_at(None, tier_search(tiers["floors"], key), tables)
    else:
        carried = carried_at(carried, carried.index, tables)
        low, high = carried.values[4], carried.values[5]
        holds = key >= low
        holds &= key < high
        if not holds.all():
            off = np.flatnonzero(~holds)
            tier = tier_near(
                key[off], carried.index[off], low[off], high[off], rows=off, tier_cols=tiers,
                tier_count=cols["tier_count"],
            )  # fmt: skip
            move(carried, off, tier, tables)
    rate, amount, slope, const = carried.values[:4]
    priced = np.multiply(rate, value)  # the tier's rate with the leg's extra, x value
    priced -= amount
    priced += cols["mm_constant"]
    requirement = np.where(cols["fixed"], cols["mm_fixed"], priced) if plan.any_fixed else priced
    fees = value * cols["rate_extra"]
    if plan.no_terms.size:
        requirement[plan.no_terms] = np.nan
        fees[plan.no_terms] = np.nan
    state = LegState(
        mark=mark,
        value=value,
        pnl=pnl,
        tier=carried.index.copy(),
        requirement=requirement,
        fees=fees,
        slope=slope,
        const=const,
    )
    return state, carried


def _tier_tables(tier_cols: Columns, plan: Plan) -> list[Table]:
    """What a row reads at its tier: rate (with the leg's extra), deduction, the solver's
    line (slope, const) and the tier's edges (from, to)."""
    bounds = tier_cols["bounds"].ravel()
    at, edge = plan.tier_first, plan.bounds_first
    return [
        (tier_cols["mm_rates"].ravel(), at),
        (tier_cols["amounts"].ravel(), at),
        (tier_cols["slopes"].ravel(), at),
        (tier_cols["consts"].ravel(), at),
        (bounds, edge),
        (bounds[1:], edge),
    ]


def tier_near(
    key: np.ndarray, guess: np.ndarray, low: np.ndarray, high: np.ndarray, *,
    rows: np.ndarray, tier_cols: Columns, tier_count: np.ndarray,
) -> np.ndarray:  # fmt: skip
    """The tier holding each key of table rows `rows`, which left tier `guess` (whose
    edges are `low`, `high`): the next tier up or down where it holds (a key usually
    moves one tier), a search of the whole row elsewhere (two tiers or more, NaN)."""
    near = guess + (key >= high) - (key < low)
    last = tier_count[rows] - 1
    edges = tier_cols["bounds"]
    width = edges.shape[1]
    at = rows * width + np.minimum(near, last)
    bounds = edges.ravel()
    holds = (near <= last) & (key >= bounds.take(at)) & (key < bounds.take(at + 1))
    if not holds.all():
        far = np.flatnonzero(~holds)
        near[far] = tier_search(tier_cols["floors"][rows[far]], key[far])
    return near


def tier_search(floors: np.ndarray, key: np.ndarray) -> np.ndarray:
    """The tier holding each key in its row of `floors`, searched in full."""
    return np.maximum((floors <= key[:, None]).sum(axis=1) - 1, 0)


def pool_state(layout: Layout, plan: Plan, legs: LegState) -> PoolState:
    count = layout.pool_count
    wallet = layout.pool_cols["wallet"]
    cross_pnl, cross_requirement = legs.pnl.take(plan.cross), legs.requirement.take(plan.cross)
    pnl, requirement, fees = (
        _pool_sums(plan, rows, count)
        for rows in (cross_pnl, cross_requirement, legs.fees.take(plan.cross))
    )
    if plan.pool_unknown.size:
        requirement[plan.pool_unknown] = np.nan
        fees[plan.pool_unknown] = np.nan
    balance = wallet + pnl
    return PoolState(
        pnl=pnl,
        requirement=requirement,
        fees=fees,
        balance=balance,
        ratio=margin_ratio(requirement, balance),
        free=balance - requirement,
        has_legs=plan.has_legs,
        cross_pnl=cross_pnl,
        cross_requirement=cross_requirement,
    )


def _pool_sums(plan: Plan, rows: np.ndarray, count: int) -> np.ndarray:
    """Per pool, the sum of its cross rows' figures `rows` (0 for a pool without any):
    each pool's rows are contiguous, so `add.reduceat` adds them (pairwise, a few ulps
    from the scalar loop's order, at a quarter of `bincount`'s cost)."""
    if plan.summed_pools is None:
        return np.bincount(plan.cross_pool, rows, minlength=count)
    sums = np.zeros(count)
    if rows.size:
        sums[plan.summed_pools] = np.add.reduceat(rows, plan.summed_from)
    return sums


def margin_ratio(requirement: np.ndarray, balance: np.ndarray) -> np.ndarray:
    """results.margin_ratio per row: infinite without equity left (0 for nothing against
    nothing), NaN where either side is unknown."""
    ratio = requirement / balance
    broke = balance <= 0.0
    if broke.any():
        np.putmask(ratio, broke, np.where((requirement <= 0.0) & (balance == 0.0), 0.0, np.inf))
    unknown = np.isnan(requirement)
    unknown |= np.isnan(balance)
    if unknown.any():
        np.putmask(ratio, unknown, np.nan)
    return ratio
