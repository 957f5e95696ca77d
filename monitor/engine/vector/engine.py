"""The vectorised engine: accounts in, one `Frame` of every target's figures per update."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from monitor.domain import AccountSnapshot
from monitor.engine.models import MarginModel
from monitor.engine.vector.columns import AccountBlock, compile_account
from monitor.engine.vector.frame import Frame, Note
from monitor.engine.vector.layout import Layout, build_layout, replace_blocks
from monitor.engine.vector.liquidation import WarmStart, liquidation_moves
from monitor.engine.vector.plan import Plan, build_plan
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
        self._plan: Plan | None = None
        """The current layout shape's masks and index lists (kept across polls)."""
        self._written: list[slice] = []
        """Position rows written over since the last frame (what the warm state read
        from them is stale)."""

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
            self._plan = build_plan(self._layout)
            self._written = []
        elif self._pending:
            self._layout = replace_blocks(self._layout, self._pending)
            self._written.extend(self._layout.accounts[name].positions for name in self._pending)
        self._pending = {}
        return self._layout

    def _rewritten(self) -> np.ndarray:
        rows = [np.arange(span.start, span.stop) for span in self._written]
        self._written = []
        return np.concatenate(rows) if rows else np.zeros(0, dtype=np.intp)

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
        # One error state for the whole frame (entering one costs a microsecond): NaN
        # and inf are figures here (unknowns, unreachable prices), not errors.
        with np.errstate(divide="ignore", invalid="ignore"):
            return self._frame(layout, vector)

    def _frame(self, layout: Layout, vector: np.ndarray) -> Frame:
        plan, warm = self._plan, self._warm
        assert plan is not None  # built with the layout
        warm.read_from(layout, self._rewritten())
        legs, warm.tier = leg_state(layout, plan, vector, warm.tier)
        pools = pool_state(layout, plan, legs)
        moves = liquidation_moves(layout, plan, legs, pools, warm)
        isolated = plan.isolated
        if warm.isolated_wallet is None:
            warm.isolated_wallet = layout.leg_cols["isolated_wallet"].take(isolated)
        ratio = pools.ratio.take(plan.row_pool) if pools.ratio.size else np.empty(legs.mark.size)
        ratio[isolated] = margin_ratio(
            legs.requirement.take(isolated), warm.isolated_wallet + legs.pnl.take(isolated)
        )
        # Notes: the shape's where it decides them, else unreachable where no move is.
        note = np.isnan(moves.legs).view(np.int8)  # a bool is one byte: 0 or 1
        note *= np.int8(Note.UNREACHABLE)
        note[plan.noted] = plan.note[plan.noted]
        pool_note = (pools.has_legs & np.isnan(moves.pools)).astype(np.int8) * np.int8(
            Note.UNREACHABLE
        )
        pool_note[plan.pool_unknown] = Note.POOL
        maintenance = legs.requirement - legs.fees
        fees = legs.fees
        if plan.hidden.size:
            fees = fees.copy()
            maintenance[plan.hidden] = fees[plan.hidden] = np.nan
        price = 1.0 + moves.legs
        price *= legs.mark
        distance = np.abs(moves.legs)
        if plan.unsolved.size:
            for figures in (ratio, price, distance):
                figures[plan.unsolved] = np.nan
        return Frame(
            layout=layout,
            mark=legs.mark,
            notional=legs.value,
            unrealized_pnl=legs.pnl,
            tier=legs.tier,
            maintenance_margin=maintenance,
            liquidation_fees=fees,
            margin_ratio=ratio,
            liquidation_price=price,
            liquidation_distance=distance,
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
