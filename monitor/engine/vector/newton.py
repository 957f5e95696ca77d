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

Safeguards: rows whose legs could break concavity (a tier-moving leg with an irregular
table) never come here (the engine sends them to the scalar walk); a row whose slope
vanishes is unreachable; a row still moving after `MAX_STEPS` (impossible for a finite
piecewise-linear function, kept as a bound) is reported as not converged so the caller
can solve it by the scalar walk instead of guessing.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from monitor.engine.solver import AT_BOUND

Columns = dict[str, np.ndarray]
MAX_STEPS = 64


@dataclass(frozen=True, slots=True)
class NewtonRows:
    """Static structure: which legs move together in which direction."""

    direction: np.ndarray
    """+1 / -1 per row: the direction of t (price direction, reversed for inverse)."""
    inverse: np.ndarray
    member_row: np.ndarray
    """Per member (sorted by row): its row."""
    member_leg: np.ndarray

    @property
    def size(self) -> int:
        return int(self.direction.size)


def solve(
    rows: NewtonRows,
    constant: np.ndarray,
    mark: np.ndarray,
    tier_now: np.ndarray,
    leg_cols: Columns,
    tier_cols: Columns,
) -> tuple[np.ndarray, np.ndarray]:
    """(t per row, NaN where no root; converged flag per row)."""
    count = rows.size
    t = np.full(count, np.nan)
    converged = np.ones(count, dtype=bool)
    if count == 0:
        return t, converged
    row, leg = rows.member_row, rows.member_leg
    direction = rows.direction
    leg_mark = mark[leg]
    inverse = leg_cols["inverse"][leg]
    moving = leg_cols["moving"][leg]
    slopes, consts = tier_cols["slopes"], tier_cols["consts"]

    def line(members: np.ndarray, index: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Per row, (a, b) of constant + sum of the members' lines at tiers `index`."""
        at_leg, m = leg[members], leg_mark[members]
        s, c = slopes[at_leg, index], consts[at_leg, index]
        inv = inverse[members]
        linear_slope = m * s
        a = np.where(inv, c, linear_slope + c)
        b = np.where(inv, s / m, linear_slope)
        target = row[members]
        return (
            np.bincount(target, a, minlength=count) + constant,
            np.bincount(target, b, minlength=count),
        )

    every = np.arange(leg.size)
    index = tier_now[leg]
    a, b = line(every, index)
    start = np.where(rows.inverse, 1.0, 0.0)
    lower = np.where(rows.inverse, 0.0, -1.0)
    at_start = a + b * start <= 0.0
    t[at_start] = start[at_start]

    last = leg_cols["tier_count"][leg] - 1
    far = np.where(moving, np.where(direction[row] > 0, last, 0), index)
    far_a, far_b = line(every, far)
    descending = b * direction < 0.0
    rising = direction > 0
    no_root = np.where(rising, ~descending & (far_b >= 0.0), far_a + far_b * lower > 0.0)
    a = np.where(descending, a, far_a)
    b = np.where(descending, b, far_b)
    active = ~at_start & ~no_root

    floors, qty = tier_cols["floors"], leg_cols["qty"]
    for _ in range(MAX_STEPS):
        if not active.any():
            break
        with np.errstate(divide="ignore", invalid="ignore"):
            root = -a / b
        members = np.flatnonzero(active[row] & moving)
        if members.size:
            at_leg, m, r = leg[members], leg_mark[members], root[row[members]]
            value = np.where(inverse[members], qty[at_leg] * r / m, qty[at_leg] * m * (1.0 + r))
            found = (floors[at_leg] <= value[:, None]).sum(axis=1) - 1
            index[members] = np.maximum(found, 0)
        a_next, b_next = line(np.flatnonzero(active[row]), index[active[row]])
        settled = active & (a_next == a) & (b_next == b)
        t[settled] = root[settled]
        active &= ~settled
        flat = active & (b_next == 0.0)
        active &= ~flat
        a = np.where(active, a_next, a)
        b = np.where(active, b_next, b)
    converged[active] = False
    t[(t <= lower + AT_BOUND)] = np.nan
    return t, converged
