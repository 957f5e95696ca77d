"""State -> Binance USD-M JSON, field for field.

Field sets follow Binance's documented responses (and what ccxt 4.5.90 parses):
numbers are strings except where Binance sends JSON numbers (brackets, leverage,
timestamps). Every function is pure: it reads the state and returns plain dicts.
"""

from __future__ import annotations

from typing import Any

from monitor.simulator.binance_usdm.accounting import (
    account_assets,
    account_totals,
    asset_summary,
    isolated_margin,
    position_figures,
)
from monitor.simulator.binance_usdm.state import (
    SimAccount,
    SimExchange,
    SimMarket,
    SimOrder,
    SimPosition,
)

FUNDING_INTERVAL_MS = 8 * 3600 * 1000
PERPETUAL_DELIVERY_MS = 4133404800000
ORDER_TYPES = [
    "LIMIT",
    "MARKET",
    "STOP",
    "STOP_MARKET",
    "TAKE_PROFIT",
    "TAKE_PROFIT_MARKET",
    "TRAILING_STOP_MARKET",
]


def num(value: float, places: int = 8) -> str:
    """Binance-style decimal string; never renders "-0.000"."""
    text = f"{value:.{places}f}"
    return text.lstrip("-") if float(text) == 0 else text


def _plain(value: float) -> float | int:
    """Whole floats as JSON integers, as Binance sends notional floors and caps."""
    return int(value) if float(value).is_integer() else value


