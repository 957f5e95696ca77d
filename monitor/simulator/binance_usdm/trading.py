"""Account mutations behind Binance's signed write endpoints.

Only MARKET orders exist here: they fill in full at the mark price, which is all the
monitor ever sends (emergency reduce-only closes). The simulator's settlement model,
shared with the Bybit dialect (`monitor/simulator/fills.py`):
- a cross leg's realized PnL and the taker fee settle into the cross wallet;
- closing part of an isolated leg: the closed slice takes its own share of the isolated
  wallet (wallet x closed / size) and its own realized PnL and fee, and all of that goes
  to the cross wallet; the rest of the position keeps the rest of the wallet untouched.
  Closing all of it returns the whole wallet with the PnL;
- opening an isolated leg moves notional/leverage from the cross wallet into it.
Reported liquidation prices are left as they were: the exchange's figure is only ever
refreshed by whoever owns the liquidation model (scenarios), never silently invented here.

Why this partial-close rule. Binance publishes no statement of how a partial close of an
isolated position settles; what it does publish pins it down:
- "How to Calculate Liquidation Price of USDⓈ-M Futures Contracts" (Binance FAQ
  b3c689c1f50a44cabb3a84e663b81d93): in isolated mode WB is the position's isolated wallet
  balance and no other position counts (TMM = 0, UPNL = 0): a position's margin is its own;
- the isolated margin mode is defined by a loss being covered only by the margin allotted
  to that position (Binance FAQ 360038447311, "How to Adjust Margin Balance in Isolated
  Margin Mode", with its max addable / removable rules).
The rule this simulator used before (charge the closed slice's realized loss to the
isolated wallet, then release the same fraction of what is left) makes the remaining
position pay part of the closed slice's loss, against both. A worked case (ALT brackets:
1 % to 5,000 notional, then 1.5 % with cum 25): long 200 AVAX @ 35 isolated with wallet
875, mark 31.5, liquidation price 30.9645 (875 + 200 (L - 35) = 200 L x 0.015 - 25).
Closing 100 at 31.5 (PnL -350, fee 1.575):
- pro-rata share (this module): the remaining 100 keep wallet 437.5; 437.5 + 100 (L - 35)
  = 100 L x 0.01 gives L = 30.9343: the liquidation price barely moves (it moves AWAY, by
  0.03, only because the smaller notional falls into the 1 % bracket); the cross wallet
  receives 437.5 - 350 - 1.575 = 85.925;
- loss-first (the old rule): wallet 875 - 351.575 = 523.425, half released, 261.71 kept,
  margin balance 261.71 - 350 < 0: the close itself would bankrupt the rest.
Consequence for a defense: a partial close of an isolated position does NOT move the
remaining position's liquidation price (apart from a bracket change); only added margin,
or a full close, changes the outcome for it.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from monitor.simulator.binance_usdm import errors
from monitor.simulator.binance_usdm.accounting import (
    available_for,
    max_addable_isolated,
    position_figures,
)
from monitor.simulator.binance_usdm.errors import BinanceApiError
from monitor.simulator.binance_usdm.state import (
    PositionSide,
    SimAccount,
    SimExchange,
    SimMarket,
    SimOrder,
)
from monitor.simulator.fills import close_slice, open_slice

CLIENT_ORDER_ID = re.compile(r"^[\.A-Z\:/a-z0-9_-]{1,36}$")
SUCCESS = {"code": 200, "msg": "success"}


def require(params: dict[str, str], name: str) -> str:
    value = params.get(name)
    if value is None or value == "":
        raise errors.mandatory_param(name)
    return value


def parse_number(params: dict[str, str], name: str) -> float:
    try:
        value = float(require(params, name))
    except ValueError:
        raise errors.invalid_param(name) from None
    if not math.isfinite(value):
        raise errors.invalid_param(name)
    return value


def resolve_market(exchange: SimExchange, params: dict[str, str]) -> SimMarket:
    symbol = require(params, "symbol")
    if symbol not in exchange.markets:
        raise errors.invalid_symbol()
    return exchange.market(symbol)


def resolve_position_side(account: SimAccount, params: dict[str, str]) -> PositionSide:
    """BOTH in one-way mode, LONG/SHORT in hedge mode; anything else is -4061."""
    side = params.get("positionSide", "BOTH").upper()
    expected = {"LONG", "SHORT"} if account.dual_side_position else {"BOTH"}
    if side not in expected:
        raise BinanceApiError(-4061, "Order's position side does not match user's setting.")
    return side  # type: ignore[return-value]


def _is_multiple(value: float, step: float) -> bool:
    ratio = value / step
    return abs(ratio - round(ratio)) < 1e-9 * max(1.0, ratio)


@dataclass(frozen=True, slots=True)
class OrderRequest:
    market: SimMarket
    side: str
    quantity: float
    position_side: PositionSide
    reduce_only: bool
    client_order_id: str | None
    ack_only: bool


def parse_order(exchange: SimExchange, account: SimAccount, params: dict[str, str]) -> OrderRequest:
    """Validate POST /fapi/v1/order parameters with Binance's codes, in Binance's order."""
    market = resolve_market(exchange, params)
    side = require(params, "side").upper()
    if side not in ("BUY", "SELL"):
        raise BinanceApiError(-1117, "Invalid side.")
    if require(params, "type").upper() != "MARKET":
        raise BinanceApiError(-1116, "Invalid orderType.")  # the simulator fills MARKET only
    position_side = resolve_position_side(account, params)
    reduce_only = params.get("reduceOnly", "false").lower() == "true"
    if reduce_only and account.dual_side_position:
        raise BinanceApiError(-1106, "Parameter 'reduceOnly' sent when not required.")
    quantity = parse_number(params, "quantity")
    if quantity <= 0:
        raise BinanceApiError(-4003, "Quantity less than or equal to zero.")
    if not _is_multiple(quantity, market.qty_step):
        raise BinanceApiError(-1111, "Precision is over the maximum defined for this asset.")
    if quantity < market.min_qty:
        raise BinanceApiError(-4004, "Quantity less than min quantity.")
    if quantity > market.market_max_qty:
        raise BinanceApiError(-4005, "Quantity greater than max quantity.")
    client_order_id = params.get("newClientOrderId") or None
    if client_order_id is not None and not CLIENT_ORDER_ID.match(client_order_id):
        raise BinanceApiError(-4015, "Client order id is not valid.")
    return OrderRequest(
        market=market,
        side=side,
        quantity=quantity,
        position_side=position_side,
        reduce_only=reduce_only,
        client_order_id=client_order_id,
        ack_only=params.get("newOrderRespType", "ACK").upper() == "ACK",
    )


def _split(request: OrderRequest, current: float) -> tuple[float, float]:
    """(quantity that closes the current leg, quantity that opens or extends one)."""
    delta = request.quantity if request.side == "BUY" else -request.quantity
    if request.position_side == "LONG" and current + delta < 0:
        raise errors.reduce_only_rejected()
    if request.position_side == "SHORT" and current + delta > 0:
        raise errors.reduce_only_rejected()
    closing = min(abs(delta), abs(current)) if current * delta < 0 else 0.0
    if request.reduce_only and (closing == 0.0 or abs(delta) > abs(current)):
        raise errors.reduce_only_rejected()
    return closing, abs(delta) - closing


def place_market_order(
    exchange: SimExchange, account: SimAccount, request: OrderRequest
) -> SimOrder:
    """Fill a MARKET order at mark, settle PnL and fees, and record it."""
    market = request.market
    symbol = market.symbol
    price = exchange.mark(symbol)
    position = account.position(symbol, request.position_side)
    current = position.amount if position else 0.0
    closing, opening = _split(request, current)
    if not request.reduce_only and request.quantity * price < market.min_notional:
        raise BinanceApiError(
            -4164,
            f"Order's notional must be no smaller than {market.min_notional:g} "
            "(unless you choose reduce only).",
        )
    if opening:
        held = abs(current) if closing == 0 else 0.0
        _check_open(exchange, account, market, held, opening, price)
    now = exchange.clock_ms()
    realized = 0.0
    if closing:
        assert position is not None
        realized = close_slice(account, market, position, quantity=closing, price=price, now=now)
        position = account.position(symbol, request.position_side)
    if opening:
        open_slice(
            account,
            market,
            position,
            position_side=request.position_side,
            buy=request.side == "BUY",
            quantity=opening,
            price=price,
            now=now,
        )
    account.update_time_ms = now
    order = SimOrder(
        order_id=account.next_order_id,
        client_order_id=request.client_order_id or f"sim{account.next_order_id}",
        symbol=symbol,
        side=request.side,  # type: ignore[arg-type]
        position_side=request.position_side,
        orig_qty=request.quantity,
        executed_qty=request.quantity,
        avg_price=price,
        reduce_only=request.reduce_only,
        time_ms=now,
        realized_pnl=realized,
        commission=request.quantity * price * account.taker_fee_rate,
    )
    account.next_order_id += 1
    account.orders.append(order)
    return order


def _check_open(
    exchange: SimExchange,
    account: SimAccount,
    market: SimMarket,
    held: float,
    quantity: float,
    price: float,
) -> None:
    """Refuse, before anything is mutated, an increase the leverage or balance can't carry."""
    leverage = account.settings(market.symbol).leverage
    new_notional = (held + quantity) * market.contract_size * price
    if new_notional > market.max_notional_for_leverage(leverage):
        raise BinanceApiError(-2027, "Exceeded the maximum allowable position at current leverage.")
    added_margin = quantity * market.contract_size * price / leverage
    fee = quantity * market.contract_size * price * account.taker_fee_rate
    if added_margin + fee > available_for(exchange, account, market.margin_asset):
        raise errors.margin_insufficient()


