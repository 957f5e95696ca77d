"""Per frame, per leg and per pool: marks -> value, PnL, tier, MM, pool sums, ratios.

The arithmetic of legs.Leg.state and book.evaluate_pool over every row at once. Pool sums
use `np.bincount`, which adds each pool's members in row order: the same order, hence the
same rounding, as the scalar loop.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from monitor.engine.vector.columns import PoolStatus
from monitor.engine.vector.layout import Layout


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


def leg_state(layout: Layout, symbol_marks: np.ndarray) -> LegState:
    """`symbol_marks` is per layout symbol; NaN (or a non-positive mark) falls back to the
    snapshot's mark, as the scalar book does for a symbol without a tick."""
    cols, tiers = layout.leg_cols, layout.tier_cols
    mark = symbol_marks[cols["symbol"]]
    mark = np.where(mark > 0.0, mark, cols["snapshot_mark"])
    inverse, qty, sign = cols["inverse"], cols["qty"], cols["sign"]
    value = np.where(inverse, qty / mark, qty * mark)
    pnl = np.where(
        inverse,
        sign * qty * (1.0 / cols["entry"] - 1.0 / mark),
        sign * (value - qty * cols["entry"]),
    )
    key = np.where(cols["by_contracts"], cols["contracts"], value)
    floors = tiers["floors"]
    tier = np.maximum((floors <= key[:, None]).sum(axis=1) - 1, 0)
    at = np.arange(0, floors.size, floors.shape[1]) + tier
    extra = cols["rate_extra"]
    priced = value * (tiers["rates"].ravel().take(at) + extra) - tiers["amounts"].ravel().take(at)
    requirement = np.where(cols["fixed"], cols["mm_fixed"], priced + cols["mm_constant"])
    known = cols["has_terms"]
    return LegState(
        mark=mark,
        value=value,
        pnl=pnl,
        tier=tier,
        requirement=np.where(known, requirement, np.nan),
        fees=np.where(known, value * extra, np.nan),
    )


def pool_state(layout: Layout, legs: LegState) -> PoolState:
    pool = layout.leg_cols["pool"]
    cross = np.flatnonzero(pool >= 0)
    members, count = pool[cross], layout.pool_count
    wallet = layout.pool_cols["wallet"]
    known = layout.pool_cols["status"] == PoolStatus.OK
    pnl = np.bincount(members, legs.pnl[cross], minlength=count)
    requirement = np.bincount(members, legs.requirement[cross], minlength=count)
    requirement = np.where(known, requirement, np.nan)
    fees = np.where(known, np.bincount(members, legs.fees[cross], minlength=count), np.nan)
    balance = wallet + pnl
    return PoolState(
        pnl=pnl,
        requirement=requirement,
        fees=fees,
        balance=balance,
        ratio=margin_ratio(requirement, balance),
        free=wallet + pnl - requirement,
        has_legs=np.bincount(members, minlength=count) > 0,
    )


def margin_ratio(requirement: np.ndarray, balance: np.ndarray) -> np.ndarray:
    """results.margin_ratio per row: infinite without equity left (0 for nothing against
    nothing), NaN where either side is unknown."""
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = requirement / balance
    broke = np.where((requirement <= 0.0) & (balance == 0.0), 0.0, np.inf)
    ratio = np.where(balance <= 0.0, broke, ratio)
    return np.where(np.isnan(requirement) | np.isnan(balance), np.nan, ratio)
