"""A frame's rows as the scalar engine's records: a whole account, or some rows.

For the readers that want records (status, alerts, the equivalence tests). Figures are
read one gather per column for all the rows asked (`known`), never a numpy scalar read per
figure and row; the tick path reads its moved rows' event figures the same way, without
records. NaN becomes None (unknown), except a pool's wallet and balance, which the scalar
book also reports as NaN when the exchange gave no wallet.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from monitor.engine.results import AccountRisk, PoolRisk, PositionRisk
from monitor.engine.vector.frame import Frame


def known(column: np.ndarray, index: np.ndarray) -> list[float | None]:
    """The figures of `column` at `index`, NaN as None. Most columns hold no NaN among a
    frame's moved rows (a list at once); where some do, the gaps are filled in the
    object array rather than tested row by row in Python."""
    values = column.take(index)
    gaps = np.isnan(values)
    if not gaps.any():
        return values.tolist()
    figures = values.astype(object)
    figures[gaps] = None
    return figures.tolist()


def pool_risks(frame: Frame, rows: Sequence[int]) -> list[PoolRisk]:
    """The records of these pool rows, each made from its column values in field order
    (`_make`: no per-field argument binding, a third of a record's cost)."""
    index = np.asarray(rows, np.intp)
    pool_rows = frame.layout.pool_rows
    return list(
        map(
            PoolRisk._make,
            zip(
                [pool_rows[row][1] for row in rows],
                frame.pool_wallet.take(index).tolist(),
                frame.pool_unrealized_pnl.take(index).tolist(),
                frame.pool_margin_balance.take(index).tolist(),
                known(frame.pool_maintenance_margin, index),
                known(frame.pool_margin_ratio, index),
                known(frame.pool_liquidation_move, index),
                known(frame.pool_liquidation_distance, index),
                known(frame.pool_exchange_ratio, index),
                [frame.pool_note_text(row) for row in rows],
                known(frame.pool_liquidation_fees, index),
                strict=True,
            ),
        )
    )


def position_risks(frame: Frame, rows: Sequence[int]) -> list[PositionRisk]:
    """The records of these position rows, made as `pool_risks` makes its own."""
    index = np.asarray(rows, np.intp)
    position_rows = frame.layout.position_rows
    notes = frame.note.take(index).tolist()
    return list(
        map(
            PositionRisk._make,
            zip(
                [position_rows[row][1] for row in rows],
                frame.mark.take(index).tolist(),
                frame.notional.take(index).tolist(),
                frame.unrealized_pnl.take(index).tolist(),
                known(frame.maintenance_margin, index),
                known(frame.margin_ratio, index),
                known(frame.liquidation_price, index),
                known(frame.liquidation_distance, index),
                [
                    frame.position_note(row) if note else None
                    for row, note in zip(rows, notes, strict=True)
                ],
                known(frame.liquidation_fees, index),
                strict=True,
            ),
        )
    )


def account_risk(frame: Frame, name: str) -> AccountRisk:
    layout = frame.layout
    rows = layout.accounts[name]
    block = next(b for b in layout.blocks if b.name == name)
    pools = tuple(pool_risks(frame, range(rows.pools.start, rows.pools.stop)))
    positions = tuple(position_risks(frame, range(rows.positions.start, rows.positions.stop)))
    return AccountRisk(block.name, block.exchange, block.model, block.exact, pools, positions)
