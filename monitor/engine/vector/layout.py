"""Every account's columns side by side: the global rows one frame computes over.

Blocks (columns.py) keep local indices; concatenating them offsets the indices that point
across tables (leg -> pool, problem -> pool, member -> problem and leg) and pads the tier
tables to the widest one. The static routing of each liquidation problem (closed form,
Newton, or the scalar walk) is decided here once, so a frame only does arithmetic.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache, cached_property

import numpy as np

from monitor.domain import AccountSnapshot, Position
from monitor.engine.legs import Leg
from monitor.engine.vector.columns import AccountBlock, Columns, compile_account
from monitor.engine.vector.rows import SearchRows, search_rows


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
    newton: SearchRows
    """Problems on concave terms, by far-side Newton: one row per problem and direction
    that can hurt it (down if it holds a long, up if a short)."""
    walk: SearchRows
    """Problems with a tier-moving leg on an irregular table (MM jumps at a floor): not
    concave, so they are walked segment by segment (walk.py), as the scalar solver does."""
    first_leg: np.ndarray
    """Per problem: its first member (the only one of a single-leg problem)."""
    start: np.ndarray
    """Per problem: where its members begin in the member table."""
    size: np.ndarray


@dataclass(frozen=True)
class Layout:
    """The global tables of one set of accounts (a new object after each change)."""

    symbols: tuple[str, ...]
    """Index -> unified symbol: the order of a mark vector."""
    blocks: tuple[AccountBlock, ...]
    accounts: dict[str, AccountRows]
    leg_cols: Columns
    tier_cols: Columns
    pool_cols: Columns
    problem_cols: Columns
    member_cols: Columns
    routes: Routes
    leg_starts: np.ndarray
    """Per block, its first position row."""

    def leg(self, row: int) -> Leg:
        """The scalar leg of a position row (for the scalar walk and the notes)."""
        block = int(np.searchsorted(self.leg_starts, row, side="right")) - 1
        return self.blocks[block].legs[row - int(self.leg_starts[block])]

    @property
    def symbol_index(self) -> dict[str, int]:
        """Symbol -> its place in a mark vector (for a caller that keeps one)."""
        return {symbol: i for i, symbol in enumerate(self.symbols)}

    # Python-object views, built on first use: a re-join after a reload stays numpy only.

    @cached_property
    def position_rows(self) -> tuple[tuple[str, Position], ...]:
        """Row -> (account, position): the daemon's target for each position row."""
        return tuple((block.name, leg.position) for block in self.blocks for leg in block.legs)

    @cached_property
    def pool_rows(self) -> tuple[tuple[str, str], ...]:
        """Row -> (account, pool asset): the daemon's target for each pool row."""
        return tuple((block.name, asset) for block in self.blocks for asset in block.pool_assets)

    @cached_property
    def pool_notes(self) -> tuple[str | None, ...]:
        return tuple(note for block in self.blocks for note in block.pool_notes)

    @property
    def pool_count(self) -> int:
        return int(self.pool_cols["wallet"].size)


def build_layout(blocks: Sequence[AccountBlock], symbols: Sequence[str]) -> Layout:
    every = (_empty_block(), *blocks)
    width = max(block.width for block in every)

    def joined(tables: list[Columns]) -> Columns:
        return {key: np.concatenate([t[key] for t in tables]) for key in tables[0]}

    leg_cols = joined([block.leg_cols for block in every])
    pool_cols = joined([block.pool_cols for block in every])
    problem_cols = joined([block.problem_cols for block in every])
    member_cols = joined([block.member_cols for block in every])
    tier_cols = {
        key: np.concatenate([_padded(block.tier_cols[key], width, key) for block in every])
        for key in every[0].tier_cols
    }
    # Block-local indices -> global: each row gets its block's offset (-1 stays -1).
    counts = np.array(
        [(len(b.legs), len(b.pool_assets), b.problem_cols["kind"].size, b.member_cols["leg"].size)
         for b in every]
    ).reshape(-1, 4)  # fmt: skip
    legs_at, pools_at, problems_at = (np.cumsum(counts[:, i]) - counts[:, i] for i in range(3))
    for cols, at, rows in (
        (leg_cols, pools_at, counts[:, 0]),
        (problem_cols, pools_at, counts[:, 2]),
    ):
        pool = cols["pool"]
        cols["pool"] = np.where(pool >= 0, pool + np.repeat(at, rows), -1)
    member_cols["problem"] += np.repeat(problems_at, counts[:, 3])
    member_cols["leg"] += np.repeat(legs_at, counts[:, 3])
    accounts = {
        block.name: AccountRows(
            slice(int(legs_at[i]), int(legs_at[i] + counts[i, 0])),
            slice(int(pools_at[i]), int(pools_at[i] + counts[i, 1])),
        )
        for i, block in enumerate(every[1:], start=1)
    }
    return Layout(
        symbols=tuple(symbols),
        blocks=tuple(blocks),
        accounts=accounts,
        leg_cols=leg_cols,
        tier_cols=tier_cols,
        pool_cols=pool_cols,
        problem_cols=problem_cols,
        member_cols=member_cols,
        routes=_routes(leg_cols, problem_cols, member_cols, width),
        leg_starts=legs_at[1:],
    )


