"""Account mutations behind Bybit v5's signed write endpoints: orders, isolated margin
and internal transfers, with Bybit's retCodes.

Orders are market orders (or IOC limits that cross the mark) and fill in full at the
mark, settled by the simulator's one fill model (`monitor/simulator/fills.py`). Error
codes are Bybit's v5 ones ("Error Codes" page of the v5 docs): 110017 reduce-only rule
not satisfied, 110072 duplicate orderLinkId, 110007 available balance not enough, 110033
no open position to add margin to, 110015 the position is cross, 110014 balance not
enough to add margin, 110027 margin not modified, 131212 insufficient balance of a
transfer, 131214 a transferId used before, 131211 same from and to account.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

from monitor.simulator.binance_usdm.state import (
    PositionSide,
    SimAccount,
    SimExchange,
    SimMarket,
    SimOrder,
    SimPosition,
    SimTransfer,
)
from monitor.simulator.bybit_v5.render import SETTLE_COIN
from monitor.simulator.bybit_v5.rules import account_figures, position_figures
from monitor.simulator.bybit_v5.wire import (
    BybitError,
    new_transfer_id,
    param_error,
    permission_denied,
)
from monitor.simulator.fills import close_slice, open_slice

ORDER_LINK_ID = re.compile(r"^[A-Za-z0-9_-]{1,36}$")
"""Bybit: orderLinkId up to 36 characters of letters, digits, '-' and '_'."""
POSITION_SIDE: dict[int, PositionSide] = {0: "BOTH", 1: "LONG", 2: "SHORT"}
FUND, UNIFIED = "FUND", "UNIFIED"


def _number(params: dict[str, Any], name: str) -> float:
    try:
        value = float(params.get(name))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise param_error(f"params error: {name} invalid") from None
    if not math.isfinite(value):
        raise param_error(f"params error: {name} invalid")
    return value


def require_linear(params: dict[str, Any]) -> None:
    category = params.get("category")
    if not category:
        raise param_error("params error: category is required")
    if category != "linear":
        raise BybitError(181001, "category only support linear")


def resolve_market(exchange: SimExchange, params: dict[str, Any]) -> SimMarket:
    symbol = str(params.get("symbol") or "")
    if symbol not in exchange.markets:
        raise param_error("params error: symbol invalid")
    return exchange.market(symbol)


def position_side(account: SimAccount, params: dict[str, Any]) -> PositionSide:
    """positionIdx 0 in one-way mode, 1 or 2 in hedge mode; else Bybit's 10001."""
    try:
        index = int(params.get("positionIdx", 0))
    except (TypeError, ValueError):
        raise param_error("params error: positionIdx invalid") from None
    allowed = (1, 2) if account.dual_side_position else (0,)
    if index not in allowed:
        raise param_error("position idx not match position mode")
    return POSITION_SIDE[index]


@dataclass(frozen=True, slots=True)
class OrderRequest:
    market: SimMarket
    buy: bool
    quantity: float
    position_side: PositionSide
    reduce_only: bool
    order_link_id: str


def parse_order(exchange: SimExchange, account: SimAccount, params: dict[str, Any]) -> OrderRequest:
    """Validate POST /v5/order/create; a limit order is served only as an IOC that
    crosses the mark (what the monitor would send), anything else is refused."""
    require_linear(params)
    market = resolve_market(exchange, params)
    side = params.get("side")
    if side not in ("Buy", "Sell"):
        raise param_error("params error: side invalid")
    order_type = params.get("orderType")
    if order_type not in ("Market", "Limit"):
        raise param_error("params error: orderType invalid")
    quantity = _number(params, "qty")
    if quantity <= 0:
        raise param_error("params error: qty invalid")
    if order_type == "Limit":
        price = _number(params, "price")
        mark = exchange.mark(market.symbol)
        crosses = price >= mark if side == "Buy" else price <= mark
        if params.get("timeInForce") != "IOC" or not crosses:
            raise param_error("params error: only marketable IOC limit orders are simulated")
    link = str(params.get("orderLinkId") or "")
    if link and not ORDER_LINK_ID.match(link):
        raise param_error("params error: orderLinkId invalid")
    if link and any(o.client_order_id == link for o in account.orders):
        raise BybitError(110072, "OrderLinkedID is duplicate")
    steps = quantity / market.qty_step
    if abs(steps - round(steps)) > 1e-9 * max(1.0, steps):
        raise BybitError(10001, "Qty invalid")
    reduce_only = params.get("reduceOnly") in (True, "true", "True")
    return OrderRequest(
        market, side == "Buy", quantity, position_side(account, params), reduce_only, link
    )


