"""Liquidation moves where MM jumps at tier floors: the scalar walk, vectorised.

A table without continuous deductions (ccxt's unified tiers: rising rates, no `cum`)
makes MM jump up at each floor, so equity - MM is piecewise linear but neither
continuous nor concave, and Newton's argument does not hold. The scalar solver walks such
functions segment by segment from the current marks (solver._walk_one, _walk_many); this
module takes that walk for every row at once, one segment per pass:

1. Sum the members' lines at the tiers they hold. At or below zero at the segment's
   start: liquidation is there (the start itself, or a floor where the jump crossed it).
2. The segment ends at the nearest member floor in the direction (or at price zero,
   the bound going down). A root of the line strictly past the start and not past that
   end is the answer (none if it is the bound itself).
3. Otherwise step to the end, move the members whose floor it is into their next tier,
   and repeat; a row that reaches the unbounded side or the bound has no root.

Each pass retires the rows that are done; a row takes at most as many passes as its
members have floors to cross. Every answer is a segment's own root or a floor, exactly
as the scalar walk gives it.
"""

from __future__ import annotations

import numpy as np

from monitor.engine.solver import AT_BOUND
from monitor.engine.vector.rows import SearchRows

Columns = dict[str, np.ndarray]


def solve(
    rows: SearchRows,
    constant: np.ndarray,
    mark: np.ndarray,
    tier_now: np.ndarray,
    leg_cols: Columns,
    tier_cols: Columns,
) -> np.ndarray:
    """t per row (NaN where no price liquidates)."""
    count = rows.size
    t = np.where(rows.inverse, 1.0, 0.0)
    lower = np.where(rows.inverse, 0.0, -1.0)
    answer = np.full(count, np.nan)
    if count == 0:
        return answer
    row, leg = rows.member_row, rows.member_leg
    direction = rows.direction
    static = rows.members
    moving, first, inverse = static["moving"], static["first"], static["inverse"]
    leg_mark, qty = mark[leg], leg_cols["qty"][leg]
    alpha = np.where(inverse, 0.0, leg_mark)
    beta = np.where(inverse, 1.0 / leg_mark, leg_mark)
    last = leg_cols["tier_count"][leg] - 1
    slopes, consts = tier_cols["slopes"].ravel(), tier_cols["consts"].ravel()
    floors = tier_cols["floors"].ravel()
    member_direction = direction[row]
    index = tier_now[leg].copy()
    members = np.arange(leg.size)
    active = np.ones(count, dtype=bool)
    while members.size:
        at = first[members] + index[members]
        s = slopes.take(at)
        target = row[members]
        a = np.bincount(target, alpha[members] * s + consts.take(at), minlength=count) + constant
        b = np.bincount(target, beta[members] * s, minlength=count)
        there = active & (a + b * t <= 0.0)
        answer[there] = t[there]
        # Each member's next floor in its row's direction, as a t (+-inf: none).
        d = member_direction[members]
        held = index[members]
        has_next = moving[members] & np.where(d > 0, held < last[members], held > 0)
        floor = floors.take(at + ((d > 0) & has_next))
        m, q = leg_mark[members], qty[members]
        with np.errstate(divide="ignore", invalid="ignore"):
            member_edge = np.where(inverse[members], floor * m / q, floor / (q * m) - 1.0)
        member_edge = np.where(has_next, member_edge, d * np.inf)
        nearest = np.full(count, np.inf)
        np.minimum.at(nearest, target, d * member_edge)
        edge = direction * nearest
        clamped = (direction < 0) & (edge <= lower)
        edge = np.where(clamped, lower, edge)
        with np.errstate(divide="ignore", invalid="ignore"):
            root = -a / b
        inside = (b != 0.0) & (direction * (root - t) > 0) & (direction * (root - edge) <= 0)
        found = active & ~there & inside
        answer[found] = np.where(clamped & (root <= lower + AT_BOUND), np.nan, root)[found]
        ends = clamped | np.isinf(edge)
        active &= ~there & ~found & ~ends
        t = np.where(active, edge, t)
        # Into the next segment: every member whose floor is the one reached moves on.
        crossing = active[target] & has_next & (d * member_edge <= d * edge[target])
        index[members[crossing]] += d[crossing].astype(index.dtype)
        members = members[active[target]]
    return answer
