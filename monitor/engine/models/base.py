"""The margin model every exchange starts from.

The shape of the computation is the same everywhere (equity against a tiered maintenance
margin); exchanges differ in small terms: what the tier table is keyed by, fee add-ons,
whether MM is priced at the mark or at entry. Each of those is one overridable method.
"""

from __future__ import annotations

from typing import ClassVar

from monitor.domain import AccountSnapshot, Position, TierTable
from monitor.engine.legs import Leg


class MarginModel:
    """Base model: MM = value x tier rate - tier deduction, tiers from the snapshot."""

    name: ClassVar[str] = "base"
    exact: ClassVar[bool] = False
    coin_margin_step: ClassVar[float | None] = None
    """The smallest amount of coin an exchange moves into an inverse position's margin,
    where it is coarser than the eight decimals sizing uses by default."""

    def tiers(self, position: Position, snapshot: AccountSnapshot) -> TierTable | None:
        """The tier table that prices this position's MM; None when nobody published one."""
        return snapshot.tiers.get(position.symbol)

    def rate_extra(self, position: Position, snapshot: AccountSnapshot) -> float:
        """A rate on the MM's base that the exchange keeps apart from its MM but counts in
        its liquidation condition (OKX's liquidation fees); reported apart as
        `liquidation_fees`. A fee the exchange folds into its MM (Bybit) belongs in
        `mm_constant` instead."""
        return 0.0

    def mm_constant(self, position: Position, tiers: TierTable, snapshot: AccountSnapshot) -> float:
        """A constant added to MM (Bybit adds the fee to close at the bankruptcy price)."""
        return 0.0

    def mm_fixed(
        self, position: Position, tiers: TierTable | None, snapshot: AccountSnapshot
    ) -> float | None:
        """MM that does not move with the mark, for exchanges that price it at entry."""
        return None

    def pool_asset(self, position: Position) -> str:
        """The cross pool a cross position draws on: its settlement asset by default."""
        return position.settle

    def compile(self, position: Position, snapshot: AccountSnapshot) -> Leg:
        tiers = self.tiers(position, snapshot)
        fixed = self.mm_fixed(position, tiers, snapshot)
        if tiers is None:
            return Leg(position, None, mm_fixed=fixed)
        return Leg(
            position,
            tiers,
            rate_extra=self.rate_extra(position, snapshot),
            mm_constant=self.mm_constant(position, tiers, snapshot),
            mm_fixed=fixed,
        )


class GenericModel(MarginModel):
    """Any ccxt exchange without an exact model: the unified tiers at face value.

    ccxt's unified tiers carry no deduction, so MM here is value x rate of the tier:
    never below what a deduction-based exchange charges, so the ratio errs on the
    side of danger. Output is marked `model: generic` so nobody mistakes it for exact.
    """

    name = "generic"
