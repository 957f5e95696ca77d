"""aiohttp application speaking Binance USD-M's REST dialect, for unmodified ccxt clients.

One catch-all route dispatches on (method, path) through a table, so that anything not
in the table gets Binance's own 404 `{"code":-5000,"msg":"Path ..., Method ... is invalid"}`
instead of aiohttp's HTML page or an empty 200. Each entry says whether the endpoint is
public, SIGNED (reads), or SIGNED and needs trading permission (writes).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import Any

from aiohttp import web

from monitor.simulator.binance_usdm import (
    errors,
    events,
    listen_keys,
    render,
    trading,
    transfers,
)
from monitor.simulator.binance_usdm.auth import api_key_account, authenticate, parse_params
from monitor.simulator.binance_usdm.errors import BinanceApiError
from monitor.simulator.binance_usdm.responses import json_response
from monitor.simulator.binance_usdm.state import Fault, SimAccount, SimExchange
from monitor.simulator.binance_usdm.streams import StreamHub

log = logging.getLogger(__name__)

EXCHANGE_KEY = web.AppKey("binance_usdm_exchange", SimExchange)
STREAMS_KEY = web.AppKey("binance_usdm_streams", StreamHub)


class Security(Enum):
    PUBLIC = "public"
    USER_STREAM = "user_stream"
    """API key header only, no signature (Binance's USER_STREAM endpoints)."""
    SIGNED = "signed"
    TRADE = "trade"


@dataclass(frozen=True, slots=True)
class Call:
    """What a handler gets: the venue, the merged parameters, and the caller's account."""

    exchange: SimExchange
    params: dict[str, str]
    account: SimAccount | None = None

    @property
    def me(self) -> SimAccount:
        assert self.account is not None, "signed endpoint without an account"
        return self.account

    def symbol(self, required: bool = False) -> str | None:
        symbol = self.params.get("symbol") or None
        if symbol is None:
            if required:
                raise errors.mandatory_param("symbol")
            return None
        if symbol not in self.exchange.markets:
            raise errors.invalid_symbol()
        return symbol

    def symbols(self) -> list[str]:
        """The requested symbol, or every symbol when none was sent."""
        symbol = self.symbol()
        return [symbol] if symbol else list(self.exchange.markets)


Handler = Callable[[Call], Any]


def _one_or_all(call: Call, one: Callable[[str], Any]) -> Any:
    """Binance's convention: an object when `symbol` is sent, a list otherwise."""
    symbol = call.symbol()
    return one(symbol) if symbol else [one(s) for s in call.exchange.markets]


def _position_risk_v3(call: Call) -> list[dict[str, Any]]:
    wanted = set(call.symbols())
    return [
        render.position_risk_v3(call.exchange, call.me, p)
        for p in call.me.open_positions()
        if p.symbol in wanted
    ]


def _position_risk_v2(call: Call) -> list[dict[str, Any]]:
    wanted = set(call.symbols())
    return [
        render.position_risk_v2(call.exchange, call.me, p)
        for p in render.all_legs(call.me, call.exchange)
        if p.symbol in wanted
    ]


def _commission_rate(call: Call) -> dict[str, Any]:
    return {
        "symbol": call.symbol(required=True),
        "makerCommissionRate": render.num(call.me.maker_fee_rate, 6),
        "takerCommissionRate": render.num(call.me.taker_fee_rate, 6),
    }


def _new_order(call: Call) -> dict[str, Any]:
    request = trading.parse_order(call.exchange, call.me, call.params)
    order = trading.place_market_order(call.exchange, call.me, request)
    events.publish_fill(call.exchange, call.me, order)
    body = render.order(call.exchange, order)
    if request.ack_only:  # Binance acknowledges before the fill is reported
        body.update(status="NEW", executedQty="0", cumQty="0", cumQuote="0", avgPrice="0.00")
    return body


def _query_order(call: Call) -> dict[str, Any]:
    call.symbol(required=True)
    raw_id = call.params.get("orderId") or None
    client_id = call.params.get("origClientOrderId") or None
    if raw_id is None and client_id is None:
        raise errors.either_param("orderId", "origClientOrderId")
    try:
        order_id = int(raw_id) if raw_id is not None else None
    except ValueError:
        raise errors.invalid_param("orderId") from None
    order = call.me.find_order(order_id, client_id)
    if order is None or order.symbol != call.params["symbol"]:
        raise errors.order_does_not_exist()
    return render.order(call.exchange, order, query=True)


ROUTES: dict[tuple[str, str], tuple[Security, Handler]] = {
    ("GET", "/fapi/v1/ping"): (Security.PUBLIC, lambda c: {}),
    ("GET", "/fapi/v1/time"): (Security.PUBLIC, lambda c: {"serverTime": c.exchange.clock_ms()}),
    ("GET", "/fapi/v1/exchangeInfo"): (Security.PUBLIC, lambda c: render.exchange_info(c.exchange)),
    ("GET", "/fapi/v1/premiumIndex"): (
        Security.PUBLIC,
        lambda c: _one_or_all(c, lambda s: render.premium_index(c.exchange, s)),
    ),
    ("GET", "/fapi/v1/ticker/price"): (
        Security.PUBLIC,
        lambda c: _one_or_all(c, lambda s: render.ticker_price(c.exchange, s)),
    ),
    ("GET", "/fapi/v1/leverageBracket"): (
        Security.SIGNED,
        lambda c: _one_or_all(c, lambda s: render.leverage_brackets(c.exchange.market(s))),
    ),
    ("POST", "/fapi/v1/listenKey"): (
        Security.USER_STREAM,
        lambda c: listen_keys.create(c.exchange, c.me),
    ),
    ("PUT", "/fapi/v1/listenKey"): (
        Security.USER_STREAM,
        lambda c: listen_keys.keep_alive(c.exchange, c.me),
    ),
    ("DELETE", "/fapi/v1/listenKey"): (
        Security.USER_STREAM,
        lambda c: listen_keys.close(c.exchange, c.me),
    ),
    ("GET", "/fapi/v3/positionRisk"): (Security.SIGNED, _position_risk_v3),
    ("GET", "/fapi/v2/positionRisk"): (Security.SIGNED, _position_risk_v2),
    ("GET", "/fapi/v3/account"): (Security.SIGNED, lambda c: render.account_v3(c.exchange, c.me)),
    ("GET", "/fapi/v2/account"): (Security.SIGNED, lambda c: render.account_v2(c.exchange, c.me)),
    ("GET", "/fapi/v3/balance"): (Security.SIGNED, lambda c: render.balances(c.exchange, c.me)),
    ("GET", "/fapi/v2/balance"): (Security.SIGNED, lambda c: render.balances(c.exchange, c.me)),
    ("GET", "/fapi/v1/positionSide/dual"): (
        Security.SIGNED,
        lambda c: {"dualSidePosition": c.me.dual_side_position},
    ),
    ("GET", "/fapi/v1/multiAssetsMargin"): (
        Security.SIGNED,
        lambda c: {"multiAssetsMargin": c.me.multi_assets_margin},
    ),
    ("GET", "/fapi/v1/symbolConfig"): (
        Security.SIGNED,
        lambda c: [render.symbol_config(c.exchange, c.me, s) for s in c.symbols()],
    ),
    ("GET", "/fapi/v1/commissionRate"): (Security.SIGNED, _commission_rate),
    ("GET", "/sapi/v1/account/apiRestrictions"): (
        Security.SIGNED,
        lambda c: render.api_restrictions(c.exchange, c.me),
    ),
    ("POST", "/sapi/v1/asset/transfer"): (
        Security.SIGNED,  # needs the key's transfer permission, checked by the handler
        lambda c: {"tranId": transfers.transfer(c.exchange, c.me, c.params).tran_id},
    ),
    ("GET", "/sapi/v1/asset/transfer"): (
        Security.SIGNED,
        lambda c: transfers.history(c.exchange, c.me, c.params),
    ),
    ("GET", "/fapi/v1/order"): (Security.SIGNED, _query_order),
    ("POST", "/fapi/v1/order"): (Security.TRADE, _new_order),
    ("POST", "/fapi/v1/positionMargin"): (
        Security.TRADE,
        lambda c: trading.modify_isolated_margin(c.exchange, c.me, c.params),
    ),
    ("POST", "/fapi/v1/leverage"): (
        Security.TRADE,
        lambda c: trading.change_leverage(c.exchange, c.me, c.params),
    ),
    ("POST", "/fapi/v1/marginType"): (
        Security.TRADE,
        lambda c: trading.change_margin_type(c.exchange, c.me, c.params),
    ),
}


async def _apply_fault(fault: Fault) -> web.Response | None:
    if fault.delay_s:
        await asyncio.sleep(fault.delay_s)
    if fault.status is None:
        return None
    if isinstance(fault.body, str):
        return web.Response(text=fault.body, status=fault.status, headers=fault.headers)
    return json_response(fault.body or {}, fault.status, fault.headers)


async def dispatch(request: web.Request) -> web.Response:
    exchange = request.app[EXCHANGE_KEY]
    exchange.requests.append(f"{request.method} {request.path}")
    fault = exchange.take_fault(request.path)
    if fault is not None and not fault.execute_first:
        scripted = await _apply_fault(fault)
        if scripted is not None:
            return scripted
    response = await _handle(request, exchange)
    if fault is not None and fault.execute_first:
        await asyncio.sleep(fault.delay_s)
    return response


async def _handle(request: web.Request, exchange: SimExchange) -> web.Response:
    try:
        route = ROUTES.get((request.method, request.path))
        if route is None:
            raise errors.invalid_path(request.path, request.method)
        security, handler = route
        raw_query = request.rel_url.raw_query_string
        raw_body = await request.text() if request.can_read_body else ""
        account = None
        api_key = request.headers.get("X-MBX-APIKEY")
        if security is Security.USER_STREAM:
            account = api_key_account(exchange, api_key)
        elif security is not Security.PUBLIC:
            account = authenticate(exchange, api_key, raw_query, raw_body)
            if security is Security.TRADE and not account.can_trade:
                raise errors.invalid_api_key()
        call = Call(exchange, parse_params(raw_query, raw_body), account)
        return json_response(handler(call))
    except BinanceApiError as error:
        return json_response(error.body(), error.status)
    except Exception:
        log.exception("simulator failed on %s %s", request.method, request.path)
        return json_response(
            {"code": -1000, "msg": "An unknown error occurred while processing the request."},
            500,
        )


def build_app(exchange: SimExchange) -> web.Application:
    """An aiohttp app serving `exchange`'s REST and websocket streams on one origin.

    Run it with monitor.simulator.http.LocalServer. The stream hub (`app[STREAMS_KEY]`)
    publishes mark prices when told to and carries the stream fault hooks. Stream routes
    come first: the REST catch-all would otherwise answer them with a Binance 404.
    """
    app = web.Application()
    app[EXCHANGE_KEY] = exchange
    hub = StreamHub(exchange)
    app[STREAMS_KEY] = hub
    hub.add_routes(app)
    app.on_shutdown.append(lambda _app: hub.close_all())
    app.router.add_route("*", "/{tail:.*}", dispatch)
    return app
