"""How much to add or cut to bring a ratio back to a target: the defenses, sized.

Alerts quote these figures and the auto-deleverage actions execute them, so they are
deliberately conservative:
- reducing an isolated position is assumed to release its margin in proportion to the
  closed size (if the exchange keeps more margin in the position, the ratio after is
  only better);
- reducing a cross position pays the taker fee out of the pool when the fee is known.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import replace
from typing import NamedTuple

from monitor.domain import MarketInfo
from monitor.engine.book import AccountBook, Marks
from monitor.engine.legs import Leg
from monitor.engine.results import margin_ratio

DEFAULT_STEP = 1e-8


class ReducePlan(NamedTuple):
    """A reduce-only quantity (contracts) for one position and the ratio it leads to."""

    symbol: str
    side: str
    contracts: float
    ratio_after: float
    reaches_target: bool


def margin_to_add(
    book: AccountBook, leg: Leg, target_ratio: float, marks: Marks | None = None
) -> float:
    """Margin to move into an isolated position so its ratio falls to `target_ratio`.

    Adding margin does not change MM (that depends on the notional), so the answer is
    MM / target - (isolated margin + PnL), or 0 when already at or below the target.
    """
    _check_target(target_ratio)
    mark = book._mark(leg, marks)
    wallet = leg.position.isolated_margin
    if wallet is None or not leg.has_margin_terms:
        raise ValueError(f"{leg.symbol}: isolated margin or tiers unknown")
    needed = leg.maintenance_margin(mark) / target_ratio - (wallet + leg.unrealized_pnl(mark))
    return max(0.0, needed)


def _check_target(target_ratio: float) -> None:
    if not 0.0 < target_ratio < 1.0:
        raise ValueError(f"target ratio must be > 0 and < 1, got {target_ratio}")


def _resized(book: AccountBook, leg: Leg, contracts: float) -> Leg:
    """The same position with fewer contracts, priced by the same model."""
    position = replace(leg.position, contracts=contracts)
    return book.model.compile(position, book.snapshot)


def _smallest_steps(steps_total: int, reaches: Callable[[int], bool]) -> int | None:
    """Smallest n in 1..steps_total with reaches(n) true, assuming monotone; None if none."""
    if steps_total < 1 or not reaches(steps_total):
        return None
    lo, hi = 1, steps_total
    while lo < hi:
        mid = (lo + hi) // 2
        if reaches(mid):
            hi = mid
        else:
            lo = mid + 1
    return lo


def _apply_min_notional(
    n: int, step: float, steps_total: int, unit_value: float, market: MarketInfo | None
) -> int:
    """Raise n to the market's minimum order size and notional; a full close is allowed."""
    if market is not None:
        if market.min_amount:
            n = max(n, math.ceil(market.min_amount / step - 1e-9))
        if market.min_notional and unit_value > 0:
            n = max(n, math.ceil(market.min_notional / (step * unit_value) - 1e-9))
    return min(n, steps_total)


def _plan(
    book: AccountBook, leg: Leg, mark: float, target: float, ratio_after: Callable[[float], float]
) -> ReducePlan:
    market = book.snapshot.markets.get(leg.symbol)
    step = (market.amount_step if market and market.amount_step else None) or DEFAULT_STEP
    steps_total = round(leg.contracts / step)
    n = _smallest_steps(steps_total, lambda k: ratio_after(k * step) <= target)
    reaches = n is not None
    unit_value = leg.position.contract_size * (1.0 if leg.inverse else mark)
    n = _apply_min_notional(
        n if n is not None else steps_total, step, steps_total, unit_value, market
    )
    contracts = min(n * step, leg.contracts)
    return ReducePlan(
        leg.symbol, leg.position.side.value, contracts, ratio_after(contracts), reaches
    )


