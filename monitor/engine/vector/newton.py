"""Liquidation moves of many leg sets at once: the solver's far-side Newton, vectorised.

Each row is one set of legs moving by the same fraction in one direction (a pool, a
hedge-mode symbol, one leg) with a constant (wallet, plus PnL minus MM of what is held
still). In the solver's variable t (the move x for linear legs, 1 / (1 + x) for inverse
ones) equity - MM is piecewise linear, one segment per combination of tiers in force;
with regular tables (rates never fall, deductions continuous) it is concave. So, as in
solver._newton_from_far_side, per row:

1. Sum the legs' lines at the tiers in force now. If it is already <= 0 at the start,
   the answer is the start (already liquidated).
2. Decide whether a root exists at all from the far end: the last segment's slope on
   the unbounded side, the value at price zero on the other. No root: NaN.
3. Otherwise take a line that lies on or above the function (the current segment's if it
   descends in the direction, else the far segment's), solve it, re-read every leg's tier
   at that root and re-sum. Concavity makes every such line lie above the function, so
   each root is at or past the true one and the next step moves back towards it; the
   iteration stops when the re-summed line is the line just solved (the root lies on its
   own segment: exact, no tolerance), which takes at most one step per segment crossed.
   "The same line" is tested on the tiers themselves: a row whose legs all read the
   tiers they were summed at is settled, and only the rows that moved are re-summed.

The segment of the previous frame's root is used as the starting line where it descends
(any segment's line lies above a concave function, so the iteration stays exact); in a
market that moved a little that is the root's own segment and one step settles it.

Safeguards: rows whose legs could break concavity (a tier-moving leg with an irregular
table) never come here (the engine sends them to the scalar walk); a row whose slope
vanishes is unreachable; a row still moving after `MAX_STEPS` (impossible for a finite
piecewise-linear function, kept as a bound) is reported as not converged so the caller
can solve it by the scalar walk instead of guessing.
"""

from __future__ import annotations

import numpy as np

from monitor.engine.solver import AT_BOUND
from monitor.engine.vector.carry import Carried, carried_at, move
from monitor.engine.vector.rows import SearchRows
from monitor.engine.vector.state import LegState, tier_near

Columns = dict[str, np.ndarray]
MAX_STEPS = 64