def next_funding_time(exchange: SimExchange) -> int:
    """The scenario's next settlement when it schedules one, else Binance's 8-hour grid."""
    if exchange.next_funding_ms is not None:
        return exchange.next_funding_ms
    now_ms = exchange.clock_ms()
    return (now_ms // FUNDING_INTERVAL_MS + 1) * FUNDING_INTERVAL_MS


def exchange_info_symbol(market: SimMarket) -> dict[str, Any]:
    price_places, qty_places = market.price_precision, market.quantity_precision
    first = market.brackets[0]
    return {
        "symbol": market.symbol,
        "pair": market.symbol,
        "contractType": "PERPETUAL",
        "deliveryDate": PERPETUAL_DELIVERY_MS,
        "onboardDate": market.onboard_time_ms,
        "status": "TRADING",
        "maintMarginPercent": num(first.maint_rate * 100, 4),
        "requiredMarginPercent": num(100 / first.max_leverage, 4),
        "baseAsset": market.base,
        "quoteAsset": market.quote,
        "marginAsset": market.margin_asset,
        "pricePrecision": price_places,
        "quantityPrecision": qty_places,
        "baseAssetPrecision": 8,
        "quotePrecision": 8,
        "underlyingType": "COIN",
        "underlyingSubType": [],
        "triggerProtect": "0.0500",
        "liquidationFee": num(market.liquidation_fee_rate, 6),
        "marketTakeBound": "0.05",
        "maxMoveOrderLimit": 10000,
        "filters": [
            {
                "filterType": "PRICE_FILTER",
                "minPrice": num(market.price_tick, price_places),
                "maxPrice": num(4529764, price_places),
                "tickSize": num(market.price_tick, price_places),
            },
            {
                "filterType": "LOT_SIZE",
                "minQty": num(market.min_qty, qty_places),
                "maxQty": num(market.max_qty, qty_places),
                "stepSize": num(market.qty_step, qty_places),
            },
            {
                "filterType": "MARKET_LOT_SIZE",
                "minQty": num(market.min_qty, qty_places),
                "maxQty": num(market.market_max_qty, qty_places),
                "stepSize": num(market.qty_step, qty_places),
            },
            {"filterType": "MAX_NUM_ORDERS", "limit": 200},
            {"filterType": "MAX_NUM_ALGO_ORDERS", "limit": 10},
            {"filterType": "MIN_NOTIONAL", "notional": num(market.min_notional, 0)},
            {
                "filterType": "PERCENT_PRICE",
                "multiplierUp": "1.0500",
                "multiplierDown": "0.9500",
                "multiplierDecimal": "4",
            },
        ],
        "orderTypes": ORDER_TYPES,
        "timeInForce": ["GTC", "IOC", "FOK", "GTX", "GTD"],
        "permissionSet": ["GRID", "COPY"],
    }


def exchange_info(exchange: SimExchange) -> dict[str, Any]:
    assets = sorted({m.margin_asset for m in exchange.markets.values()})
    return {
        "timezone": "UTC",
        "serverTime": exchange.clock_ms(),
        "futuresType": "U_MARGINED",
        "rateLimits": [
            {
                "rateLimitType": "REQUEST_WEIGHT",
                "interval": "MINUTE",
                "intervalNum": 1,
                "limit": 2400,
            },
            {"rateLimitType": "ORDERS", "interval": "MINUTE", "intervalNum": 1, "limit": 1200},
            {"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10, "limit": 300},
        ],
        "exchangeFilters": [],
        "assets": [
            {"asset": a, "marginAvailable": True, "autoAssetExchange": "-10000"} for a in assets
        ],
        "symbols": [exchange_info_symbol(m) for m in exchange.markets.values()],
    }


def premium_index(exchange: SimExchange, symbol: str) -> dict[str, Any]:
    now = exchange.clock_ms()
    return {
        "symbol": symbol,
        "markPrice": num(exchange.mark(symbol)),
        "indexPrice": num(exchange.index(symbol)),
        "estimatedSettlePrice": num(exchange.index(symbol)),
        "lastFundingRate": num(exchange.funding_rate(symbol)),
        "interestRate": num(0.0001),
        "nextFundingTime": next_funding_time(exchange),
        "time": now,
    }


def ticker_price(exchange: SimExchange, symbol: str) -> dict[str, Any]:
    market = exchange.market(symbol)
    return {
        "symbol": symbol,
        "price": num(exchange.mark(symbol), market.price_precision),
        "time": exchange.clock_ms(),
    }


def leverage_brackets(market: SimMarket) -> dict[str, Any]:
    return {
        "symbol": market.symbol,
        "notionalCoef": 1.0,
        "brackets": [
            {
                "bracket": index,
                "initialLeverage": b.max_leverage,
                "notionalCap": _plain(b.cap),
                "notionalFloor": _plain(b.floor),
                "maintMarginRatio": b.maint_rate,
                "cum": float(b.cum),
            }
            for index, b in enumerate(market.brackets, start=1)
        ],
    }


def _liquidation_price(position: SimPosition) -> str:
    return num(position.reported_liquidation_price or 0.0)


def break_even_price(position: SimPosition, fee_rate: float) -> float:
    """Price at which closing pays back the opening and closing taker fees."""
    if position.amount > 0:
        return position.entry_price * (1 + fee_rate) / (1 - fee_rate)
    if position.amount < 0:
        return position.entry_price * (1 - fee_rate) / (1 + fee_rate)
    return 0.0


def _qty(exchange: SimExchange, position: SimPosition) -> str:
    return num(position.amount, exchange.market(position.symbol).quantity_precision)


def position_risk_v3(
    exchange: SimExchange, account: SimAccount, position: SimPosition
) -> dict[str, Any]:
    f = position_figures(exchange, position)
    return {
        "symbol": position.symbol,
        "positionSide": position.position_side,
        "positionAmt": _qty(exchange, position),
        "entryPrice": num(position.entry_price),
        "breakEvenPrice": num(break_even_price(position, account.taker_fee_rate)),
        "markPrice": num(f.mark),
        "unRealizedProfit": num(f.unrealized_pnl),
        "liquidationPrice": _liquidation_price(position),
        "isolatedMargin": num(isolated_margin(exchange, position)),
        "notional": num(f.notional),
        "marginAsset": f.margin_asset,
        "isolatedWallet": num(position.isolated_wallet if position.is_isolated else 0.0),
        "initialMargin": num(f.initial_margin),
        "maintMargin": num(f.maint_margin if position.amount else 0.0),
        "positionInitialMargin": num(f.initial_margin),
        "openOrderInitialMargin": "0",
        "adl": 1 if position.amount else 0,
        "bidNotional": "0",
        "askNotional": "0",
        "updateTime": position.update_time_ms,
    }


def position_risk_v2(
    exchange: SimExchange, account: SimAccount, position: SimPosition
) -> dict[str, Any]:
    f = position_figures(exchange, position)
    market = exchange.market(position.symbol)
    return {
        "symbol": position.symbol,
        "positionAmt": _qty(exchange, position),
        "entryPrice": num(position.entry_price),
        "breakEvenPrice": num(break_even_price(position, account.taker_fee_rate)),
        "markPrice": num(f.mark),
        "unRealizedProfit": num(f.unrealized_pnl),
        "liquidationPrice": _liquidation_price(position),
        "leverage": str(position.leverage),
        "maxNotionalValue": num(market.max_notional_for_leverage(position.leverage), 0),
        "marginType": position.margin_type,
        "isolatedMargin": num(isolated_margin(exchange, position)),
        "isAutoAddMargin": "false",
        "positionSide": position.position_side,
        "notional": num(f.notional),
        "isolatedWallet": num(position.isolated_wallet if position.is_isolated else 0.0),
        "updateTime": position.update_time_ms,
    }


def all_legs(account: SimAccount, exchange: SimExchange) -> list[SimPosition]:
    """Every symbol's legs, flat ones included, as the v2 endpoints list them."""
    legs: list[SimPosition] = []
    sides = ("LONG", "SHORT") if account.dual_side_position else ("BOTH",)
    for symbol in exchange.markets:
        settings = account.settings(symbol)
        for side in sides:
            leg = account.position(symbol, side)
            legs.append(
                leg
                or SimPosition(
                    symbol=symbol,
                    amount=0.0,
                    entry_price=0.0,
                    position_side=side,
                    margin_type=settings.margin_type,
                    leverage=settings.leverage,
                )
            )
    return legs


def _asset_row(exchange: SimExchange, account: SimAccount, asset: str) -> dict[str, Any]:
    s = asset_summary(exchange, account, asset)
    touched = s.wallet_balance != 0 or s.unrealized_pnl != 0
    return {
        "asset": asset,
        "walletBalance": num(s.wallet_balance),
        "unrealizedProfit": num(s.unrealized_pnl),
        "marginBalance": num(s.margin_balance),
        "maintMargin": num(s.maint_margin),
        "initialMargin": num(s.initial_margin),
        "positionInitialMargin": num(s.initial_margin),
        "openOrderInitialMargin": num(0.0),
        "crossWalletBalance": num(s.cross_wallet),
        "crossUnPnl": num(s.cross_unrealized_pnl),
        "availableBalance": num(s.available_balance),
        "maxWithdrawAmount": num(s.max_withdraw_amount),
        "updateTime": (account.update_time_ms or exchange.clock_ms()) if touched else 0,
    }


def _totals(exchange: SimExchange, account: SimAccount) -> dict[str, Any]:
    t = account_totals(exchange, account)
    return {
        "totalInitialMargin": num(t.initial_margin),
        "totalMaintMargin": num(t.maint_margin),
        "totalWalletBalance": num(t.wallet_balance),
        "totalUnrealizedProfit": num(t.unrealized_pnl),
        "totalMarginBalance": num(t.margin_balance),
        "totalPositionInitialMargin": num(t.initial_margin),
        "totalOpenOrderInitialMargin": num(0.0),
        "totalCrossWalletBalance": num(t.cross_wallet_balance),
        "totalCrossUnPnl": num(t.cross_unrealized_pnl),
        "availableBalance": num(t.available_balance),
        "maxWithdrawAmount": num(t.max_withdraw_amount),
    }


def account_v3(exchange: SimExchange, account: SimAccount) -> dict[str, Any]:
    positions = []
    for position in account.open_positions():
        f = position_figures(exchange, position)
        positions.append(
            {
                "symbol": position.symbol,
                "positionSide": position.position_side,
                "positionAmt": _qty(exchange, position),
                "unrealizedProfit": num(f.unrealized_pnl),
                "isolatedMargin": num(isolated_margin(exchange, position)),
                "notional": num(f.notional),
                "isolatedWallet": num(position.isolated_wallet if position.is_isolated else 0.0),
                "initialMargin": num(f.initial_margin),
                "maintMargin": num(f.maint_margin),
                "updateTime": position.update_time_ms,
            }
        )
    return {
        **_totals(exchange, account),
        "assets": [_asset_row(exchange, account, a) for a in account_assets(exchange, account)],
        "positions": positions,
    }


def account_v2(exchange: SimExchange, account: SimAccount) -> dict[str, Any]:
    positions = []
    for position in all_legs(account, exchange):
        f = position_figures(exchange, position)
        market = exchange.market(position.symbol)
        positions.append(
            {
                "symbol": position.symbol,
                "initialMargin": num(f.initial_margin),
                "maintMargin": num(f.maint_margin if position.amount else 0.0),
                "unrealizedProfit": num(f.unrealized_pnl),
                "positionInitialMargin": num(f.initial_margin),
                "openOrderInitialMargin": "0",
                "leverage": str(position.leverage),
                "isolated": position.is_isolated,
                "entryPrice": num(position.entry_price),
                "breakEvenPrice": num(break_even_price(position, account.taker_fee_rate)),
                "maxNotional": num(market.max_notional_for_leverage(position.leverage), 0),
                "bidNotional": "0",
                "askNotional": "0",
                "positionSide": position.position_side,
                "positionAmt": _qty(exchange, position),
                "notional": num(f.notional),
                "isolatedWallet": num(position.isolated_wallet if position.is_isolated else 0.0),
                "updateTime": position.update_time_ms,
            }
        )
    assets = [
        {**_asset_row(exchange, account, a), "marginAvailable": True}
        for a in account_assets(exchange, account)
    ]
    return {
        "feeTier": 0,
        "feeBurn": False,
        "canTrade": account.can_trade,
        "canDeposit": True,
        "canWithdraw": account.can_withdraw,
        "updateTime": 0,
        "multiAssetsMargin": account.multi_assets_margin,
        "tradeGroupId": -1,
        **_totals(exchange, account),
        "assets": assets,
        "positions": positions,
    }


def balances(exchange: SimExchange, account: SimAccount) -> list[dict[str, Any]]:
    rows = []
    for asset in account_assets(exchange, account):
        row = _asset_row(exchange, account, asset)
        rows.append(
            {
                "accountAlias": "SimFuturesAcct",
                "asset": asset,
                "balance": row["walletBalance"],
                "crossWalletBalance": row["crossWalletBalance"],
                "crossUnPnl": row["crossUnPnl"],
                "availableBalance": row["availableBalance"],
                "maxWithdrawAmount": row["maxWithdrawAmount"],
                "marginAvailable": True,
                "updateTime": row["updateTime"],
            }
        )
    return rows


def symbol_config(exchange: SimExchange, account: SimAccount, symbol: str) -> dict[str, Any]:
    settings = account.settings(symbol)
    market = exchange.market(symbol)
    return {
        "symbol": symbol,
        "marginType": "ISOLATED" if settings.margin_type == "isolated" else "CROSSED",
        "isAutoAddMargin": False,
        "leverage": settings.leverage,
        "maxNotionalValue": num(market.max_notional_for_leverage(settings.leverage), 0),
    }


def api_restrictions(exchange: SimExchange, account: SimAccount) -> dict[str, Any]:
    """The key's permissions. Universal transfer (`permitsUniversalTransfer`) and internal
    transfer both follow `can_transfer`; withdrawal is its own flag, `can_withdraw`."""
    return {
        "ipRestrict": False,
        "createTime": 1698645219000,
        "enableReading": True,
        "enableWithdrawals": account.can_withdraw,
        "enableInternalTransfer": account.can_transfer,
        "enableMargin": False,
        "enableFutures": account.can_trade,
        "permitsUniversalTransfer": account.can_transfer,
        "enableVanillaOptions": False,
        "enableFixApiTrade": False,
        "enableFixReadOnly": False,
        "enableSpotAndMarginTrading": False,
        "enablePortfolioMarginTrading": False,
    }


def order(exchange: SimExchange, sim_order: SimOrder, *, query: bool = False) -> dict[str, Any]:
    """A FILLED market order as POST (newOrderRespType=RESULT) and GET /fapi/v1/order show it."""
    market = exchange.market(sim_order.symbol)
    qty_places, price_places = market.quantity_precision, market.price_precision
    body: dict[str, Any] = {
        "orderId": sim_order.order_id,
        "symbol": sim_order.symbol,
        "status": sim_order.status,
        "clientOrderId": sim_order.client_order_id,
        "price": num(0.0, price_places),
        "avgPrice": num(sim_order.avg_price),
        "origQty": num(sim_order.orig_qty, qty_places),
        "executedQty": num(sim_order.executed_qty, qty_places),
        "cumQty": num(sim_order.executed_qty, qty_places),
        "cumQuote": num(sim_order.cum_quote),
        "timeInForce": "GTC",
        "type": sim_order.type,
        "reduceOnly": sim_order.reduce_only,
        "closePosition": False,
        "side": sim_order.side,
        "positionSide": sim_order.position_side,
        "stopPrice": num(0.0, price_places),
        "workingType": "CONTRACT_PRICE",
        "priceProtect": False,
        "origType": sim_order.type,
        "priceMatch": "NONE",
        "selfTradePreventionMode": "EXPIRE_MAKER",
        "goodTillDate": 0,
        "updateTime": sim_order.time_ms,
    }
    if query:
        body["time"] = sim_order.time_ms
    return body
