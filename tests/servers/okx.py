"""A local HTTP server speaking enough of the OKX v5 REST dialect for an unmodified ccxt `okx`.

Why it exists: the monitor reads OKX accounts only through ccxt, so the most honest test is
ccxt itself talking to a server that answers the way OKX does (same paths, same envelope
`{"code", "msg", "data"}`, numbers as strings, the same HMAC signature check). The state is
plain dataclasses that tests mutate between calls (move a mark price, change a position).

Every figure OKX computes with its own risk engine (position `mmr`, `imr`, `mgnRatio`,
`liqPx`, `upl`; the account's `adjEq`, `mmr`, `mgnRatio`...) is stored explicitly, never
derived here: tests choose them, and the monitor's own engine is checked against them.
Only pure bookkeeping is derived on the way out (`notionalUsd`, the position's `markPx`,
`uplRatio`), so moving a mark price keeps those consistent.

ccxt client settings that keep ccxt on the endpoints served here (ccxt 4.5.90):

    client = ccxt.async_support.okx({"apiKey": K, "secret": S, "password": PASSPHRASE})
    client.urls["api"] = rebase_urls(client.urls["api"], server.base_url)
    client.options["defaultType"] = "swap"
    client.options["fetchMarkets"] = {"types": ["swap"]}   # one GET instruments?instType=SWAP
    client.has["fetchCurrencies"] = False   # else load_markets calls signed /asset/currencies

With those, ccxt calls (all GET):
    load_markets                   /api/v5/public/instruments?instType=SWAP
    fetch_positions                /api/v5/account/positions              (signed)
    fetch_balance                  /api/v5/account/balance                (signed)
    fetch_market_leverage_tiers    /api/v5/public/position-tiers?instType=SWAP&tdMode=cross
                                   &instFamily=BTC-USDT
    fetch_trading_fee              /api/v5/account/trade-fee?instType=SWAP&uly=BTC-USDT (signed)
    fetch_accounts / key perms     /api/v5/account/config                 (signed)
    fetch_mark_price(s)            /api/v5/public/mark-price?instId=... | ?instType=SWAP
    fetch_time                     /api/v5/public/time
    fetch_ohlcv                    /api/v5/market/candles (history-candles when `since` is
                                   older than 1,439 bars), from `OkxState.price_history`

Instruments of the other types (SPOT, FUTURES, OPTION) answer with an empty list, so a client
left on ccxt's default `fetchMarkets` types also loads. `/api/v5/asset/currencies` is not
served (404): disable `fetchCurrencies` as above.

Not verified against the live exchange: the exact HTTP status OKX pairs with each error code
(ccxt decides by the `code` field alone, so 401 is used for auth errors and 400 for
parameter errors), and the body OKX sends for an unknown path (a JSON 404 here).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Literal

import orjson
from aiohttp import web

from monitor.simulator.candles import candles

__all__ = [
    "INST_TYPES",
    "OkxAccount",
    "OkxApiKey",
    "OkxBalance",
    "OkxBalanceDetail",
    "OkxInstrument",
    "OkxPosition",
    "OkxState",
    "OkxTier",
    "OkxTradeFee",
    "RecordedRequest",
    "create_app",
    "hybrid_account",
    "single_currency_account",
]

INST_TYPES = ("SPOT", "MARGIN", "SWAP", "FUTURES", "OPTION")
"""The instType values OKX accepts; anything else is a parameter error (51000)."""

# Fixed creation time for fixtures, so responses are reproducible across runs.
FIXTURE_TIME_MS = 1_763_000_000_000


# --------------------------------------------------------------------------- state


@dataclass(slots=True)
class OkxInstrument:
    """One SWAP instrument as `/api/v5/public/instruments` lists it.

    ccxt derives base and quote from `uly` (here `inst_family`) and decides linear versus
    inverse by comparing the quote with `settleCcy`; `ctVal` becomes `contractSize`.
    """

    inst_id: str
    inst_family: str  # e.g. "BTC-USDT"; OKX sends it as both `instFamily` and `uly`
    ct_type: Literal["linear", "inverse"]
    ct_val: float  # contract value: base coin per contract (linear), USD per contract (inverse)
    ct_val_ccy: str
    settle_ccy: str
    tick_sz: float
    lot_sz: float = 1.0
    min_sz: float = 1.0
    max_lever: float = 100.0
    state: str = "live"
    list_time_ms: int = FIXTURE_TIME_MS

    @property
    def base(self) -> str:
        return self.inst_family.split("-")[0]

    @property
    def quote(self) -> str:
        return self.inst_family.split("-")[1]


@dataclass(slots=True)
class OkxTier:
    """One row of `/api/v5/public/position-tiers` for SWAP: keyed by position size in contracts.

    The tier applies while min_sz < |pos| <= max_sz; `mmr` and `imr` are rates.
    """

    tier: int
    min_sz: float
    max_sz: float
    mmr: float
    imr: float
    max_lever: float


@dataclass(slots=True)
class OkxPosition:
    """One position row of `/api/v5/account/positions` in net (one-way) mode.

    `pos` is signed contracts (negative = short, as OKX does in net mode). The risk figures
    are OKX's own and are stored, not computed: `mmr` is the maintenance margin *amount*
    (in `ccy`: USDT for linear, the coin for inverse), `mgn_ratio` is OKX's ratio
    equity / (MM + fees) where lower is worse, `liq_px` None renders as "" (OKX does send
    empty liquidation prices at times: that means *unknown*, never safe).
    """

    inst_id: str
    mgn_mode: Literal["cross", "isolated"]
    pos: float
    avg_px: float
    lever: float
    ccy: str  # margin currency: USDT for linear, the coin for inverse
    upl: float
    mmr: float
    mgn_ratio: float | None
    liq_px: float | None
    imr: float | None = None  # cross only; isolated renders ""
    margin: float | None = None  # isolated margin; cross renders ""
    pos_id: str = "1"
    pos_side: str = "net"
    adl: str = "1"
    realized_pnl: float = 0.0
    c_time_ms: int = FIXTURE_TIME_MS
    u_time_ms: int = FIXTURE_TIME_MS


@dataclass(slots=True)
class OkxBalanceDetail:
    """One currency of `/api/v5/account/balance` `details`; all figures in that currency.

    `cash_bal` includes the isolated margin parked in isolated positions (OKX counts it as
    frozen), `eq` = cash_bal + upl of every position margined in this currency, `iso_eq` =
    isolated margin + isolated upl.
    """

    ccy: str
    eq: float
    cash_bal: float
    avail_eq: float
    avail_bal: float
    frozen_bal: float
    upl: float
    iso_eq: float
    eq_usd: float
    dis_eq: float
    ord_frozen: float = 0.0
    imr: float | None = None
    mmr: float | None = None
    mgn_ratio: float | None = None
    u_time_ms: int = FIXTURE_TIME_MS


@dataclass(slots=True)
class OkxBalance:
    """Account level of `/api/v5/account/balance` (multi-currency margin, acctLv 3), in USD.

    `adj_eq` is the discounted cross equity that backs cross positions, `mmr`/`imr` are the
    cross maintenance/initial requirements, `mgn_ratio` = adjEq / (mmr + fees) (OKX's,
    lower is worse). All stored, because OKX computes them. None renders "", as OKX sends
    these in single-currency margin (acctLv 2), where the currency `details` carry them.
    """

    total_eq: float
    adj_eq: float | None
    iso_eq: float
    imr: float | None
    mmr: float | None
    mgn_ratio: float | None
    notional_usd: float
    upl: float
    details: list[OkxBalanceDetail] = field(default_factory=list)
    ord_froz: float = 0.0
    u_time_ms: int = FIXTURE_TIME_MS


@dataclass(slots=True)
class OkxTradeFee:
    """Fee rates of one instType, stored as positive rates *charged*.

    OKX sends commissions as negative numbers (a positive rate is a rebate); the server
    negates on the way out and ccxt negates back, so `fetch_trading_fee` shows these values.
    For SWAP, `taker`/`maker` are OKX's coin-margined rates and `takerU`/`makerU` the
    USDT-margined ones; the fixture uses one rate for both.
    """

    inst_type: str
    taker: float
    maker: float
    taker_u: float | None = None
    maker_u: float | None = None
    level: str = "Lv1"


@dataclass(slots=True)
class OkxApiKey:
    """Credentials the server accepts. `perm` is OKX's comma list: read_only, trade, withdraw."""

    api_key: str
    secret: str
    passphrase: str
    perm: str = "read_only"
    label: str = "marginwatch"
    ip: str = ""


