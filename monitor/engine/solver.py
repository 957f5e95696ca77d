"""Exact liquidation search: the price move at which equity falls to maintenance margin.

One solver serves every question the engine asks: an isolated position's liquidation
price (its own wallet, one leg moving), a cross position's (the other positions held at
their marks), and a pool's distance (every leg moving by the same fraction).

Within a run of unchanged tiers, equity - MM is linear in the fractional move x for
linear contracts and linear in y = 1 / (1 + x) for inverse ones; call that variable t.
The solver walks those segments outward from the current marks, one tier boundary at a
time, and solves each segment in closed form: no iteration tolerance. Crossing a
boundary changes only the crossing leg's terms, so the walk updates the sums
incrementally and keeps the legs' next boundaries in a heap; the segment holding the
root is re-summed exactly before solving. A tier table without continuous deductions
makes MM jump at a boundary; if the jump alone crosses liquidation, the boundary itself
is the answer.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Sequence

from monitor.domain import TierBasis
from monitor.engine.legs import Leg

INF = math.inf
_AT_BOUND = 1e-12
"""A root this close to the bound (price zero, or infinity for inverse) is no liquidation."""

MovingLeg = tuple[Leg, float]
"""A leg and its current mark price."""


def _coefficients(leg: Leg, mark: float, index: int) -> tuple[float, float]:
    """This leg's share (a, b) of equity - MM = a + b t while it stays in tier `index`."""
    s_qty = leg.sign * leg.qty
    if leg.inverse:
        a = s_qty / leg.entry
        b = -s_qty / mark
    else:
        a = s_qty * (mark - leg.entry)
        b = s_qty * mark
    if leg.mm_fixed is not None:
        return a - leg.mm_fixed, b
    tier = leg.tiers.tiers[index]  # type: ignore[union-attr]
    rate = tier.maintenance_rate + leg.rate_extra
    a += tier.maintenance_amount - leg.mm_constant
    if leg.inverse:
        b -= leg.qty * rate / mark
    else:
        a -= leg.qty * mark * rate
        b -= leg.qty * mark * rate
    return a, b


def _boundary(leg: Leg, mark: float, index: int, direction: int) -> float:
    """The t at which this leg's tier changes next when t moves in `direction`, or ±inf."""
    if leg.mm_fixed is not None or leg.basis is TierBasis.CONTRACTS:
        return INF * direction
    tiers = leg.tiers.tiers  # type: ignore[union-attr]
    if direction > 0:
        if index + 1 >= len(tiers):
            return INF
        floor = tiers[index + 1].floor
    else:
        if index == 0:
            return -INF
        floor = tiers[index].floor
    return floor * mark / leg.qty if leg.inverse else floor / (leg.qty * mark) - 1.0


def _root_in(a: float, b: float, t: float, edge: float, direction: int) -> float | None:
    """The root of a + b t strictly past t and not past edge, if any."""
    if b == 0.0:
        return None
    root = -a / b
    if direction * (root - t) > 0 and direction * (root - edge) <= 0:
        return root
    return None


def _linear_bracket_search(leg: Leg, mark: float, index: int, constant: float) -> float | None:
    """Liquidation move of one linear leg with a regular notional-keyed table.

    Binance's own method: LP = (C - side x q x EP + cum - c) / (q x (rate - side)) for
    the bracket in force, moving one bracket at a time (down for a long, up for a short)
    until the price falls inside the bracket it was computed with. Regular tables make
    that the first root. A handful of float operations per bracket: the per-position
    hot path.
    """
    tiers = leg.tiers.tiers  # type: ignore[union-attr]
    q, s = leg.qty, leg.sign
    base = constant - s * q * leg.entry - leg.mm_constant
    last = len(tiers) - 1
    while True:
        tier = tiers[index]
        price = (base + tier.maintenance_amount) / (
            q * (tier.maintenance_rate + leg.rate_extra - s)
        )
        if s > 0:
            if price >= mark:
                return 0.0  # already at or past liquidation
            if index == 0 or price * q >= tier.floor:
                return price / mark - 1.0 if price > _AT_BOUND * mark else None
            index -= 1
        else:
            if price <= mark:
                return 0.0
            if index == last or price * q < tiers[index + 1].floor:
                return price / mark - 1.0
            index += 1


