"""A frame's rows as the scalar engine's records: one row, or a whole account.

For the readers that want records (status, alerts, the equivalence tests); the tick path
reads the arrays and builds records only for the rows whose level moved. NaN becomes
None (unknown), except a pool's wallet and balance, which the scalar book also reports
as NaN when the exchange gave no wallet.
"""

from __future__ import annotations

import math

from monitor.engine.results import AccountRisk, PoolRisk, PositionRisk
from monitor.engine.vector.frame import Frame


def _known(value: float) -> float | None:
    return None if math.isnan(value) else float(value)


def pool_risk(frame: Frame, row: int) -> PoolRisk:
    """The record of one pool row (the tick path builds only the rows whose level moved)."""
    return PoolRisk(
        frame.layout.pool_rows[row][1],
        float(frame.pool_wallet[row]),
        float(frame.pool_unrealized_pnl[row]),
        float(frame.pool_margin_balance[row]),
        _known(frame.pool_maintenance_margin[row]),
        _known(frame.pool_margin_ratio[row]),
        _known(frame.pool_liquidation_move[row]),
        _known(frame.pool_liquidation_distance[row]),
        _known(frame.pool_exchange_ratio[row]),
        frame.pool_note_text(row),
        _known(frame.pool_liquidation_fees[row]),
    )


def position_risk(frame: Frame, row: int) -> PositionRisk:
    """The record of one position row."""
    return PositionRisk(
        frame.layout.position_rows[row][1],
        float(frame.mark[row]),
        float(frame.notional[row]),
        float(frame.unrealized_pnl[row]),
        _known(frame.maintenance_margin[row]),
        _known(frame.margin_ratio[row]),
        _known(frame.liquidation_price[row]),
        _known(frame.liquidation_distance[row]),
        frame.position_note(row),
        _known(frame.liquidation_fees[row]),
    )


def account_risk(frame: Frame, name: str) -> AccountRisk:
    layout = frame.layout
    rows = layout.accounts[name]
    block = next(b for b in layout.blocks if b.name == name)
    pools = tuple(pool_risk(frame, row) for row in range(rows.pools.start, rows.pools.stop))
    positions = tuple(
        position_risk(frame, row) for row in range(rows.positions.start, rows.positions.stop)
    )
    return AccountRisk(block.name, block.exchange, block.model, block.exact, pools, positions)