@dataclass(slots=True)
class OkxAccount:
    """The one trading account behind every API key of the state."""

    uid: str
    balance: OkxBalance
    positions: list[OkxPosition] = field(default_factory=list)
    fees: dict[str, OkxTradeFee] = field(default_factory=dict)  # by instType
    api_keys: list[OkxApiKey] = field(default_factory=list)
    acct_lv: str = "3"  # 1 spot, 2 futures (single-currency), 3 multi-currency, 4 portfolio
    pos_mode: str = "net_mode"
    level: str = "Lv1"


@dataclass(slots=True)
class RecordedRequest:
    """What the server received, so tests can assert which endpoints ccxt really called."""

    method: str
    path: str
    query: dict[str, str]
    body: str
    signed: bool


@dataclass(slots=True)
class OkxState:
    """Everything the server answers from. Mutable on purpose: tests move prices in place."""

    instruments: dict[str, OkxInstrument]
    tiers: dict[str, list[OkxTier]]  # by instFamily, e.g. "BTC-USDT"
    mark_prices: dict[str, float]  # by instId
    account: OkxAccount
    timestamp_tolerance_s: float = 30.0  # OKX rejects requests older than 30 s (50102)
    # instId -> [(ms, price)], what the candle endpoints make their candles from
    price_history: dict[str, list[tuple[int, float]]] = field(default_factory=dict)
    requests: list[RecordedRequest] = field(default_factory=list, repr=False)
    other_accounts: list[OkxAccount] = field(default_factory=list)
    """More trading accounts on the same venue, each answering to its own keys: private
    routes read the account of the key that signed the call."""

    def account_of(self, key: OkxApiKey) -> OkxAccount:
        """The account `key` belongs to."""
        return next(a for a in (self.account, *self.other_accounts) if key in a.api_keys)

    def paths_called(self) -> list[str]:
        """The request paths in order, without query strings."""
        return [request.path for request in self.requests]