def modify_isolated_margin(
    exchange: SimExchange, account: SimAccount, params: dict[str, str]
) -> dict[str, object]:
    """POST /fapi/v1/positionMargin: type 1 moves cross -> isolated, type 2 back."""
    market = resolve_market(exchange, params)
    position_side = resolve_position_side(account, params)
    amount = parse_number(params, "amount")
    kind = require(params, "type")
    if kind not in ("1", "2"):
        raise errors.invalid_param("type")
    position = account.position(market.symbol, position_side)
    if position is None or position.amount == 0:
        raise BinanceApiError(-4054, "Cannot add position margin: position is 0.")
    if not position.is_isolated:
        raise BinanceApiError(-4049, "Add margin only support for isolated position.")
    if amount <= 0:
        raise BinanceApiError(-4055, "Amount must be positive.")
    asset = market.margin_asset
    if kind == "1":
        if amount > max_addable_isolated(exchange, account, asset) + 1e-9:
            raise BinanceApiError(-4050, "Cross balance insufficient.")
        account.cross_wallet[asset] -= amount
        position.isolated_wallet += amount
    else:
        figures = position_figures(exchange, position)
        removable = (
            position.isolated_wallet + min(0.0, figures.unrealized_pnl) - figures.initial_margin
        )
        if amount > removable:
            raise BinanceApiError(-4051, "Isolated balance insufficient.")
        position.isolated_wallet -= amount
        account.cross_wallet[asset] = account.cross_wallet.get(asset, 0.0) + amount
    now = exchange.clock_ms()
    position.update_time_ms = account.update_time_ms = now
    return {
        "amount": amount,
        "code": 200,
        "msg": "Successfully modify position margin.",
        "type": int(kind),
    }