def _walk_one(leg: Leg, mark: float, index: int, constant: float, direction: int) -> float | None:
    """The walk for a single leg: no heap, no lists (the per-position hot path)."""
    lower = 0.0 if leg.inverse else -1.0
    t = 1.0 if leg.inverse else 0.0
    while True:
        a, b = _coefficients(leg, mark, index)
        a += constant
        if a + b * t <= 0.0:
            return t
        edge = _boundary(leg, mark, index, direction)
        clamped = direction < 0 and edge <= lower
        if clamped:
            edge = lower
        root = _root_in(a, b, t, edge, direction)
        if root is not None:
            return None if clamped and root <= lower + _AT_BOUND else root
        if clamped or math.isinf(edge):
            return None
        t = edge
        index += direction


def _cannot_reach_zero(
    moving: Sequence[MovingLeg], indices: list[int], constant: float, direction: int
) -> bool:
    """True when equity - MM provably stays positive all the way in `direction`.

    With regular tier tables the function is concave along the walk (slopes only fall
    as tiers rise, and rise as they fall), so it suffices to look at the far end: the
    slope once every leg sits in its last tier (unbounded side), or the value at the
    bound where every value has shrunk into the first tier. One pass instead of a walk
    across every boundary of every leg.
    """
    a, b = constant, 0.0
    for (leg, mark), index in zip(moving, indices, strict=True):
        if leg.tiers is not None and not leg.tiers.regular:
            return False
        if leg.mm_fixed is None and leg.basis is TierBasis.NOTIONAL:
            index = len(leg.tiers.tiers) - 1 if direction > 0 else 0  # type: ignore[union-attr]
        ai, bi = _coefficients(leg, mark, index)
        a += ai
        b += bi
    if direction > 0:
        return b >= 0.0
    lower = 0.0 if moving[0][0].inverse else -1.0
    return a + b * lower > 0.0


def _line(moving: Sequence[MovingLeg], indices: list[int], constant: float) -> tuple[float, float]:
    a, b = constant, 0.0
    for (leg, mark), index in zip(moving, indices, strict=True):
        ai, bi = _coefficients(leg, mark, index)
        a += ai
        b += bi
    return a, b


def _line_at(
    moving: Sequence[MovingLeg], indices: list[int], constant: float, t: float
) -> tuple[float, float]:
    """The line of the segment holding t; updates `indices` to the tiers in force at t."""
    a, b = constant, 0.0
    for i, (leg, mark) in enumerate(moving):
        index = indices[i]
        if leg.mm_fixed is None and leg.basis is TierBasis.NOTIONAL:
            value = leg.qty * t / mark if leg.inverse else leg.qty * mark * (1.0 + t)
            index = indices[i] = leg.tiers.index_for(value)  # type: ignore[union-attr]
        ai, bi = _coefficients(leg, mark, index)
        a += ai
        b += bi
    return a, b


def _newton_from_far_side(
    moving: Sequence[MovingLeg], indices: list[int], constant: float, direction: int
) -> float | None:
    """The root for regular tables, in a few O(n) passes instead of a boundary walk.

    equity - MM is then concave and piecewise linear along the walk, so the line of any
    of its segments lies on or above it. The root of such a line is therefore at or past
    the true root; re-linearising there and solving again moves back towards it, and
    lands on it exactly once the line is the root's own segment (same tiers before and
    after the step). Called only when a root is known to exist (see _cannot_reach_zero).
    """
    start = 1.0 if moving[0][0].inverse else 0.0
    a, b = _line(moving, indices, constant)
    if a + b * start <= 0.0:
        return start
    if b * direction >= 0.0:  # the first segment does not descend: use the far end's line
        far = [
            len(leg.tiers.tiers) - 1  # type: ignore[union-attr]
            if direction > 0 and leg.mm_fixed is None and leg.basis is TierBasis.NOTIONAL
            else 0
            if leg.mm_fixed is None and leg.basis is TierBasis.NOTIONAL
            else index
            for (leg, _), index in zip(moving, indices, strict=True)
        ]
        a, b = _line(moving, far, constant)
    current = list(indices)
    for _ in range(64):
        root = -a / b
        a_next, b_next = _line_at(moving, current, constant, root)
        if a_next == a and b_next == b:
            return root
        a, b = a_next, b_next
        if b == 0.0:
            return None
    return None  # pragma: no cover - a piecewise-linear function has few segments


