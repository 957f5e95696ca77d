"""Per frame: every liquidation problem's move, by the solver its shape allows.

Problems (columns.ProblemKind) and their routes (layout.Routes) are fixed per snapshot;
a frame computes each problem's constant from the leg and pool states, then:
- closed form (bracket.py) for single linear legs on regular notional tables;
- far-side Newton (newton.py) for every other set of legs on concave terms, both
  directions where both can hurt, the nearer kept (ties to the fall, as the scalar does);
- the segment walk (walk.py) for sets with a tier-moving leg on an irregular table;
- the scalar solver for any Newton row that did not settle (a safeguard that should
  never fire). Exact either way, never a guess.
Isolated closed-form legs need no solve at all: their price is fixed per snapshot.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from monitor.engine.solver import nearest_liquidation_move, single_leg_move
from monitor.engine.vector import newton, walk
from monitor.engine.vector.bracket import Legs, bracket_price, gather, move_to
from monitor.engine.vector.carry import Carried
from monitor.engine.vector.layout import Layout
from monitor.engine.vector.plan import Plan
from monitor.engine.vector.rows import SearchRows
from monitor.engine.vector.state import LegState, PoolState


@dataclass(slots=True)
class WarmStart:
    """What one layout shape carries from frame to frame: where last frame's searches
    ended (each position's tier, Newton members' tiers, the closed-form brackets) with
    the table entries there (`carry.py`), the Newton members' far-side entries and the
    closed-form legs' terms. The places are only starting points: the answers never
    depend on them; the entries are re-read wherever a poll rewrote their rows."""

    tier: Carried | None = None
    newton: Carried | None = None
    bracket: Carried | None = None
    far: Carried | None = None
    closed: Legs | None = None
    closed_order: np.ndarray | None = None
    """Where each of `closed`'s legs is among the closed form's problems: longs first,
    then shorts (`move_to`'s per-leg selects then meet long runs of one side, where mixed
    sides make each select a branch that mispredicts)."""
    fixed: tuple[np.ndarray, np.ndarray] | None = None
    """The fixed isolated roots' prices and sides (at `Plan.fixed_roots`): per snapshot
    figures, read again after any poll."""
    isolated_wallet: np.ndarray | None = None
    """The isolated rows' (`Plan.isolated`) wallets, the same way."""
    layout: Layout | None = None
    """The layout whose tables the entries were read from."""

    def read_from(self, layout: Layout, rewritten: np.ndarray) -> None:
        """Mark stale what was read from the position rows `rewritten` (a poll wrote its
        account's figures over them, making `layout` a new object)."""
        if layout is self.layout:
            return
        self.layout = layout
        if not rewritten.size:
            return
        self.fixed = self.isolated_wallet = None
        if self.tier is not None:
            self.tier.stale = rewritten
        hit = np.zeros(layout.leg_cols["pool"].size, dtype=bool)
        hit[rewritten] = True
        members = np.flatnonzero(hit.take(layout.routes.newton.member_leg))
        for carried in (self.newton, self.far):
            if carried is not None:
                carried.stale = members
        if self.closed is not None:
            closed = np.flatnonzero(hit.take(self.closed.rows))
            self.closed.refresh(layout.leg_cols, closed)
            if self.bracket is not None:
                self.bracket.stale = closed


@dataclass(frozen=True, slots=True)
class Moves:
    """Signed fractional moves to liquidation, NaN where no price liquidates (or nothing
    was solved: unknown pools and positions carry their own note)."""

    legs: np.ndarray
    pools: np.ndarray


