"""The simulated ledger rendered as Bybit v5 replies: positions, the unified wallet,
orders, transfers, instruments, tickers, risk limits and the API key's permissions.

Every exchange-computed figure (positionIM, positionMM, liqPrice, accountMMRate, ...)
comes from `bybit_v5/rules.py`. ccxt reads a position's margin mode from nothing (its
`marginMode` is None for bybit), so `tradeMode` (0 cross, 1 isolated) is sent per
position, as the Bybit test server does for a hybrid account.
"""

from __future__ import annotations

from typing import Any

from monitor.simulator.binance_usdm.events import LIQUIDATION
from monitor.simulator.binance_usdm.render import next_funding_time
from monitor.simulator.binance_usdm.state import (
    SimAccount,
    SimExchange,
    SimMarket,
    SimOrder,
    SimPosition,
    SimTransfer,
)
from monitor.simulator.bybit_v5 import markets
from monitor.simulator.bybit_v5.rules import (
    AccountFigures,
    account_figures,
    position_figures,
    truncate_rate,
)
from monitor.simulator.bybit_v5.wire import (
    api_key_row,
    instrument_row,
    order_row,
    order_uuid,
    position_row,
    risk_limit_row,
    text,
    ticker_row,
    transfer_row,
)

POSITION_INDEX = {"BOTH": 0, "LONG": 1, "SHORT": 2}
"""Bybit's positionIdx: 0 one-way, 1 the long leg and 2 the short leg of hedge mode."""
SETTLE_COIN = "USDT"


def instrument(market: SimMarket) -> dict[str, Any]:
    tiers = markets.risk_tiers(market.symbol)
    return instrument_row(
        symbol=market.symbol,
        base=market.base,
        quote=market.quote,
        tick_size=text(market.price_tick, market.price_precision),
        qty_step=text(market.qty_step, market.quantity_precision),
        min_qty=text(market.min_qty, market.quantity_precision),
        max_qty=text(market.max_qty, market.quantity_precision),
        max_leverage=f"{tiers[0].max_leverage:.2f}",
        price_scale=str(market.price_precision),
        min_notional=text(market.min_notional),
    )


def ticker(exchange: SimExchange, symbol: str) -> dict[str, Any]:
    places = exchange.market(symbol).price_precision
    mark = text(exchange.mark(symbol), places)
    return ticker_row(
        symbol=symbol,
        mark=mark,
        index=text(exchange.index(symbol), places),
        last=mark,
        funding_rate=text(exchange.funding_rate(symbol)),
        next_funding_time=str(next_funding_time(exchange)),
    )


def risk_limits(symbol: str) -> list[dict[str, Any]]:
    return [
        risk_limit_row(
            tier_id=tier.id,
            symbol=symbol,
            risk_limit_value=text(tier.risk_limit_value),
            maintenance_margin=text(tier.maintenance_rate),
            initial_margin=text(tier.initial_rate, 6),
            max_leverage=f"{tier.max_leverage:.2f}",
            mm_deduction=text(tier.mm_deduction),
        )
        for tier in markets.risk_tiers(symbol)
    ]


def position(exchange: SimExchange, account: SimAccount, leg: SimPosition) -> dict[str, Any]:
    """One row of `/v5/position/list`. positionValue is size x entry (the figure Bybit
    keeps on the entry price); IM and MM follow the rules module and equal their ByMp
    twins since the September 2025 change."""
    market = exchange.market(leg.symbol)
    places = market.price_precision
    figures = position_figures(exchange, account, leg)
    mm, im = text(figures.maintenance_margin), text(figures.initial_margin)
    liquidation = figures.liquidation_price
    return position_row(
        position_idx=POSITION_INDEX[leg.position_side],
        risk_id=figures.tier.id,
        risk_limit_value=text(figures.tier.risk_limit_value),
        symbol=leg.symbol,
        side="Buy" if leg.amount > 0 else "Sell",
        size=text(figures.size, market.quantity_precision),
        avg_price=text(leg.entry_price),
        position_value=text(figures.size * leg.entry_price),
        trade_mode=1 if leg.is_isolated else 0,
        leverage=text(leg.leverage),
        mark_price=text(figures.mark, places),
        liq_price="" if liquidation is None else text(liquidation, places),
        position_im=im,
        position_mm=mm,
        position_balance=text(figures.balance) if leg.is_isolated else "0",
        unrealised_pnl=text(figures.unrealized_pnl),
        cur_realised_pnl=text(leg.realized_pnl),
        cum_realised_pnl=text(leg.realized_pnl),
        created_time=str(leg.update_time_ms),
        updated_time=str(leg.update_time_ms),
        seq=leg.update_time_ms,
        position_im_by_mp=im,
        position_mm_by_mp=mm,
    )


