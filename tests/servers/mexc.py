"""A local server speaking enough of MEXC's contract (futures) REST API for unmodified ccxt `mexc`.

Why it exists: MEXC is monitored through ccxt and the generic model; the honest test is
ccxt itself (request building, signing, parsing) against a server answering the way MEXC
does, with figures the test chose. Nothing here computes margin: MEXC's own figures
(liquidation price, position margin, balances) are stored as given; only bookkeeping
(equity and uPnL at the fair price) is derived on the way out.

Wire facts mirrored from ccxt 4.5.90 (`ccxt/async_support/mexc.py`) and MEXC's docs:

- Contract envelope `{"success": true, "code": 0, "data": ...}`; errors
  `{"success": false, "code": 602, "message": "Signature verification failed!"}` (ccxt maps
  602 and 401 to AuthenticationError). Numbers are JSON numbers.
- Private contract requests carry the headers `ApiKey`, `Request-Time` (ms) and
  `Signature` = hex HMAC-SHA256(secret, apiKey + Request-Time + the query string with the
  parameters sorted by key).
- Sizes (`holdVol`, risk limits) are in contracts of `contractSize` base units; the mark is
  the "fair price".
- Unknown paths get HTTP 404 with an error envelope, never an empty 200.

Client settings (what `monitor.venues.generic.adapter.MexcAdapter` sets):
`options['defaultType'] = 'swap'` and `has['fetchCurrencies'] = False` (else load_markets
calls the signed spot `/api/v3/capital/config/getall`, not served here). ccxt 4.5.90's
mexc ignores `options['fetchMarkets']` and always loads spot too: the spot exchangeInfo is
served, empty.

Endpoints ccxt calls (all GET):
    load_markets           /api/v3/exchangeInfo (spot), /api/v1/contract/detail
    fetch_positions        /api/v1/private/position/open_positions          (signed)
    fetch_balance          /api/v1/private/account/assets                   (signed)
    fetch_leverage_tiers   /api/v1/contract/detail   (the adapter reads load_markets' copy)
    fair price (raw)       /api/v1/contract/fair_price/{symbol}

Not verified against the live exchange: the code for a stale Request-Time (513 here), and
the balance identity assumed by the fixture (`equity` = wallet incl. isolated margins +
`unrealized` of every position).
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import quote, urlencode

import orjson
from aiohttp import web

FIXTURE_API_KEY = "mx0-test-key"
FIXTURE_SECRET = "mexc-test-secret"
FAIR_PRICE_PREFIX = "/api/v1/contract/fair_price/"


@dataclass(slots=True)
class RiskLevel:
    """One row of a contract's `riskLimitCustom` table (sizes in contracts)."""

    level: int
    max_vol: float
    mmr: float
    imr: float
    max_leverage: int


@dataclass(slots=True)
class MexcContract:
    """One perpetual of `/api/v1/contract/detail`, risk-limit fields included.

    Without `custom_levels` MEXC's incremental scheme applies: level 1 up to
    `risk_base_vol` at `mmr`, each further level `risk_incr_vol` wider, `risk_incr_mmr`
    higher, `risk_level_limit` levels in all.
    """

    symbol: str  # "BTC_USDT"
    base: str
    contract_size: float
    price_unit: float
    mmr: float
    imr: float
    risk_base_vol: float
    risk_incr_vol: float = 0
    risk_incr_mmr: float = 0
    risk_incr_imr: float = 0
    risk_level_limit: int = 1
    custom_levels: list[RiskLevel] = field(default_factory=list)
    quote: str = "USDT"
    max_vol: float = 1_000_000
    max_leverage: int = 125
    taker_fee: float = 0.0002
    maker_fee: float = 0.0


@dataclass(slots=True)
class MexcPosition:
    """A row of `/private/position/open_positions`. `im` is the margin MEXC holds in the
    position (isolated: its wallet); `liquidate_price` is MEXC's own figure."""

    position_id: int
    symbol: str
    position_type: Literal[1, 2]  # 1 long, 2 short
    open_type: Literal[1, 2]  # 1 isolated, 2 cross
    hold_vol: float
    avg_price: float
    leverage: int
    im: float
    liquidate_price: float