# --------------------------------------------------------------------------- wire helpers


def num(value: float | None) -> str:
    """Render a number the way OKX does: a plain decimal string, "" for missing.

    15 significant digits drop binary float noise (18000.329999999998 -> "18000.33") and
    the fixed-point rendering avoids exponents, which OKX never sends.
    """
    if value is None:
        return ""
    text = format(Decimal(f"{value:.15g}").normalize(), "f")
    return "0" if text in ("-0", "") else text


class OkxError(Exception):
    """An OKX error envelope to send back: business code, message and HTTP status."""

    def __init__(self, code: str, msg: str, status: int = 400) -> None:
        super().__init__(f"{code} {msg}")
        self.code = code
        self.msg = msg
        self.status = status


def _json(payload: Any, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(payload), status=status, content_type="application/json")


def _ok(data: list[dict[str, Any]]) -> web.Response:
    return _json({"code": "0", "msg": "", "data": data})


def _required(query: dict[str, str], name: str) -> str:
    value = query.get(name, "")
    if value == "":
        raise OkxError("50014", f"Parameter {name} can not be empty.")
    return value


def _inst_type(query: dict[str, str]) -> str:
    inst_type = _required(query, "instType")
    if inst_type not in INST_TYPES:
        raise OkxError("51000", "Parameter instType error")
    return inst_type


def _family_filter(query: dict[str, str]) -> str | None:
    """OKX accepts the older `uly` wherever `instFamily` is taken; for SWAP they coincide."""
    return query.get("instFamily") or query.get("uly") or None


# --------------------------------------------------------------------------- rendering


def _render_instrument(inst: OkxInstrument) -> dict[str, Any]:
    return {
        "instType": "SWAP",
        "instId": inst.inst_id,
        "uly": inst.inst_family,
        "instFamily": inst.inst_family,
        "baseCcy": "",
        "quoteCcy": "",
        "settleCcy": inst.settle_ccy,
        "ctVal": num(inst.ct_val),
        "ctMult": "1",
        "ctValCcy": inst.ct_val_ccy,
        "ctType": inst.ct_type,
        "optType": "",
        "stk": "",
        "listTime": str(inst.list_time_ms),
        "expTime": "",
        "lever": num(inst.max_lever),
        "tickSz": num(inst.tick_sz),
        "lotSz": num(inst.lot_sz),
        "minSz": num(inst.min_sz),
        "maxLmtSz": "100000000",
        "maxMktSz": "10000",
        "alias": "",
        "state": inst.state,
        "category": "1",
    }


def _notional_usd(inst: OkxInstrument, pos: float, mark: float) -> float:
    """Linear: ctVal x |pos| x mark (USDT, taken as USD). Inverse: ctVal x |pos| (face, USD)."""
    if inst.ct_type == "linear":
        return inst.ct_val * abs(pos) * mark
    return inst.ct_val * abs(pos)


def _render_position(state: OkxState, position: OkxPosition) -> dict[str, Any]:
    inst = state.instruments[position.inst_id]
    mark = state.mark_prices[position.inst_id]
    initial = position.margin if position.mgn_mode == "isolated" else position.imr
    upl_ratio = position.upl / initial if initial else None
    return {
        "instType": "SWAP",
        "instId": position.inst_id,
        "mgnMode": position.mgn_mode,
        "posId": position.pos_id,
        "posSide": position.pos_side,
        "pos": num(position.pos),
        "availPos": num(abs(position.pos)) if position.mgn_mode == "isolated" else "",
        "posCcy": "",
        "ccy": position.ccy,
        "avgPx": num(position.avg_px),
        "markPx": num(mark),
        "last": num(mark),
        "idxPx": num(mark),
        "upl": num(position.upl),
        "uplRatio": num(upl_ratio),
        "uplLastPx": num(position.upl),
        "lever": num(position.lever),
        "liqPx": num(position.liq_px),
        "imr": num(position.imr) if position.mgn_mode == "cross" else "",
        "margin": num(position.margin) if position.mgn_mode == "isolated" else "",
        "mgnRatio": num(position.mgn_ratio),
        "mmr": num(position.mmr),
        "notionalUsd": num(_notional_usd(inst, position.pos, mark)),
        "adl": position.adl,
        "realizedPnl": num(position.realized_pnl),
        "pnl": num(position.realized_pnl),
        "fee": "0",
        "fundingFee": "0",
        "liqPenalty": "0",
        "interest": "",
        "liab": "",
        "liabCcy": "",
        "optVal": "",
        "bePx": num(position.avg_px),
        "tradeId": "1",
        "cTime": str(position.c_time_ms),
        "uTime": str(position.u_time_ms),
        "deltaBS": "",
        "deltaPA": "",
        "gammaBS": "",
        "gammaPA": "",
        "thetaBS": "",
        "thetaPA": "",
        "vegaBS": "",
        "vegaPA": "",
    }


