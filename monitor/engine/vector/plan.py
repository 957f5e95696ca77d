"""What a frame reads that only the layout's shape decides, built once per shape.

Masks, index lists and the notes that need no figure (a pool without a wallet, a leg
without tiers) depend only on the columns `columns._STRUCTURAL` names, the pools'
statuses and the problem and member tables: a poll written over its rows keeps them, so
the engine builds a `Plan` when the layout is joined and keeps it until the shape
changes. A frame then does arithmetic and a few scatters instead of re-deriving them at
every row (each numpy call costs microseconds of its own at thousands of rows).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from monitor.engine.vector.columns import PoolStatus, ProblemKind
from monitor.engine.vector.frame import Note
from monitor.engine.vector.layout import Layout


@dataclass(frozen=True, slots=True)
class Plan:
    # per position row
    tier_first: np.ndarray
    """Where each row's tiers start in the flattened tier tables."""
    bounds_first: np.ndarray
    """Where each row's tier edges start in the flattened `bounds` table."""
    any_inverse: bool
    any_fixed: bool
    any_by_contracts: bool
    no_terms: np.ndarray
    """Rows without margin terms: NaN MM and fees."""
    cross: np.ndarray
    """Cross rows, in row order, and each one's pool."""
    cross_pool: np.ndarray
    row_pool: np.ndarray
    """Each row's pool, 0 for an isolated row (a place to read that it overwrites)."""
    summed_pools: np.ndarray | None
    """The pools that hold cross rows and where each one's begin among `cross` (rows are
    grouped by pool, so `add.reduceat` sums them); None if they were not grouped."""
    summed_from: np.ndarray
    isolated: np.ndarray
    hidden: np.ndarray
    """Rows whose MM and fees are not shown (a cross row of a pool that cannot be
    summed, an isolated row without tiers)."""
    unsolved: np.ndarray
    """Rows without a ratio or a liquidation price (hidden, or no isolated margin)."""
    note: np.ndarray
    """Each row's note where the shape decides it, NONE elsewhere (then UNREACHABLE
    where the frame finds no move)."""
    noted: np.ndarray
    """The rows whose note the shape decides."""
    fixed_roots: np.ndarray
    """Isolated rows whose liquidation price is found once per snapshot: longs, then
    shorts (`bracket.move_to`'s selects then meet runs of one side)."""
    own_problem: np.ndarray
    """Each row's own problem (its group's or its isolated leg's: the row's move is the
    problem's), or the problem count where it has none (the moves' trailing NaN)."""
    # per pool row
    pool_unknown: np.ndarray
    """Pools that cannot be summed (no wallet, no tiers, mixed)."""
    has_legs: np.ndarray
    # per liquidation problem
    pool_problems: np.ndarray
    """POOL problems and their pools: the constant is the wallet, the move the pool's."""
    pool_problem_pool: np.ndarray
    group_problems: np.ndarray
    """GROUP problems and their pools, with their members (each a problem's index
    among `group_problems`, and a leg): the constant is free - held."""
    group_problem_pool: np.ndarray
    group_member_slot: np.ndarray
    group_member_leg: np.ndarray
    isolated_problems: np.ndarray
    """ISOLATED problems and their legs: the constant is the leg's isolated wallet."""
    isolated_problem_leg: np.ndarray
    closed_groups: bool
    """The closed-form problems are the GROUP problems, in order (one-way accounts on
    bracket tables): a frame hands the groups' constants to the closed form as they are
    and writes none into the problem table (no other solver reads a group's)."""
    groups_cross: bool
    """Every cross row is a group of its own, in row order (one-way accounts): a group's
    held figures are its cross row's, which the pool sums gather anyway."""
    group_pool_counts: np.ndarray | None
    """Per pool, how many GROUP problems it has, when they come in pool order (a repeat
    of the pools' figures then reads each group's pool's); None otherwise."""
    closed_cross: bool
    """`closed_groups` and `groups_cross`: the closed form's answers are the cross rows'
    moves, in row order, and no other problem reads them, so they go straight to the
    rows."""
    isolated_problem_of: np.ndarray
    """Each isolated row's own problem (`own_problem` at `isolated`)."""


