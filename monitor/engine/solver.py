"""Exact liquidation search: the price move at which equity falls to maintenance margin.

One solver serves every question the engine asks: an isolated position's liquidation
price (its own wallet, one leg moving), a cross position's (the other positions held at
their marks), and a pool's distance (every leg moving by the same fraction).

Within a run of unchanged tiers, equity - MM is linear in the fractional move x for
linear contracts and linear in y = 1 / (1 + x) for inverse ones. The solver walks those
segments outward from the current marks, one tier boundary at a time, and solves each
segment in closed form: no iteration tolerance, and a handful of segments in practice.
A tier table without continuous deductions makes MM jump at a boundary; if the jump
alone crosses liquidation, the boundary itself is the answer.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from monitor.domain import TierBasis
from monitor.engine.legs import Leg

INF = math.inf
_MAX_SEGMENTS = 10_000

MovingLeg = tuple[Leg, float]
"""A leg and its current mark price."""


def _segment(
    moving: Sequence[MovingLeg], indices: list[int], constant: float
) -> tuple[float, float]:
    """Coefficients (a, b) of equity - MM = a + b t with every leg in its current tier."""
    a = constant
    b = 0.0
    for (leg, mark), index in zip(moving, indices, strict=True):
        s_qty = leg.sign * leg.qty
        if leg.inverse:
            a += s_qty / leg.entry
            b -= s_qty / mark
        else:
            a += s_qty * (mark - leg.entry)
            b += s_qty * mark
        if leg.mm_fixed is not None:
            a -= leg.mm_fixed
            continue
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


def _walk(moving: Sequence[MovingLeg], constant: float, t_direction: int) -> float | None:
    """First t from the start point where equity - MM <= 0, walking in t_direction."""
    inverse = moving[0][0].inverse
    t = 1.0 if inverse else 0.0
    lower = 0.0 if inverse else -1.0
    indices = [leg.tier_index(mark) if leg.tiers is not None else 0 for leg, mark in moving]
    for _ in range(_MAX_SEGMENTS):
        a, b = _segment(moving, indices, constant)
        if a + b * t <= 0.0:
            return t
        nearest = INF * t_direction
        crossing: list[int] = []
        for i, (leg, mark) in enumerate(moving):
            edge = _boundary(leg, mark, indices[i], t_direction)
            if t_direction * (edge - nearest) < 0:
                nearest, crossing = edge, [i]
            elif edge == nearest and not math.isinf(edge):
                crossing.append(i)
        if t_direction < 0 and nearest <= lower:
            nearest, crossing = lower, []
        if b != 0.0:
            root = -a / b
            if t_direction * (root - t) > 0 and t_direction * (root - nearest) <= 0:
                return None if (t_direction < 0 and root <= lower) else root
        if not crossing:
            return None
        t = nearest
        for i in crossing:
            indices[i] += t_direction
    raise RuntimeError("liquidation search did not converge")  # pragma: no cover


def liquidation_move(
    moving: Sequence[MovingLeg], constant: float, price_direction: int
) -> float | None:
    """Fractional price move x (price -> price x (1 + x)) in `price_direction` (+1 up, -1
    down) at which `constant` + PnL - MM of the moving legs reaches zero; None when no
    such move exists (the pool cannot be liquidated that way).

    `constant` is what does not move: the wallet, plus PnL minus MM of legs held still.
    All moving legs must be of one kind (all linear or all inverse).
    """
    inverse = moving[0][0].inverse
    if any(leg.inverse is not inverse for leg, _ in moving):
        raise ValueError("a uniform move of linear and inverse legs together is not linear")
    t_direction = -price_direction if inverse else price_direction
    t = _walk(moving, constant, t_direction)
    if t is None:
        return None
    return (1.0 / t - 1.0) if inverse else t


def nearest_liquidation_move(moving: Sequence[MovingLeg], constant: float) -> float | None:
    """The smaller adverse move, up or down, that liquidates; None if neither does.

    Only directions that can hurt are searched: an all-long set only down, an all-short
    set only up, a hedged set both ways.
    """
    signs = {leg.sign for leg, _ in moving}
    directions = [d for d in (-1, 1) if -d in signs]
    best: float | None = None
    for direction in directions:
        move = liquidation_move(moving, constant, direction)
        if move is not None and (best is None or abs(move) < abs(best)):
            best = move
    return best
