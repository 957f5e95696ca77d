"""Liquidation moves where MM jumps at tier floors: the scalar walk, vectorised.

A table without continuous deductions (ccxt's unified tiers: rising rates, no `cum`)
makes MM jump at each floor, so equity - MM is piecewise linear but neither continuous
nor concave, and Newton's argument does not hold. The scalar solver walks such functions
segment by segment from the current marks (solver._walk_one, _walk_many), stopping at the
first segment that starts at or below zero (the start, or a floor where a jump crossed
it) or holds a root of its line. This module lays every row's whole walk out at once:

1. Events: every floor each member would cross in its row's direction (as a t), with the
   change of that member's line there; going down, none at or past price zero.
2. Sorted by row and along the direction, cumulative sums give each segment's line (the
   current line plus the changes so far; floors at one t change together), its start
   and its end (the next floor, or the bound: price zero, or no end).
3. Per row the first segment that decides (at or below zero at its start, or its line's
   root strictly past the start and not past its end) is the answer; a root found on
   the last segment going down is none if it is the bound itself.
The root is re-solved on a fresh sum of the members' lines in that segment, as the
scalar walk re-sums its final segment; the start checks use the running sums, as its
heap walk does.
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
    answer = np.full(count, np.nan)
    if count == 0:
        return answer
    row, direction = rows.member_row, rows.direction
    leg = rows.member_leg
    static = rows.members
    moving, first, inverse = static["moving"], static["first"], static["inverse"]
    leg_mark, qty = mark[leg], leg_cols["qty"][leg]
    alpha = np.where(inverse, 0.0, leg_mark)
    beta = np.where(inverse, 1.0 / leg_mark, leg_mark)
    slopes, consts = tier_cols["slopes"].ravel(), tier_cols["consts"].ravel()
    floors = tier_cols["floors"].ravel()
    start, lower = static["start"], static["lower"]
    member_direction = direction[row]
    member_step = member_direction.astype(np.intp)
    index = tier_now[leg]

    def terms(members: np.ndarray, at: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(a, b) of each member's line in tier `at`."""
        flat = first[members] + at
        s = slopes.take(flat)
        return alpha[members] * s + consts.take(flat), beta[members] * s

    def summed(members: np.ndarray, at: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        a, b = terms(members, at)
        target = row[members]
        return (
            np.bincount(target, a, minlength=count) + constant,
            np.bincount(target, b, minlength=count),
        )

    every = np.arange(leg.size)
    a0, b0 = summed(every, index)

    # 1. Events: member by member, the floors ahead in its row's direction.
    rising = member_direction > 0
    last = leg_cols["tier_count"][leg] - 1
    ahead = np.where(moving, np.where(rising, last - index, index), 0)
    member = np.repeat(every, ahead)
    step = np.arange(member.size) - np.repeat(np.cumsum(ahead) - ahead, ahead)
    d = member_step[member]
    before = index[member] + d * step
    after = before + d
    floor = floors.take(first[member] + np.maximum(before, after))
    m, q = leg_mark[member], qty[member]
    with np.errstate(divide="ignore", invalid="ignore"):
        at_t = np.where(inverse[member], floor * m / q, floor / (q * m) - 1.0)
    event_row = row[member]
    keep = ~((direction[event_row] < 0) & (at_t <= lower[event_row]))
    member, at_t, event_row, before, after = (
        x[keep] for x in (member, at_t, event_row, before, after)
    )
    a_after, b_after = terms(member, after)
    a_before, b_before = terms(member, before)

    # 2. Segments, in walk order per row: the current one, then one after each floor.
    order = np.lexsort((direction[event_row] * at_t, event_row))
    member, at_t, event_row = member[order], at_t[order], event_row[order]
    running_a = np.cumsum((a_after - a_before)[order])
    running_b = np.cumsum((b_after - b_before)[order])
    first_event = np.searchsorted(event_row, np.arange(count))
    offset_a = np.concatenate([[0.0], running_a])[first_event]
    offset_b = np.concatenate([[0.0], running_b])[first_event]
    same_next = np.zeros(at_t.size, dtype=bool)
    same_next[:-1] = (event_row[1:] == event_row[:-1]) & (at_t[1:] == at_t[:-1])
    group_end = np.flatnonzero(~same_next)
    has_next = np.zeros(at_t.size, dtype=bool)
    has_next[:-1] = event_row[1:] == event_row[:-1]
    bound = np.where(direction < 0, lower, np.inf)
    next_t = np.where(has_next, np.append(at_t[1:], 0.0), bound[event_row])
    first_end = np.where(first_event < np.append(first_event[1:], at_t.size), 0.0, np.nan)
    initial_end = np.where(
        np.isnan(first_end), bound, np.append(at_t, 0.0)[np.minimum(first_event, at_t.size)]
    )
    segment_row = np.concatenate([np.arange(count), event_row[group_end]])
    rank = np.concatenate([np.full(count, -1), group_end])
    seg_start = np.concatenate([start, at_t[group_end]])
    seg_end = np.concatenate([initial_end, next_t[group_end]])
    seg_a = np.concatenate([a0, a0[event_row[group_end]] + running_a[group_end]])
    seg_a[count:] -= offset_a[event_row[group_end]]
    seg_b = np.concatenate([b0, b0[event_row[group_end]] + running_b[group_end]])
    seg_b[count:] -= offset_b[event_row[group_end]]
    walk_order = np.lexsort((rank, segment_row))
    segment_row, rank = segment_row[walk_order], rank[walk_order]
    seg_start, seg_end = seg_start[walk_order], seg_end[walk_order]
    seg_a, seg_b = seg_a[walk_order], seg_b[walk_order]

    # 3. The first segment that decides, per row.
    d_seg = direction[segment_row]
    there = seg_a + seg_b * seg_start <= 0.0
    with np.errstate(divide="ignore", invalid="ignore"):
        root = -seg_a / seg_b
    inside = (seg_b != 0.0) & (d_seg * (root - seg_start) > 0) & (d_seg * (root - seg_end) <= 0)
    decides = np.flatnonzero(there | inside)
    rows_decided, firsts = np.unique(segment_row[decides], return_index=True)
    chosen = decides[firsts]
    at_start = there[chosen]
    answer[rows_decided[at_start]] = seg_start[chosen[at_start]]
    by_root, segment = rows_decided[~at_start], chosen[~at_start]
    if by_root.size:
        # Re-solve on a fresh sum of the members' lines in that segment.
        cut = np.full(count, -1)
        cut[by_root] = rank[segment]
        crossed = np.arange(at_t.size) <= cut[event_row]
        moved = np.bincount(member[crossed], minlength=leg.size)
        chosen_rows = np.zeros(count, dtype=bool)
        chosen_rows[by_root] = True
        members = every[chosen_rows[row]]
        fresh_a, fresh_b = summed(members, (index + member_step * moved)[members])
        with np.errstate(divide="ignore", invalid="ignore"):
            fresh = -fresh_a[by_root] / fresh_b[by_root]
        clamped = seg_end[segment] == lower[by_root]
        answer[by_root] = np.where(clamped & (fresh <= lower[by_root] + AT_BOUND), np.nan, fresh)
    return answer
