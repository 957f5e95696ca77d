"""A local server speaking enough of WEEX's contract REST API (v3) for unmodified ccxt `weex`.

Why it exists: WEEX is monitored through ccxt and the generic model; the honest test is
ccxt itself (request building, signing, parsing) against a server answering the way WEEX
does, with figures the test chose. Nothing here computes margin: WEEX's own figures
(liquidation price, uPnL, margins, balances) are stored as given.

Wire facts mirrored from ccxt 4.5.90 (`ccxt/async_support/weex.py`) and WEEX's v3 docs:

- Successful replies are bare JSON (a list or an object, no envelope); errors are
  `{"code": -1047, "msg": "..."}` (ccxt maps -1044/-1047/-1049 to AuthenticationError).
  Numbers are strings.
- Private requests carry `ACCESS-KEY`, `ACCESS-PASSPHRASE`, `ACCESS-TIMESTAMP` (ms) and
  `ACCESS-SIGN` = base64 HMAC-SHA256(secret, timestamp + METHOD + path?query + body).
- Position `size` and every order size are in base units; `contractVal` is a step, not a
  multiplier. WEEX publishes no maintenance margin rate in any v3 reply ccxt reads.
- A liquidation price of "0" means none was computed (WEEX does so for cross positions).
- Unknown paths get HTTP 404 with an error body, never an empty 200.

Client settings (what `monitor.venues.generic.adapter.WeexAdapter` sets):
`options['defaultType'] = 'swap'` and `has['fetchCurrencies'] = False` (else load_markets
calls `/api/v3/coins`, not served here). ccxt always loads spot markets too: the spot
exchangeInfo is served, empty. WEEX requires a passphrase (`password`).

Endpoints ccxt calls (all GET):
    load_markets       /api/v3/exchangeInfo (spot), /capi/v3/market/exchangeInfo
    fetch_positions    /capi/v3/account/position/allPosition          (signed)
    fetch_balance      /capi/v3/account/balance                       (signed)
    fetch_mark_prices  /capi/v3/market/premiumIndex

Not verified against the live exchange: the HTTP statuses paired with error codes, and
that `balance` includes the isolated margins (assumed: the fixture's `balance` is the
whole contract wallet, uPnL excluded).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Literal

import orjson
from aiohttp import web

FIXTURE_API_KEY = "weex-test-key"
FIXTURE_SECRET = "weex-test-secret"
FIXTURE_PASSPHRASE = "weex-test-passphrase"


@dataclass(slots=True)
class WeexContract:
    """One perpetual of `/capi/v3/market/exchangeInfo` (sizes in base units)."""

    symbol: str  # "BTCUSDT"
    base: str
    contract_val: float
    price_precision: int
    quantity_precision: int
    quote: str = "USDT"
    taker_fee: float = 0.0008
    maker_fee: float = 0.0002
    max_leverage: int = 400


@dataclass(slots=True)
class WeexPosition:
    """A row of `allPosition`, WEEX's own figures as given (`liquidate_price` 0 = none)."""

    position_id: int
    symbol: str
    side: Literal["LONG", "SHORT"]
    margin_type: Literal["CROSSED", "ISOLATED"]
    size: float
    open_value: float
    leverage: float
    margin_size: float
    isolated_margin: float
    unrealized_pnl: float
    liquidate_price: float


@dataclass(slots=True)
class WeexBalance:
    """A row of `/capi/v3/account/balance`; `balance` is the whole contract wallet."""

    asset: str
    balance: float
    available_balance: float
    frozen: float
    unrealized_pnl: float


@dataclass(slots=True)
class WeexApiKey:
    api_key: str
    secret: str
    passphrase: str


@dataclass(slots=True)
class RecordedRequest:
    method: str
    path: str
    query: dict[str, str]
    signed: bool


@dataclass(slots=True)
class WeexState:
    """Everything the server answers from; tests mutate it in place."""

    contracts: dict[str, WeexContract]
    marks: dict[str, float]
    positions: list[WeexPosition]
    balances: list[WeexBalance]
    api_keys: list[WeexApiKey] = field(
        default_factory=lambda: [WeexApiKey(FIXTURE_API_KEY, FIXTURE_SECRET, FIXTURE_PASSPHRASE)]
    )
    timestamp_tolerance_ms: int = 30_000
    requests: list[RecordedRequest] = field(default_factory=list, repr=False)


class WeexError(Exception):
    def __init__(self, code: int, msg: str, status: int = 400) -> None:
        super().__init__(f"{code} {msg}")
        self.code, self.msg, self.status = code, msg, status


def num(value: float) -> str:
    """A plain decimal string without float noise or exponent, as WEEX sends numbers."""
    text = format(Decimal(f"{value:.15g}").normalize(), "f")
    return "0" if text == "-0" else text