def reduce_isolated(
    book: AccountBook, leg: Leg, target_ratio: float, marks: Marks | None = None
) -> ReducePlan:
    """Smallest reduce-only size that brings an isolated position to `target_ratio`."""
    _check_target(target_ratio)
    mark = book._mark(leg, marks)
    wallet = leg.position.isolated_margin
    if wallet is None or not leg.has_margin_terms:
        raise ValueError(f"{leg.symbol}: isolated margin or tiers unknown")
    equity = wallet + leg.unrealized_pnl(mark)

    def ratio_after(cut: float) -> float:
        left = leg.contracts - cut
        if left <= 0:
            return 0.0
        remaining = _resized(book, leg, left)
        return margin_ratio(remaining.maintenance_margin(mark), equity * left / leg.contracts)

    return _plan(book, leg, mark, target_ratio, ratio_after)


def reduce_in_pool(
    book: AccountBook,
    asset: str,
    leg: Leg,
    target_ratio: float,
    marks: Marks | None = None,
    max_contracts: float | None = None,
) -> ReducePlan:
    """Smallest cut of one cross position that brings its pool to `target_ratio`.

    Closing at the mark turns PnL into wallet balance one for one, so the pool's equity
    only loses the fee; its MM loses the position's share.
    """
    _check_target(target_ratio)
    pool, _ = book.evaluate_pool(asset, marks)
    if pool.requirement is None:
        raise ValueError(f"pool {asset}: maintenance margin unknown ({pool.note})")
    mark = book._mark(leg, marks)
    taker = book.snapshot.taker_fee_rate or 0.0
    others_mm = pool.requirement - leg.maintenance_margin(mark)
    limit = leg.contracts if max_contracts is None else min(max_contracts, leg.contracts)

    def ratio_after(cut: float) -> float:
        cut = min(cut, limit)
        left = leg.contracts - cut
        left_mm = _resized(book, leg, left).maintenance_margin(mark) if left > 0 else 0.0
        fee = cut * leg.position.contract_size * taker * (1.0 if leg.inverse else mark)
        fee = fee / mark if leg.inverse else fee
        return margin_ratio(others_mm + left_mm, pool.margin_balance - fee)

    plan = _plan(book, leg, mark, target_ratio, ratio_after)
    return plan._replace(contracts=min(plan.contracts, limit))


def plan_pool_reduction(
    book: AccountBook,
    asset: str,
    order: list[Leg],
    target_ratio: float,
    marks: Marks | None = None,
    max_fraction: float = 1.0,
) -> list[ReducePlan]:
    """Cut positions in `order`, each by at most `max_fraction` of its size, until the
    pool reaches `target_ratio`. The last plan says whether the target was reached."""
    plans: list[ReducePlan] = []
    current = book
    for leg in order:
        plan = reduce_in_pool(
            current, asset, _find(current, leg), target_ratio, marks,
            max_contracts=leg.contracts * max_fraction,
        )  # fmt: skip
        if plan.contracts <= 0:
            continue
        plans.append(plan)
        if plan.ratio_after <= target_ratio:
            break
        current = _after_cut(current, leg, plan.contracts)
    return plans


def _find(book: AccountBook, leg: Leg) -> Leg:
    return next(
        candidate
        for candidate in book.cross.get(_pool_of(book, leg), [])
        if candidate.symbol == leg.symbol and candidate.position.side == leg.position.side
    )


def _after_cut(book: AccountBook, leg: Leg, cut: float) -> AccountBook:
    """The book as it would be after the cut: the position smaller, its PnL realised."""
    snapshot = book.snapshot
    position = leg.position
    realised = leg.unrealized_pnl(position.mark_price) * cut / position.contracts
    positions = tuple(
        replace(p, contracts=p.contracts - cut) if p is position else p for p in snapshot.positions
    )
    positions = tuple(p for p in positions if p.contracts > 0)
    pools = tuple(
        replace(p, wallet_balance=p.wallet_balance + realised)
        if p.asset == _pool_of(book, leg)
        else p
        for p in snapshot.pools
    )
    return AccountBook(replace(snapshot, positions=positions, pools=pools), book.model)


def _pool_of(book: AccountBook, leg: Leg) -> str:
    return book.snapshot.unified_pool or book.model.pool_asset(leg.position)
