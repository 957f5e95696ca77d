"""Bybit v5's REST dialect over the simulated ledger, for unmodified ccxt `bybit`.

Client settings that work (as for the Bybit test server): `options['fetchMarkets'] =
{'types': ['linear']}` (or linear and inverse: inverse lists nothing), `has
['fetchCurrencies'] = False`, and `urls['api']` rebased on the venue's origin. Private
requests are signed Bybit's way (`wire.check_signature`); an unknown key is retCode
10003 with HTTP 401. An unknown path gets HTTP 404, never an empty 200. Scripted faults
(`SimExchange.faults`, keyed by path) apply as on the Binance dialect: a delay, a
status, or a reply held back after the request was carried out.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson
from aiohttp import web

from monitor.simulator.binance_usdm.state import SimAccount, SimExchange
from monitor.simulator.bybit_v5 import render, trading
from monitor.simulator.bybit_v5.streams import TickerStreams
from monitor.simulator.bybit_v5.wire import (
    BybitError,
    check_signature,
    error_reply,
    fund_coins_balance,
    limit,
    now_ms,
    order_number,
    paginate,
    param_error,
    reply,
    text,
)
from monitor.simulator.candles import candles, window

log = logging.getLogger(__name__)

EXCHANGE_KEY = web.AppKey("bybit_v5_exchange", SimExchange)
STREAMS_KEY = web.AppKey("bybit_v5_streams", TickerStreams)
USER_ID = 100200300
KLINE_INTERVALS = {
    **{str(m): m * 60_000 for m in (1, 3, 5, 15, 30, 60, 120, 240, 360, 720)},
    "D": 86_400_000, "W": 7 * 86_400_000,
}  # fmt: skip
REALTIME_CLOSED_KEPT = 500
"""Bybit keeps the latest 500 closed orders for `/v5/order/realtime?openOnly=1`."""


@dataclass(frozen=True, slots=True)
class Call:
    exchange: SimExchange
    params: dict[str, Any]
    account: SimAccount | None

    @property
    def me(self) -> SimAccount:
        assert self.account is not None
        return self.account


Handler = Callable[[Call], dict[str, Any]]


def _category(params: dict[str, Any], allowed: tuple[str, ...] = ("linear", "inverse")) -> str:
    category = params.get("category")
    if not category:
        raise param_error("params error: category is required")
    if category not in allowed:
        raise BybitError(181001, f"category only support {', '.join(allowed)}")
    return str(category)


def _symbols(call: Call, category: str) -> list[str]:
    """The category's symbols (linear: every market; inverse: none), or the one asked."""
    symbols = list(call.exchange.markets) if category == "linear" else []
    wanted = call.params.get("symbol")
    if wanted:
        if wanted not in symbols:
            raise param_error("params error: symbol invalid")
        return [str(wanted)]
    return symbols


def _page(rows: list[Any], params: dict[str, Any], default: int, maximum: int) -> dict[str, Any]:
    """One page of a list reply, sized by the request's `limit`."""
    page, following = paginate(rows, limit(params, default, maximum), params.get("cursor"))
    return {"list": page, "nextPageCursor": following}


# --- public ----------------------------------------------------------------------------