def solve(
    rows: SearchRows,
    constant: np.ndarray,
    legs: LegState,
    *,
    tier_cols: Columns,
    tier_count: np.ndarray,
    warm: Carried | None = None,
    far: Carried | None = None,
) -> tuple[np.ndarray, np.ndarray, Carried, Carried | None]:
    """(t per row, NaN where no root; converged flag per row; each member's tier at its
    row's root and the far-side tier's slope and const, carried to pass back as `warm`
    and `far` on the next frame, which then owns them: they are written over). Called
    under the engine's error state (NaN and inf are figures)."""
    count = rows.size
    t = np.full(count, np.nan)
    converged = np.ones(count, dtype=bool)
    if count == 0:
        return t, converged, Carried(np.zeros(0, dtype=np.intp), []), far
    row, leg = rows.member_row, rows.member_leg
    direction = rows.direction
    static = rows.members
    moving, first, offset = static["moving"], static["first"], static["offset"]
    all_moving = bool(static["all_moving"])
    linear = not static["any_inverse"]
    leg_mark = legs.mark.take(leg)
    # A leg's line in tier k is a = alpha x slope_k + const_k, b = beta x slope_k
    # (linear: alpha = beta = mark; inverse: alpha = 0, beta = 1 / mark), and its value at
    # t is gamma x (offset + t) (linear: qty x mark x (1 + t); inverse: qty / mark x t),
    # gamma being the leg's value now.
    gamma = legs.value.take(leg)
    if linear:
        alpha = beta = leg_mark
    else:
        inverse = static["inverse"]
        alpha = np.where(inverse, 0.0, leg_mark)
        beta = np.where(inverse, 1.0 / leg_mark, leg_mark)
    slopes, consts = tier_cols["slopes"].ravel(), tier_cols["consts"].ravel()
    bounds = tier_cols["bounds"].ravel()
    bounds_first = static["bounds_first"]

    row_start = static["row_start"]

    def line(at: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Per row, (a, b) of constant + the sum of its members' lines at the flat tier
        indices `at`."""
        return summed(slopes.take(at), consts.take(at))

    def summed(s: np.ndarray, c: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The same, from every member's slope `s` and constant `c` there. A row's
        members are contiguous: `reduceat` sums them (pairwise, as numpy sums; a
        sequential `bincount` costs four times as much)."""
        b_terms = beta * s
        a_terms = b_terms if linear else alpha * s
        a = np.add.reduceat(a_terms + c, row_start)
        return a + constant, np.add.reduceat(b_terms, row_start)

    def summed_rows(
        rows_: np.ndarray, members: np.ndarray, starts: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """(a, b) of the rows `rows_` only, from their `members` (`rows.members_of`, each
        row's beginning at `starts`) at their carried lines, summed as `summed` does."""
        s = line_s.take(members)
        b_terms = beta.take(members) * s
        a_terms = b_terms if linear else alpha.take(members) * s
        a = np.add.reduceat(a_terms + line_c.take(members), starts)
        return a + constant.take(rows_), np.add.reduceat(b_terms, starts)

    # Each member's tier now: read only where a start needs it (legs that do not move,
    # or no warm start); a warm start of moving legs reads it for the rows it leaves.
    index = None if all_moving and warm is not None else legs.tier.take(leg)
    # The line at the tiers in force now: the same for every row of a problem, so
    # summed once per problem (its first row's members, in the same order).
    primary, slot_start = static["primary"], static["slot_start"]
    s = legs.slope.take(static["primary_leg"])
    b_terms = beta.take(primary) * s
    a_terms = b_terms if linear else alpha.take(primary) * s
    c = legs.const.take(static["primary_leg"])
    row_slot = static["row_slot"]
    a = np.add.reduceat(a_terms + c, slot_start).take(row_slot) + constant
    b = np.add.reduceat(b_terms, slot_start).take(row_slot)
    start, lower = static["start"], static["lower"]
    at_start = a + b * start <= 0.0
    t[at_start] = start[at_start]

    # The far line decides whether a root exists: always going down (the value at price
    # zero), going up only when the current segment does not descend (its last slope).
    descending = b * direction < 0.0
    rising = direction > 0
    far_index = static["far"] if all_moving else np.where(moving, static["far"], index)
    if all_moving:
        far = carried_at(far, static["far"], [(slopes, first), (consts, first)])
        far_a, far_b = summed(*far.values)
    else:
        far_a, far_b = line(first + far_index)
    no_root = np.where(rising, ~descending & (far_b >= 0.0), far_a + far_b * lower > 0.0)
    active = ~at_start & ~no_root
    a = np.where(descending, a, far_a)
    b = np.where(descending, b, far_b)
    # Per member, the tier whose line its row's (a, b) sums, and that tier's terms.
    tables = [(slopes, first), (consts, first), (bounds, bounds_first), (bounds[1:], bounds_first)]
    if warm is None:
        carried = carried_at(None, np.where(descending.take(row), index, far_index), tables)
    else:
        # Any segment's line lies on or above the function: the segment of last frame's
        # root is as valid a start as the far one, and usually the answer already. Rows
        # that are not searched keep it too: any tier is a valid start next frame.
        held = warm.index if all_moving else np.where(moving, warm.index, index)
        carried = carried_at(warm, held, tables)
        warm_a, warm_b = summed(carried.values[0], carried.values[1])
        better = active & (warm_b * direction < 0.0)
        a = np.where(better, warm_a, a)
        b = np.where(better, warm_b, b)
        other = np.flatnonzero(active & ~better)
        if other.size:
            members = rows.members_of(other, static["row_size"].take(other))
            now = legs.tier.take(leg.take(members)) if index is None else index.take(members)
            start_index = np.where(descending.take(row.take(members)), now, far_index[members])
            move(carried, members, start_index, tables)
    held = carried.index
    line_s, line_c, low, high = carried.values
    row_size = static["row_size"]
    searched: np.ndarray | None = None
    """The rows still searched once few enough to gather (with their `sizes`, `members`,
    where each row's begin among them, `starts`, and their lines `a_s`, `b_s`); None:
    every row, masked by `active` (the first step, and any step while the rows hold many
    members: a pass over every member costs less than gathering them). The rows only
    shrink, so once gathered they stay gathered."""
    sizes = starts = members = np.zeros(0, dtype=np.intp)
    a_s = b_s = np.zeros(0)
    for _ in range(MAX_STEPS):
        if searched is None:
            root = -a / b
            value = _spread(root, row_size, None if linear else offset)
            value *= gamma
            stale = value >= low
            stale &= value < high
            np.logical_not(stale, out=stale)
            stale &= np.repeat(active, row_size)
            if not all_moving:
                stale &= moving
            off = changed = np.flatnonzero(stale)
            # No member's tier changed: the root lies on the line that gave it, exactly.
            moved = np.zeros(count, dtype=bool)
            moved[row.take(changed)] = True
            settled = active & ~moved
            t[settled] = root[settled]
            if not changed.size:
                active[:] = False
                break
        else:
            root = -a_s / b_s
            value = _spread(root, sizes, None if linear else offset.take(members))
            value *= gamma.take(members)
            holds = value >= low.take(members)
            holds &= value < high.take(members)
            if not all_moving:
                holds |= ~moving.take(members)
            settles = np.logical_and.reduceat(holds, starts)
            t[searched[settles]] = root[settles]
            off = np.flatnonzero(~holds)
            if not off.size:
                searched = searched[:0]
                break
            changed = members.take(off)
        tier = tier_near(
            value.take(off), held.take(changed), low.take(changed), high.take(changed),
            rows=leg.take(changed),
            tier_cols=tier_cols, tier_count=tier_count,
        )  # fmt: skip
        move(carried, changed, tier, tables)
        if searched is None:
            active &= moved
            moving_rows = np.flatnonzero(active)
            moving_sizes = row_size.take(moving_rows)
            if 4 * int(moving_sizes.sum()) > leg.size:
                a_next, b_next = summed(line_s, line_c)
                a = np.where(active, a_next, a)
                b = np.where(active, b_next, b)
                active &= b != 0.0
                continue
            searched, sizes = moving_rows, moving_sizes
            members = rows.members_of(searched, sizes)
        else:
            go = ~settles
            members = members[np.repeat(go, sizes)]
            searched, sizes = searched[go], sizes[go]
        starts = np.cumsum(sizes) - sizes
        a_s, b_s = summed_rows(searched, members, starts)
        sloped = b_s != 0.0
        if not sloped.all():
            members = members[np.repeat(sloped, sizes)]
            searched, sizes, a_s, b_s = searched[sloped], sizes[sloped], a_s[sloped], b_s[sloped]
            starts = np.cumsum(sizes) - sizes
            if not searched.size:
                break
    converged[active if searched is None else searched] = False
    t[(t <= lower + AT_BOUND)] = np.nan
    return t, converged, carried, far


def _spread(root: np.ndarray, sizes: np.ndarray, offset: np.ndarray | None) -> np.ndarray:
    """offset + t per member, from each row's t (`root`) and its number of members:
    rows' members are contiguous, so a repeat reads each row's t (cheaper than a take by
    row). Linear rows (`offset` None: every offset is 1) add it once per row, not once
    per member."""
    if offset is None:
        return np.repeat(root + 1.0, sizes)
    value = np.repeat(root, sizes)
    value += offset
    return value
