"""Every account's columns side by side: the global rows one frame computes over.

Blocks (columns.py) keep local indices; concatenating them offsets the indices that point
across tables (leg -> pool, problem -> pool, member -> problem and leg) and pads the tier
tables to the widest one. The static routing of each liquidation problem (closed form,
Newton, or the scalar walk) is decided here once, so a frame only does arithmetic.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache

import numpy as np

from monitor.domain import AccountSnapshot, Position
from monitor.engine.legs import Leg
from monitor.engine.vector.columns import AccountBlock, Columns, compile_account
from monitor.engine.vector.newton import NewtonRows


@dataclass(frozen=True, slots=True)
class AccountRows:
    """Where one account's rows sit in the global arrays."""

    positions: slice
    pools: slice


@dataclass(frozen=True, slots=True)
class Routes:
    """Which solver answers each liquidation problem (indices into the problem table)."""

    closed_form: np.ndarray
    """Single linear legs on regular notional tables: Binance's bracket formula."""
    newton: np.ndarray
    fallback: np.ndarray
    """Problems with a tier-moving leg on an irregular table (MM jumps at a floor): the
    function is not concave there, so the scalar walk, exact for any table, answers."""
    rows: NewtonRows
    row_problem: np.ndarray
    row_price_direction: np.ndarray
    first_leg: np.ndarray
    """Per problem: its first member (the only one of a single-leg problem)."""
    start: np.ndarray
    """Per problem: where its members begin in the member table."""
    size: np.ndarray


@dataclass(frozen=True, slots=True)
class Layout:
    symbols: tuple[str, ...]
    """Index -> unified symbol: the order of a mark vector."""
    blocks: tuple[AccountBlock, ...]
    accounts: dict[str, AccountRows]
    legs: tuple[Leg, ...]
    position_rows: tuple[tuple[str, Position], ...]
    """Row -> (account, position): the daemon's target for each position row."""
    pool_rows: tuple[tuple[str, str], ...]
    """Row -> (account, pool asset): the daemon's target for each pool row."""
    pool_notes: tuple[str | None, ...]
    leg_cols: Columns
    tier_cols: Columns
    pool_cols: Columns
    problem_cols: Columns
    member_cols: Columns
    routes: Routes

    @property
    def symbol_index(self) -> dict[str, int]:
        return {symbol: i for i, symbol in enumerate(self.symbols)}


def build_layout(blocks: Sequence[AccountBlock], symbols: Sequence[str]) -> Layout:
    width = max((block.width for block in blocks), default=1)
    accounts: dict[str, AccountRows] = {}
    legs_at = pools_at = problems_at = 0
    shifted: list[tuple[Columns, Columns, Columns]] = []
    for block in blocks:
        n_legs, n_pools = len(block.legs), len(block.pool_assets)
        accounts[block.name] = AccountRows(
            slice(legs_at, legs_at + n_legs), slice(pools_at, pools_at + n_pools)
        )
        pool = block.leg_cols["pool"]
        leg_cols = dict(block.leg_cols, pool=np.where(pool >= 0, pool + pools_at, -1))
        problem_cols = dict(block.problem_cols)
        problem_pool = problem_cols["pool"]
        problem_cols["pool"] = np.where(problem_pool >= 0, problem_pool + pools_at, -1)
        member_cols = {
            "problem": block.member_cols["problem"] + problems_at,
            "leg": block.member_cols["leg"] + legs_at,
        }
        shifted.append((leg_cols, problem_cols, member_cols))
        legs_at += n_legs
        pools_at += n_pools
        problems_at += len(block.problem_cols["kind"])

    empty = _empty_block()
    shifted.insert(0, (empty.leg_cols, empty.problem_cols, empty.member_cols))

    def joined(tables: list[Columns]) -> Columns:
        return {key: np.concatenate([t[key] for t in tables]) for key in tables[0]}

    tier_cols = {
        key: np.concatenate(
            [_padded(block.tier_cols[key], width, key == "floors") for block in (empty, *blocks)]
        )
        for key in empty.tier_cols
    }
    leg_cols = joined([s[0] for s in shifted])
    problem_cols = joined([s[1] for s in shifted])
    member_cols = joined([s[2] for s in shifted])
    pool_cols = joined([block.pool_cols for block in (empty, *blocks)])
    return Layout(
        symbols=tuple(symbols),
        blocks=tuple(blocks),
        accounts=accounts,
        legs=tuple(leg for block in blocks for leg in block.legs),
        position_rows=tuple((block.name, leg.position) for block in blocks for leg in block.legs),
        pool_rows=tuple((block.name, asset) for block in blocks for asset in block.pool_assets),
        pool_notes=tuple(note for block in blocks for note in block.pool_notes),
        leg_cols=leg_cols,
        tier_cols=tier_cols,
        pool_cols=pool_cols,
        problem_cols=problem_cols,
        member_cols=member_cols,
        routes=_routes(leg_cols, problem_cols, member_cols),
    )


