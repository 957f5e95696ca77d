"""The defense a message proposes, sized by the engine's own sizing helpers.

An alert that says only "critical" leaves the trader doing arithmetic on a phone at the
worst moment. Isolated: the margin to add. Cross: the cuts, biggest maintenance margin
first (the fewest orders that free the most), or the collateral to add instead. All aim
at `alerts.defense_target`, the ratio a defense should bring the target back to.
"""

from __future__ import annotations

from typing import NamedTuple

from alerts.view import target_of
from monitor.engine.book import AccountBook, Marks
from monitor.engine.legs import Leg
from monitor.engine.sizing import margin_to_add, plan_pool_reduction


class Cut(NamedTuple):
    symbol: str
    side: str
    contracts: float
    notional: float
    """Value of the cut at the mark, in the pool's asset."""
    contract_size: float = 1.0
    inverse: bool = False
    """With `contract_size`, what a contract is, so the cut reads in base units."""


class Defense(NamedTuple):
    asset: str
    target_ratio: float
    cross: bool
    """A pool's defense (cuts, or collateral) rather than one isolated position's margin."""
    add: float | None
    """Isolated margin (or cross collateral) that brings the ratio to the target."""
    cuts: tuple[Cut, ...] = ()
    ratio_after: float | None = None
    """The pool's ratio after every cut; above the target when cutting cannot reach it."""
    problem: str | None = None
    """Why it could not be sized (unknown tiers or margin): said, not hidden."""


def isolated_defense(
    book: AccountBook, target: str, target_ratio: float, marks: Marks
) -> Defense | None:
    """Margin to add to one isolated position; None when it is already at the target."""
    leg = next((leg for leg in book.isolated if target_of(leg.position) == target), None)
    if leg is None:
        return None
    asset = leg.position.settle
    try:
        add = margin_to_add(book, leg, target_ratio, marks)
    except ValueError as exc:
        return Defense(asset, target_ratio, False, None, problem=str(exc))
    return Defense(asset, target_ratio, False, add) if add > 0 else None


def pool_defense(
    book: AccountBook, asset: str, target_ratio: float, marks: Marks
) -> Defense | None:
    """Cuts (and the alternative collateral) for one cross pool; None when at the target."""
    pool, _ = book.evaluate_pool(asset, marks)
    if pool.requirement is None or pool.margin_ratio is None:
        problem = pool.note or "maintenance margin unknown"
        return Defense(asset, target_ratio, True, None, problem=problem)
    if pool.margin_ratio <= target_ratio:
        return None
    add = max(0.0, pool.requirement / target_ratio - pool.margin_balance)
    order = sorted(
        book.cross.get(asset, []), key=lambda leg: leg.maintenance_margin(_mark(leg, marks)),
        reverse=True,
    )  # fmt: skip
    try:
        plans = plan_pool_reduction(book, asset, order, target_ratio, marks)
    except ValueError as exc:
        return Defense(asset, target_ratio, True, add, problem=str(exc))
    legs = {(leg.symbol, leg.position.side.value): leg for leg in order}
    cuts = tuple(_cut(legs[p.symbol, p.side], p.contracts, marks) for p in plans)
    ratio_after = plans[-1].ratio_after if plans else None
    return Defense(asset, target_ratio, True, add, cuts, ratio_after)


def _cut(leg: Leg, contracts: float, marks: Marks) -> Cut:
    p = leg.position
    value = _value(leg, contracts, marks)
    return Cut(p.symbol, p.side.value, contracts, value, p.contract_size, p.inverse)


def _mark(leg: Leg, marks: Marks) -> float:
    return marks.get(leg.symbol) or leg.position.mark_price


def _value(leg: Leg, contracts: float, marks: Marks) -> float:
    return leg.value(_mark(leg, marks)) * contracts / leg.contracts
