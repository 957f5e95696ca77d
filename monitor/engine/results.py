"""What the engine computes, as immutable records.

NamedTuples rather than dataclasses: thousands are made on every mark-price tick and a
tuple is the cheapest immutable, typed record Python has.
"""

from __future__ import annotations

from typing import NamedTuple

from monitor.domain import Position


class PositionRisk(NamedTuple):
    """One position at one set of marks.

    For a cross position, `margin_ratio` is its pool's: the ratio that liquidates it.
    Any figure the engine could not compute is None and `note` says why.
    """

    position: Position
    mark_price: float
    notional: float
    unrealized_pnl: float
    maintenance_margin: float | None
    margin_ratio: float | None
    liquidation_price: float | None
    liquidation_distance: float | None
    note: str | None = None


class PoolRisk(NamedTuple):
    """One cross pool: total equity against total maintenance margin.

    `liquidation_move` is the signed uniform fractional price move of every position in
    the pool that brings the ratio to 1; `liquidation_distance` is its magnitude.
    """

    asset: str
    wallet_balance: float
    unrealized_pnl: float
    margin_balance: float
    maintenance_margin: float | None
    margin_ratio: float | None
    liquidation_move: float | None
    liquidation_distance: float | None
    exchange_margin_ratio: float | None
    note: str | None = None


class AccountRisk(NamedTuple):
    name: str
    exchange: str
    model: str
    exact: bool
    pools: tuple[PoolRisk, ...]
    positions: tuple[PositionRisk, ...]


def margin_ratio(maintenance_margin: float, margin_balance: float) -> float:
    """MM / margin balance; infinite when there is no equity left to lose."""
    if margin_balance <= 0.0:
        return 0.0 if maintenance_margin <= 0.0 and margin_balance == 0.0 else float("inf")
    return maintenance_margin / margin_balance