def _padded(table: np.ndarray, width: int, floors: bool) -> np.ndarray:
    """Widen a block's tier table: floors with +inf (never reached), the rest with the
    last column (never read, but finite)."""
    extra = width - table.shape[1]
    if extra == 0:
        return table
    if floors:
        return np.hstack([table, np.full((table.shape[0], extra), np.inf)])
    fill = np.repeat(table[:, -1:], extra, axis=1)
    return np.hstack([table, fill])


def _routes(leg_cols: Columns, problem_cols: Columns, member_cols: Columns) -> Routes:
    count = len(problem_cols["kind"])
    member_problem, member_leg = member_cols["problem"], member_cols["leg"]
    size = np.bincount(member_problem, minlength=count)
    starts = np.cumsum(size) - size  # members are grouped by problem, problems in order
    first_leg = member_leg[np.minimum(starts, max(member_leg.size - 1, 0))]
    irregular = np.bincount(
        member_problem, leg_cols["irregular"][member_leg].astype(float), minlength=count
    )
    closed = (size == 1) & leg_cols["bracket"][first_leg] if count else np.zeros(0, dtype=bool)
    fallback = ~closed & (irregular > 0)
    newton = ~closed & ~fallback
    longs = np.bincount(
        member_problem, (leg_cols["sign"][member_leg] > 0.0).astype(float), minlength=count
    )
    shorts = size - longs
    # Rows: a downward row for problems holding a long, an upward one for a short;
    # down first, as the scalar search breaks ties towards the fall.
    problem_ids = np.flatnonzero(newton)
    down = problem_ids[longs[problem_ids] > 0]
    up = problem_ids[shorts[problem_ids] > 0]
    row_problem = np.concatenate([down, up])
    row_price_direction = np.concatenate([-np.ones(down.size), np.ones(up.size)])
    order = np.lexsort((-row_price_direction, row_problem))
    row_problem, row_price_direction = row_problem[order], row_price_direction[order]
    inverse = problem_cols["inverse"][row_problem]
    # Members per row: each row repeats its problem's members, rows in order.
    counts = size[row_problem]
    member_row = np.repeat(np.arange(row_problem.size), counts)
    offsets = np.arange(member_row.size) - np.repeat(np.cumsum(counts) - counts, counts)
    member_at = np.repeat(starts[row_problem], counts) + offsets
    rows = NewtonRows(
        direction=np.where(inverse, -row_price_direction, row_price_direction),
        inverse=inverse,
        member_row=member_row,
        member_leg=member_leg[member_at],
    )
    return Routes(
        closed_form=np.flatnonzero(closed),
        newton=problem_ids,
        fallback=np.flatnonzero(fallback),
        rows=rows,
        row_problem=row_problem,
        row_price_direction=row_price_direction,
        first_leg=first_leg,
        start=starts,
        size=size,
    )


@cache
def _empty_block() -> AccountBlock:
    """A block without rows: its columns give an empty layout every key and dtype."""
    return compile_account(AccountSnapshot("", "", (), (), {}), {})