def _render_detail(detail: OkxBalanceDetail) -> dict[str, Any]:
    return {
        "ccy": detail.ccy,
        "eq": num(detail.eq),
        "cashBal": num(detail.cash_bal),
        "availEq": num(detail.avail_eq),
        "availBal": num(detail.avail_bal),
        "frozenBal": num(detail.frozen_bal),
        "ordFrozen": num(detail.ord_frozen),
        "upl": num(detail.upl),
        "isoEq": num(detail.iso_eq),
        "isoUpl": "",
        "eqUsd": num(detail.eq_usd),
        "disEq": num(detail.dis_eq),
        "imr": num(detail.imr),
        "mmr": num(detail.mmr),
        "mgnRatio": num(detail.mgn_ratio),
        "liab": "",
        "crossLiab": "",
        "isoLiab": "",
        "interest": "",
        "maxLoan": "",
        "notionalLever": "",
        "twap": "0",
        "uplLiab": "",
        "stgyEq": "0",
        "spotInUseAmt": "",
        "uTime": str(detail.u_time_ms),
    }


def _render_balance(balance: OkxBalance, details: list[OkxBalanceDetail]) -> dict[str, Any]:
    return {
        "totalEq": num(balance.total_eq),
        "adjEq": num(balance.adj_eq),
        "isoEq": num(balance.iso_eq),
        "imr": num(balance.imr),
        "mmr": num(balance.mmr),
        "mgnRatio": num(balance.mgn_ratio),
        "notionalUsd": num(balance.notional_usd),
        "ordFroz": num(balance.ord_froz),
        "upl": num(balance.upl),
        "borrowFroz": "",
        "uTime": str(balance.u_time_ms),
        "details": [_render_detail(detail) for detail in details],
    }


def _render_fee(fee: OkxTradeFee) -> dict[str, Any]:
    taker_u = fee.taker if fee.taker_u is None else fee.taker_u
    maker_u = fee.maker if fee.maker_u is None else fee.maker_u
    return {
        "instType": fee.inst_type,
        "level": fee.level,
        "category": "1",
        "taker": num(-fee.taker),
        "maker": num(-fee.maker),
        "takerU": num(-taker_u),
        "makerU": num(-maker_u),
        "takerUSDC": num(-taker_u),
        "makerUSDC": num(-maker_u),
        "delivery": "",
        "exercise": "",
        "fiat": [],
        "ts": str(int(time.time() * 1000)),
    }


# --------------------------------------------------------------------------- handlers

Handler = Callable[[OkxState, dict[str, str], OkxApiKey | None], list[dict[str, Any]]]
"""(state, query, the authenticated key or None) -> the `data` rows of the envelope."""


def _public_time(
    _state: OkxState, _q: dict[str, str], _key: OkxApiKey | None
) -> list[dict[str, Any]]:
    return [{"ts": str(int(time.time() * 1000))}]


def _instruments(
    state: OkxState, q: dict[str, str], _key: OkxApiKey | None
) -> list[dict[str, Any]]:
    inst_type = _inst_type(q)
    if inst_type != "SWAP":
        return []  # only swaps are modelled; other types exist but are empty here
    family = _family_filter(q)
    inst_id = q.get("instId")
    return [
        _render_instrument(inst)
        for inst in state.instruments.values()
        if (family is None or inst.inst_family == family)
        and (inst_id is None or inst.inst_id == inst_id)
    ]


def _mark_price(state: OkxState, q: dict[str, str], _key: OkxApiKey | None) -> list[dict[str, Any]]:
    inst_id = q.get("instId")
    inst_type = _inst_type(q) if inst_id is None else q.get("instType", "SWAP")
    if inst_id is not None and inst_id not in state.mark_prices:
        raise OkxError("51001", "Instrument ID does not exist")
    family = _family_filter(q)
    now = str(int(time.time() * 1000))
    rows = [
        {"instType": "SWAP", "instId": iid, "markPx": num(mark), "ts": now}
        for iid, mark in state.mark_prices.items()
        if inst_type == "SWAP"
        and (inst_id is None or iid == inst_id)
        and (family is None or state.instruments[iid].inst_family == family)
    ]
    return rows


def _position_tiers(
    state: OkxState, q: dict[str, str], _key: OkxApiKey | None
) -> list[dict[str, Any]]:
    inst_type = _inst_type(q)
    td_mode = _required(q, "tdMode")
    if td_mode not in ("cross", "isolated"):
        raise OkxError("51000", "Parameter tdMode error")
    if inst_type != "SWAP":
        return []
    family = _family_filter(q)
    if family is None:
        raise OkxError("50014", "Parameter instFamily can not be empty.")
    if family not in state.tiers:
        raise OkxError("51000", "Parameter instFamily error")
    wanted_tier = q.get("tier")
    rows = [
        {
            "uly": family,
            "instFamily": family,
            "instId": "",
            "tier": str(tier.tier),
            "minSz": num(tier.min_sz),
            "maxSz": num(tier.max_sz),
            "mmr": num(tier.mmr),
            "imr": num(tier.imr),
            "maxLever": num(tier.max_lever),
            "optMgnFactor": "0",
            "quoteMaxLoan": "",
            "baseMaxLoan": "",
        }
        for tier in state.tiers[family]
        if wanted_tier is None or str(tier.tier) == wanted_tier
    ]
    return rows