def change_leverage(
    exchange: SimExchange, account: SimAccount, params: dict[str, str]
) -> dict[str, object]:
    """POST /fapi/v1/leverage, refused when the open notional would not fit the new leverage."""
    market = resolve_market(exchange, params)
    try:
        leverage = int(require(params, "leverage"))
    except ValueError:
        raise errors.invalid_param("leverage") from None
    if not 1 <= leverage <= market.brackets[0].max_leverage:
        raise BinanceApiError(-4028, f"Leverage {leverage} is not valid")
    limit = market.max_notional_for_leverage(leverage)
    for position in account.positions:
        if (
            position.symbol == market.symbol
            and position_figures(exchange, position).abs_notional > limit
        ):
            raise BinanceApiError(
                -2027, "Exceeded the maximum allowable position at current leverage."
            )
    account.set_leverage(market.symbol, leverage)
    return {"leverage": leverage, "maxNotionalValue": f"{limit:.0f}", "symbol": market.symbol}


def change_margin_type(
    exchange: SimExchange, account: SimAccount, params: dict[str, str]
) -> dict[str, object]:
    """POST /fapi/v1/marginType: only allowed while the symbol has no position."""
    market = resolve_market(exchange, params)
    wanted = require(params, "marginType").upper()
    if wanted not in ("ISOLATED", "CROSSED"):
        raise errors.invalid_param("marginType")
    margin_type = "isolated" if wanted == "ISOLATED" else "cross"
    if account.settings(market.symbol).margin_type == margin_type:
        raise BinanceApiError(-4046, "No need to change margin type.")
    if any(p.symbol == market.symbol and p.amount for p in account.positions):
        raise BinanceApiError(-4048, "Margin type cannot be changed if there exists position.")
    account.set_margin_type(market.symbol, margin_type)
    return dict(SUCCESS)