def place_order(exchange: SimExchange, account: SimAccount, request: OrderRequest) -> SimOrder:
    """Fill at the mark, settle, record. Reduce-only needs a position on the other side
    and never flips it (Bybit's 110017 when it cannot reduce)."""
    if not account.can_trade:
        raise permission_denied()
    market = request.market
    price = exchange.mark(market.symbol)
    position = account.position(market.symbol, request.position_side)
    current = position.amount if position else 0.0
    delta = request.quantity if request.buy else -request.quantity
    closing = min(abs(delta), abs(current)) if current * delta < 0 else 0.0
    hedge_leg = request.position_side != "BOTH"
    if request.reduce_only and (closing == 0.0 or abs(delta) > abs(current) + 1e-12):
        raise BybitError(110017, "Reduce-only rule not satisfied")
    if hedge_leg and current * delta < 0 and abs(delta) > abs(current) + 1e-12:
        raise BybitError(110017, "Reduce-only rule not satisfied")
    opening = abs(delta) - closing
    if hedge_leg and opening and request.buy != (request.position_side == "LONG"):
        raise param_error("position idx not match position mode")  # a leg opens one way
    if opening:
        _check_open(exchange, account, market, opening, price)
    now = exchange.clock_ms()
    realized = 0.0
    if closing:
        assert position is not None
        realized = close_slice(account, market, position, quantity=closing, price=price, now=now)
        position = account.position(market.symbol, request.position_side)
    if opening:
        open_slice(
            account,
            market,
            position,
            position_side=request.position_side,
            buy=request.buy,
            quantity=opening,
            price=price,
            now=now,
        )
    account.update_time_ms = now
    order = SimOrder(
        order_id=account.next_order_id,
        client_order_id=request.order_link_id,
        symbol=market.symbol,
        side="BUY" if request.buy else "SELL",
        position_side=request.position_side,
        orig_qty=request.quantity,
        executed_qty=request.quantity,
        avg_price=price,
        reduce_only=request.reduce_only,
        time_ms=now,
        realized_pnl=realized,
        commission=request.quantity * market.contract_size * price * account.taker_fee_rate,
    )
    account.next_order_id += 1
    account.orders.append(order)
    return order


def _check_open(
    exchange: SimExchange, account: SimAccount, market: SimMarket, quantity: float, price: float
) -> None:
    leverage = account.settings(market.symbol).leverage
    cost = quantity * market.contract_size * price * (1 / leverage + account.taker_fee_rate)
    if cost > account_figures(exchange, account, SETTLE_COIN).available_balance:
        raise BybitError(110007, "ab not enough for new order")


def add_margin(exchange: SimExchange, account: SimAccount, params: dict[str, Any]) -> SimPosition:
    """POST /v5/position/add-margin: a positive `margin` moves it from the cross pool's
    available balance into the isolated position, a negative one takes it back (at most
    down to the position's IM)."""
    if not account.can_trade:
        raise permission_denied()
    require_linear(params)
    market = resolve_market(exchange, params)
    side = position_side(account, params)
    margin = _number(params, "margin")
    position = account.position(market.symbol, side)
    if position is None or position.amount == 0:
        raise BybitError(110033, "Margin cannot be set without open position")
    if not position.is_isolated:
        raise BybitError(110015, "the position is in cross_margin")
    if margin == 0:
        raise BybitError(110027, "Margin is not modified")
    asset = market.margin_asset
    if margin > 0:
        if margin > account_figures(exchange, account, asset).available_balance:
            raise BybitError(110014, "Available balance not enough to add margin")
    else:
        figures = position_figures(exchange, account, position)
        if position.isolated_wallet + margin < figures.initial_margin:
            raise BybitError(110016, "Margin is not enough to reduce")
    account.cross_wallet[asset] = account.cross_wallet.get(asset, 0.0) - margin
    position.isolated_wallet += margin
    position.update_time_ms = account.update_time_ms = exchange.clock_ms()
    return position


def inter_transfer(
    exchange: SimExchange, account: SimAccount, params: dict[str, Any]
) -> SimTransfer:
    """POST /v5/asset/transfer/inter-transfer between FUND (the reserve) and UNIFIED,
    idempotent by the caller's UUID `transferId` (131214 when it was used before)."""
    if not account.can_transfer:
        raise permission_denied()
    transfer_id = new_transfer_id(params, {t.client_id for t in account.transfers})
    coin = str(params.get("coin") or "")
    amount = _number(params, "amount")
    source, target = params.get("fromAccountType"), params.get("toAccountType")
    if source == target:
        raise BybitError(131211, "fromAccountType can't be the same as toAccountType")
    if {source, target} != {FUND, UNIFIED} or not coin or amount <= 0:
        raise BybitError(131203, "Request parameter error")
    if source == FUND:
        free = account.funding.get(coin, 0.0)
    else:
        free = account_figures(exchange, account, coin).available_balance
    if amount > free + 1e-9:
        raise BybitError(131212, "Insufficient balance")
    sign = 1.0 if target == UNIFIED else -1.0
    account.funding[coin] = account.funding.get(coin, 0.0) - sign * amount
    account.cross_wallet[coin] = account.cross_wallet.get(coin, 0.0) + sign * amount
    now = exchange.clock_ms()
    record = SimTransfer(
        tran_id=exchange.next_tran_id,
        asset=coin,
        amount=amount,
        type=f"{source}_{target}",
        time_ms=now,
        client_id=transfer_id,
    )
    exchange.next_tran_id += 1
    account.transfers.append(record)
    account.update_time_ms = now
    return record