@dataclass(slots=True)
class MexcAsset:
    """A currency of `/private/account/assets`: `wallet` (isolated margins included, uPnL
    excluded) and MEXC's own availability figures, stored as given."""

    currency: str
    wallet: float
    position_margin: float
    available_balance: float
    cash_balance: float
    frozen_balance: float = 0.0


@dataclass(slots=True)
class RecordedRequest:
    method: str
    path: str
    query: dict[str, str]
    signed: bool


@dataclass(slots=True)
class MexcState:
    """Everything the server answers from; tests mutate it in place."""

    contracts: dict[str, MexcContract]
    fair_prices: dict[str, float]
    positions: list[MexcPosition]
    assets: list[MexcAsset]
    api_keys: dict[str, str] = field(default_factory=lambda: {FIXTURE_API_KEY: FIXTURE_SECRET})
    request_window_ms: int = 10_000
    requests: list[RecordedRequest] = field(default_factory=list, repr=False)


class MexcError(Exception):
    def __init__(self, code: int, message: str, status: int = 200) -> None:
        super().__init__(f"{code} {message}")
        self.code, self.message, self.status = code, message, status


def _json(payload: Any, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(payload), status=status, content_type="application/json")


def _ok(data: Any) -> web.Response:
    return _json({"success": True, "code": 0, "data": data})


def _pnl(state: MexcState, position: MexcPosition) -> float:
    contract = state.contracts[position.symbol]
    sign = 1 if position.position_type == 1 else -1
    qty = position.hold_vol * contract.contract_size
    return sign * qty * (state.fair_prices[position.symbol] - position.avg_price)


def _render_contract(c: MexcContract) -> dict[str, Any]:
    custom = [
        {"level": r.level, "maxVol": r.max_vol, "mmr": r.mmr, "imr": r.imr,
         "maxLeverage": r.max_leverage}
        for r in c.custom_levels
    ]  # fmt: skip
    return {
        "symbol": c.symbol,
        "displayName": f"{c.symbol}永续",
        "displayNameEn": f"{c.symbol} PERPETUAL",
        "positionOpenType": 3,
        "baseCoin": c.base,
        "quoteCoin": c.quote,
        "settleCoin": c.quote,
        "contractSize": c.contract_size,
        "minLeverage": 1,
        "maxLeverage": c.max_leverage,
        "priceScale": 2,
        "volScale": 0,
        "amountScale": 4,
        "priceUnit": c.price_unit,
        "volUnit": 1,
        "minVol": 1,
        "maxVol": c.max_vol,
        "bidLimitPriceRate": 0.1,
        "askLimitPriceRate": 0.1,
        "takerFeeRate": c.taker_fee,
        "makerFeeRate": c.maker_fee,
        "maintenanceMarginRate": c.mmr,
        "initialMarginRate": c.imr,
        "riskBaseVol": c.risk_base_vol,
        "riskIncrVol": c.risk_incr_vol,
        "riskLongShortSwitch": 0,
        "riskIncrMmr": c.risk_incr_mmr,
        "riskIncrImr": c.risk_incr_imr,
        "riskLevelLimit": c.risk_level_limit,
        "riskLimitType": "BY_VOLUME",
        "riskLimitMode": "CUSTOM" if custom else "INCREASE",
        "riskLimitCustom": custom,
        "priceCoefficientVariation": 0.1,
        "indexOrigin": ["BINANCE", "OKX", "MEXC"],
        "state": 0,
        "isNew": False,
        "isHot": True,
        "isHidden": False,
        "apiAllowed": True,
    }