def _walk_many(
    moving: Sequence[MovingLeg], indices: list[int], constant: float, direction: int
) -> float | None:
    """The walk for several legs moving together, with incremental sums."""
    inverse = moving[0][0].inverse
    lower = 0.0 if inverse else -1.0
    t = 1.0 if inverse else 0.0
    indices = list(indices)
    if _cannot_reach_zero(moving, indices, constant, direction):
        return None
    if all(leg.tiers is None or leg.tiers.regular for leg, _ in moving):
        root = _newton_from_far_side(moving, indices, constant, direction)
        lower = 0.0 if moving[0][0].inverse else -1.0
        return None if root is None or root <= lower + _AT_BOUND else root
    a, b = constant, 0.0
    heap: list[tuple[float, int]] = []
    for i, (leg, mark) in enumerate(moving):
        ai, bi = _coefficients(leg, mark, indices[i])
        a += ai
        b += bi
        edge = _boundary(leg, mark, indices[i], direction)
        if not math.isinf(edge):
            heap.append((direction * edge, i))
    heapq.heapify(heap)
    while True:
        if a + b * t <= 0.0:
            return t
        edge = direction * heap[0][0] if heap else INF * direction
        clamped = direction < 0 and edge <= lower
        if clamped:
            edge = lower
        if _root_in(a, b, t, edge, direction) is not None:
            a, b = constant, 0.0  # re-sum the final segment exactly
            for i, (leg, mark) in enumerate(moving):
                ai, bi = _coefficients(leg, mark, indices[i])
                a += ai
                b += bi
            root = -a / b
            return None if clamped and root <= lower + _AT_BOUND else root
        if clamped or not heap:
            return None
        t = edge
        while heap and heap[0][0] <= direction * edge:
            _, i = heapq.heappop(heap)
            leg, mark = moving[i]
            ai, bi = _coefficients(leg, mark, indices[i])
            indices[i] += direction
            an, bn = _coefficients(leg, mark, indices[i])
            a += an - ai
            b += bn - bi
            nxt = _boundary(leg, mark, indices[i], direction)
            if not math.isinf(nxt):
                heapq.heappush(heap, (direction * nxt, i))


def liquidation_move(
    moving: Sequence[MovingLeg],
    constant: float,
    price_direction: int,
    indices: Sequence[int] | None = None,
) -> float | None:
    """Fractional price move x (price -> price x (1 + x)) in `price_direction` (+1 up, -1
    down) at which `constant` + PnL - MM of the moving legs reaches zero; None when no
    such move exists (that direction cannot liquidate).

    `constant` is what does not move: the wallet, plus PnL minus MM of legs held still.
    `indices` are the legs' current tier indices, if the caller already has them.
    All moving legs must be of one kind (all linear or all inverse).
    """
    inverse = moving[0][0].inverse
    if len(moving) > 1 and any(leg.inverse is not inverse for leg, _ in moving):
        raise ValueError("a uniform move of linear and inverse legs together is not linear")
    if indices is None:
        indices = [leg.tier_index(mark) if leg.tiers is not None else 0 for leg, mark in moving]
    direction = -price_direction if inverse else price_direction
    if len(moving) == 1 and (price_direction < 0) == (moving[0][0].sign > 0):
        leg, mark = moving[0]
        return single_leg_move(leg, mark, indices[0], constant)
    if len(moving) == 1:
        leg, mark = moving[0]
        t = _walk_one(leg, mark, indices[0], constant, direction)
    else:
        t = _walk_many(moving, list(indices), constant, direction)
    if t is None:
        return None
    return (1.0 / t - 1.0) if inverse else t


def single_leg_move(leg: Leg, mark: float, index: int, constant: float) -> float | None:
    """Liquidation move of one leg in its adverse direction (down for a long)."""
    if (
        not leg.inverse
        and leg.mm_fixed is None
        and leg.basis is TierBasis.NOTIONAL
        and leg.tiers.regular  # type: ignore[union-attr]
    ):
        return _linear_bracket_search(leg, mark, index, constant)
    price_direction = -1 if leg.sign > 0 else 1
    t = _walk_one(leg, mark, index, constant, -price_direction if leg.inverse else price_direction)
    if t is None:
        return None
    return (1.0 / t - 1.0) if leg.inverse else t


def nearest_liquidation_move(
    moving: Sequence[MovingLeg], constant: float, indices: Sequence[int] | None = None
) -> float | None:
    """The smaller adverse move, up or down, that liquidates; None if neither does.

    Only directions that can hurt are searched: an all-long set only down, an all-short
    set only up, a hedged set both ways.
    """
    has_long = has_short = False
    for leg, _ in moving:
        if leg.sign > 0:
            has_long = True
        else:
            has_short = True
    best: float | None = None
    for direction, hurts in ((-1, has_long), (1, has_short)):
        if not hurts:
            continue
        move = liquidation_move(moving, constant, direction, indices)
        if move is not None and (best is None or abs(move) < abs(best)):
            best = move
    return best