def _account(state: OkxState, key: OkxApiKey | None) -> OkxAccount:
    assert key is not None  # a private route: _dispatch authenticated it
    return state.account_of(key)


def _positions(state: OkxState, q: dict[str, str], key: OkxApiKey | None) -> list[dict[str, Any]]:
    inst_type = q.get("instType")
    if inst_type is not None and inst_type not in INST_TYPES:
        raise OkxError("51000", "Parameter instType error")
    inst_ids = set(q["instId"].split(",")) if q.get("instId") else None
    pos_ids = set(q["posId"].split(",")) if q.get("posId") else None
    rows = [
        _render_position(state, position)
        for position in _account(state, key).positions
        if inst_type in (None, "SWAP")
        and (inst_ids is None or position.inst_id in inst_ids)
        and (pos_ids is None or position.pos_id in pos_ids)
    ]
    return rows


def _balance(state: OkxState, q: dict[str, str], key: OkxApiKey | None) -> list[dict[str, Any]]:
    wanted = set(q["ccy"].split(",")) if q.get("ccy") else None
    balance = _account(state, key).balance
    details = [d for d in balance.details if wanted is None or d.ccy in wanted]
    return [_render_balance(balance, details)]


def _trade_fee(state: OkxState, q: dict[str, str], key: OkxApiKey | None) -> list[dict[str, Any]]:
    inst_type = _inst_type(q)
    if inst_type in ("SWAP", "FUTURES", "OPTION"):
        family = _family_filter(q)
        if family is None:
            raise OkxError("50014", "Parameter instFamily can not be empty.")
        if family not in {inst.inst_family for inst in state.instruments.values()}:
            raise OkxError("51000", "Parameter instFamily error")
    fee = _account(state, key).fees.get(inst_type)
    if fee is None:
        raise OkxError("51000", "Parameter instType error")
    return [_render_fee(fee)]


def _config(state: OkxState, _q: dict[str, str], key: OkxApiKey | None) -> list[dict[str, Any]]:
    """Account configuration; `perm` and `label` are those of the key that signed the call."""
    account = _account(state, key)
    return [
        {
            "uid": account.uid,
            "mainUid": account.uid,
            "acctLv": account.acct_lv,
            "acctStpMode": "cancel_maker",
            "posMode": account.pos_mode,
            "autoLoan": False,
            "greeksType": "PA",
            "level": account.level,
            "levelTmp": "",
            "ctIsoMode": "automatic",
            "mgnIsoMode": "automatic",
            "spotOffsetType": "",
            "roleType": "0",
            "traderInsts": [],
            "spotRoleType": "0",
            "spotTraderInsts": [],
            "opAuth": "0",
            "kycLv": "2",
            "label": key.label,
            "ip": key.ip,
            "perm": key.perm,
            "liquidationGear": "-1",
            "enableSpotBorrow": False,
            "spotBorrowAutoRepay": False,
            "type": "0",
            "settleCcy": "USDT",
            "settleCcyList": ["USD", "USDC", "USDG"],
        }
    ]


CANDLE_BARS = {
    "1m": 60_000, "3m": 180_000, "5m": 300_000, "15m": 900_000, "30m": 1_800_000,
    "1H": 3_600_000, "2H": 7_200_000, "4H": 14_400_000, "6Hutc": 21_600_000,
    "12Hutc": 43_200_000, "1Dutc": 86_400_000, "1Wutc": 604_800_000,
}  # fmt: skip
"""OKX's `bar` values aligned to UTC (the Hong Kong-aligned 6H, 12H, 1D... are not served)."""


def _candle_reader(cap: int) -> Handler:
    """/market/candles and /market/history-candles (up to 300 each): rows of nine
    strings (ts, O, H, L, C, vol, volCcy, volCcyQuote, confirm), newest first, with ts
    after `before` and before `after` (both exclusive). No volume is simulated: "0"."""

    def read(state: OkxState, q: dict[str, str], _key: OkxApiKey | None) -> Any:
        inst_id = _required(q, "instId")
        step = CANDLE_BARS.get(q.get("bar", "1m"))
        if step is None:
            raise OkxError("51000", "Parameter bar error")
        limit = int(q.get("limit") or 100)
        if not 0 < limit <= cap:
            raise OkxError("51000", "Parameter limit error")
        after = int(q["after"]) if q.get("after") else None
        before = int(q["before"]) if q.get("before") else None
        rows = [
            r for r in candles(state.price_history.get(inst_id, []), step)
            if (before is None or r[0] > before) and (after is None or r[0] < after)
        ][-limit:]  # fmt: skip
        return [
            [str(at), num(o), num(h), num(lo), num(c), "0", "0", "0", "1"]
            for at, o, h, lo, c in reversed(rows)
        ]

    return read


PUBLIC_ROUTES: dict[str, Handler] = {
    "/api/v5/market/candles": _candle_reader(300),
    "/api/v5/market/history-candles": _candle_reader(300),
    "/api/v5/public/time": _public_time,
    "/api/v5/public/instruments": _instruments,
    "/api/v5/public/mark-price": _mark_price,
    "/api/v5/public/position-tiers": _position_tiers,
}
PRIVATE_ROUTES: dict[str, Handler] = {
    "/api/v5/account/positions": _positions,
    "/api/v5/account/balance": _balance,
    "/api/v5/account/trade-fee": _trade_fee,
    "/api/v5/account/config": _config,
}


