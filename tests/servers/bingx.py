"""A local server speaking enough of BingX's perpetual-swap REST API for unmodified ccxt `bingx`.

Why it exists: BingX is monitored through ccxt and the generic model, so the honest test is
ccxt itself (request building, signing, parsing) against a server that answers the way
BingX does, with figures the test chose. Nothing here computes margin: the exchange's own
figures (liquidation price, risk rate, margins) are stored as given; only bookkeeping
(uPnL, equity, position value at the mark) is derived on the way out.

Wire facts mirrored from ccxt 4.5.90 (`ccxt/async_support/bingx.py`) and BingX's docs:

- Envelope `{"code": 0, "msg": "", "data": ...}`; an error is a non-zero `code` (ccxt maps
  100001 bad signature and 100413 unknown key to AuthenticationError).
- Every request carries `timestamp` in the query. Private requests add the header
  `X-BX-APIKEY` and a final `signature` query parameter: hex HMAC-SHA256(secret, the query
  before it), the parameters sorted by key and not percent-encoded (ccxt's `rawencode`).
- Unknown paths get HTTP 404 with an error envelope, never an empty 200.

Client settings (what `monitor.venues.generic.adapter.BingxAdapter` sets):
`options['defaultType'] = 'swap'` (else fetch_balance reads the spot account) and
`has['fetchCurrencies'] = False` (else load_markets calls the signed
`/openApi/wallets/v1/capital/config/getall`, not served here). ccxt has no option to skip
spot and Coin-M markets outside sandbox mode, so those lists are served, empty.

Endpoints ccxt calls (all GET):
    load_markets                  /openApi/swap/v2/quote/contracts, /openApi/cswap/v1/market/
                                  contracts, /openApi/spot/v1/common/symbols
    fetch_positions               /openApi/swap/v2/user/positions                 (signed)
    fetch_balance                 /openApi/swap/v3/user/balance                   (signed)
    fetch_market_leverage_tiers   /openApi/swap/v1/maintMarginRatio?symbol=...    (signed)

Not verified against the live exchange: the code BingX sends for a stale timestamp (100421
here), and whether the v3 `balance` includes the isolated margins (assumed, as Binance's
wallet balance does: `equity` = balance + uPnL of every position).
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Literal

import orjson
from aiohttp import web

FIXTURE_API_KEY = "bingx-test-key"
FIXTURE_SECRET = "bingx-test-secret"
FIXTURE_UID = "116000295"


@dataclass(slots=True)
class BingxContract:
    """One USDT-M perpetual of `/swap/v2/quote/contracts`; quantities are in base units."""

    symbol: str  # "BTC-USDT"
    asset: str
    contract_id: str
    quantity_precision: int
    price_precision: int
    min_quantity: float
    currency: str = "USDT"
    taker_fee: float = 0.0005
    maker_fee: float = 0.0002
    max_leverage: int = 125


@dataclass(slots=True)
class BingxTier:
    """One row of `/swap/v1/maintMarginRatio`, keyed by position value in USDT."""

    tier: int
    min_value: float
    max_value: float
    rate: float
    maint_amount: float = 0.0


@dataclass(slots=True)
class BingxPosition:
    """A hedge-mode position (BingX's default). BingX's own figures are stored:
    `liquidation_price` None renders as 0 (BingX's "none"), `risk_rate` as given."""

    position_id: str
    symbol: str
    side: Literal["LONG", "SHORT"]
    isolated: bool
    amount: float
    avg_price: float
    leverage: int
    initial_margin: float
    liquidation_price: float | None
    risk_rate: float = 0.0
    realised_profit: float = 0.0


@dataclass(slots=True)
class BingxBalance:
    """One asset of `/swap/v3/user/balance`. `balance` is the wallet, isolated margins
    included; the margins are stored as BingX would report them."""

    asset: str
    balance: float
    available_margin: float
    used_margin: float
    freezed_margin: float = 0.0
    realised_profit: float = 0.0


@dataclass(slots=True)
class RecordedRequest:
    method: str
    path: str
    query: dict[str, str]
    signed: bool


@dataclass(slots=True)
class BingxState:
    """Everything the server answers from; tests mutate it in place."""

    contracts: dict[str, BingxContract]
    tiers: dict[str, list[BingxTier]]  # by symbol; a missing symbol answers an empty list
    marks: dict[str, float]
    positions: list[BingxPosition]
    balances: list[BingxBalance]
    api_keys: dict[str, str] = field(default_factory=lambda: {FIXTURE_API_KEY: FIXTURE_SECRET})
    timestamp_tolerance_ms: int = 30_000
    requests: list[RecordedRequest] = field(default_factory=list, repr=False)


class BingxError(Exception):
    def __init__(self, code: int, msg: str, status: int = 200) -> None:
        super().__init__(f"{code} {msg}")
        self.code, self.msg, self.status = code, msg, status


def num(value: float) -> str:
    """A plain decimal string without float noise or exponent, as BingX sends numbers."""
    text = format(Decimal(f"{value:.15g}").normalize(), "f")
    return "0" if text == "-0" else text


def _envelope(data: Any, code: int = 0, msg: str = "", status: int = 200) -> web.Response:
    body = {"code": code, "msg": msg, "timestamp": int(time.time() * 1000), "data": data}
    return web.Response(body=orjson.dumps(body), status=status, content_type="application/json")


def _pnl(state: BingxState, position: BingxPosition) -> float:
    sign = 1 if position.side == "LONG" else -1
    return sign * position.amount * (state.marks[position.symbol] - position.avg_price)


def _render_contract(contract: BingxContract) -> dict[str, Any]:
    return {
        "contractId": contract.contract_id,
        "symbol": contract.symbol,
        "size": num(10.0**-contract.quantity_precision),
        "quantityPrecision": contract.quantity_precision,
        "pricePrecision": contract.price_precision,
        "feeRate": num(contract.taker_fee),
        "makerFeeRate": num(contract.maker_fee),
        "takerFeeRate": num(contract.taker_fee),
        "tradeMinLimit": 0,
        "tradeMinQuantity": num(contract.min_quantity),
        "tradeMinUSDT": "2",
        "maxLongLeverage": contract.max_leverage,
        "maxShortLeverage": contract.max_leverage,
        "currency": contract.currency,
        "asset": contract.asset,
        "status": 1,
        "apiStateOpen": "true",
        "apiStateClose": "true",
        "ensureTrigger": True,
        "triggerFeeRate": "0.00020000",
    }


def _render_position(state: BingxState, position: BingxPosition) -> dict[str, Any]:
    mark = state.marks[position.symbol]
    pnl = _pnl(state, position)
    return {
        "positionId": position.position_id,
        "symbol": position.symbol,
        "currency": state.contracts[position.symbol].currency,
        "positionAmt": num(position.amount),
        "availableAmt": num(position.amount),
        "positionSide": position.side,
        "isolated": position.isolated,
        "avgPrice": num(position.avg_price),
        "initialMargin": num(position.initial_margin),
        "margin": num(position.initial_margin + pnl),
        "leverage": position.leverage,
        "unrealizedProfit": num(pnl),
        "realisedProfit": num(position.realised_profit),
        "liquidationPrice": position.liquidation_price or 0,
        "pnlRatio": num(pnl / position.initial_margin),
        "maxMarginReduction": "0.0000",
        "riskRate": num(position.risk_rate),
        "markPrice": num(mark),
        "positionValue": num(position.amount * mark),
        "onlyOnePosition": False,
        "updateTime": int(time.time() * 1000),
    }


def _render_balance(state: BingxState, balance: BingxBalance) -> dict[str, Any]:
    pnl = sum(
        _pnl(state, p)
        for p in state.positions
        if state.contracts[p.symbol].currency == balance.asset
    )
    return {
        "userId": FIXTURE_UID,
        "asset": balance.asset,
        "balance": num(balance.balance),
        "equity": num(balance.balance + pnl),
        "unrealizedProfit": num(pnl),
        "realisedProfit": num(balance.realised_profit),
        "availableMargin": num(balance.available_margin),
        "usedMargin": num(balance.used_margin),
        "freezedMargin": num(balance.freezed_margin),
        "shortUid": "12851936",
    }


Handler = Callable[[BingxState, dict[str, str]], Any]


def _contracts(state: BingxState, _query: dict[str, str]) -> Any:
    return [_render_contract(c) for c in state.contracts.values()]


def _no_coin_m(_state: BingxState, _query: dict[str, str]) -> Any:
    return []


def _no_spot(_state: BingxState, _query: dict[str, str]) -> Any:
    return {"symbols": []}


def _positions(state: BingxState, query: dict[str, str]) -> Any:
    symbol = query.get("symbol")
    return [
        _render_position(state, p)
        for p in state.positions
        if p.amount and (symbol is None or p.symbol == symbol)
    ]


def _balance(state: BingxState, _query: dict[str, str]) -> Any:
    return [_render_balance(state, b) for b in state.balances]


def _maint_margin_ratio(state: BingxState, query: dict[str, str]) -> Any:
    symbol = query.get("symbol", "")
    if not symbol:
        raise BingxError(109400, "Invalid parameters, err:symbol: field is required")
    if symbol not in state.contracts:
        raise BingxError(109425, f"{symbol} not exist, please verify it")
    return [
        {
            "tier": f"Tier {t.tier}",
            "symbol": symbol,
            "minPositionVal": num(t.min_value),
            "maxPositionVal": num(t.max_value),
            "maintMarginRatio": f"{t.rate:.6f}",
            "maintAmount": f"{t.maint_amount:.6f}",
        }
        for t in state.tiers.get(symbol, [])
    ]


PUBLIC_ROUTES: dict[str, Handler] = {
    "/openApi/swap/v2/quote/contracts": _contracts,
    "/openApi/cswap/v1/market/contracts": _no_coin_m,
    "/openApi/spot/v1/common/symbols": _no_spot,
}
PRIVATE_ROUTES: dict[str, Handler] = {
    "/openApi/swap/v2/user/positions": _positions,
    "/openApi/swap/v3/user/balance": _balance,
    "/openApi/swap/v1/maintMarginRatio": _maint_margin_ratio,
}


def expected_signature(secret: str, pairs: list[tuple[str, str]]) -> str:
    """BingX's signature: hex HMAC-SHA256 over `k=v&...` of the parameters as sent before
    `signature`, values not percent-encoded (what ccxt's bingx.sign() builds)."""
    message = "&".join(f"{key}={value}" for key, value in pairs)
    return hmac.new(secret.encode(), message.encode(), hashlib.sha256).hexdigest()


def _authenticate(request: web.Request, state: BingxState) -> None:
    secret = state.api_keys.get(request.headers.get("X-BX-APIKEY", ""))
    if secret is None:
        raise BingxError(100413, "Incorrect apiKey, please check your valid api key")
    pairs = [(k, v) for k, v in request.query.items() if k != "signature"]
    sent = request.query.get("signature", "")
    if not hmac.compare_digest(expected_signature(secret, pairs), sent):
        raise BingxError(100001, "Signature verification failed")
    timestamp = request.query.get("timestamp", "")
    now = int(time.time() * 1000)
    if not timestamp.isdigit() or abs(now - int(timestamp)) > state.timestamp_tolerance_ms:
        raise BingxError(100421, "Null timestamp or timestamp mismatch")


STATE_KEY = web.AppKey("bingx_state", BingxState)


async def _dispatch(request: web.Request) -> web.Response:
    state = request.app[STATE_KEY]
    path = request.path
    private = path in PRIVATE_ROUTES
    state.requests.append(RecordedRequest(request.method, path, dict(request.query), private))
    handler = PRIVATE_ROUTES.get(path) or PUBLIC_ROUTES.get(path)
    if handler is None or request.method != "GET":
        return _envelope({}, 100404, f"api not found: {request.method} {path}", status=404)
    try:
        if private:
            _authenticate(request, state)
        return _envelope(handler(state, dict(request.query)))
    except BingxError as error:
        return _envelope({}, error.code, error.msg, error.status)


def create_app(state: BingxState) -> web.Application:
    """An aiohttp app answering BingX swap REST from `state`; serve it with LocalServer."""
    app = web.Application()
    app[STATE_KEY] = state
    app.router.add_route("*", "/{tail:.*}", _dispatch)
    return app


def hybrid_account() -> BingxState:
    """A cross BTC long and an isolated ETH short in one USDT-M account (hedge mode).

    Hand-derived figures (generic model: MM = value x tier rate, no deduction):
      BTC-USDT cross long 0.5 @ 60,000, mark 63,000: value 31,500 (tier 1, 0.4 %), MM 126,
        uPnL +1,500.
      ETH-USDT isolated short 10 @ 3,000, mark 3,100, 5x: initial margin 6,000, value
        31,000 (tier 1, 0.5 %), MM 155, uPnL -1,000.
      USDT balance 20,000 holds the 6,000 isolated margin: cross wallet 14,000.
      BingX reports liquidation prices of its own: 32,128.5 (cross), 3,582.1 (isolated).
    """
    contracts = {
        "BTC-USDT": BingxContract("BTC-USDT", "BTC", "100", 4, 1, min_quantity=0.0001),
        "ETH-USDT": BingxContract("ETH-USDT", "ETH", "101", 2, 2, min_quantity=0.01),
    }
    tiers = {
        "BTC-USDT": [
            BingxTier(1, 0, 300_000, 0.004),
            BingxTier(2, 300_000, 800_000, 0.005, maint_amount=300),
        ],
        "ETH-USDT": [
            BingxTier(1, 0, 50_000, 0.005),
            BingxTier(2, 50_000, 200_000, 0.01, maint_amount=250),
        ],
    }
    positions = [
        BingxPosition("1792480725958881280", "BTC-USDT", "LONG", isolated=False, amount=0.5,
                      avg_price=60_000, leverage=10, initial_margin=3_000,
                      liquidation_price=32_128.5, risk_rate=0.0081),
        BingxPosition("1792480725958881281", "ETH-USDT", "SHORT", isolated=True, amount=10,
                      avg_price=3_000, leverage=5, initial_margin=6_000,
                      liquidation_price=3_582.1, risk_rate=0.031),
    ]  # fmt: skip
    # equity 20,500 = 20,000 + 1,500 - 1,000; used = 3,150 (cross, at the mark) + 6,000
    balances = [BingxBalance("USDT", 20_000, available_margin=11_350, used_margin=9_150)]
    marks = {"BTC-USDT": 63_000.0, "ETH-USDT": 3_100.0}
    return BingxState(contracts, tiers, marks, positions, balances)