def _time(call: Call) -> dict[str, Any]:
    ns = now_ms() * 1_000_000
    return {"timeSecond": str(ns // 1_000_000_000), "timeNano": str(ns)}


def _instruments(call: Call) -> dict[str, Any]:
    category = _category(call.params, ("linear", "inverse", "spot", "option"))
    trading_now = call.params.get("status", "Trading") == "Trading"
    symbols = _symbols(call, category) if category == "linear" and trading_now else []
    rows = [render.instrument(call.exchange.market(s)) for s in symbols]
    return {"category": category, **_page(rows, call.params, 500, 1000)}


def _tickers(call: Call) -> dict[str, Any]:
    category = _category(call.params, ("linear", "inverse", "spot", "option"))
    symbols = _symbols(call, category) if category in ("linear", "inverse") else []
    return {"category": category, "list": [render.ticker(call.exchange, s) for s in symbols]}


def _risk_limit(call: Call) -> dict[str, Any]:
    category = _category(call.params)
    rows = [row for s in _symbols(call, category) for row in render.risk_limits(s)]
    return {"category": category, **_page(rows, {"cursor": call.params.get("cursor")}, 200, 200)}


def _kline(call: Call) -> dict[str, Any]:
    category = _category(call.params, ("linear", "inverse", "spot"))
    symbol = str(call.params.get("symbol") or "")
    if symbol not in call.exchange.markets:
        raise param_error("params error: symbol invalid")
    step = KLINE_INTERVALS.get(str(call.params.get("interval")))
    if step is None:
        raise param_error("params error: interval invalid")
    start = int(call.params["start"]) if call.params.get("start") else None
    end = int(call.params["end"]) if call.params.get("end") else None
    history = call.exchange.price_history.get(symbol, [])
    rows = window(candles(history, step), start, end, limit(call.params, 200, 1000))

    wire = [[str(at), *(text(x) for x in (o, h, lo, c)), "0", "0"] for at, o, h, lo, c in rows]
    return {"category": category, "symbol": symbol, "list": wire[::-1]}


# --- private: reads --------------------------------------------------------------------


def _query_api(call: Call) -> dict[str, Any]:
    return render.api_key(call.me, USER_ID)


def _account_info(call: Call) -> dict[str, Any]:
    return {
        "marginMode": "REGULAR_MARGIN",
        "updatedTime": "1735689600000",
        "unifiedMarginStatus": 6,
        "dcpStatus": "OFF",
        "timeWindow": 10,
        "smpGroup": 0,
        "isMasterTrader": False,
        "spotHedgingStatus": "OFF",
    }


def _wallet_balance(call: Call) -> dict[str, Any]:
    account_type = call.params.get("accountType")
    if not account_type:
        raise param_error("params error: accountType is required")
    if account_type != "UNIFIED":
        raise param_error("accountType only support UNIFIED.")
    return {"list": [render.wallet(call.exchange, call.me)]}


def _fee_rate(call: Call) -> dict[str, Any]:
    category = _category(call.params)
    rate = text(call.me.taker_fee_rate)
    maker = text(call.me.maker_fee_rate)
    rows = [
        {"symbol": s, "takerFeeRate": rate, "makerFeeRate": maker} for s in _symbols(call, category)
    ]
    return {"category": category, "list": rows}


def _position_list(call: Call) -> dict[str, Any]:
    category = _category(call.params)
    symbol, settle = call.params.get("symbol"), call.params.get("settleCoin")
    if category == "linear" and not symbol and not settle:
        raise param_error("params error: symbol or settleCoin is required")
    legs = [] if category != "linear" else call.me.open_positions()
    if symbol:
        _symbols(call, category)
        legs = [p for p in legs if p.symbol == symbol]
    if settle:
        legs = [p for p in legs if call.exchange.market(p.symbol).margin_asset == settle]
    rows = [render.position(call.exchange, call.me, p) for p in legs]
    if symbol and not rows:
        market = call.exchange.market(str(symbol))
        rows = [render.empty_position(market, call.me.settings(market.symbol).leverage)]
    return {"category": category, **_page(rows, call.params, 20, 200)}


def _orders(*, history: bool) -> Handler:
    """`/v5/order/realtime` and `/v5/order/history`, filtered by orderId, else
    orderLinkId, else symbol; newest first. Realtime without `openOnly=1` lists open
    orders only, and orders never rest here, so a filled order is found with
    `openOnly=1` (the latest 500 closed ones) or in the history."""

    def handler(call: Call) -> dict[str, Any]:
        category = _category(call.params, ("linear", "inverse", "spot", "option"))
        rows = call.me.orders if category == "linear" else []
        if not history:
            closed = str(call.params.get("openOnly", "0")) == "1"
            rows = rows[-REALTIME_CLOSED_KEPT:] if closed else []
        params = call.params
        if params.get("orderId"):
            number = order_number(str(params["orderId"]))
            rows = [o for o in rows if o.order_id == number]
        elif params.get("orderLinkId"):
            rows = [o for o in rows if o.client_order_id == params["orderLinkId"]]
        elif params.get("symbol"):
            rows = [o for o in rows if o.symbol == params["symbol"]]
        wire = [render.order(o) for o in reversed(rows)]
        return {"category": category, **_page(wire, params, 20, 50)}

    return handler


def _transfer_list(call: Call) -> dict[str, Any]:
    rows = list(reversed(call.me.transfers))
    if call.params.get("transferId"):
        rows = [t for t in rows if t.client_id == call.params["transferId"]]
    if call.params.get("coin"):
        rows = [t for t in rows if t.asset == call.params["coin"]]
    return _page([render.transfer(t) for t in rows], call.params, 20, 50)


def _coins_balance(call: Call) -> dict[str, Any]:
    """`query-account-coins-balance?accountType=FUND`: the reserve outside the UTA."""
    balances = {coin: text(amount) for coin, amount in call.me.funding.items()}
    return fund_coins_balance(call.params, balances)


# --- private: writes -------------------------------------------------------------------


def _order_create(call: Call) -> dict[str, Any]:
    request = trading.parse_order(call.exchange, call.me, call.params)
    order = trading.place_order(call.exchange, call.me, request)
    return {"orderId": render.order_uuid(order.order_id), "orderLinkId": order.client_order_id}


def _add_margin(call: Call) -> dict[str, Any]:
    """The reply is the position row with its category (v5 "Add Or Reduce Margin")."""
    position = trading.add_margin(call.exchange, call.me, call.params)
    return {"category": "linear", **render.position(call.exchange, call.me, position)}


def _inter_transfer(call: Call) -> dict[str, Any]:
    record = trading.inter_transfer(call.exchange, call.me, call.params)
    return {"transferId": record.client_id, "status": "SUCCESS"}


PUBLIC: dict[tuple[str, str], Handler] = {
    ("GET", "/v5/market/time"): _time,
    ("GET", "/v5/market/instruments-info"): _instruments,
    ("GET", "/v5/market/tickers"): _tickers,
    ("GET", "/v5/market/risk-limit"): _risk_limit,
    ("GET", "/v5/market/kline"): _kline,
}
PRIVATE: dict[tuple[str, str], Handler] = {
    ("GET", "/v5/user/query-api"): _query_api,
    ("GET", "/v5/account/info"): _account_info,
    ("GET", "/v5/account/wallet-balance"): _wallet_balance,
    ("GET", "/v5/account/fee-rate"): _fee_rate,
    ("GET", "/v5/position/list"): _position_list,
    ("POST", "/v5/position/add-margin"): _add_margin,
    ("POST", "/v5/order/create"): _order_create,
    ("GET", "/v5/order/realtime"): _orders(history=False),
    ("GET", "/v5/order/history"): _orders(history=True),
    ("POST", "/v5/asset/transfer/inter-transfer"): _inter_transfer,
    ("GET", "/v5/asset/transfer/query-inter-transfer-list"): _transfer_list,
    ("GET", "/v5/asset/transfer/query-account-coins-balance"): _coins_balance,
}


def _authenticate(exchange: SimExchange, request: web.Request, payload: str) -> SimAccount:
    api_key = request.headers.get("X-BAPI-API-KEY", "")
    account = exchange.account(api_key)
    if account is None:
        raise BybitError(10003, "API key is invalid.", http_status=401)
    check_signature(
        request.headers, secret=account.secret, api_key=api_key, payload=payload, now=now_ms()
    )
    return account


async def _handle(request: web.Request, exchange: SimExchange) -> web.Response:
    route = (request.method, request.path)
    handler = PUBLIC.get(route) or PRIVATE.get(route)
    if handler is None:
        return web.Response(status=404, text="404 page not found")
    try:
        raw_body = await request.text() if request.method == "POST" else ""
        if request.method == "POST":
            try:
                params = orjson.loads(raw_body) if raw_body else {}
            except orjson.JSONDecodeError:
                raise param_error("params error: request body is not valid JSON") from None
            if not isinstance(params, dict):
                raise param_error("params error: request body must be a JSON object")
        else:
            params = dict(request.query)
        account = None
        if route in PRIVATE:
            payload = raw_body if request.method == "POST" else request.rel_url.raw_query_string
            account = _authenticate(exchange, request, payload)
        return reply(handler(Call(exchange, params, account)))
    except BybitError as error:
        return error_reply(error)
    except Exception:
        log.exception("simulated Bybit failed on %s %s", request.method, request.path)
        return error_reply(BybitError(10016, "Internal server error.", http_status=500))


async def dispatch(request: web.Request) -> web.Response:
    exchange = request.app[EXCHANGE_KEY]
    exchange.requests.append(f"{request.method} {request.path}")
    fault = exchange.take_fault(request.path)
    if fault is not None and not fault.execute_first:
        await asyncio.sleep(fault.delay_s)
        if fault.status is not None:
            return web.json_response(fault.body or {}, status=fault.status, headers=fault.headers)
    response = await _handle(request, exchange)
    if fault is not None and fault.execute_first:
        await asyncio.sleep(fault.delay_s)
    return response


def build_app(exchange: SimExchange) -> web.Application:
    """An aiohttp app serving `exchange` in Bybit's dialect: REST and the public tickers
    stream on one origin (stream routes first, before the REST catch-all)."""
    app = web.Application()
    app[EXCHANGE_KEY] = exchange
    streams = TickerStreams(exchange)
    app[STREAMS_KEY] = streams
    streams.add_routes(app)
    app.on_shutdown.append(lambda _app: streams.close_all())
    app.router.add_route("*", "/{tail:.*}", dispatch)
    return app