def replace_blocks(layout: Layout, changed: Mapping[str, AccountBlock]) -> Layout:
    """`layout` with some accounts' figures written over their rows: each new block has
    its old block's `structure`, so rows, targets and routes stay.

    The figure tables are written in place (no copy of every account's columns per
    poll); what an earlier `Frame` reads from its layout is structural only (rows,
    notes, blocks), and every figure it reports is its own array.
    """
    width = layout.tier_cols["floors"].shape[1]
    blocks = list(layout.blocks)
    index = {block.name: i for i, block in enumerate(blocks)}
    for name, block in changed.items():
        blocks[index[name]] = block
        rows = layout.accounts[name]
        for key, table in block.leg_cols.items():
            if key != "pool":  # structural, and global in the layout
                layout.leg_cols[key][rows.positions] = table
        for key, table in block.tier_cols.items():
            layout.tier_cols[key][rows.positions] = _padded(table, width, key)
        for key, table in block.pool_cols.items():
            layout.pool_cols[key][rows.pools] = table
    replaced = dataclasses.replace(layout, blocks=tuple(blocks))
    _carry_views(layout, replaced, changed)
    return replaced


def _carry_views(old: Layout, new: Layout, changed: Mapping[str, AccountBlock]) -> None:
    """Give `new` the Python views `old` had built, patched for the changed accounts
    (pool rows and notes are structural: the same), so a poll does not cost a rebuild
    of every row's view on the next frame (the daemon reads them per event)."""
    views = old.__dict__
    for name in ("pool_rows", "pool_notes"):
        if name in views:
            new.__dict__[name] = views[name]
    if "position_rows" in views:
        rows = list(views["position_rows"])
        for name, block in changed.items():
            rows[old.accounts[name].positions] = [(name, leg.position) for leg in block.legs]
        new.__dict__["position_rows"] = tuple(rows)


def _padded(table: np.ndarray, width: int, key: str) -> np.ndarray:
    """Widen a block's tier table `key` to `width` tiers: floors and bounds (one column
    wider) with +inf (never reached), the rest with the last column (never read, but
    finite)."""
    extra = width + (key == "bounds") - table.shape[1]
    if extra == 0:
        return table
    if key in ("floors", "bounds"):
        return np.hstack([table, np.full((table.shape[0], extra), np.inf)])
    fill = np.repeat(table[:, -1:], extra, axis=1)
    return np.hstack([table, fill])


def _routes(leg_cols: Columns, problem_cols: Columns, member_cols: Columns, width: int) -> Routes:
    count = len(problem_cols["kind"])
    member_problem, member_leg = member_cols["problem"], member_cols["leg"]
    size = np.bincount(member_problem, minlength=count)
    starts = np.cumsum(size) - size  # members are grouped by problem, problems in order
    first_leg = member_leg[np.minimum(starts, max(member_leg.size - 1, 0))]
    irregular = np.bincount(
        member_problem, leg_cols["irregular"][member_leg].astype(float), minlength=count
    )
    closed = (size == 1) & leg_cols["bracket"][first_leg] if count else np.zeros(0, dtype=bool)
    jumping = ~closed & (irregular > 0)
    longs = np.bincount(
        member_problem, (leg_cols["sign"][member_leg] > 0.0).astype(float), minlength=count
    )

    def rows(chosen: np.ndarray) -> SearchRows:
        return search_rows(
            np.flatnonzero(chosen), longs, size - longs, inverse=problem_cols["inverse"],
            start=starts, size=size, member_leg=member_leg, leg_cols=leg_cols, width=width,
        )  # fmt: skip

    return Routes(
        closed_form=np.flatnonzero(closed),
        newton=rows(~closed & ~jumping),
        walk=rows(jumping),
        first_leg=first_leg,
        start=starts,
        size=size,
    )


@cache
def _empty_block() -> AccountBlock:
    """A block without rows: its columns give an empty layout every key and dtype."""
    return compile_account(AccountSnapshot("", "", (), (), {}), {})