def empty_position(market: SimMarket, leverage: int) -> dict[str, Any]:
    """What Bybit lists for a symbol asked for explicitly without an open position."""
    return position_row(
        symbol=market.symbol, side="", size="0", avg_price="0", position_value="0",
        leverage=str(leverage), trade_mode=0, mark_price="0", liq_price="",
        position_im="0", position_mm="0", position_balance="0", unrealised_pnl="0",
        cur_realised_pnl="0", cum_realised_pnl="0",
    )  # fmt: skip


def wallet(exchange: SimExchange, account: SimAccount) -> dict[str, Any]:
    """The unified account (`/v5/account/wallet-balance`, accountType UNIFIED): USDT
    only, valued 1:1, so the account totals are the coin's figures."""
    totals = account_figures(exchange, account, SETTLE_COIN)
    return {
        "totalEquity": text(totals.equity),
        "accountIMRate": _rate(totals.im_rate),
        "totalMarginBalance": text(totals.margin_balance),
        "totalInitialMargin": text(totals.cross_initial_margin),
        "accountType": "UNIFIED",
        "totalAvailableBalance": text(totals.available_balance),
        "accountMMRate": _rate(totals.mm_rate),
        "totalPerpUPL": text(totals.unrealized_pnl),
        "totalWalletBalance": text(totals.wallet_balance),
        "accountLTV": "0",
        "totalMaintenanceMargin": text(totals.cross_maintenance_margin),
        "coin": [_coin(account, totals)],
    }


def _rate(rate: float) -> str:
    return text(truncate_rate(rate), 4)


def _coin(account: SimAccount, totals: AccountFigures) -> dict[str, Any]:
    realized = sum(o.realized_pnl - o.commission for o in account.orders)
    return {
        "availableToBorrow": "",
        "bonus": "0",
        "accruedInterest": "0",
        "availableToWithdraw": "",
        "totalOrderIM": "0",
        "equity": text(totals.equity),
        "totalPositionMM": text(
            totals.cross_maintenance_margin + totals.isolated_maintenance_margin
        ),
        "usdValue": text(totals.equity),
        "spotHedgingQty": "0",
        "unrealisedPnl": text(totals.unrealized_pnl),
        "collateralSwitch": True,
        "borrowAmount": "0",
        "totalPositionIM": text(totals.cross_initial_margin + totals.isolated_balance),
        "walletBalance": text(totals.wallet_balance),
        "cumRealisedPnl": text(realized),
        "locked": "0",
        "marginCollateral": True,
        "coin": SETTLE_COIN,
    }


def order(order: SimOrder) -> dict[str, Any]:
    """One row of `/v5/order/realtime` and `/v5/order/history`: orders never rest here,
    a market order fills in full at the mark."""
    liquidation = order.type == LIQUIDATION
    return order_row(
        order_id=order_uuid(order.order_id),
        order_link_id="" if liquidation else order.client_order_id,
        symbol=order.symbol,
        side="Buy" if order.side == "BUY" else "Sell",
        order_type="Market",
        qty=text(order.orig_qty),
        price="0",
        time_in_force="IOC",
        reduce_only=order.reduce_only,
        position_idx=POSITION_INDEX[order.position_side],
        status="Filled",
        avg_price=text(order.avg_price),
        cum_exec_qty=text(order.executed_qty),
        cum_exec_value=text(order.cum_quote),
        cum_exec_fee=text(order.commission),
        created_time=str(order.time_ms),
        create_type="CreateByLiq" if liquidation else "CreateByUser",
    )


def transfer(record: SimTransfer) -> dict[str, Any]:
    """One row of `/v5/asset/transfer/query-inter-transfer-list`."""
    source, target = record.type.split("_")
    return transfer_row(
        transfer_id=record.client_id,
        coin=record.asset,
        amount=text(record.amount),
        from_account_type=source,
        to_account_type=target,
        timestamp=str(record.time_ms),
    )


def api_key(account: SimAccount, user_id: int) -> dict[str, Any]:
    """`/v5/user/query-api`: a trading key; `Wallet` lists AccountTransfer when the key
    may move the reserve, Withdraw only when it may withdraw (a monitor must refuse it)."""
    wallet_rights = ["AccountTransfer"] if account.can_transfer else []
    if account.can_withdraw:
        wallet_rights.append("Withdraw")
    return api_key_row(
        key_id=str(user_id),
        api_key=account.api_key,
        user_id=user_id,
        note="marginwatch simulator key",
        read_only=not account.can_trade,
        contract_trade=["Order", "Position"] if account.can_trade else [],
        wallet=wallet_rights,
    )
