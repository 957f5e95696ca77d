"""Bybit v5's published margin and liquidation rules (unified trading account, linear
USDT perpetuals), as the simulated Bybit applies them.

This is the exchange's side of every end-to-end test on Bybit, so it is written from
Bybit's own documents and shares nothing with the monitor's margin engine
(`monitor.engine`, `monitor.domain`): when the two agree, two implementations agree with
Bybit, not one with itself.

Sources (Bybit help centre and v5 API docs):
- "Maintenance Margin" / risk limit: MM = position value x MMR - mmDeduction, the tier
  being the first whose riskLimitValue holds the position value.
- "The New Margin Calculation: Adjustments and Implications" (since 2 Sep 2025): the
  position value, and with it the tier, at the MARK for cross IM and MM and for isolated
  MM; isolated IM stays at entry.
- "Order Cost" / unified account IM and MM: both include the fee to close, a taker fee
  at the bankruptcy price, priced at entry: size x entry x (1 - side / leverage) x taker
  (side +1 long, -1 short). `positionIM` and `positionMM` on the wire include it.
- "Liquidation Price (USDT Contract)", isolated: liquidation where positionBalance +
  uPnL = MM. positionBalance is the margin held in the position (IM, the reserved fee
  to close, and margin added).
- Unified account, cross margin: account MM rate = totalMaintenanceMargin /
  totalMarginBalance, liquidation at 100 %; Bybit truncates the rates to 4 decimals on
  the wire.
In this simulator a unified account holds cross and isolated positions at once (the
test server's documented choice): the cross pool is the USDT wallet without the isolated
positions' balances, plus the cross positions' uPnL.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from monitor.simulator.binance_usdm.state import SimAccount, SimExchange, SimPosition
from monitor.simulator.bybit_v5.markets import RiskTier, risk_tiers


def tier_for(tiers: tuple[RiskTier, ...], value: float) -> RiskTier:
    """The first tier whose riskLimitValue holds `value`; the last one takes the rest."""
    return next((tier for tier in tiers if value <= tier.risk_limit_value), tiers[-1])


def side_of(position: SimPosition) -> float:
    return 1.0 if position.amount > 0 else -1.0


def fee_to_close(position: SimPosition, size: float, taker_rate: float) -> float:
    """Taker fee at the bankruptcy price implied by the leverage, priced at entry."""
    return size * position.entry_price * (1.0 - side_of(position) / position.leverage) * taker_rate


@dataclass(frozen=True, slots=True)
class PositionFigures:
    """What `/v5/position/list` reports for one position."""

    size: float
    mark: float
    value: float
    """Position value at the mark (the tier's key)."""
    unrealized_pnl: float
    tier: RiskTier
    fee_to_close: float
    maintenance_margin: float
    """positionMM: value x MMR - mmDeduction + fee to close."""
    initial_margin: float
    """positionIM: value / leverage + fee (cross); entry value / leverage + fee (isolated)."""
    balance: float
    """positionBalance of an isolated position (its wallet); 0 for cross."""
    liquidation_price: float | None
    """Isolated: where balance + uPnL = MM; None for cross (Bybit sends "")."""


def position_figures(
    exchange: SimExchange, account: SimAccount, position: SimPosition
) -> PositionFigures:
    market = exchange.market(position.symbol)
    mark = exchange.mark(position.symbol)
    size = abs(position.amount) * market.contract_size
    value = size * mark
    tiers = risk_tiers(position.symbol)
    tier = tier_for(tiers, value)
    fee = fee_to_close(position, size, account.taker_fee_rate)
    mm = value * tier.maintenance_rate - tier.mm_deduction + fee
    priced = size * position.entry_price if position.is_isolated else value
    im = priced / position.leverage + fee
    upnl = side_of(position) * size * (mark - position.entry_price)
    liquidation = None
    if position.is_isolated:
        liquidation = isolated_liquidation_price(
            tiers, position, size=size, balance=position.isolated_wallet, fee=fee
        )
    return PositionFigures(
        size,
        mark,
        value,
        upnl,
        tier,
        fee,
        mm,
        im,
        position.isolated_wallet if position.is_isolated else 0.0,
        liquidation,
    )


def isolated_liquidation_price(
    tiers: tuple[RiskTier, ...], position: SimPosition, *, size: float, balance: float, fee: float
) -> float | None:
    """The price P where balance + side x size x (P - entry) = size x P x MMR - deduction
    + fee, with the tier of the value at P (each tier tried, kept if P lies in it):

        P = (side x size x entry - balance - deduction + fee) / (size x (side - MMR))

    None when no positive price liquidates the position."""
    side = side_of(position)
    floor = 0.0
    for tier in tiers:
        denominator = size * (side - tier.maintenance_rate)
        if denominator != 0:
            price = (
                side * size * position.entry_price - balance - tier.mm_deduction + fee
            ) / denominator
            last = tier is tiers[-1]
            if (
                price > 0
                and floor < size * price
                and (last or size * price <= tier.risk_limit_value)
            ):
                return price
        floor = tier.risk_limit_value
    return None


@dataclass(frozen=True, slots=True)
class AccountFigures:
    """The unified account's totals (`/v5/account/wallet-balance`), USDT at 1:1."""

    wallet_balance: float
    """walletBalance of USDT: the cross wallet plus every isolated positionBalance."""
    isolated_balance: float
    unrealized_pnl: float
    """Every position's uPnL (totalPerpUPL)."""
    cross_unrealized_pnl: float
    cross_initial_margin: float
    cross_maintenance_margin: float
    isolated_maintenance_margin: float

    @property
    def equity(self) -> float:
        return self.wallet_balance + self.unrealized_pnl

    @property
    def margin_balance(self) -> float:
        """totalMarginBalance: the cross pool (the isolated balances are not in it)."""
        return self.wallet_balance - self.isolated_balance + self.cross_unrealized_pnl

    @property
    def available_balance(self) -> float:
        return self.margin_balance - self.cross_initial_margin

    @property
    def mm_rate(self) -> float:
        """accountMMRate, untruncated: 1.0 liquidates the cross pool."""
        return _rate(self.cross_maintenance_margin, self.margin_balance)

    @property
    def im_rate(self) -> float:
        return _rate(self.cross_initial_margin, self.margin_balance)

    @property
    def cross_liquidating(self) -> bool:
        """Bybit's condition: the account MM rate reaches 100 %."""
        return (
            self.cross_maintenance_margin > 0
            and self.margin_balance <= self.cross_maintenance_margin
        )


def _rate(margin: float, balance: float) -> float:
    if balance > 0:
        return margin / balance
    return math.inf if margin > 0 else 0.0


def account_figures(
    exchange: SimExchange, account: SimAccount, asset: str = "USDT"
) -> AccountFigures:
    figures = [(p, position_figures(exchange, account, p)) for p in account.open_positions()]
    cross = [f for p, f in figures if not p.is_isolated]
    isolated = [f for p, f in figures if p.is_isolated]
    isolated_balance = sum(f.balance for f in isolated)
    return AccountFigures(
        wallet_balance=account.cross_wallet.get(asset, 0.0) + isolated_balance,
        isolated_balance=isolated_balance,
        unrealized_pnl=sum(f.unrealized_pnl for _, f in figures),
        cross_unrealized_pnl=sum(f.unrealized_pnl for f in cross),
        cross_initial_margin=sum(f.initial_margin for f in cross),
        cross_maintenance_margin=sum(f.maintenance_margin for f in cross),
        isolated_maintenance_margin=sum(f.maintenance_margin for f in isolated),
    )


def isolated_liquidating(figures: PositionFigures) -> bool:
    """positionBalance + uPnL <= positionMM."""
    return figures.balance + figures.unrealized_pnl <= figures.maintenance_margin


def truncate_rate(rate: float) -> float:
    """Bybit's account rates on the wire: truncated (never rounded up) to 4 decimals."""
    return math.floor(rate * 10_000) / 10_000 if math.isfinite(rate) else rate
