"""Per-position and per-asset figures the way Binance reports them in account endpoints.

Binance's conventions reproduced here:
- an asset's `walletBalance` = cross wallet + the isolated wallets of that asset;
  `crossWalletBalance` and `crossUnPnl` cover cross positions only;
- `maintMargin` / `initialMargin` of an asset cover all its positions (cross and isolated);
- `availableBalance` = cross wallet + cross uPnL - cross initial margin (can go negative).
Simplification: in Multi-Assets mode every asset is valued 1:1 in USD with no haircut,
which is exact only for USD stablecoins.
"""

from __future__ import annotations

from dataclasses import dataclass

from monitor.simulator.binance_usdm.state import (
    SimAccount,
    SimExchange,
    SimPosition,
    initial_margin,
    maintenance_margin,
    position_notional,
    unrealized_pnl,
)


@dataclass(frozen=True, slots=True)
class PositionFigures:
    notional: float
    unrealized_pnl: float
    maint_margin: float
    initial_margin: float
    maint_rate: float
    cum: float
    mark: float
    margin_asset: str

    @property
    def abs_notional(self) -> float:
        return abs(self.notional)


def position_figures(exchange: SimExchange, position: SimPosition) -> PositionFigures:
    market = exchange.market(position.symbol)
    mark = exchange.mark(position.symbol)
    notional = position_notional(market, position, mark)
    bracket = market.bracket_for(notional)
    return PositionFigures(
        notional=notional,
        unrealized_pnl=unrealized_pnl(market, position, mark),
        maint_margin=maintenance_margin(market, position, mark),
        initial_margin=initial_margin(market, position, mark),
        maint_rate=bracket.maint_rate,
        cum=bracket.cum,
        mark=mark,
        margin_asset=market.margin_asset,
    )


def isolated_margin(exchange: SimExchange, position: SimPosition) -> float:
    """Binance's `isolatedMargin`: isolated wallet + uPnL for isolated legs, 0 for cross."""
    if not position.is_isolated:
        return 0.0
    return position.isolated_wallet + position_figures(exchange, position).unrealized_pnl


@dataclass(frozen=True, slots=True)
class AssetSummary:
    asset: str
    cross_wallet: float
    isolated_wallets: float
    cross_unrealized_pnl: float
    unrealized_pnl: float
    maint_margin: float
    initial_margin: float
    cross_initial_margin: float

    @property
    def wallet_balance(self) -> float:
        return self.cross_wallet + self.isolated_wallets

    @property
    def margin_balance(self) -> float:
        return self.wallet_balance + self.unrealized_pnl

    @property
    def available_balance(self) -> float:
        return self.cross_wallet + self.cross_unrealized_pnl - self.cross_initial_margin

    @property
    def max_withdraw_amount(self) -> float:
        return max(0.0, min(self.available_balance, self.cross_wallet))


def account_assets(exchange: SimExchange, account: SimAccount) -> list[str]:
    """Assets with a wallet or a position, wallet order first."""
    assets = list(account.cross_wallet)
    for position in account.open_positions():
        asset = exchange.market(position.symbol).margin_asset
        if asset not in assets:
            assets.append(asset)
    return assets


def asset_summary(exchange: SimExchange, account: SimAccount, asset: str) -> AssetSummary:
    isolated_wallets = cross_upnl = upnl = maint = initial = cross_initial = 0.0
    for position in account.open_positions():
        figures = position_figures(exchange, position)
        if figures.margin_asset != asset:
            continue
        upnl += figures.unrealized_pnl
        maint += figures.maint_margin
        initial += figures.initial_margin
        if position.is_isolated:
            isolated_wallets += position.isolated_wallet
        else:
            cross_upnl += figures.unrealized_pnl
            cross_initial += figures.initial_margin
    return AssetSummary(
        asset=asset,
        cross_wallet=account.cross_wallet.get(asset, 0.0),
        isolated_wallets=isolated_wallets,
        cross_unrealized_pnl=cross_upnl,
        unrealized_pnl=upnl,
        maint_margin=maint,
        initial_margin=initial,
        cross_initial_margin=cross_initial,
    )


@dataclass(frozen=True, slots=True)
class AccountTotals:
    """The `total*` fields of GET /fapi/v3/account.

    Single-asset mode: Binance reports the USDT pool only. Multi-Assets mode: the sum of
    every asset (valued 1:1, see the module note).
    """

    wallet_balance: float
    unrealized_pnl: float
    maint_margin: float
    initial_margin: float
    cross_wallet_balance: float
    cross_unrealized_pnl: float
    available_balance: float
    max_withdraw_amount: float

    @property
    def margin_balance(self) -> float:
        return self.wallet_balance + self.unrealized_pnl


def account_totals(exchange: SimExchange, account: SimAccount) -> AccountTotals:
    assets = account_assets(exchange, account) if account.multi_assets_margin else ["USDT"]
    rows = [asset_summary(exchange, account, asset) for asset in assets]
    return AccountTotals(
        wallet_balance=sum(r.wallet_balance for r in rows),
        unrealized_pnl=sum(r.unrealized_pnl for r in rows),
        maint_margin=sum(r.maint_margin for r in rows),
        initial_margin=sum(r.initial_margin for r in rows),
        cross_wallet_balance=sum(r.cross_wallet for r in rows),
        cross_unrealized_pnl=sum(r.cross_unrealized_pnl for r in rows),
        available_balance=sum(r.available_balance for r in rows),
        max_withdraw_amount=sum(r.max_withdraw_amount for r in rows),
    )


def available_for(exchange: SimExchange, account: SimAccount, asset: str) -> float:
    """Cross balance free for new margin: the asset's own, or the whole pool in Multi-Assets."""
    if account.multi_assets_margin:
        return account_totals(exchange, account).available_balance
    return asset_summary(exchange, account, asset).available_balance


def max_addable_isolated(exchange: SimExchange, account: SimAccount, asset: str) -> float:
    """Most that POST /fapi/v1/positionMargin type 1 may add to an isolated position.

    Binance FAQ 360038447311 ("How to Adjust Margin Balance in Isolated Margin Mode"):
    max(0, min(crossWalletBalance - sum of isolated open-order IM - sum of cross positions'
    MM, isolated available for order)). The simulator has no resting orders, so the
    open-order term is 0 and "available for order" is the available balance. The first term
    bites when cross positions are in profit: their uPnL raises the available balance but
    cannot be moved into an isolated wallet. In Multi-Assets mode both terms are the pool's.
    """
    if account.multi_assets_margin:
        totals = account_totals(exchange, account)
        cross_wallet, available = totals.cross_wallet_balance, totals.available_balance
        assets = account_assets(exchange, account)
    else:
        summary = asset_summary(exchange, account, asset)
        cross_wallet, available = summary.cross_wallet, summary.available_balance
        assets = [asset]
    cross_mm = sum(
        position_figures(exchange, p).maint_margin
        for p in account.open_positions()
        if not p.is_isolated and exchange.market(p.symbol).margin_asset in assets
    )
    return max(0.0, min(cross_wallet - cross_mm, available))


def reserve_balance(account: SimAccount, asset: str) -> float:
    """The reserve outside futures: free `asset` in the spot and funding wallets together.

    It earns no margin until transferred in, but it is the trader's money all the same,
    so an account's equity (the drill's yardstick) counts it next to the futures wallet.
    """
    return account.spot.get(asset, 0.0) + account.funding.get(asset, 0.0)
