"""A local HTTP server speaking enough of Hyperliquid's `POST /info` API for an unmodified ccxt.

Why it exists: Hyperliquid accounts are monitored read-only by wallet address (no key:
every `/info` query is public), and ccxt's `hyperliquid` is the reader. Serving the same
JSON bodies Hyperliquid serves lets tests run ccxt end to end on loopback.

Figures Hyperliquid computes with its risk engine are stored explicitly in the state
(`liquidationPx`, `marginUsed`, `crossMaintenanceMarginUsed`, `withdrawable`): tests choose
them. Pure bookkeeping is derived on the way out from the stored inputs and the asset
context's `markPx`, exactly as Hyperliquid defines it, so moving a mark stays consistent:
    positionValue   = |szi| x markPx
    unrealizedPnl   = szi x (markPx - entryPx)
    returnOnEquity  = unrealizedPnl / (|szi| x entryPx / leverage)
    accountValue    = totalRawUsd + sum(szi x markPx)        (per summary)
    totalNtlPos     = sum(|szi| x markPx);  totalMarginUsed = sum(marginUsed)
`crossMarginSummary` covers cross positions only (raw USD = `cross_raw_usd`);
`marginSummary` adds each isolated position (its raw USD = `raw_usd` of that position).

ccxt client settings (ccxt 4.5.90), no API key, no private key:

    client = ccxt.async_support.hyperliquid({"walletAddress": ADDRESS})  # or params user=
    client.urls["api"] = rebase_urls(client.urls["api"], server.base_url)
    client.options["fetchMarkets"] = {"types": ["swap"]}   # skip spot and HIP-3 dexes
    client.has["fetchCurrencies"] = False                   # skip {"type": "spotMeta"}

ccxt then posts to `/info` (JSON body, the `type` field selects the query):
    load_markets      {"type": "metaAndAssetCtxs"}
    fetch_positions   {"type": "clearinghouseState", "user": ADDRESS}
    fetch_balance     {"type": "userAbstraction", "user": ADDRESS} (once per address, to
                      decide between the perp and the unified/spot ledger), then
                      {"type": "clearinghouseState", "user": ADDRESS}
    fetch_ohlcv       {"type": "candleSnapshot", "req": {"coin", "interval", "startTime",
                      "endTime"}}, from `HlState.price_history` (monitor/simulator/candles.py)
With ccxt's default settings load_markets also posts `spotMeta`, `spotMetaAndAssetCtxs`
and `perpDexs`; they are served (no spot pairs, no HIP-3 dexes) so a default client loads too.

Errors as Hyperliquid's axum front end sends them: unknown `type` or a malformed field is
HTTP 422 with a plain-text "Failed to deserialize the JSON body into the target type: ...",
invalid JSON is 400, an unknown path is 404, a GET on /info is 405.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Literal

import orjson
from aiohttp import web

from monitor.simulator.candles import candles, window

__all__ = [
    "HlAsset",
    "HlAssetCtx",
    "HlCumFunding",
    "HlPosition",
    "HlState",
    "HlUser",
    "RecordedRequest",
    "create_app",
    "hybrid_user",
]

FIXTURE_TIME_MS = 1_763_000_000_000
ADDRESS_RE = re.compile(r"^0x[0-9a-fA-F]{40}$")


# --------------------------------------------------------------------------- state


@dataclass(slots=True)
class HlAsset:
    """One perpetual of the `meta` universe. Its index in the universe is its asset id.

    Its margin table fixes the maintenance rate, l = 1 / (2 x maxLeverage) of the tier the
    notional falls in. `margin_table_id` None means the table whose id is `max_leverage`:
    as on Hyperliquid, an id under 50 is a single tier at that leverage and `meta` does not
    list it. Tiered tables are listed in `HlState.margin_tables`.
    """

    name: str
    sz_decimals: int
    max_leverage: int
    only_isolated: bool = False
    margin_table_id: int | None = None


@dataclass(slots=True)
class HlAssetCtx:
    """The live context of one asset (`metaAndAssetCtxs`[1]): the mark drives everything."""

    mark_px: float
    oracle_px: float | None = None  # None: same as the mark
    funding: float = 0.0000125
    open_interest: float = 1_000.0
    premium: float = 0.0
    prev_day_px: float | None = None
    day_ntl_vlm: float = 1_000_000.0


@dataclass(slots=True)
class HlCumFunding:
    """Funding paid by the position (positive = paid), as Hyperliquid reports it."""

    all_time: float = 0.0
    since_open: float = 0.0
    since_change: float = 0.0


@dataclass(slots=True)
class HlPosition:
    """One entry of `assetPositions` (one-way mode: one position per coin).

    `margin_used`, `liquidation_px` are Hyperliquid's own figures and stored. For an
    isolated position `raw_usd` is its isolated USD ledger (margin posted - szi x entryPx),
    and Hyperliquid's marginUsed = raw_usd + szi x mark = posted margin + uPnL.
    `liquidation_px` None renders as JSON null (Hyperliquid's "no liquidation price").
    """

    coin: str
    szi: float
    entry_px: float
    leverage_type: Literal["cross", "isolated"]
    leverage: int
    margin_used: float
    liquidation_px: float | None
    raw_usd: float | None = None  # isolated only
    cum_funding: HlCumFunding = field(default_factory=HlCumFunding)


@dataclass(slots=True)
class HlUser:
    """One wallet's perp account (`clearinghouseState`).

    `cross_raw_usd` is the cross ledger's totalRawUsd (USDC cash minus the entry notional
    of cross longs, plus that of cross shorts); the account values follow from the marks.
    """

    address: str
    cross_raw_usd: float
    cross_maintenance_margin_used: float
    withdrawable: float
    positions: list[HlPosition] = field(default_factory=list)
    abstraction: str = "default"  # userAbstraction: default | unifiedAccount | ...
    spot_balances: dict[str, float] = field(default_factory=dict)  # coin -> total


@dataclass(slots=True)
class RecordedRequest:
    """What the server received, so tests can assert which queries ccxt really made."""

    method: str
    path: str
    body: Any
    headers: dict[str, str]


@dataclass(slots=True)
class HlState:
    """Everything the server answers from. Mutable on purpose: tests move marks in place."""

    assets: list[HlAsset]
    contexts: dict[str, HlAssetCtx]  # by coin
    # listed margin tables (ids 50 and up): id -> ((lowerBound, maxLeverage), ...)
    margin_tables: dict[int, tuple[tuple[float, int], ...]] = field(default_factory=dict)
    users: dict[str, HlUser] = field(default_factory=dict)  # by lower-case address
    time_ms: int | None = None  # None: the wall clock
    # coin -> [(ms, price)], what candleSnapshot makes its candles from
    price_history: dict[str, list[tuple[int, float]]] = field(default_factory=dict)
    requests: list[RecordedRequest] = field(default_factory=list, repr=False)

    def asset(self, coin: str) -> HlAsset:
        return next(asset for asset in self.assets if asset.name == coin)

    def add_user(self, user: HlUser) -> HlUser:
        self.users[user.address.lower()] = user
        return user

    def info_types(self) -> list[str]:
        """The `type` of every /info query received, in order."""
        return [
            str(request.body.get("type")) for request in self.requests
            if isinstance(request.body, dict)
        ]  # fmt: skip

    def now_ms(self) -> int:
        return self.time_ms if self.time_ms is not None else int(time.time() * 1000)


# --------------------------------------------------------------------------- wire helpers


def num(value: float) -> str:
    """Render a number as Hyperliquid does: a decimal string that keeps a ".0" on integers."""
    text = format(Decimal(f"{value:.15g}").normalize(), "f")
    if text == "-0":
        text = "0"
    return text if "." in text else f"{text}.0"


class DeserializeError(Exception):
    """A body that does not fit the query type: Hyperliquid answers 422 in plain text."""


def _text(message: str, status: int) -> web.Response:
    return web.Response(text=message, status=status, content_type="text/plain")


def _json(payload: Any) -> web.Response:
    return web.Response(body=orjson.dumps(payload), content_type="application/json")


def _user_field(body: dict[str, Any]) -> str:
    user = body.get("user")
    if user is None:
        raise DeserializeError("missing field `user`")
    if not isinstance(user, str) or not ADDRESS_RE.match(user):
        raise DeserializeError(f"user: invalid address {user!r}")
    return user.lower()


# --------------------------------------------------------------------------- rendering


def _meta(state: HlState) -> dict[str, Any]:
    universe = []
    for asset in state.assets:
        entry: dict[str, Any] = {
            "szDecimals": asset.sz_decimals,
            "name": asset.name,
            "maxLeverage": asset.max_leverage,
            "marginTableId": asset.margin_table_id or asset.max_leverage,
        }
        if asset.only_isolated:
            entry["onlyIsolated"] = True
        universe.append(entry)
    tables = [
        [
            table_id,
            {
                "description": f"tiered {tiers[0][1]}x",
                "marginTiers": [
                    {"lowerBound": num(lower), "maxLeverage": leverage} for lower, leverage in tiers
                ],
            },
        ]
        for table_id, tiers in sorted(state.margin_tables.items())
    ]
    return {"universe": universe, "marginTables": tables, "collateralToken": 0}


def _asset_ctx(ctx: HlAssetCtx) -> dict[str, Any]:
    oracle = ctx.mark_px if ctx.oracle_px is None else ctx.oracle_px
    prev = ctx.mark_px if ctx.prev_day_px is None else ctx.prev_day_px
    return {
        "funding": num(ctx.funding),
        "openInterest": num(ctx.open_interest),
        "prevDayPx": num(prev),
        "dayNtlVlm": num(ctx.day_ntl_vlm),
        "premium": num(ctx.premium),
        "oraclePx": num(oracle),
        "markPx": num(ctx.mark_px),
        "midPx": num(ctx.mark_px),
        "impactPxs": [num(ctx.mark_px), num(ctx.mark_px)],
        "dayBaseVlm": num(ctx.day_ntl_vlm / ctx.mark_px),
    }


def _render_position(state: HlState, position: HlPosition) -> dict[str, Any]:
    mark = state.contexts[position.coin].mark_px
    value = abs(position.szi) * mark
    upl = position.szi * (mark - position.entry_px)
    entry_margin = abs(position.szi) * position.entry_px / position.leverage
    leverage: dict[str, Any] = {"type": position.leverage_type, "value": position.leverage}
    if position.leverage_type == "isolated":
        leverage["rawUsd"] = num(position.raw_usd or 0.0)
    return {
        "type": "oneWay",
        "position": {
            "coin": position.coin,
            "szi": num(position.szi),
            "leverage": leverage,
            "entryPx": num(position.entry_px),
            "positionValue": num(value),
            "unrealizedPnl": num(upl),
            "returnOnEquity": num(upl / entry_margin if entry_margin else 0.0),
            "liquidationPx": None
            if position.liquidation_px is None
            else num(position.liquidation_px),
            "marginUsed": num(position.margin_used),
            "maxLeverage": state.asset(position.coin).max_leverage,
            "cumFunding": {
                "allTime": num(position.cum_funding.all_time),
                "sinceOpen": num(position.cum_funding.since_open),
                "sinceChange": num(position.cum_funding.since_change),
            },
        },
    }


def _summary(state: HlState, raw_usd: float, positions: list[HlPosition]) -> dict[str, str]:
    marks = {p.coin: state.contexts[p.coin].mark_px for p in positions}
    signed = sum(p.szi * marks[p.coin] for p in positions)
    return {
        "accountValue": num(raw_usd + signed),
        "totalNtlPos": num(sum(abs(p.szi) * marks[p.coin] for p in positions)),
        "totalRawUsd": num(raw_usd),
        "totalMarginUsed": num(sum(p.margin_used for p in positions)),
    }


def _clearinghouse_state(state: HlState, user: HlUser | None) -> dict[str, Any]:
    if user is None:  # Hyperliquid answers an unknown address with an empty account
        user = HlUser("0x" + "0" * 40, 0.0, 0.0, 0.0)
    cross = [p for p in user.positions if p.leverage_type == "cross"]
    isolated_raw = sum(p.raw_usd or 0.0 for p in user.positions if p.leverage_type == "isolated")
    return {
        "marginSummary": _summary(state, user.cross_raw_usd + isolated_raw, user.positions),
        "crossMarginSummary": _summary(state, user.cross_raw_usd, cross),
        "crossMaintenanceMarginUsed": num(user.cross_maintenance_margin_used),
        "withdrawable": num(user.withdrawable),
        "assetPositions": [_render_position(state, p) for p in user.positions],
        "time": state.now_ms(),
    }


USDC_TOKEN = {
    "name": "USDC",
    "szDecimals": 8,
    "weiDecimals": 8,
    "index": 0,
    "tokenId": "0x6d1e7cde53ba9467b783cb7c530ce054",
    "isCanonical": True,
    "evmContract": None,
    "fullName": None,
}


def _spot_meta() -> dict[str, Any]:
    """Only the USDC collateral token and no spot pairs: the monitor watches perps only."""
    return {"universe": [], "tokens": [USDC_TOKEN]}


# --------------------------------------------------------------------------- app

InfoHandler = Callable[[HlState, dict[str, Any]], Any]


def _user(state: HlState, body: dict[str, Any]) -> HlUser | None:
    return state.users.get(_user_field(body))


def _spot_clearinghouse_state(user: HlUser | None) -> dict[str, Any]:
    """The spot ledger ccxt reads instead of the perp one when the user is unified."""
    balances = user.spot_balances if user is not None else {}
    return {
        "balances": [
            {"coin": coin, "token": 0, "hold": "0.0", "total": num(total), "entryNtl": "0.0"}
            for coin, total in balances.items()
        ]
    }


CANDLE_INTERVALS = {
    "1m": 60_000, "3m": 180_000, "5m": 300_000, "15m": 900_000, "30m": 1_800_000,
    "1h": 3_600_000, "2h": 7_200_000, "4h": 14_400_000, "8h": 28_800_000,
    "12h": 43_200_000, "1d": 86_400_000, "3d": 259_200_000, "1w": 604_800_000,
}  # fmt: skip
CANDLE_CAP = 5000
"""Hyperliquid serves at most the 5,000 most recent candles of a query."""


def _candle_snapshot(state: HlState, body: dict[str, Any]) -> list[dict[str, Any]]:
    """{"t", "T", "s", "i", "o", "c", "h", "l", "v", "n"} per candle opening in
    [startTime, endTime], oldest first; no trading is simulated: v "0.0", n 0."""
    req = body.get("req")
    if not isinstance(req, dict) or "coin" not in req:
        raise DeserializeError("missing field `req`")
    interval = str(req.get("interval"))
    step = CANDLE_INTERVALS.get(interval)
    if step is None:
        raise DeserializeError(f"unknown variant `{interval}`")
    rows = window(
        candles(state.price_history.get(str(req["coin"]), []), step),
        int(req.get("startTime") or 0), int(req["endTime"]) if req.get("endTime") else None,
        CANDLE_CAP,
    )  # fmt: skip
    return [
        {"t": at, "T": at + step - 1, "s": req["coin"], "i": interval, "o": num(o),
         "c": num(c), "h": num(h), "l": num(lo), "v": "0.0", "n": 0}
        for at, o, h, lo, c in rows
    ]  # fmt: skip


INFO_TYPES: dict[str, InfoHandler] = {
    "candleSnapshot": _candle_snapshot,
    "meta": lambda state, _body: _meta(state),
    "metaAndAssetCtxs": lambda state, _body: [
        _meta(state),
        [_asset_ctx(state.contexts[asset.name]) for asset in state.assets],
    ],
    "allMids": lambda state, _body: {
        asset.name: num(state.contexts[asset.name].mark_px) for asset in state.assets
    },
    "clearinghouseState": lambda state, body: _clearinghouse_state(state, _user(state, body)),
    "userAbstraction": lambda state, body: (
        user.abstraction if (user := _user(state, body)) else "default"
    ),
    "spotClearinghouseState": lambda state, body: _spot_clearinghouse_state(_user(state, body)),
    "spotMeta": lambda _state, _body: _spot_meta(),
    "spotMetaAndAssetCtxs": lambda _state, _body: [_spot_meta(), []],
    "perpDexs": lambda _state, _body: [None],
    "exchangeStatus": lambda state, _body: {"specialStatuses": None, "time": state.now_ms()},
}

STATE_KEY = web.AppKey("hyperliquid_state", HlState)


async def _info(request: web.Request) -> web.Response:
    state = request.app[STATE_KEY]
    raw = await request.read()
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as error:
        state.requests.append(RecordedRequest("POST", "/info", None, dict(request.headers)))
        return _text(f"Failed to parse the request body as JSON: {error}", 400)
    state.requests.append(RecordedRequest("POST", "/info", body, dict(request.headers)))
    if not isinstance(body, dict) or "type" not in body:
        return _text(
            "Failed to deserialize the JSON body into the target type: missing field `type`", 422
        )
    handler = INFO_TYPES.get(str(body["type"]))
    if handler is None:
        return _text(
            "Failed to deserialize the JSON body into the target type: "
            f"unknown variant `{body['type']}`",
            422,
        )
    try:
        return _json(handler(state, body))
    except DeserializeError as error:
        return _text(f"Failed to deserialize the JSON body into the target type: {error}", 422)


async def _info_wrong_method(request: web.Request) -> web.Response:
    request.app[STATE_KEY].requests.append(
        RecordedRequest(request.method, request.path, None, dict(request.headers))
    )
    return _text("Method Not Allowed", 405)


async def _not_found(request: web.Request) -> web.Response:
    request.app[STATE_KEY].requests.append(
        RecordedRequest(request.method, request.path, None, dict(request.headers))
    )
    return _text("", 404)


def create_app(state: HlState) -> web.Application:
    """An aiohttp app answering Hyperliquid `/info` from `state`; serve it with LocalServer.

    `/exchange` (signed actions: orders, margin changes) is deliberately absent: the
    monitor reads, it never trades, so anything there is a 404.
    """
    app = web.Application()
    app[STATE_KEY] = state
    app.router.add_post("/info", _info)
    app.router.add_route("*", "/info", _info_wrong_method)
    app.router.add_route("*", "/{tail:.*}", _not_found)
    return app


# --------------------------------------------------------------------------- fixture

FIXTURE_ADDRESS = "0x1111111111111111111111111111111111111111"


def hybrid_user(address: str = FIXTURE_ADDRESS) -> HlState:
    """One wallet with two cross positions and one isolated position.

    Marks: BTC 60,000, ETH 3,000, SOL 150. Maintenance rate l = 1 / (2 x maxLeverage):
    BTC (40x) 0.0125, ETH (25x) 0.02, SOL (20x) 0.025. Liquidation (margin-models.md):
        liq = mark - side x margin_available / |szi| / (1 - l x side)
        margin_available = accountValue - crossMaintenanceMarginUsed         (cross)
                         = marginUsed - positionValue x l                    (isolated)
    Each figure Hyperliquid computes is worked out by hand below.
    """
    assets = [
        HlAsset("BTC", sz_decimals=5, max_leverage=40),
        HlAsset("ETH", sz_decimals=4, max_leverage=25),
        HlAsset("SOL", sz_decimals=2, max_leverage=20),
    ]
    contexts = {
        "BTC": HlAssetCtx(mark_px=60_000.0, funding=0.0000125, open_interest=20_000.0),
        "ETH": HlAssetCtx(mark_px=3_000.0, funding=0.00001, open_interest=400_000.0),
        "SOL": HlAssetCtx(mark_px=150.0, funding=-0.000005, open_interest=3_000_000.0),
    }

    # Cross BTC long 0.5 @ 58,000, 10x: value 30,000; uPnL +1,000;
    #   marginUsed = 30,000 / 10 = 3,000; MM = 30,000 x 0.0125 = 375.
    # Cross ETH short 4 @ 3,100, 5x: value 12,000; uPnL +400;
    #   marginUsed = 12,000 / 5 = 2,400; MM = 12,000 x 0.02 = 240.
    # crossMaintenanceMarginUsed = 375 + 240 = 615.
    # Cross ledger: USDC cash 8,000 -> totalRawUsd = 8,000 - 0.5 x 58,000 + 4 x 3,100 = -8,600
    #   accountValue = -8,600 + (0.5 x 60,000 - 4 x 3,000) = 9,400 (= 8,000 + 1,000 + 400)
    #   margin_available = 9,400 - 615 = 8,785
    # BTC liq = 60,000 - 8,785 / 0.5 / (1 - 0.0125) = 42,207.5949...
    #   check: 9,400 + 0.5 (P - 60,000) = 0.5 P x 0.0125 + 240 -> P = 20,840 / 0.49375
    # ETH liq = 3,000 + 8,785 / 4 / (1 + 0.02) = 5,153.1862...
    #   check: 9,400 - 4 (P - 3,000) = 4 P x 0.02 + 375 -> P = 21,025 / 4.08
    # withdrawable = accountValue - cross marginUsed = 9,400 - 5,400 = 4,000
    btc = HlPosition(
        "BTC", szi=0.5, entry_px=58_000, leverage_type="cross", leverage=10,
        margin_used=3_000, liquidation_px=60_000 - 8_785 / 0.5 / (1 - 0.0125),
        cum_funding=HlCumFunding(all_time=12.5, since_open=12.5, since_change=12.5),
    )  # fmt: skip
    eth = HlPosition(
        "ETH", szi=-4, entry_px=3_100, leverage_type="cross", leverage=5,
        margin_used=2_400, liquidation_px=3_000 + 8_785 / 4 / (1 + 0.02),
        cum_funding=HlCumFunding(all_time=-3.0, since_open=-3.0, since_change=-3.0),
    )  # fmt: skip

    # Isolated SOL long 20 @ 140, 5x: posted margin 20 x 140 / 5 = 560.
    #   rawUsd = 560 - 20 x 140 = -2,240; value = 3,000; uPnL = +200
    #   marginUsed = rawUsd + szi x mark = -2,240 + 3,000 = 760 (= 560 + 200)
    #   margin_available = 760 - 3,000 x 0.025 = 685
    #   liq = 150 - 685 / 20 / (1 - 0.025) = 114.8717...  (check: -2,240 + 20 P = 0.5 P)
    sol = HlPosition(
        "SOL", szi=20, entry_px=140, leverage_type="isolated", leverage=5,
        margin_used=760, liquidation_px=150 - 685 / 20 / (1 - 0.025), raw_usd=-2_240,
    )  # fmt: skip

    # Summaries (derived by the server): cross accountValue 9,400, totalNtlPos 42,000,
    # totalMarginUsed 5,400; all (marginSummary): accountValue 10,160, totalNtlPos 45,000,
    # totalRawUsd -10,840, totalMarginUsed 6,160.
    state = HlState(assets=assets, contexts=contexts)
    state.add_user(
        HlUser(
            address,
            cross_raw_usd=-8_600,
            cross_maintenance_margin_used=615,
            withdrawable=4_000,
            positions=[btc, eth, sol],
            spot_balances={"USDC": 0.0},
        )
    )
    return state