def _render_position(p: MexcPosition) -> dict[str, Any]:
    now = int(time.time() * 1000)
    return {
        "positionId": p.position_id,
        "symbol": p.symbol,
        "positionType": p.position_type,
        "openType": p.open_type,
        "state": 1,
        "holdVol": p.hold_vol,
        "frozenVol": 0,
        "closeVol": 0,
        "holdAvgPrice": p.avg_price,
        "openAvgPrice": p.avg_price,
        "closeAvgPrice": 0,
        "liquidatePrice": p.liquidate_price,
        "oim": p.im,
        "im": p.im,
        "holdFee": 0,
        "realised": 0,
        "leverage": p.leverage,
        "createTime": now,
        "updateTime": now,
        "autoAddIm": False,
    }


def _render_asset(state: MexcState, asset: MexcAsset) -> dict[str, Any]:
    pnl = sum(_pnl(state, p) for p in state.positions
              if state.contracts[p.symbol].quote == asset.currency)  # fmt: skip
    return {
        "currency": asset.currency,
        "positionMargin": asset.position_margin,
        "availableBalance": asset.available_balance,
        "cashBalance": asset.cash_balance,
        "frozenBalance": asset.frozen_balance,
        "equity": asset.wallet + pnl,
        "unrealized": pnl,
        "bonus": 0,
        "availableCash": asset.cash_balance,
        "availableOpen": asset.available_balance,
    }


Handler = Callable[[MexcState, dict[str, str]], Any]


def _spot_exchange_info(_state: MexcState, _query: dict[str, str]) -> Any:
    """Spot is not served: the exchangeInfo shape with no symbols (a bare JSON object)."""
    return {"timezone": "CST", "serverTime": int(time.time() * 1000), "rateLimits": [],
            "exchangeFilters": [], "symbols": []}  # fmt: skip


def _detail(state: MexcState, query: dict[str, str]) -> Any:
    symbol = query.get("symbol")
    if symbol is None:
        return [_render_contract(c) for c in state.contracts.values()]
    if symbol not in state.contracts:
        raise MexcError(1001, "Contract does not exist!")
    return _render_contract(state.contracts[symbol])


def _open_positions(state: MexcState, query: dict[str, str]) -> Any:
    symbol = query.get("symbol")
    return [_render_position(p) for p in state.positions
            if p.hold_vol and (symbol is None or p.symbol == symbol)]  # fmt: skip


def _assets(state: MexcState, _query: dict[str, str]) -> Any:
    return [_render_asset(state, a) for a in state.assets]


def _fair_price(state: MexcState, symbol: str) -> Any:
    if symbol not in state.fair_prices:
        raise MexcError(1001, "Contract does not exist!")
    return {"symbol": symbol, "fairPrice": state.fair_prices[symbol],
            "timestamp": int(time.time() * 1000)}  # fmt: skip


PUBLIC_ROUTES: dict[str, Handler] = {"/api/v1/contract/detail": _detail}
PRIVATE_ROUTES: dict[str, Handler] = {
    "/api/v1/private/position/open_positions": _open_positions,
    "/api/v1/private/account/assets": _assets,
}


def expected_signature(secret: str, api_key: str, request_time: str, query: dict[str, str]) -> str:
    """MEXC's contract signature: hex HMAC-SHA256(secret, key + time + sorted query)."""
    params = urlencode(sorted(query.items()), quote_via=quote)
    message = f"{api_key}{request_time}{params}"
    return hmac.new(secret.encode(), message.encode(), hashlib.sha256).hexdigest()


def _authenticate(request: web.Request, state: MexcState) -> None:
    api_key = request.headers.get("ApiKey", "")
    secret = state.api_keys.get(api_key)
    if secret is None:
        raise MexcError(401, "No authority!", 401)
    request_time = request.headers.get("Request-Time", "")
    wanted = expected_signature(secret, api_key, request_time, dict(request.query))
    if not hmac.compare_digest(wanted, request.headers.get("Signature", "")):
        raise MexcError(602, "Signature verification failed!", 401)
    now = int(time.time() * 1000)
    if not request_time.isdigit() or abs(now - int(request_time)) > state.request_window_ms:
        raise MexcError(513, "Invalid request, please try again later", 401)


STATE_KEY = web.AppKey("mexc_state", MexcState)


