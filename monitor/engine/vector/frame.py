"""One frame's answer: every position's and every pool's figures as arrays.

Rows follow the layout (`layout.position_rows`, `layout.pool_rows`), so the daemon maps a
row to its target once per layout, not per frame. Unknown figures are NaN, never 0, and
each row's note code says why (the scalar book's note texts).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

import numpy as np

from monitor.engine.book import NO_ISOLATED_MARGIN, NO_TIERS, UNREACHABLE
from monitor.engine.vector.layout import Layout


class Note(IntEnum):
    NONE = 0
    UNREACHABLE = 1
    """No price liquidates it (the scalar UNREACHABLE)."""
    POOL = 2
    """The pool's own note: the pool could not be summed (no wallet, no tiers, mixed)."""
    NO_TIERS = 3
    NO_ISOLATED_MARGIN = 4


@dataclass(frozen=True, slots=True)
class Frame:
    layout: Layout
    # per position row
    mark: np.ndarray
    notional: np.ndarray
    unrealized_pnl: np.ndarray
    tier: np.ndarray
    maintenance_margin: np.ndarray
    """As the exchange defines it (OKX: without the liquidation fees)."""
    liquidation_fees: np.ndarray
    """What the exchange keeps apart from its MM but liquidates on (OKX); 0 elsewhere."""
    margin_ratio: np.ndarray
    """Ours: (MM + fees) / margin balance; a cross position carries its pool's."""
    liquidation_price: np.ndarray
    liquidation_distance: np.ndarray
    note: np.ndarray
    # per pool row
    pool_wallet: np.ndarray
    """The wallet the exchange reported (NaN: none)."""
    pool_exchange_ratio: np.ndarray
    """The exchange's own ratio, converted to ours (NaN: not reported)."""
    pool_unrealized_pnl: np.ndarray
    pool_margin_balance: np.ndarray
    pool_maintenance_margin: np.ndarray
    pool_liquidation_fees: np.ndarray
    pool_margin_ratio: np.ndarray
    pool_liquidation_move: np.ndarray
    pool_liquidation_distance: np.ndarray
    pool_note: np.ndarray

    def position_note(self, row: int) -> str | None:
        """The note text of a position row, as the scalar book words it."""
        code = Note(int(self.note[row]))
        if code is Note.NONE:
            return None
        if code is Note.UNREACHABLE:
            return UNREACHABLE
        if code is Note.NO_ISOLATED_MARGIN:
            return NO_ISOLATED_MARGIN
        if code is Note.NO_TIERS:
            return NO_TIERS.format(symbol=self.layout.leg(row).symbol)
        pool = self.layout.leg_cols["pool"][row]
        return self.layout.pool_notes[pool]

    def pool_note_text(self, row: int) -> str | None:
        code = Note(int(self.pool_note[row]))
        if code is Note.UNREACHABLE:
            return UNREACHABLE
        return self.layout.pool_notes[row] if code is Note.POOL else None
