"""The vectorised engine: accounts in, one `Frame` of every target's figures per update."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from monitor.domain import AccountSnapshot
from monitor.engine.models import MarginModel
from monitor.engine.vector.columns import AccountBlock, PoolStatus, compile_account
from monitor.engine.vector.frame import Frame, Note
from monitor.engine.vector.layout import Layout, build_layout, replace_blocks
from monitor.engine.vector.liquidation import WarmStart, liquidation_moves
from monitor.engine.vector.state import leg_state, margin_ratio, pool_state

Marks = Mapping[str, float] | np.ndarray


class VectorEngine:
    """All positions of all accounts as columns; `update(marks)` evaluates every target.

    `load` compiles one account (a new or changed snapshot) and leaves the others'
    columns alone. The usual change (new wallet, sizes, entries; the same positions) keeps
    the account's rows: its figures are written over its rows on the next update, and
    the rows, the target mapping and the solvers' warm starts all stay. A change of
    shape (a position opened or closed, a pool appearing) re-joins the layout from the
    compiled blocks: concatenation only, no account but the changed one is recompiled.
    """

    def __init__(self) -> None:
        self._blocks: dict[str, AccountBlock] = {}
        self._symbol_id: dict[str, int] = {}
        self._layout: Layout | None = None
        self._pending: dict[str, AccountBlock] = {}
        """Blocks of the same structure as the ones in the layout, not yet written."""
        self._warm = WarmStart()

    def load(self, snapshot: AccountSnapshot, model: MarginModel | None = None) -> None:
        """Add or replace the account named `snapshot.name`."""
        block = compile_account(snapshot, self._symbol_id, model)
        old = self._blocks.get(snapshot.name)
        self._blocks[snapshot.name] = block
        if self._layout is None:
            return
        fits = block.width <= self._layout.tier_cols["floors"].shape[1]
        if old is not None and fits and old.structure() == block.structure():
            self._pending[snapshot.name] = block
        else:
            self._layout = None

    def remove(self, name: str) -> None:
        if self._blocks.pop(name, None) is not None:
            self._layout = None

    @property
    def layout(self) -> Layout:
        """The current rows; a new object after each change, the same rows (and
        `position_rows`, `pool_rows`) unless an account changed shape."""
        if self._layout is None:
            self._layout = build_layout(list(self._blocks.values()), list(self._symbol_id))
            self._warm = WarmStart()
        elif self._pending:
            self._layout = replace_blocks(self._layout, self._pending)
        self._pending = {}
        return self._layout

    def mark_vector(self, marks: Mapping[str, float] | None) -> np.ndarray:
        """Marks by `layout.symbols` index, NaN where none is given (the snapshot's mark
        is then used). A daemon can keep this vector itself and pass it to `update`."""
        symbols = self.layout.symbols
        if not marks:
            return np.full(len(symbols), np.nan)
        get = marks.get
        return np.fromiter((get(s, np.nan) for s in symbols), float, len(symbols))

    def update(self, marks: Marks | None = None) -> Frame:
        """Every position and pool at `marks` (a mapping symbol -> mark, or a vector in
        `layout.symbols` order), each figure exact."""
        layout = self.layout
        vector = marks if isinstance(marks, np.ndarray) else self.mark_vector(marks)
        legs = leg_state(layout, vector)
        pools = pool_state(layout, legs)
        moves = liquidation_moves(layout, legs, pools, self._warm)
        cols = layout.leg_cols
        pool = cols["pool"]
        cross = pool >= 0
        pool_ok = np.append(layout.pool_cols["status"] == PoolStatus.OK, False)[pool]
        isolated_wallet = cols["isolated_wallet"]
        solved_isolated = ~cross & cols["has_terms"] & ~np.isnan(isolated_wallet)
        solved = (cross & pool_ok) | solved_isolated
        shown = (cross & pool_ok) | (~cross & cols["has_terms"])
        ratio = np.where(
            cross,
            np.append(pools.ratio, np.nan)[pool],
            margin_ratio(legs.requirement, isolated_wallet + legs.pnl),
        )
        note = np.select(
            [cross & ~pool_ok, ~cross & ~cols["has_terms"], ~cross & np.isnan(isolated_wallet)],
            [Note.POOL, Note.NO_TIERS, Note.NO_ISOLATED_MARGIN],
            np.where(np.isnan(moves.legs), Note.UNREACHABLE, Note.NONE),
        ).astype(np.int8)
        pool_status = layout.pool_cols["status"]
        pool_note = np.where(
            pool_status != PoolStatus.OK,
            Note.POOL,
            np.where(pools.has_legs & np.isnan(moves.pools), Note.UNREACHABLE, Note.NONE),
        ).astype(np.int8)
        fees = np.where(shown, legs.fees, np.nan)
        return Frame(
            layout=layout,
            mark=legs.mark,
            notional=legs.value,
            unrealized_pnl=legs.pnl,
            tier=legs.tier,
            maintenance_margin=np.where(shown, legs.requirement - legs.fees, np.nan),
            liquidation_fees=fees,
            margin_ratio=np.where(solved, ratio, np.nan),
            liquidation_price=np.where(solved, legs.mark * (1.0 + moves.legs), np.nan),
            liquidation_distance=np.where(solved, np.abs(moves.legs), np.nan),
            note=note,
            pool_wallet=layout.pool_cols["wallet"].copy(),
            pool_exchange_ratio=layout.pool_cols["exchange_ratio"].copy(),
            pool_unrealized_pnl=pools.pnl,
            pool_margin_balance=pools.balance,
            pool_maintenance_margin=pools.requirement - pools.fees,
            pool_liquidation_fees=pools.fees,
            pool_margin_ratio=pools.ratio,
            pool_liquidation_move=moves.pools,
            pool_liquidation_distance=np.abs(moves.pools),
            pool_note=pool_note,
        )
