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
from bisect import bisect_right
from collections.abc import Sequence

from monitor.domain import TierBasis
from monitor.engine.legs import Leg

INF = math.inf
AT_BOUND = 1e-12
"""A root this close to the bound (price zero, or infinity for inverse) is no liquidation."""

MovingLeg = tuple[Leg, float]
"""A leg and its current mark price."""


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


def bracket_root_price(leg: Leg, index: int, constant: float) -> float:
    """The price where one linear leg with a regular notional-keyed table liquidates.

    Binance's own method: LP = (C - side x q x EP + cum - c) / (q x (rate - side)) for
    the bracket in force, moving one bracket at a time (down for a long, up for a short)
    until the price falls inside the bracket it was computed with. Regular tables make
    equity - MM concave, so each bracket's line lies above it and that is the first
    root, whatever bracket the walk starts from on the near side of it. A long already
    past liquidation at the start bracket's mark gets a price at or above that mark (a
    short: at or below), which is how callers tell.
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
            if index == 0 or price * q >= tier.floor:
                return price
            index -= 1
        else:
            if index == last or price * q < tiers[index + 1].floor:
                return price
            index += 1


def move_to(price: float, mark: float, sign: int) -> float | None:
    """The adverse fractional move from `mark` to a leg's liquidation `price`: 0.0 when
    already there or past it, None when the price is zero (nothing liquidates a long)."""
    if sign > 0:
        if price >= mark:
            return 0.0
        return price / mark - 1.0 if price > AT_BOUND * mark else None
    return 0.0 if price <= mark else price / mark - 1.0


def _linear_bracket_search(leg: Leg, mark: float, index: int, constant: float) -> float | None:
    """Liquidation move of one linear leg with a regular notional-keyed table, walking
    from the bracket in force at `mark` (the per-position hot path: a step or two)."""
    return move_to(bracket_root_price(leg, index, constant), mark, leg.sign)


def _walk_one(leg: Leg, mark: float, index: int, constant: float, direction: int) -> float | None:
    """The walk for a single leg: no heap, no lists (the per-position hot path)."""
    lower = 0.0 if leg.inverse else -1.0
    t = 1.0 if leg.inverse else 0.0
    while True:
        a, b = leg.line(mark, index)
        a += constant
        if a + b * t <= 0.0:
            return t
        edge = _boundary(leg, mark, index, direction)
        clamped = direction < 0 and edge <= lower
        if clamped:
            edge = lower
        root = _root_in(a, b, t, edge, direction)
        if root is not None:
            return None if clamped and root <= lower + AT_BOUND else root
        if clamped or math.isinf(edge):
            return None
        t = edge
        index += direction


def _line_at(
    moving: Sequence[MovingLeg], indices: list[int], constant: float, t: float | None = None
) -> tuple[float, float]:
    """equity - MM = a + b t for the segment holding t, updating `indices` to the tiers
    in force there; with t None, the line of the tiers `indices` already hold.

    The Newton loop's inner step, so the tier lookup and the leg's line are inlined.
    """
    a, b = constant, 0.0
    for i, (leg, mark) in enumerate(moving):
        index = indices[i] if leg.tier_moves or leg.mm_fixed is None else 0
        if t is not None and leg.tier_moves:
            value = leg.qty * t / mark if leg.inverse else leg.qty * mark * (1.0 + t)
            index = bisect_right(leg.floors, value) - 1
            if index < 0:
                index = 0
            indices[i] = index
        if leg.inverse:
            a += leg.consts[index]
            b += leg.slopes[index] / mark
        else:
            slope = mark * leg.slopes[index]
            a += slope + leg.consts[index]
            b += slope
    return a, b


def _far_line(
    moving: Sequence[MovingLeg], indices: list[int], constant: float, direction: int
) -> tuple[float, float]:
    """The line of the last segment in `direction`: every value-keyed leg in its last
    tier (rising values) or its first (values shrinking towards zero at the bound)."""
    far = [
        (len(leg.floors) - 1 if direction > 0 else 0) if leg.tier_moves else index
        for (leg, _), index in zip(moving, indices, strict=True)
    ]
    return _line_at(moving, far, constant)


def _newton_from_far_side(
    moving: Sequence[MovingLeg], indices: list[int], constant: float, direction: int
) -> float | None:
    """The first root in `direction` for regular tier tables, in a few O(n) passes.

    With regular tables equity - MM is concave and piecewise linear along the walk
    (slopes only fall as tiers rise, and rise as they fall), so:
    - whether a root exists is decided at the far end: the last segment's slope on the
      unbounded side, the value at the bound (price zero) on the other;
    - the line of any segment lies on or above the function, so the root of such a
      line is at or past the true root; re-linearising there and solving again moves
      back towards it, and lands on it exactly once the line is the root's own segment;
    - so a step that does not move back means the root is where the lines of two
      segments meet, on a tier boundary: rounding puts it a hair inside one segment or
      the other, and re-linearising would flip between them for ever (a fully hedged
      pair whose MM reaches the wallet exactly at a bracket's floor did, and was
      reported as never liquidated).
    """
    inverse = moving[0][0].inverse
    start = 1.0 if inverse else 0.0
    a, b = _line_at(moving, indices, constant)
    if a + b * start <= 0.0:
        return start
    descending = b * direction < 0.0
    if direction > 0:
        if not descending:  # concave: descends later only if its last segment does
            a, b = _far_line(moving, indices, constant, direction)
            if b >= 0.0:
                return None
    else:
        lower = 0.0 if inverse else -1.0
        far_a, far_b = _far_line(moving, indices, constant, direction)
        if far_a + far_b * lower > 0.0:
            return None  # still solvent at price zero (or infinity, inverse)
        if not descending:
            a, b = far_a, far_b
    current = list(indices)
    root = -a / b
    for _ in range(64):
        a_next, b_next = _line_at(moving, current, constant, root)
        if a_next == a and b_next == b:
            return root
        if b_next == 0.0:
            return None
        following = -a_next / b_next
        if direction * (following - root) >= 0.0:
            return root  # on a tier boundary: see the docstring's last point
        a, b, root = a_next, b_next, following
    return None  # pragma: no cover - a piecewise-linear function has few segments


def _all_regular(moving: Sequence[MovingLeg]) -> bool:
    return all(leg.tiers is None or leg.tiers.regular for leg, _ in moving)


def _walk_many(
    moving: Sequence[MovingLeg],
    indices: list[int],
    constant: float,
    direction: int,
    regular: bool | None = None,
) -> float | None:
    """The walk for several legs moving together, with incremental sums."""
    inverse = moving[0][0].inverse
    lower = 0.0 if inverse else -1.0
    t = 1.0 if inverse else 0.0
    indices = list(indices)
    if regular if regular is not None else _all_regular(moving):
        root = _newton_from_far_side(moving, indices, constant, direction)
        lower = 0.0 if moving[0][0].inverse else -1.0
        return None if root is None or root <= lower + AT_BOUND else root
    a, b = constant, 0.0
    heap: list[tuple[float, int]] = []
    for i, (leg, mark) in enumerate(moving):
        ai, bi = leg.line(mark, indices[i])
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
                ai, bi = leg.line(mark, indices[i])
                a += ai
                b += bi
            root = -a / b
            return None if clamped and root <= lower + AT_BOUND else root
        if clamped or not heap:
            return None
        t = edge
        while heap and heap[0][0] <= direction * edge:
            _, i = heapq.heappop(heap)
            leg, mark = moving[i]
            ai, bi = leg.line(mark, indices[i])
            indices[i] += direction
            an, bn = leg.line(mark, indices[i])
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


def has_bracket_root(leg: Leg) -> bool:
    """Whether `bracket_root_price` applies: linear, value-keyed, regular, priced at mark."""
    return (
        not leg.inverse
        and leg.mm_fixed is None
        and leg.tiers is not None
        and leg.basis is TierBasis.NOTIONAL
        and leg.tiers.regular
    )


def single_leg_move(leg: Leg, mark: float, index: int, constant: float) -> float | None:
    """Liquidation move of one leg in its adverse direction (down for a long)."""
    if has_bracket_root(leg):
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
    signs = {leg.sign for leg, _ in moving}
    if len(moving) == 1:
        return liquidation_move(moving, constant, -moving[0][0].sign, indices)
    inverse = moving[0][0].inverse
    if any(leg.inverse is not inverse for leg, _ in moving):
        raise ValueError("a uniform move of linear and inverse legs together is not linear")
    if indices is None:
        indices = [leg.tier_index(mark) if leg.tiers is not None else 0 for leg, mark in moving]
    regular = _all_regular(moving)  # once for both directions
    best: float | None = None
    for price_direction in (-1, 1):
        if -price_direction not in signs:
            continue  # only longs are hurt by a fall, only shorts by a rise
        direction = -price_direction if inverse else price_direction
        t = _walk_many(moving, list(indices), constant, direction, regular)
        move = None if t is None else ((1.0 / t - 1.0) if inverse else t)
        if move is not None and (best is None or abs(move) < abs(best)):
            best = move
    return best