def _json(payload: Any, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(payload), status=status, content_type="application/json")


def _render_contract(c: WeexContract) -> dict[str, Any]:
    return {
        "symbol": c.symbol,
        "baseAsset": c.base,
        "quoteAsset": c.quote,
        "marginAsset": c.quote,
        "pricePrecision": c.price_precision,
        "quantityPrecision": c.quantity_precision,
        "baseAssetPrecision": c.quantity_precision,
        "quotePrecision": 8,
        "contractVal": num(c.contract_val),
        "delivery": ["00:00:00", "08:00:00", "16:00:00"],
        "forwardContractFlag": True,
        "minLeverage": 1,
        "maxLeverage": c.max_leverage,
        "buyLimitPriceRatio": "0.01",
        "sellLimitPriceRatio": "0.01",
        "makerFeeRate": num(c.maker_fee),
        "takerFeeRate": num(c.taker_fee),
        "minOrderSize": num(c.contract_val),
        "maxOrderSize": "1000000",
        "maxPositionSize": "5000000",
        "marketOpenLimitSize": "2300",
    }


def _render_position(p: WeexPosition) -> dict[str, Any]:
    now = int(time.time() * 1000)
    return {
        "id": p.position_id,
        "asset": "USDT",
        "symbol": p.symbol,
        "side": p.side,
        "marginType": p.margin_type,
        "separatedMode": "COMBINED",
        "separatedOpenOrderId": 0,
        "leverage": num(p.leverage),
        "size": num(p.size),
        "openValue": num(p.open_value),
        "openFee": "0",
        "fundingFee": "0",
        "marginSize": num(p.margin_size),
        "isolatedMargin": num(p.isolated_margin),
        "isAutoAppendIsolatedMargin": False,
        "cumOpenSize": num(p.size),
        "cumOpenValue": num(p.open_value),
        "cumOpenFee": "0",
        "cumCloseSize": "0",
        "cumCloseValue": "0",
        "cumCloseFee": "0",
        "cumFundingFee": "0",
        "cumLiquidateFee": "0",
        "createdMatchSequenceId": 5762536243,
        "updatedMatchSequenceId": 5762741613,
        "createdTime": now,
        "updatedTime": now,
        "unrealizePnl": num(p.unrealized_pnl),
        "liquidatePrice": num(p.liquidate_price),
    }


Handler = Callable[[WeexState, dict[str, str]], Any]


def _spot_exchange_info(_state: WeexState, _query: dict[str, str]) -> Any:
    """Spot is not served: the exchangeInfo shape with no symbols."""
    return {"timezone": "UTC", "serverTime": int(time.time() * 1000), "symbols": []}


def _contract_exchange_info(state: WeexState, _query: dict[str, str]) -> Any:
    assets = sorted({c.quote for c in state.contracts.values()})
    return {
        "assets": [{"asset": a, "marginAvailable": True} for a in assets],
        "symbols": [_render_contract(c) for c in state.contracts.values()],
    }


def _premium_index(state: WeexState, query: dict[str, str]) -> Any:
    symbol = query.get("symbol")
    now = int(time.time() * 1000)
    return [
        {"symbol": s, "markPrice": num(mark), "indexPrice": num(mark),
         "forecastFundingRate": "0.0001", "lastFundingRate": "0.0001", "interestRate": "0.001",
         "nextFundingTime": now + 3_600_000, "time": now, "collectCycle": 480}
        for s, mark in state.marks.items()
        if symbol is None or s == symbol
    ]  # fmt: skip


def _positions(state: WeexState, _query: dict[str, str]) -> Any:
    return [_render_position(p) for p in state.positions if p.size]


def _balance(state: WeexState, _query: dict[str, str]) -> Any:
    return [
        {"asset": b.asset, "balance": num(b.balance), "availableBalance": num(b.available_balance),
         "frozen": num(b.frozen), "unrealizePnl": num(b.unrealized_pnl)}
        for b in state.balances
    ]  # fmt: skip


PUBLIC_ROUTES: dict[str, Handler] = {
    "/api/v3/exchangeInfo": _spot_exchange_info,
    "/capi/v3/market/exchangeInfo": _contract_exchange_info,
    "/capi/v3/market/premiumIndex": _premium_index,
}
PRIVATE_ROUTES: dict[str, Handler] = {
    "/capi/v3/account/position/allPosition": _positions,
    "/capi/v3/account/balance": _balance,
}