def build_plan(layout: Layout) -> Plan:
    cols, problems, members = layout.leg_cols, layout.problem_cols, layout.member_cols
    count = cols["pool"].size
    width = layout.tier_cols["floors"].shape[1]
    pool = cols["pool"]
    cross = pool >= 0
    status = layout.pool_cols["status"]
    pool_ok = np.append(status == PoolStatus.OK, False)[pool]
    has_terms = cols["has_terms"]
    no_wallet = np.isnan(cols["isolated_wallet"])
    shown = (cross & pool_ok) | (~cross & has_terms)
    solved = (cross & pool_ok) | (~cross & has_terms & ~no_wallet)
    note = np.select(
        [cross & ~pool_ok, ~cross & ~has_terms, ~cross & no_wallet],
        [Note.POOL, Note.NO_TIERS, Note.NO_ISOLATED_MARGIN],
        Note.NONE,
    ).astype(np.int8)
    kind, problem_pool = problems["kind"], problems["pool"]
    member_kind = kind[members["problem"]]
    own = member_kind != ProblemKind.POOL
    group_problems = np.flatnonzero(kind == ProblemKind.GROUP)
    slot = np.full(kind.size, -1)
    slot[group_problems] = np.arange(group_problems.size)
    in_group = member_kind == ProblemKind.GROUP
    isolated_problems = np.flatnonzero(kind == ProblemKind.ISOLATED)
    pool_problems = np.flatnonzero(kind == ProblemKind.POOL)
    cross_pool = pool[cross]
    grouped = bool(np.all(cross_pool[1:] >= cross_pool[:-1]))
    summed_pools, summed_from = np.unique(cross_pool, return_index=True)
    own_problem = np.full(count, kind.size)
    own_problem[members["leg"][own]] = members["problem"][own]
    group_member_slot = slot[members["problem"][in_group]]
    group_member_leg = members["leg"][in_group]
    group_problem_pool = problem_pool[group_problems]
    cross_rows = np.flatnonzero(cross)
    groups_cross = group_member_slot.size == group_problems.size and np.array_equal(
        group_member_leg, cross_rows
    )
    closed_groups = np.array_equal(layout.routes.closed_form, group_problems)
    pool_ordered = bool(np.all(group_problem_pool[1:] >= group_problem_pool[:-1]))
    return Plan(
        tier_first=np.arange(count) * width,
        bounds_first=np.arange(count) * (width + 1),
        any_inverse=bool(cols["inverse"].any()),
        any_fixed=bool(cols["fixed"].any()),
        any_by_contracts=bool(cols["by_contracts"].any()),
        no_terms=np.flatnonzero(~has_terms),
        cross=cross_rows,
        cross_pool=cross_pool,
        row_pool=np.maximum(pool, 0),
        summed_pools=summed_pools if grouped else None,
        summed_from=summed_from,
        isolated=np.flatnonzero(~cross),
        hidden=np.flatnonzero(~shown),
        unsolved=np.flatnonzero(~solved),
        note=note,
        noted=np.flatnonzero(note != Note.NONE),
        fixed_roots=_by_side(np.flatnonzero(cols["bracket"] & ~cross & ~no_wallet), cols["sign"]),
        own_problem=own_problem,
        pool_unknown=np.flatnonzero(status != PoolStatus.OK),
        has_legs=np.bincount(pool[cross], minlength=status.size) > 0,
        pool_problems=pool_problems,
        pool_problem_pool=problem_pool[pool_problems],
        group_problems=group_problems,
        group_problem_pool=group_problem_pool,
        group_member_slot=group_member_slot,
        group_member_leg=group_member_leg,
        isolated_problems=isolated_problems,
        isolated_problem_leg=layout.routes.first_leg[isolated_problems],
        closed_groups=closed_groups,
        groups_cross=groups_cross,
        group_pool_counts=(
            np.bincount(group_problem_pool, minlength=status.size) if pool_ordered else None
        ),
        closed_cross=closed_groups and groups_cross,
        isolated_problem_of=own_problem[~cross],
    )


def _by_side(rows: np.ndarray, sign: np.ndarray) -> np.ndarray:
    """`rows` with the longs first, each side in row order."""
    return rows.take(np.argsort(sign.take(rows) < 0.0, kind="stable"))