def liquidation_moves(
    layout: Layout, plan: Plan, legs: LegState, pools: PoolState, warm: WarmStart | None = None
) -> Moves:
    """Every problem's move; `warm` (if given) is read and then updated in place."""
    warm = warm if warm is not None else WarmStart()
    routes = layout.routes
    if plan.groups_cross:
        held = np.subtract(pools.cross_pnl, pools.cross_requirement)
    else:
        held = (legs.pnl - legs.requirement).take(plan.group_member_leg)
        if plan.group_member_slot.size > plan.group_problems.size:  # not all single legs
            held = np.bincount(plan.group_member_slot, held, minlength=plan.group_problems.size)
    # Per kind of problem: a pool's wallet; free - held for a group; an isolated wallet.
    counts = plan.group_pool_counts
    free = (
        pools.free.take(plan.group_problem_pool)
        if counts is None
        else np.repeat(pools.free, counts)
    )
    groups = np.subtract(free, held, out=held)
    constant = np.empty(layout.problem_cols["kind"].size)
    constant[plan.pool_problems] = layout.pool_cols["wallet"].take(plan.pool_problem_pool)
    if not plan.closed_groups:
        constant[plan.group_problems] = groups
    constant[plan.isolated_problems] = layout.leg_cols["isolated_wallet"].take(
        plan.isolated_problem_leg
    )
    move = np.full(constant.size + 1, np.nan)  # one more: the move of no problem

    closed = routes.closed_form
    cross = None
    if closed.size:
        if warm.closed is None or warm.closed_order is None:
            first = routes.first_leg[closed]
            order = np.argsort(layout.leg_cols["sign"].take(first) < 0.0, kind="stable")
            warm.closed = gather(layout.leg_cols, layout.tier_cols, first.take(order))
            warm.closed_order = order
        gathered, order = warm.closed, warm.closed_order
        rows = gathered.rows
        start = warm.bracket if warm.bracket is not None else legs.tier.take(rows)
        closed_constant = (groups if plan.closed_groups else constant.take(closed)).take(order)
        price, warm.bracket = bracket_price(gathered, layout.tier_cols, closed_constant, start)
        closed_move = move_to(price, legs.mark.take(rows), gathered.sign)
        if plan.closed_cross:
            cross = (rows, closed_move)
        else:
            move[closed.take(order)] = closed_move

    rows = routes.newton
    t, converged, warm.newton, warm.far = newton.solve(
        rows, constant[rows.problem], legs, tier_cols=layout.tier_cols,
        tier_count=layout.leg_cols["tier_count"], warm=warm.newton,
        far=warm.far,
    )  # fmt: skip
    _keep_nearer(move, rows, t)
    rows = routes.walk
    if rows.size:
        t = walk.solve(
            rows, constant[rows.problem], legs.mark, legs.tier, layout.leg_cols, layout.tier_cols
        )
        _keep_nearer(move, rows, t)

    if not converged.all():
        for problem in np.unique(routes.newton.problem[~converged]):
            move[problem] = _scalar_move(layout, legs, int(problem), float(constant[problem]))

    if warm.fixed is None:
        fixed = plan.fixed_roots
        cols = layout.leg_cols
        warm.fixed = (cols["isolated_root"].take(fixed), cols["sign"].take(fixed))
    return Moves(
        legs=_leg_moves(plan, legs, move, cross, warm.fixed),
        pools=_pool_moves(layout, plan, move),
    )


def _keep_nearer(move: np.ndarray, rows: SearchRows, t: np.ndarray) -> None:
    """Per problem the smaller adverse move of its rows' roots; the fall wins a tie."""
    row_move = np.where(rows.inverse, 1.0 / t - 1.0, t) if rows.members["any_inverse"] else t
    static = rows.members
    move[static["up_problem"]] = row_move.take(static["up"])
    down_problem, down_move = static["down_problem"], row_move.take(static["down"])
    current = move.take(down_problem)
    take = ~np.isnan(down_move) & (np.isnan(current) | ~(np.abs(current) < np.abs(down_move)))
    move[down_problem[take]] = down_move[take]


def _scalar_move(layout: Layout, legs: LegState, problem: int, constant: float) -> float:
    routes = layout.routes
    start, size = int(routes.start[problem]), int(routes.size[problem])
    rows = layout.member_cols["leg"][start : start + size]
    moving = [(layout.leg(int(row)), float(legs.mark[row])) for row in rows]
    indices = [int(legs.tier[row]) for row in rows]
    if size == 1:
        leg, mark = moving[0]
        found = single_leg_move(leg, mark, indices[0], constant)
    else:
        found = nearest_liquidation_move(moving, constant, indices)
    return np.nan if found is None else found


def _leg_moves(
    plan: Plan,
    legs: LegState,
    move: np.ndarray,
    cross: tuple[np.ndarray, np.ndarray] | None,
    fixed: tuple[np.ndarray, np.ndarray],
) -> np.ndarray:
    """Each position's own move: its group's (cross; where `Plan.closed_cross`, `cross`
    gives every cross row and its move from the closed form), its own problem's or its
    fixed closed-form price's (isolated: `fixed`, each one's price and side)."""
    if cross is None:
        result = move.take(plan.own_problem)
    else:
        result = np.empty(plan.own_problem.size)
        result[cross[0]] = cross[1]
        result[plan.isolated] = move.take(plan.isolated_problem_of)
    rows = plan.fixed_roots
    result[rows] = move_to(fixed[0], legs.mark.take(rows), fixed[1])
    return result


def _pool_moves(layout: Layout, plan: Plan, move: np.ndarray) -> np.ndarray:
    result = np.full(layout.pool_count, np.nan)
    result[plan.pool_problem_pool] = move.take(plan.pool_problems)
    return result
