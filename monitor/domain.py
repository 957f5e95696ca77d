"""Immutable, typed snapshots of an exchange account: the only input the margin engine sees.

Every exchange adapter reduces what ccxt returns to these objects, so the engine never
touches raw JSON and never does I/O. Numbers are floats in the settlement asset of the
position's pool (USDT for linear USD-M, the coin for inverse COIN-M).
"""

from __future__ import annotations

import itertools
from bisect import bisect_right
from dataclasses import dataclass, field
from enum import StrEnum


class Side(StrEnum):
    LONG = "long"
    SHORT = "short"

    @property
    def sign(self) -> int:
        return 1 if self is Side.LONG else -1


class MarginMode(StrEnum):
    CROSS = "cross"
    ISOLATED = "isolated"


class TierBasis(StrEnum):
    """What an exchange's tier table is keyed by.

    Binance USD-M, Bybit and Hyperliquid key tiers by notional value; Binance COIN-M
    and OKX key them by position size in contracts.
    """

    NOTIONAL = "notional"
    CONTRACTS = "contracts"


@dataclass(frozen=True, slots=True)
class Tier:
    """One bracket: applies while floor <= key < cap.

    `maintenance_amount` is Binance's `cum` / Bybit's `mmDeduction`: the amount
    subtracted so that MM stays continuous across brackets.
    """

    floor: float
    cap: float
    maintenance_rate: float
    maintenance_amount: float = 0.0
    max_leverage: float | None = None


@dataclass(frozen=True, slots=True)
class TierTable:
    """Brackets sorted by floor; the last one extends to infinity whatever its cap says."""

    tiers: tuple[Tier, ...]
    basis: TierBasis = TierBasis.NOTIONAL
    _floors: tuple[float, ...] = field(init=False, repr=False, compare=False)
    regular: bool = field(init=False, compare=False)
    """Rates never fall and deductions keep MM continuous at every floor (Binance's
    `cum` rule). The liquidation solver relies on it to rule out a root early."""

    def __post_init__(self) -> None:
        if not self.tiers:
            raise ValueError("a tier table needs at least one tier")
        ordered = tuple(sorted(self.tiers, key=lambda t: t.floor))
        object.__setattr__(self, "tiers", ordered)
        object.__setattr__(self, "_floors", tuple(t.floor for t in ordered))
        object.__setattr__(self, "regular", _is_regular(ordered))

    def index_for(self, key: float) -> int:
        """Index of the bracket holding `key` (a notional or a contract count, >= 0)."""
        index = bisect_right(self._floors, key) - 1
        return index if index > 0 else 0

    def tier_for(self, key: float) -> Tier:
        return self.tiers[self.index_for(key)]

    @classmethod
    def flat(cls, maintenance_rate: float, basis: TierBasis = TierBasis.NOTIONAL) -> TierTable:
        """A single bracket: for exchanges that publish one maintenance rate per market."""
        return cls((Tier(0.0, float("inf"), maintenance_rate),), basis)


def _is_regular(tiers: tuple[Tier, ...]) -> bool:
    for low, high in itertools.pairwise(tiers):
        if high.maintenance_rate < low.maintenance_rate:
            return False
        jump = high.floor * (high.maintenance_rate - low.maintenance_rate)
        expected = low.maintenance_amount + jump
        if abs(high.maintenance_amount - expected) > 1e-6 * max(1.0, abs(expected)):
            return False
    return True


@dataclass(frozen=True, slots=True)
class Position:
    """One position leg as the exchange reports it.

    `contracts` is always positive; `side` says the direction. `contract_size` is the
    base amount per contract (linear) or the USD face value per contract (inverse).
    `isolated_margin` is the isolated wallet *excluding* unrealised PnL (Binance's
    `isolatedWallet`); `initial_margin` is the position's IM where an exchange model
    needs it (Bybit's isolated formula) or reports it (Binance v3 `initialMargin`, which
    its available balance, and so the margin an isolated position may take, subtracts).
    `exchange_margin_ratio` is already converted to our convention (MM / margin
    balance, 1.0 = liquidation).
    Exchange-reported figures are kept beside ours, never used in their place; None
    means the exchange did not say (unknown, not zero).
    """

    symbol: str
    side: Side
    margin_mode: MarginMode
    contracts: float
    contract_size: float
    entry_price: float
    mark_price: float
    settle: str
    inverse: bool = False
    leverage: float | None = None
    isolated_margin: float | None = None
    initial_margin: float | None = None
    position_side: str = "BOTH"
    exchange_liquidation_price: float | None = None
    exchange_maintenance_margin: float | None = None
    exchange_unrealized_pnl: float | None = None
    exchange_margin_ratio: float | None = None

    @property
    def size(self) -> float:
        """Base units (linear) or USD face value (inverse)."""
        return self.contracts * self.contract_size


@dataclass(frozen=True, slots=True)
class CrossPool:
    """Collateral shared by every cross position settled in `asset`.

    `wallet_balance` excludes unrealised PnL and excludes isolated margins: in a hybrid
    account the isolated wallets are not part of the cross pool.
    """

    asset: str
    wallet_balance: float
    exchange_margin_ratio: float | None = None
    exchange_maintenance_margin: float | None = None


@dataclass(frozen=True, slots=True)
class MarketInfo:
    """What sizing needs to know about a market: lot step and minimum notional."""

    symbol: str
    amount_step: float | None = None
    min_amount: float | None = None
    min_notional: float | None = None


class AddLimit(StrEnum):
    """What a venue lets an isolated add take from the cross pool it draws on: the
    venue's own rule, which the planner sizes by (monitor/actions/isolated.py)."""

    WALLET_AND_AVAILABLE = "wallet_and_available"
    """Binance USD-M: min(cross wallet - the cross positions' MM, available balance =
    margin balance - their IM); its -4050 beyond it."""
    AVAILABLE = "available"
    """Bybit unified account: the available balance (`totalAvailableBalance`), margin
    balance - the cross positions' IM (`positionIM`, fee to close included) - open
    orders' margin; its 110014 beyond it. The cross MM does not enter."""


@dataclass(frozen=True, slots=True)
class AccountSnapshot:
    """Everything read from one account at one time."""

    name: str
    exchange: str
    pools: tuple[CrossPool, ...]
    positions: tuple[Position, ...]
    tiers: dict[str, TierTable]
    markets: dict[str, MarketInfo] = field(default_factory=dict)
    taker_fee_rate: float | None = None
    fetched_at: float = 0.0
    unified_pool: str | None = None
    """When set, every cross position draws on this one pool whatever its settlement
    asset (Bybit unified account, OKX multi-currency cross, Binance Multi-Assets)."""
    margin_available: dict[str, float] = field(default_factory=dict)
    """Per margin coin, what the venue lets move into an isolated position now, where it
    checks the coin itself rather than the pool (OKX: the coin's availEq, availBal):
    an isolated add sized on the pool alone is refused beyond it. A coin not listed is
    bounded by its pool's estimate only."""
    add_limit: AddLimit = AddLimit.WALLET_AND_AVAILABLE
    """The venue's rule for what an isolated add may take from the pool."""

    def pool(self, asset: str) -> CrossPool | None:
        return next((p for p in self.pools if p.asset == asset), None)