async def _dispatch(request: web.Request) -> web.Response:
    state = request.app[STATE_KEY]
    path = request.path
    private = path in PRIVATE_ROUTES
    query = dict(request.query)
    state.requests.append(RecordedRequest(request.method, path, query, private))
    if request.method != "GET":
        return _json({"success": False, "code": 404, "message": "Not Found"}, 404)
    try:
        if path == "/api/v3/exchangeInfo":
            return _json(_spot_exchange_info(state, query))
        if path.startswith(FAIR_PRICE_PREFIX):
            return _ok(_fair_price(state, path.removeprefix(FAIR_PRICE_PREFIX)))
        handler = PRIVATE_ROUTES.get(path) or PUBLIC_ROUTES.get(path)
        if handler is None:
            return _json({"success": False, "code": 404, "message": f"Not Found: {path}"}, 404)
        if private:
            _authenticate(request, state)
        return _ok(handler(state, query))
    except MexcError as error:
        body = {"success": False, "code": error.code, "message": error.message}
        return _json(body, error.status)


def create_app(state: MexcState) -> web.Application:
    """An aiohttp app answering MEXC contract REST from `state`; serve it with LocalServer."""
    app = web.Application()
    app[STATE_KEY] = state
    app.router.add_route("*", "/{tail:.*}", _dispatch)
    return app


def hybrid_account() -> MexcState:
    """A cross BTC long and an isolated ETH short in one USDT futures account.

    Hand-derived figures (generic model: MM = value x level rate, levels by contracts):
      BTC_USDT cross long 5,000 contracts x 0.0001 = 0.5 BTC @ 60,000, fair 63,000:
        value 31,500; incremental levels (base 2,000, step 10,000 contracts): 5,000 is
        level 2, rate 0.004 + 0.002 = 0.006 (ccxt's own tiers say 0.004), MM 189,
        uPnL +1,500.
      ETH_USDT isolated short 1,000 contracts x 0.01 = 10 ETH @ 3,000, fair 3,100, 5x:
        im 6,000, value 31,000; custom table: 1,000 contracts is level 2, rate 0.01
        (ccxt's own tiers have no rate), MM 310, uPnL -1,000.
      USDT wallet 20,000 (equity 20,500, unrealized +500) holds the 6,000 isolated
        margin: cross wallet 14,000. ccxt's total = available 11,350 + frozen 0.
      MEXC reports liquidation prices of its own: 32,193.2 (cross), 3,564.4 (isolated).
    """
    contracts = {
        "BTC_USDT": MexcContract("BTC_USDT", "BTC", contract_size=0.0001, price_unit=0.1,
                                 mmr=0.004, imr=0.008, risk_base_vol=2_000,
                                 risk_incr_vol=10_000, risk_incr_mmr=0.002,
                                 risk_incr_imr=0.004, risk_level_limit=5),
        "ETH_USDT": MexcContract("ETH_USDT", "ETH", contract_size=0.01, price_unit=0.01,
                                 mmr=0.005, imr=0.01, risk_base_vol=5_000,
                                 custom_levels=[RiskLevel(1, 500, 0.005, 0.01, 100),
                                                RiskLevel(2, 2_000, 0.01, 0.02, 50),
                                                RiskLevel(3, 5_000, 0.02, 0.04, 25)]),
    }  # fmt: skip
    positions = [
        MexcPosition(1394650, "BTC_USDT", position_type=1, open_type=2, hold_vol=5_000,
                     avg_price=60_000, leverage=10, im=3_000, liquidate_price=32_193.2),
        MexcPosition(1394651, "ETH_USDT", position_type=2, open_type=1, hold_vol=1_000,
                     avg_price=3_000, leverage=5, im=6_000, liquidate_price=3_564.4),
    ]  # fmt: skip
    assets = [MexcAsset("USDT", wallet=20_000, position_margin=9_150, available_balance=11_350,
                        cash_balance=11_350)]  # fmt: skip
    fair_prices = {"BTC_USDT": 63_000.0, "ETH_USDT": 3_100.0}
    return MexcState(contracts, fair_prices, positions, assets)