# --------------------------------------------------------------------------- signature


def expected_signature(secret: str, timestamp: str, method: str, path_qs: str, body: str) -> str:
    """OKX's signature: base64(HMAC-SHA256(secret, timestamp + METHOD + path?query + body)).

    This is exactly what ccxt's okx.sign() builds: the query string is part of the signed
    path for GET, the JSON body is appended for POST.
    """
    message = f"{timestamp}{method.upper()}{path_qs}{body}".encode()
    digest = hmac.new(secret.encode(), message, hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def _authenticate(request: web.Request, state: OkxState, body: str) -> OkxApiKey:
    """Check the four OK-ACCESS-* headers in the order OKX reports their errors."""
    headers = request.headers
    key_id = headers.get("OK-ACCESS-KEY", "")
    passphrase = headers.get("OK-ACCESS-PASSPHRASE", "")
    signature = headers.get("OK-ACCESS-SIGN", "")
    timestamp = headers.get("OK-ACCESS-TIMESTAMP", "")
    if not key_id:
        raise OkxError("50103", 'Request header "OK-ACCESS-KEY" can not be empty.', 401)
    if not passphrase:
        raise OkxError("50104", 'Request header "OK-ACCESS-PASSPHRASE" can not be empty.', 401)
    if not signature:
        raise OkxError("50106", 'Request header "OK-ACCESS-SIGN" can not be empty.', 401)
    if not timestamp:
        raise OkxError("50107", 'Request header "OK-ACCESS-TIMESTAMP" can not be empty.', 401)
    keys = (k for a in (state.account, *state.other_accounts) for k in a.api_keys)
    key = next((k for k in keys if k.api_key == key_id), None)
    if key is None:
        raise OkxError("50111", "Invalid OK-ACCESS-KEY.", 401)
    if not hmac.compare_digest(key.passphrase, passphrase):
        raise OkxError("50105", 'Request header "OK-ACCESS-PASSPHRASE" incorrect.', 401)
    try:
        sent = datetime.fromisoformat(timestamp)
    except ValueError:
        raise OkxError("50112", "Invalid OK-ACCESS-TIMESTAMP.", 401) from None
    if sent.tzinfo is None:  # OKX timestamps are UTC ("...Z"); never read one as local time
        sent = sent.replace(tzinfo=UTC)
    if abs(time.time() - sent.timestamp()) > state.timestamp_tolerance_s:
        raise OkxError("50102", "Timestamp request expired.", 401)
    wanted = expected_signature(key.secret, timestamp, request.method, request.raw_path, body)
    if not hmac.compare_digest(wanted, signature):
        raise OkxError("50113", "Invalid Sign", 401)
    return key


# --------------------------------------------------------------------------- app

STATE_KEY = web.AppKey("okx_state", OkxState)


async def _dispatch(request: web.Request) -> web.Response:
    """Route by exact path; anything unknown is a 404, never an empty 200."""
    state = request.app[STATE_KEY]
    body = await request.text()
    path = request.path
    query = dict(request.query)
    private = path in PRIVATE_ROUTES
    state.requests.append(RecordedRequest(request.method, path, query, body, private))
    handler = PRIVATE_ROUTES.get(path) or PUBLIC_ROUTES.get(path)
    if handler is None:
        return _json({"code": "404", "msg": f"Not Found: {path}", "data": []}, status=404)
    if request.method != "GET":
        # Every endpoint served here is GET on OKX; POST to them is OKX's 50115.
        return _json({"code": "50115", "msg": "Invalid request method.", "data": []}, 405)
    try:
        key = _authenticate(request, state, body) if private else None
        return _ok(handler(state, query, key))
    except OkxError as error:
        return _json({"code": error.code, "msg": error.msg, "data": []}, status=error.status)


def create_app(state: OkxState) -> web.Application:
    """An aiohttp app answering OKX v5 REST from `state`; serve it with LocalServer."""
    app = web.Application()
    app[STATE_KEY] = state
    app.router.add_route("*", "/{tail:.*}", _dispatch)
    return app


# --------------------------------------------------------------------------- fixture

BTC_USDT = "BTC-USDT-SWAP"
ETH_USDT = "ETH-USDT-SWAP"
BTC_USD = "BTC-USD-SWAP"

FIXTURE_API_KEY = "okx-test-key"
FIXTURE_SECRET = "okx-test-secret"
FIXTURE_PASSPHRASE = "okx-test-passphrase"


def hybrid_account(perm: str = "read_only") -> OkxState:
    """A multi-currency-margin (acctLv 3) account holding three kinds of position at once.

    1. BTC-USDT-SWAP isolated long (linear, USDT-margined)
    2. ETH-USDT-SWAP cross short (linear, in the account's cross pool)
    3. BTC-USD-SWAP isolated short (inverse, BTC-margined)

    Tiers, marks and fees are illustrative (OKX's shapes, round numbers); every figure OKX
    would compute is derived by hand below with the formulas of margin-models.md, so the
    monitor's engine can be checked against them:
      linear MM  = ctVal x |pos| x mark x mmr          (USDT)
      inverse MM = ctVal x |pos| / mark x mmr          (coin)
      fee        = the same base x taker rate          (OKX's liquidation fee term)
      OKX mgnRatio = equity / (MM + fee), liquidation at <= 1 (lower is worse)
    The credentials are FIXTURE_API_KEY / FIXTURE_SECRET / FIXTURE_PASSPHRASE.
    """
    instruments = {
        BTC_USDT: OkxInstrument(
            BTC_USDT, "BTC-USDT", "linear", ct_val=0.01, ct_val_ccy="BTC",
            settle_ccy="USDT", tick_sz=0.1, lot_sz=0.01, min_sz=0.01, max_lever=100,
        ),
        ETH_USDT: OkxInstrument(
            ETH_USDT, "ETH-USDT", "linear", ct_val=0.1, ct_val_ccy="ETH",
            settle_ccy="USDT", tick_sz=0.01, lot_sz=0.01, min_sz=0.01, max_lever=100,
        ),
        BTC_USD: OkxInstrument(
            BTC_USD, "BTC-USD", "inverse", ct_val=100, ct_val_ccy="USD",
            settle_ccy="BTC", tick_sz=0.1, lot_sz=1, min_sz=1, max_lever=100,
        ),
    }  # fmt: skip
    # Tiers are keyed by position size in contracts (OKX SWAP); imr = 1 / maxLever.
    tiers = {
        "BTC-USDT": [
            OkxTier(1, 0, 2_000, mmr=0.004, imr=0.01, max_lever=100),
            OkxTier(2, 2_000, 5_000, mmr=0.005, imr=0.0125, max_lever=80),
            OkxTier(3, 5_000, 10_000, mmr=0.01, imr=0.02, max_lever=50),
        ],
        "ETH-USDT": [
            OkxTier(1, 0, 5_000, mmr=0.005, imr=0.01, max_lever=100),
            OkxTier(2, 5_000, 10_000, mmr=0.01, imr=0.02, max_lever=50),
        ],
        "BTC-USD": [
            OkxTier(1, 0, 10_000, mmr=0.005, imr=0.01, max_lever=100),
            OkxTier(2, 10_000, 20_000, mmr=0.01, imr=0.02, max_lever=50),
        ],
    }
    marks = {BTC_USDT: 60_000.0, ETH_USDT: 3_000.0, BTC_USD: 60_000.0}
    taker = 0.0005
    maker = 0.0002

    # 1. BTC-USDT-SWAP isolated long: 50 contracts = 0.5 BTC, entry 58,000, 10x.
    #    notional = 0.01 x 50 x 60,000 = 30,000 USDT (tier 1: 50 <= 2,000 contracts)
    #    margin   = 0.01 x 50 x 58,000 / 10 = 2,900 USDT (initial margin posted at entry)
    #    upl      = 0.01 x 50 x (60,000 - 58,000) = +1,000 USDT
    #    MM       = 30,000 x 0.004 = 120 USDT; fee = 30,000 x 0.0005 = 15 USDT
    #    mgnRatio = (2,900 + 1,000) / (120 + 15) = 28.888...
    #    liqPx: 2,900 + 0.5 (P - 58,000) = 0.5 P (0.004 + 0.0005)
    #           => P = 26,100 / 0.49775 = 52,435.9618...
    btc_long = OkxPosition(
        BTC_USDT, "isolated", pos=50, avg_px=58_000, lever=10, ccy="USDT",
        upl=1_000, mmr=120, mgn_ratio=3_900 / 135, liq_px=26_100 / 0.49775,
        margin=2_900, pos_id="1001",
    )  # fmt: skip

    # 2. ETH-USDT-SWAP cross short: -20 contracts = 2 ETH, entry 3,100, 5x.
    #    notional = 0.1 x 20 x 3,000 = 6,000 USDT (tier 1)
    #    upl      = 0.1 x 20 x (3,100 - 3,000) = +200 USDT
    #    imr      = 6,000 / 5 = 1,200 USDT
    #    MM       = 6,000 x 0.005 = 30 USDT; fee = 6,000 x 0.0005 = 3 USDT
    #    mgnRatio = the account's (cross pool): adjEq / (mmr + fee) = 7,750 / 33 = 234.8484...
    #    liqPx (other prices fixed): adjEq falls 2 USDT per +1 of ETH, MM + fee = 2 P x 0.0055
    #           7,750 - 2 (P - 3,000) = 0.011 P  => P = 13,750 / 2.011 = 6,837.3943...
    eth_short = OkxPosition(
        ETH_USDT, "cross", pos=-20, avg_px=3_100, lever=5, ccy="USDT",
        upl=200, mmr=30, mgn_ratio=7_750 / 33, liq_px=13_750 / 2.011,
        imr=1_200, pos_id="1002",
    )  # fmt: skip

    # 3. BTC-USD-SWAP isolated short: -30 contracts x 100 USD = 3,000 USD face, entry 62,000.
    #    coin notional = 3,000 / 60,000 = 0.05 BTC
    #    margin   = 0.0025 BTC posted (a little above 3,000 / 62,000 / 20 = 0.00242 at 20x)
    #    upl      = 3,000 x (1/60,000 - 1/62,000) = +0.00161290322... BTC
    #    MM       = 100 x 30 / 60,000 x 0.005 = 0.00025 BTC; fee = 0.05 x 0.0005 = 0.000025
    #    mgnRatio = (0.0025 + 0.0016129...) / 0.000275 = 14.9560...
    #    liqPx: 0.0025 + 3,000 (1/P - 1/62,000) = 3,000 / P x 0.0055
    #           => P = 3,000 x 0.9945 / (3,000 / 62,000 - 0.0025) = 65,018.2776...
    inv_upl = 3_000 * (1 / 60_000 - 1 / 62_000)
    btc_inverse_short = OkxPosition(
        BTC_USD, "isolated", pos=-30, avg_px=62_000, lever=20, ccy="BTC",
        upl=inv_upl, mmr=0.00025, mgn_ratio=(0.0025 + inv_upl) / 0.000275,
        liq_px=3_000 * 0.9945 / (3_000 / 62_000 - 0.0025), margin=0.0025, pos_id="1003",
    )  # fmt: skip

    # Balances. USDT: cash 10,000 (of which 2,900 is isolated margin, frozen).
    #   upl = 1,000 (iso BTC) + 200 (cross ETH); eq = 11,200; isoEq = 2,900 + 1,000 = 3,900
    #   availEq = eq - isoEq - cross imr = 11,200 - 3,900 - 1,200 = 6,100
    # BTC: cash 0.01 (of which 0.0025 isolated margin); upl = 0.0016129...; isoEq = 0.0041129...
    #   availEq = eq - isoEq = 0.0075 BTC; valued at 60,000 USD/BTC.
    usdt = OkxBalanceDetail(
        "USDT", eq=11_200, cash_bal=10_000, avail_eq=6_100, avail_bal=7_100, frozen_bal=2_900,
        upl=1_200, iso_eq=3_900, eq_usd=11_200, dis_eq=11_200, imr=1_200, mmr=30,
    )  # fmt: skip
    btc_eq = 0.01 + inv_upl
    btc = OkxBalanceDetail(
        "BTC", eq=btc_eq, cash_bal=0.01, avail_eq=0.0075, avail_bal=0.0075, frozen_bal=0.0025,
        upl=inv_upl, iso_eq=0.0025 + inv_upl, eq_usd=btc_eq * 60_000, dis_eq=btc_eq * 60_000,
    )  # fmt: skip
    # Account (USD): totalEq = 11,200 + 0.0116129... x 60,000 = 11,896.77...
    #   isoEq = 3,900 + 0.0041129... x 60,000; adjEq = cross equity only (discount 1):
    #   (11,200 - 3,900) + 0.0075 x 60,000 = 7,750. mmr/imr = the cross ETH short: 30 / 1,200.
    #   mgnRatio = 7,750 / (30 + 3) = 234.8484...; notionalUsd = 30,000 + 6,000 + 3,000.
    balance = OkxBalance(
        total_eq=11_200 + btc_eq * 60_000,
        adj_eq=7_750,
        iso_eq=3_900 + (0.0025 + inv_upl) * 60_000,
        imr=1_200,
        mmr=30,
        mgn_ratio=7_750 / 33,
        notional_usd=39_000,
        upl=1_200 + inv_upl * 60_000,
        details=[usdt, btc],
    )
    account = OkxAccount(
        uid="44705892343619584",
        balance=balance,
        positions=[btc_long, eth_short, btc_inverse_short],
        fees={"SWAP": OkxTradeFee("SWAP", taker=taker, maker=maker)},
        api_keys=[OkxApiKey(FIXTURE_API_KEY, FIXTURE_SECRET, FIXTURE_PASSPHRASE, perm=perm)],
    )
    return OkxState(instruments=instruments, tiers=tiers, mark_prices=marks, account=account)


def single_currency_account(perm: str = "read_only") -> OkxState:
    """The hybrid account's positions in Spot-and-futures mode (acctLv 2, single-currency margin).

    Cross positions now draw on their settlement currency alone: the ETH cross short on the
    USDT cross equity, the BTC balance no longer backs it. Hand-derived:
      USDT cross equity = eq - isoEq = 11,200 - 3,900 = 7,300; mmr 30, fee 6,000 x 0.0005 = 3
      USDT mgnRatio = 7,300 / 33 = 221.2121... (also the ETH position's mgnRatio)
      ETH liqPx: 7,300 - 2 (P - 3,000) = 2 P x 0.0055  =>  P = 13,300 / 2.011 = 6,613.6250...
    The account-level adjEq, imr, mmr and mgnRatio are "" (not applicable in this mode);
    the isolated positions are unchanged.
    """
    state = hybrid_account(perm)
    state.account.acct_lv = "2"
    balance = state.account.balance
    balance.adj_eq = balance.imr = balance.mmr = balance.mgn_ratio = None
    usdt = next(detail for detail in balance.details if detail.ccy == "USDT")
    usdt.mgn_ratio = 7_300 / 33
    eth = next(position for position in state.account.positions if position.inst_id == ETH_USDT)
    eth.mgn_ratio = 7_300 / 33
    eth.liq_px = 13_300 / 2.011
    return state
