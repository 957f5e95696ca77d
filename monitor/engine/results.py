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
    `maintenance_margin` is the exchange's own quantity as the exchange defines it;
    `liquidation_fees` is what the exchange keeps apart from it but still counts in its
    liquidation condition (OKX: the fees to close), 0.0 where nothing is kept apart.
    Our ratio counts both: (MM + fees) / margin balance.
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
    liquidation_fees: float | None = 0.0

    @property
    def requirement(self) -> float | None:
        """What the equity must stay above: MM plus the fees kept apart."""
        return _requirement(self.maintenance_margin, self.liquidation_fees)


class PoolRisk(NamedTuple):
    """One cross pool: total equity against total maintenance margin.

    `liquidation_move` is the signed uniform fractional price move of every position in
    the pool that brings the ratio to 1; `liquidation_distance` is its magnitude.
    `maintenance_margin` and `liquidation_fees` are its members' summed (see PositionRisk).
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
    liquidation_fees: float | None = 0.0

    @property
    def requirement(self) -> float | None:
        """What the pool's equity must stay above: MM plus the fees kept apart."""
        return _requirement(self.maintenance_margin, self.liquidation_fees)


class AccountRisk(NamedTuple):
    name: str
    exchange: str
    model: str
    exact: bool
    pools: tuple[PoolRisk, ...]
    positions: tuple[PositionRisk, ...]


def _requirement(maintenance_margin: float | None, fees: float | None) -> float | None:
    if maintenance_margin is None or fees is None:
        return None
    return maintenance_margin + fees


def margin_ratio(maintenance_margin: float, margin_balance: float) -> float:
    """MM (with any fees the exchange keeps apart) / margin balance; infinite when there
    is no equity left to lose."""
    if margin_balance <= 0.0:
        return 0.0 if maintenance_margin <= 0.0 and margin_balance == 0.0 else float("inf")
    return maintenance_margin / margin_balance
