"""A local server speaking the Binance COIN-M (dapi) calls a defense executor makes, for
unmodified ccxt `binancecoinm`.

Why a server of its own: the simulator (monitor/simulator/binance_usdm) speaks USD-M
only, and a COIN-M account differs where money moves: sizes are whole contracts of a USD
face value (`contractSize`: 100 for BTCUSD_PERP, 10 for the others), and margin, PnL and
fees are in the coin. This is the cheapest route to the real wire for the executor: the
same signing (HMAC-SHA256 of the query, `X-MBX-APIKEY`, `recvWindow`), endpoints, reply
shapes and error codes as Binance's "COIN-M Futures" API documentation, and nothing the
executor does not call. Figures follow Binance's COIN-M rules (margin-models.md):
uPnL (coin) = side x N x cs x (1/entry - 1/mark).

Endpoints (ccxt method in brackets):
- GET /dapi/v1/exchangeInfo [load_markets with `fetchCurrencies` off]
- POST /dapi/v1/order [create_order, `newClientOrderId`], GET /dapi/v1/order
  [fetch_order with `origClientOrderId`]: a MARKET or crossing IOC LIMIT order fills at
  the mark at once, but the reply is the acknowledgement Binance sends (status NEW,
  executedQty 0): the fill is read with the lookup. -2013 "Order does not exist.",
  -2022 "ReduceOnly Order is rejected.", -4116 duplicate client order id while open.
- POST /dapi/v1/positionMargin [dapiPrivatePostPositionMargin]: type 1 add, 2 reduce;
  -4050 "Cross balance insufficient." when the coin's cross wallet cannot fund the add.
- GET /dapi/v1/positionRisk, GET /dapi/v1/account, GET /dapi/v2/leverageBracket: what
  the monitor's COIN-M adapter reads (positions, cross wallets, brackets by contracts)
- POST /sapi/v1/asset/transfer (MAIN_CMFUTURE, FUNDING_CMFUTURE) and GET
  /sapi/v1/asset/transfer [transfer / fetch_transfers]: reply `{"tranId"}`; -5013
  "Asset transfer failed: insufficient balance".
- GET /sapi/v1/account/apiRestrictions [sapi_get_account_apirestrictions]

`MarkStream` serves the COIN-M mark-price stream (dstream's combined `/stream`).

`fail_next_order` applies a tests.servers.faults fault to the next order's reply after
it filled (VENUE_TIMEOUT is Binance's -1007 "Timeout waiting for response from backend
server. Send status unknown; execution status unknown.").
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qsl

import ccxt.async_support as ccxt_async
import orjson
from aiohttp import web

from monitor.exchange.urls import rebase_urls
from monitor.simulator.binance_usdm.auth import sign, split_signature
from tests.servers.faults import OrderFault, transport_fault

TEST_KEY = "coinm-test-key"
TEST_SECRET = "coinm-test-secret"
TAKER = Decimal("0.0005")
RECV_WINDOW_MS = 5000


@dataclass
class Contract:
    symbol: str
    base: str
    contract_size: int
    tick: str


@dataclass
class CoinPosition:
    symbol: str
    amount: int
    """Signed contracts (one-way mode)."""
    entry: Decimal
    leverage: int
    isolated_wallet: Decimal | None = None
    """None: cross."""


@dataclass
class CoinOrder:
    order_id: int
    client_order_id: str
    symbol: str
    side: str
    order_type: str
    quantity: int
    price: Decimal
    reduce_only: bool
    status: str
    executed: int
    average: Decimal
    time_ms: int


@dataclass
class Transfer:
    tran_id: int
    asset: str
    amount: Decimal
    kind: str
    time_ms: int


@dataclass
class CoinmState:
    contracts: dict[str, Contract]
    marks: dict[str, Decimal]
    positions: list[CoinPosition]
    wallets: dict[str, Decimal]
    """Futures (COIN-M) wallet by coin, isolated wallets included."""
    spot: dict[str, Decimal] = field(default_factory=dict)
    funding: dict[str, Decimal] = field(default_factory=dict)
    orders: list[CoinOrder] = field(default_factory=list)
    margin_changes: list[tuple[str, Decimal, int]] = field(default_factory=list)
    transfers: list[Transfer] = field(default_factory=list)
    can_withdraw: bool = False
    can_transfer: bool = True
    fail_next_order: OrderFault | None = None
    requests: list[str] = field(default_factory=list)
    ids: itertools.count = field(default_factory=lambda: itertools.count(1000))

    def position(self, symbol: str) -> CoinPosition | None:
        return next((p for p in self.positions if p.symbol == symbol and p.amount), None)


def btc_account() -> CoinmState:
    """A BTC-margined account: a cross BTCUSD_PERP long of 300 contracts (30,000 USD) at
    60,000 and an isolated ETHUSD_PERP long of 1,000 contracts (10,000 USD) at 3,000 with
    0.4 ETH posted; 0.6 BTC in the futures wallet, 0.2 BTC in spot, 1 ETH in funding."""
    contracts = {
        "BTCUSD_PERP": Contract("BTCUSD_PERP", "BTC", 100, "0.1"),
        "ETHUSD_PERP": Contract("ETHUSD_PERP", "ETH", 10, "0.01"),
    }
    return CoinmState(
        contracts=contracts,
        marks={"BTCUSD_PERP": Decimal("58000"), "ETHUSD_PERP": Decimal("2900")},
        positions=[
            CoinPosition("BTCUSD_PERP", 300, Decimal("60000"), 20),
            CoinPosition("ETHUSD_PERP", 1000, Decimal("3000"), 10, Decimal("0.4")),
        ],
        wallets={"BTC": Decimal("0.6"), "ETH": Decimal("0.4")},
        spot={"BTC": Decimal("0.2")},
        funding={"ETH": Decimal("1")},
    )


class BinanceError(Exception):
    def __init__(self, code: int, msg: str, status: int = 400) -> None:
        super().__init__(msg)
        self.code, self.msg, self.status = code, msg, status


def _now_ms() -> int:
    return int(time.time() * 1000)


def _upnl(state: CoinmState, position: CoinPosition) -> Decimal:
    size = state.contracts[position.symbol].contract_size
    mark = state.marks[position.symbol]
    return position.amount * size * (1 / position.entry - 1 / mark)


def _cross_wallet(state: CoinmState, coin: str) -> Decimal:
    isolated = sum(
        (p.isolated_wallet or Decimal(0))
        for p in state.positions
        if state.contracts[p.symbol].base == coin
    )
    return state.wallets.get(coin, Decimal(0)) - isolated


# --- handlers ------------------------------------------------------------------------


def _exchange_info(state: CoinmState, params: dict[str, str]) -> Any:
    symbols = [
        {
            "symbol": c.symbol, "pair": c.symbol.split("_")[0], "contractType": "PERPETUAL",
            "deliveryDate": 4133404800000, "onboardDate": 1597042800000,
            "contractStatus": "TRADING", "contractSize": c.contract_size,
            "marginAsset": c.base, "quoteAsset": "USD", "baseAsset": c.base,
            "underlyingType": "COIN", "pricePrecision": 1, "quantityPrecision": 0,
            "baseAssetPrecision": 8, "quotePrecision": 8,
            "filters": [
                {"filterType": "PRICE_FILTER", "tickSize": c.tick, "minPrice": c.tick,
                 "maxPrice": "4520958"},
                {"filterType": "LOT_SIZE", "stepSize": "1", "minQty": "1", "maxQty": "1000000"},
                {"filterType": "MARKET_LOT_SIZE", "stepSize": "1", "minQty": "1",
                 "maxQty": "60000"},
            ],
            "orderTypes": ["LIMIT", "MARKET"], "timeInForce": ["GTC", "IOC"],
        }
        for c in state.contracts.values()
    ]  # fmt: skip
    return {"timezone": "UTC", "serverTime": _now_ms(), "rateLimits": [], "symbols": symbols}


def _order_row(state: CoinmState, order: CoinOrder, *, ack: bool = False) -> dict[str, Any]:
    size = state.contracts[order.symbol].contract_size
    executed = 0 if ack else order.executed
    base = executed * size / order.average if executed and order.average else Decimal(0)
    return {
        "orderId": order.order_id, "symbol": order.symbol, "pair": order.symbol.split("_")[0],
        "status": "NEW" if ack else order.status, "clientOrderId": order.client_order_id,
        "price": str(order.price), "avgPrice": "0" if ack else str(order.average),
        "origQty": str(order.quantity), "executedQty": str(executed),
        "cumQty": str(executed), "cumBase": str(base), "timeInForce": "IOC" if
        order.order_type == "LIMIT" else "GTC", "type": order.order_type,
        "origType": order.order_type, "reduceOnly": order.reduce_only,
        "closePosition": False, "side": order.side, "positionSide": "BOTH",
        "stopPrice": "0", "workingType": "CONTRACT_PRICE", "priceProtect": False,
        "time": order.time_ms, "updateTime": order.time_ms,
    }  # fmt: skip


def _new_order(state: CoinmState, params: dict[str, str]) -> Any:
    symbol = params.get("symbol", "")
    if symbol not in state.contracts:
        raise BinanceError(-1121, "Invalid symbol.")
    side, order_type = params.get("side"), params.get("type")
    quantity = Decimal(params.get("quantity", "0"))
    if quantity <= 0 or quantity != quantity.to_integral_value():
        raise BinanceError(-1111, "Precision is over the maximum defined for this asset.")
    client_id = params.get("newClientOrderId") or f"web_{next(state.ids)}"
    if any(o.client_order_id == client_id and o.status == "NEW" for o in state.orders):
        raise BinanceError(-4116, "ClientOrderId is duplicated.")
    reduce_only = params.get("reduceOnly") == "true"
    position = state.position(symbol)
    closing = position is not None and (position.amount > 0) == (side == "SELL")
    if reduce_only and not closing:
        raise BinanceError(-2022, "ReduceOnly Order is rejected.")
    if not reduce_only:
        raise BinanceError(-1106, "this test server only serves reduce-only orders")
    assert position is not None
    mark = state.marks[symbol]
    price = Decimal(params.get("price") or "0")
    crosses = order_type == "MARKET" or (price <= mark if side == "SELL" else price >= mark)
    contracts = min(int(quantity), abs(position.amount)) if crosses else 0
    order = CoinOrder(
        next(state.ids), client_id, symbol, str(side), str(order_type), int(quantity),
        price, reduce_only, "FILLED" if contracts else "EXPIRED", contracts,
        mark if contracts else Decimal(0), _now_ms(),
    )  # fmt: skip
    if contracts:
        _fill(state, position, contracts)
    state.orders.append(order)
    return _order_row(state, order, ack=True)


def _fill(state: CoinmState, position: CoinPosition, contracts: int) -> None:
    """Close `contracts` at the mark: PnL and the taker fee in coin; an isolated position
    releases its wallet in proportion (what stays is the rest's)."""
    contract = state.contracts[position.symbol]
    mark = state.marks[position.symbol]
    sign = 1 if position.amount > 0 else -1
    face = contracts * contract.contract_size
    realised = sign * face * (1 / position.entry - 1 / mark)
    fee = face / mark * TAKER
    state.wallets[contract.base] += realised - fee
    left = abs(position.amount) - contracts
    if position.isolated_wallet is not None:
        position.isolated_wallet = (
            position.isolated_wallet * left / abs(position.amount) + realised - fee
        )
    position.amount = sign * left


def _query_order(state: CoinmState, params: dict[str, str]) -> Any:
    wanted = params.get("origClientOrderId")
    order_id = params.get("orderId")
    for order in state.orders:
        if order.symbol == params.get("symbol") and (
            order.client_order_id == wanted or str(order.order_id) == order_id
        ):
            return _order_row(state, order)
    raise BinanceError(-2013, "Order does not exist.")


def _position_margin(state: CoinmState, params: dict[str, str]) -> Any:
    position = state.position(params.get("symbol", ""))
    if position is None or position.isolated_wallet is None:
        raise BinanceError(-4046, "No need to change margin type.")
    amount = Decimal(params.get("amount", "0"))
    kind = int(params.get("type", "0"))
    coin = state.contracts[position.symbol].base
    if kind == 1:
        if amount > _cross_wallet(state, coin):
            raise BinanceError(-4050, "Cross balance insufficient.")
        position.isolated_wallet += amount
    elif kind == 2:
        if amount > position.isolated_wallet:
            raise BinanceError(-4051, "Isolated balance insufficient.")
        position.isolated_wallet -= amount
    else:
        raise BinanceError(-1102, "Mandatory parameter 'type' was not sent.")
    state.margin_changes.append((position.symbol, amount, kind))
    return {"amount": float(amount), "code": 200, "msg": "Successfully modify position margin.",
            "type": kind}  # fmt: skip


def _position_risk(state: CoinmState, params: dict[str, str]) -> Any:
    rows = []
    for p in state.positions:
        contract = state.contracts[p.symbol]
        isolated = p.isolated_wallet is not None
        rows.append({
            "symbol": p.symbol, "positionAmt": str(p.amount), "entryPrice": str(p.entry),
            "breakEvenPrice": str(p.entry), "markPrice": str(state.marks[p.symbol]),
            "unRealizedProfit": str(_upnl(state, p)), "liquidationPrice": "0",
            "leverage": str(p.leverage), "maxQty": "100000",
            "marginType": "isolated" if isolated else "cross",
            "isolatedMargin": str(p.isolated_wallet or 0),
            "isolatedWallet": str(p.isolated_wallet or 0), "isAutoAddMargin": "false",
            "positionSide": "BOTH",
            "notionalValue": str(p.amount * contract.contract_size / state.marks[p.symbol]),
            "updateTime": _now_ms(),
        })  # fmt: skip
    return rows


MMR = {"BTCUSD_PERP": Decimal("0.005"), "ETHUSD_PERP": Decimal("0.01")}
"""One bracket per pair (qtyCap far above any fixture), cum 0."""


def _maint_margin(state: CoinmState, position: CoinPosition) -> Decimal:
    """Coin MM = |N| x cs / mark x MMR - cum (cum 0 here)."""
    face = abs(position.amount) * state.contracts[position.symbol].contract_size
    return face / state.marks[position.symbol] * MMR[position.symbol]


def _account(state: CoinmState, params: dict[str, str]) -> Any:
    """`GET /dapi/v1/account`: per coin, the wallet (isolated wallets included), the
    cross wallet, the MM of every position and the cross uPnL."""
    assets = []
    for coin, wallet in state.wallets.items():
        held = [p for p in state.positions if p.amount and state.contracts[p.symbol].base == coin]
        upnl = sum((_upnl(state, p) for p in held), Decimal(0))
        cross_upnl = sum((_upnl(state, p) for p in held if p.isolated_wallet is None), Decimal(0))
        mm = sum((_maint_margin(state, p) for p in held), Decimal(0))
        assets.append({
            "asset": coin, "walletBalance": str(wallet), "unrealizedProfit": str(upnl),
            "marginBalance": str(wallet + upnl), "maintMargin": str(mm),
            "initialMargin": "0", "positionInitialMargin": "0", "openOrderInitialMargin": "0",
            "maxWithdrawAmount": str(_cross_wallet(state, coin)),
            "crossWalletBalance": str(_cross_wallet(state, coin)),
            "crossUnPnl": str(cross_upnl), "availableBalance": str(_cross_wallet(state, coin)),
            "updateTime": _now_ms(),
        })  # fmt: skip
    return {"assets": assets, "positions": [], "canDeposit": True, "canTrade": True,
            "canWithdraw": True, "feeTier": 0, "updateTime": _now_ms()}  # fmt: skip


def _leverage_bracket(state: CoinmState, params: dict[str, str]) -> Any:
    """`GET /dapi/v2/leverageBracket`: brackets by contract count (qtyFloor, qtyCap)."""
    return [
        {"symbol": symbol, "notionalCoef": 1.0, "brackets": [
            {"bracket": 1, "initialLeverage": 125, "qtyCap": 1_000_000, "qtyFloor": 0,
             "maintMarginRatio": float(MMR[symbol]), "cum": 0.0}]}
        for symbol in state.contracts
    ]  # fmt: skip


TRANSFER_TYPES = {"MAIN_CMFUTURE": "spot", "FUNDING_CMFUTURE": "funding"}


def _transfer(state: CoinmState, params: dict[str, str]) -> Any:
    if not state.can_transfer:
        raise BinanceError(-1002, "You are not authorized to execute this request.", 401)
    kind = params.get("type", "")
    if kind not in TRANSFER_TYPES:
        raise BinanceError(-1102, "Mandatory parameter 'type' was not sent.")
    wallet = state.spot if TRANSFER_TYPES[kind] == "spot" else state.funding
    asset, amount = params.get("asset", ""), Decimal(params.get("amount", "0"))
    if amount <= 0 or amount > wallet.get(asset, Decimal(0)):
        raise BinanceError(-5013, "Asset transfer failed: insufficient balance")
    wallet[asset] -= amount
    state.wallets[asset] = state.wallets.get(asset, Decimal(0)) + amount
    transfer = Transfer(next(state.ids), asset, amount, kind, _now_ms())
    state.transfers.append(transfer)
    return {"tranId": transfer.tran_id}


def _transfer_history(state: CoinmState, params: dict[str, str]) -> Any:
    since = int(params.get("startTime", "0"))
    rows = [
        {"asset": t.asset, "amount": str(t.amount), "type": t.kind, "status": "CONFIRMED",
         "tranId": t.tran_id, "timestamp": t.time_ms}
        for t in state.transfers
        if t.kind == params.get("type") and t.time_ms >= since
    ]  # fmt: skip
    return {"total": len(rows), "rows": rows}


def _api_restrictions(state: CoinmState, params: dict[str, str]) -> Any:
    return {
        "ipRestrict": False, "createTime": 1735689600000, "enableReading": True,
        "enableFutures": True, "enableWithdrawals": state.can_withdraw,
        "permitsUniversalTransfer": state.can_transfer, "enableInternalTransfer": False,
        "enableMargin": False, "enableSpotAndMarginTrading": False,
        "enableVanillaOptions": False, "enablePortfolioMarginTrading": False,
    }  # fmt: skip


PUBLIC = {("GET", "/dapi/v1/exchangeInfo"): _exchange_info}
SIGNED = {
    ("POST", "/dapi/v1/order"): _new_order,
    ("GET", "/dapi/v1/order"): _query_order,
    ("POST", "/dapi/v1/positionMargin"): _position_margin,
    ("GET", "/dapi/v1/positionRisk"): _position_risk,
    ("GET", "/dapi/v1/account"): _account,
    ("GET", "/dapi/v2/leverageBracket"): _leverage_bracket,
    ("POST", "/sapi/v1/asset/transfer"): _transfer,
    ("GET", "/sapi/v1/asset/transfer"): _transfer_history,
    ("GET", "/sapi/v1/account/apiRestrictions"): _api_restrictions,
}


def _check_signature(request: web.Request, body: str) -> dict[str, str]:
    """Binance's SIGNED rule: HMAC-SHA256(secret, query + body) in hex, the key in
    X-MBX-APIKEY, a timestamp within recvWindow."""
    if request.headers.get("X-MBX-APIKEY") != TEST_KEY:
        raise BinanceError(-2015, "Invalid API-key, IP, or permissions for action.", 401)
    query, signature = split_signature(request.query_string)
    body_rest, body_signature = split_signature(body)
    params = dict(parse_qsl(request.query_string)) | dict(parse_qsl(body))
    if sign(TEST_SECRET, query + body_rest) != (signature or body_signature):
        raise BinanceError(-1022, "Signature for this request is not valid.")
    window = int(params.get("recvWindow", RECV_WINDOW_MS))
    if _now_ms() - int(params.get("timestamp", "0")) > window:
        raise BinanceError(-1021, "Timestamp for this request is outside of the recvWindow.")
    params.pop("signature", None)
    return params


async def _dispatch(request: web.Request) -> web.Response:
    state = request.app[STATE]
    route = (request.method, request.path)
    state.requests.append(f"{request.method} {request.path}")
    body = await request.text()
    try:
        if route in PUBLIC:
            reply = PUBLIC[route](state, dict(request.query))
        elif route in SIGNED:
            reply = SIGNED[route](state, _check_signature(request, body))
        else:
            return web.Response(status=404)
    except BinanceError as err:
        return web.Response(
            status=err.status, body=orjson.dumps({"code": err.code, "msg": err.msg}),
            content_type="application/json",
        )  # fmt: skip
    fault = state.fail_next_order if route == ("POST", "/dapi/v1/order") else None
    if fault is not None:
        state.fail_next_order = None
        failed = await transport_fault(request, fault)
        return failed or web.Response(
            status=503, content_type="application/json",
            body=orjson.dumps({"code": -1007, "msg": "Timeout waiting for response from "
                               "backend server. Send status unknown; execution status "
                               "unknown."}),
        )  # fmt: skip
    return web.Response(body=orjson.dumps(reply), content_type="application/json")


STATE = web.AppKey("state", CoinmState)


def create_app(state: CoinmState) -> web.Application:
    app = web.Application()
    app[STATE] = state
    app.router.add_route("*", "/{tail:.*}", _dispatch)
    return app


class MarkStream:
    """The COIN-M mark-price stream (`wss://dstream.binance.com/stream?streams=
    btcusd_perp@markPrice@1s/...`): a websockets handler (tests/test_feeds_support.py
    `WsServer`) sending, for every stream named in the URL, Binance's combined-stream frame
    `{"stream", "data": {"e": "markPriceUpdate", "E", "s", "p", "P", "r", "T"}}` of the
    server's current mark, every `period` seconds (Binance: every second)."""

    def __init__(self, state: CoinmState, period: float = 0.05) -> None:
        self.state = state
        self.period = period

    async def __call__(self, ws: Any) -> None:
        query = dict(parse_qsl(ws.request.path.partition("?")[2]))
        streams = [s for s in query.get("streams", "").split("/") if s]
        ids = {s.partition("@")[0].upper(): s for s in streams}
        with contextlib.suppress(Exception):
            while True:
                for market_id, stream in ids.items():
                    mark = self.state.marks.get(market_id)
                    if mark is None:
                        continue
                    data = {"e": "markPriceUpdate", "E": _now_ms(), "s": market_id,
                            "p": str(mark), "P": str(mark), "r": "0.0001", "T": 0}  # fmt: skip
                    await ws.send(orjson.dumps({"stream": stream, "data": data}).decode())
                await asyncio.sleep(self.period)


def make_client(base_url: str) -> Any:
    """Unmodified ccxt binancecoinm pointed at the server (no currency list, no rate
    limiter)."""
    client = ccxt_async.binancecoinm(
        {"apiKey": TEST_KEY, "secret": TEST_SECRET, "enableRateLimit": False,
         "options": {"fetchCurrencies": False}}
    )  # fmt: skip
    client.urls["api"] = rebase_urls(client.urls["api"], base_url)
    return client