def expected_signature(secret: str, timestamp: str, method: str, path_qs: str, body: str) -> str:
    """WEEX's signature: base64 HMAC-SHA256(secret, timestamp + METHOD + path?query + body),
    exactly what ccxt's weex.sign() builds."""
    message = f"{timestamp}{method.upper()}{path_qs}{body}".encode()
    return base64.b64encode(hmac.new(secret.encode(), message, hashlib.sha256).digest()).decode()


def _authenticate(request: web.Request, state: WeexState, body: str) -> None:
    headers = request.headers
    for name, code in (("ACCESS-KEY", -1040), ("ACCESS-SIGN", -1041), ("ACCESS-TIMESTAMP", -1042)):
        if not headers.get(name):
            raise WeexError(code, f"{name} header is required.", 401)
    key = next((k for k in state.api_keys if k.api_key == headers["ACCESS-KEY"]), None)
    if key is None:
        raise WeexError(-1044, "Invalid ACCESS_KEY.", 401)
    if not hmac.compare_digest(key.passphrase, headers.get("ACCESS-PASSPHRASE", "")):
        raise WeexError(-1049, "API key or passphrase incorrect.", 401)
    timestamp = headers["ACCESS-TIMESTAMP"]
    if not timestamp.isdigit():
        raise WeexError(-1043, "Invalid ACCESS_TIMESTAMP.", 401)
    if abs(int(time.time() * 1000) - int(timestamp)) > state.timestamp_tolerance_ms:
        raise WeexError(-1046, "Request timestamp expired.", 400)
    wanted = expected_signature(key.secret, timestamp, request.method, request.raw_path, body)
    if not hmac.compare_digest(wanted, headers["ACCESS-SIGN"]):
        raise WeexError(-1047, "API authentication failed.", 401)


STATE_KEY = web.AppKey("weex_state", WeexState)


async def _dispatch(request: web.Request) -> web.Response:
    state = request.app[STATE_KEY]
    body = await request.text()
    path = request.path
    private = path in PRIVATE_ROUTES
    state.requests.append(RecordedRequest(request.method, path, dict(request.query), private))
    handler = PRIVATE_ROUTES.get(path) or PUBLIC_ROUTES.get(path)
    if handler is None:
        return _json({"code": -1150, "msg": f"Not Found: {request.method} {path}"}, 404)
    if request.method != "GET":
        return _json({"code": -1150, "msg": f"Request method '{request.method}' not supported"},
                     405)  # fmt: skip
    try:
        if private:
            _authenticate(request, state, body)
        return _json(handler(state, dict(request.query)))
    except WeexError as error:
        return _json({"code": error.code, "msg": error.msg}, error.status)


def create_app(state: WeexState) -> web.Application:
    """An aiohttp app answering WEEX contract REST from `state`; serve it with LocalServer."""
    app = web.Application()
    app[STATE_KEY] = state
    app.router.add_route("*", "/{tail:.*}", _dispatch)
    return app


def hybrid_account() -> WeexState:
    """A cross BTC long and an isolated ETH short in one USDT contract account.

    Figures (WEEX publishes no maintenance rate, so MM and everything built on it is
    unknown; the wallet side is still known):
      BTCUSDT cross long 0.5 BTC (contractVal 0.0001 is a step), openValue 30,000 (entry
        60,000), mark 63,000: value 31,500, uPnL +1,500; WEEX gives no liquidation price
        for it ("0").
      ETHUSDT isolated short 10 ETH, openValue 30,000 (entry 3,000), mark 3,100, 5x:
        isolated margin 6,000, uPnL -1,000; WEEX's liquidation price 3,570.
      USDT balance 20,000 holds the 6,000 isolated margin: cross wallet 14,000.
    """
    contracts = {
        "BTCUSDT": WeexContract("BTCUSDT", "BTC", 0.0001, price_precision=1, quantity_precision=4),
        "ETHUSDT": WeexContract("ETHUSDT", "ETH", 0.001, price_precision=2, quantity_precision=3),
    }
    positions = [
        WeexPosition(737191855967437160, "BTCUSDT", "LONG", "CROSSED", size=0.5,
                     open_value=30_000, leverage=10, margin_size=3_000, isolated_margin=0,
                     unrealized_pnl=1_500, liquidate_price=0),
        WeexPosition(737191855967437161, "ETHUSDT", "SHORT", "ISOLATED", size=10,
                     open_value=30_000, leverage=5, margin_size=6_000, isolated_margin=6_000,
                     unrealized_pnl=-1_000, liquidate_price=3_570),
    ]  # fmt: skip
    balances = [WeexBalance("USDT", 20_000, available_balance=11_350, frozen=0,
                            unrealized_pnl=500)]  # fmt: skip
    marks = {"BTCUSDT": 63_000.0, "ETHUSDT": 3_100.0}
    return WeexState(contracts, marks, positions, balances)
