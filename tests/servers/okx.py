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

With those, ccxt's reads call (all GET):
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

Trading (see the "trading" section): orders fill at once at the mark; figures a fill or a
margin move touches are recomputed with the fixture's formulas. ccxt calls an executor uses:
    create_order(sym, "market", side, contracts, None, {"reduceOnly": True,
                 "clientOrderId": id, "marginMode": "cross"|"isolated"})
                                   POST /api/v5/trade/batch-orders (ccxt's default: a
                                   one-element array) or, with options["createOrder"] =
                                   "privatePostTradeOrder", POST /api/v5/trade/order
    fetch_order(None, sym, {"clientOrderId": id})    GET /api/v5/trade/order?clOrdId=
    privatePostAccountPositionMarginBalance({"instId", "posSide": "net", "type": "add",
                 "amt"})       ccxt 4.5.90's add_margin moves the margin, then fails to
                                   parse the reply (TypeError): use the raw method
    transfer("USDT", amt, "funding", "trading", {"clientId": id})   POST /api/v5/asset/transfer
    privateGetAssetTransferState({"clientId": id}), privateGetAssetBalances({"ccy": "USDT"})
    privateGetAccountConfig()      `perm` of the signing key

Instruments of the other types (SPOT, FUTURES, OPTION) answer with an empty list, so a client
left on ccxt's default `fetchMarkets` types also loads. `/api/v5/asset/currencies` is not
served (404): disable `fetchCurrencies` as above.

Not verified against the live exchange: the exact HTTP status OKX pairs with each error code
(ccxt decides by the `code` field alone, so 401 is used for auth errors and 400 for
parameter errors), and the body OKX sends for an unknown path (a JSON 404 here).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import itertools
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Literal

import ccxt.async_support as ccxt_async
import orjson
from aiohttp import web

from monitor.exchange.urls import rebase_urls
from monitor.simulator.candles import candles
from tests.servers.faults import OrderFault, transport_fault

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
    "make_client",
    "move_mark",
    "multi_currency_account",
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
    #: The funding account (type 6) by currency: the reserve transfers draw on.
    funding: dict[str, float] = field(default_factory=dict)
    orders: list[OkxOrder] = field(default_factory=list)
    transfers: list[OkxTransfer] = field(default_factory=list)
    #: Successful margin-balance calls: (instId, "add" | "reduce", amount).
    margin_moves: list[tuple[str, str, float]] = field(default_factory=list)
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
    exp_time: str | None = None
    """The `expTime` header (OKX's request deadline, Unix ms), when the client sent one."""
    stamp: str | None = None
    """The OK-ACCESS-TIMESTAMP header of a signed request."""


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
    #: Fail the reply of the next order request (after it filled); cleared when used.
    fail_next_order: OrderFault | None = None
    #: POST path (margin-balance, asset/transfer) -> fail the reply of its next request
    #: after it was applied; each cleared when used.
    fail_next_post: dict[str, OrderFault] = field(default_factory=dict)
    #: Refuse this many isolated adds with 59301 although the balance allows them (OKX
    #: judging the balance otherwise than it reports it); counted down as used.
    refuse_adds: int = 0
    #: Hold the next order request this long before it is processed (stuck in transit):
    #: by then its `expTime` may have passed; cleared when used.
    delay_next_order_s: float = 0.0
    #: Order requests refused because they arrived after their `expTime`.
    expired_requests: int = 0
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


# --------------------------------------------------------------------------- trading
#
# Orders never rest: market, optimal_limit_ioc, and ioc/fok limits that cross the mark fill
# in full at the mark; a non-crossing ioc/fok limit is canceled with nothing filled. Fills
# and margin moves are modelled for linear USDT swaps: the touched position's figures and
# the USDT currency detail are recomputed with the formulas the fixture's docstring uses
# (MM = notional x tier mmr, fee = notional x taker, mgnRatio = equity / (MM + fee)), and
# the account totals move by the same deltas (the BTC-margined part is left as set).


@dataclass(slots=True)
class OkxOrder:
    """One order as `GET /api/v5/trade/order` returns it."""

    ord_id: str
    cl_ord_id: str
    inst_id: str
    td_mode: str
    side: str
    pos_side: str
    ord_type: str
    sz: float
    px: float | None
    reduce_only: bool
    state: str  # "filled" | "canceled"
    fill_px: float
    fill_sz: float
    fee: float  # negative = charged, as OKX sends it
    pnl: float
    lever: float
    c_time_ms: int


@dataclass(slots=True)
class OkxTransfer:
    """One funds transfer (`POST /api/v5/asset/transfer`)."""

    trans_id: str
    client_id: str
    ccy: str
    amt: float
    source: str
    target: str


def _render_order(order: OkxOrder) -> dict[str, Any]:
    filled = order.state == "filled"
    return {
        "instType": "SWAP",
        "instId": order.inst_id,
        "tgtCcy": "",
        "ccy": "",
        "ordId": order.ord_id,
        "clOrdId": order.cl_ord_id,
        "tag": "",
        "px": num(order.px),
        "pxUsd": "",
        "pxVol": "",
        "pxType": "",
        "sz": num(order.sz),
        "pnl": num(order.pnl),
        "ordType": order.ord_type,
        "side": order.side,
        "posSide": order.pos_side,
        "tdMode": order.td_mode,
        "accFillSz": num(order.fill_sz),
        "fillPx": num(order.fill_px) if filled else "",
        "tradeId": order.ord_id if filled else "",
        "fillSz": num(order.fill_sz),
        "fillTime": str(order.c_time_ms) if filled else "",
        "avgPx": num(order.fill_px) if filled else "",
        "state": order.state,
        "stpId": "",
        "stpMode": "cancel_maker",
        "lever": num(order.lever),
        "attachAlgoClOrdId": "",
        "tpTriggerPx": "",
        "tpTriggerPxType": "",
        "tpOrdPx": "",
        "slTriggerPx": "",
        "slTriggerPxType": "",
        "slOrdPx": "",
        "attachAlgoOrds": [],
        "linkedAlgoOrd": {"algoId": ""},
        "feeCcy": "USDT",
        "fee": num(order.fee),
        "rebateCcy": "USDT",
        "rebate": "0",
        "source": "",
        "category": "normal",
        "reduceOnly": "true" if order.reduce_only else "false",
        "isTpLimit": "false",
        "cancelSource": "" if filled else "14",
        "cancelSourceReason": "",
        "quickMgnType": "",
        "algoClOrdId": "",
        "algoId": "",
        "uTime": str(order.c_time_ms),
        "cTime": str(order.c_time_ms),
    }


def _direction(position: OkxPosition) -> int:
    """+1 long, -1 short: posSide in long/short mode, the sign of `pos` in net mode."""
    if position.pos_side in ("long", "short"):
        return 1 if position.pos_side == "long" else -1
    return 1 if position.pos > 0 else -1


def _tier_rate(state: OkxState, inst: OkxInstrument, contracts: float) -> float:
    tiers = state.tiers[inst.inst_family]
    tier = next((t for t in tiers if t.min_sz < contracts <= t.max_sz), tiers[-1])
    return tier.mmr


def _taker(state: OkxState) -> float:
    return state.account.fees["SWAP"].taker


def _reprice(state: OkxState, position: OkxPosition) -> None:
    """Recompute a linear position's upl, MM, cross IM, and isolated ratio / liqPx.

    Isolated liqPx (margin + uPnL = MM + fee at P, as in the fixture):
      long  P = (q x avg - margin) / (q x (1 - mmr - taker))
      short P = (q x avg + margin) / (q x (1 + mmr + taker))   (q in coin)
    """
    inst = state.instruments[position.inst_id]
    mark = state.mark_prices[position.inst_id]
    side = _direction(position)
    contracts = abs(position.pos)
    coin = inst.ct_val * contracts
    notional = coin * mark
    rate = _tier_rate(state, inst, contracts)
    taker = _taker(state)
    position.upl = side * coin * (mark - position.avg_px)
    position.mmr = notional * rate
    position.u_time_ms = int(time.time() * 1000)
    if position.mgn_mode == "cross":
        position.imr = notional / position.lever
        return
    margin = position.margin or 0.0
    position.mgn_ratio = (margin + position.upl) / (position.mmr + notional * taker)
    if side > 0:
        position.liq_px = (coin * position.avg_px - margin) / (coin * (1 - rate - taker))
    else:
        position.liq_px = (coin * position.avg_px + margin) / (coin * (1 + rate + taker))


@dataclass(slots=True)
class _UsdtView:
    """The USDT-margined part of the account, as the balance figures depend on it."""

    eq: float
    iso_eq: float
    imr: float
    mmr: float
    notional: float
    upl: float


def _usdt_positions(state: OkxState) -> list[OkxPosition]:
    return [p for p in state.account.positions if p.ccy == "USDT"]


def _usdt_detail(state: OkxState) -> OkxBalanceDetail:
    return next(d for d in state.account.balance.details if d.ccy == "USDT")


def _usdt_view(state: OkxState) -> _UsdtView:
    detail = _usdt_detail(state)
    notional = sum(
        state.instruments[p.inst_id].ct_val * abs(p.pos) * state.mark_prices[p.inst_id]
        for p in _usdt_positions(state)
    )
    return _UsdtView(
        detail.eq, detail.iso_eq, detail.imr or 0.0, detail.mmr or 0.0, notional, detail.upl
    )


def _refresh_usdt(state: OkxState, before: _UsdtView) -> None:
    """Recompute the USDT detail from cash and positions; move the account totals by the
    same deltas; then the cross ratio and each cross position's ratio and liqPx."""
    detail = _usdt_detail(state)
    positions = _usdt_positions(state)
    cross = [p for p in positions if p.mgn_mode == "cross"]
    isolated = [p for p in positions if p.mgn_mode == "isolated"]
    iso_margin = sum(p.margin or 0.0 for p in isolated)
    detail.upl = sum(p.upl for p in positions)
    detail.eq = detail.cash_bal + detail.upl
    detail.iso_eq = iso_margin + sum(p.upl for p in isolated)
    detail.frozen_bal = iso_margin
    detail.avail_bal = detail.cash_bal - iso_margin
    detail.imr = sum(p.imr or 0.0 for p in cross)
    detail.mmr = sum(p.mmr for p in cross)
    detail.avail_eq = detail.eq - detail.iso_eq - detail.imr
    detail.eq_usd = detail.dis_eq = detail.eq
    detail.u_time_ms = int(time.time() * 1000)
    after = _usdt_view(state)
    balance = state.account.balance
    balance.total_eq += after.eq - before.eq
    balance.iso_eq += after.iso_eq - before.iso_eq
    balance.upl += after.upl - before.upl
    balance.notional_usd += after.notional - before.notional
    cross_fee = sum(
        state.instruments[p.inst_id].ct_val * abs(p.pos) * state.mark_prices[p.inst_id]
        for p in cross
    ) * _taker(state)
    if balance.adj_eq is not None:  # multi-currency margin: the account backs cross
        balance.adj_eq += (after.eq - after.iso_eq) - (before.eq - before.iso_eq)
        balance.imr = (balance.imr or 0.0) + after.imr - before.imr
        balance.mmr = (balance.mmr or 0.0) + after.mmr - before.mmr
        cross_equity, cross_mm = balance.adj_eq, balance.mmr
    else:  # single-currency margin: USDT cross equity backs USDT cross positions
        cross_equity, cross_mm = detail.eq - detail.iso_eq, detail.mmr
    ratio = cross_equity / (cross_mm + cross_fee) if cross_mm + cross_fee else None
    if balance.adj_eq is not None:
        balance.mgn_ratio = ratio
    else:
        detail.mgn_ratio = ratio
    for position in cross:
        position.mgn_ratio = ratio
        position.liq_px = _cross_liq_px(state, position, cross_equity)


def _cross_liq_px(state: OkxState, position: OkxPosition, cross_equity: float) -> float:
    """Other prices fixed (as in the fixture): equity moves q per unit of price.
    long  P = (q x mark - E) / (q x (1 - mmr - taker))
    short P = (E + q x mark) / (q x (1 + mmr + taker))"""
    inst = state.instruments[position.inst_id]
    coin = inst.ct_val * abs(position.pos)
    mark = state.mark_prices[position.inst_id]
    cost = _tier_rate(state, inst, abs(position.pos)) + _taker(state)
    if _direction(position) > 0:
        return max(0.0, (coin * mark - cross_equity) / (coin * (1 - cost)))
    return (cross_equity + coin * mark) / (coin * (1 + cost))


def move_mark(state: OkxState, inst_id: str, price: float) -> None:
    """Move a USDT swap's mark and recompute what OKX's risk engine would, with the
    fixture's formulas (as after a fill): its positions and the USDT figures."""
    before = _usdt_view(state)
    state.mark_prices[inst_id] = price
    for position in _usdt_positions(state):
        if position.inst_id == inst_id:
            _reprice(state, position)
    _refresh_usdt(state, before)


class OkxOrderRejected(Exception):
    """A per-order failure: rendered as `sCode`/`sMsg` inside `data` (top-level code 1)."""

    def __init__(self, s_code: str, s_msg: str) -> None:
        super().__init__(f"{s_code} {s_msg}")
        self.s_code = s_code
        self.s_msg = s_msg


def _require_perm(key: OkxApiKey | None, perm: str) -> None:
    """A key without `trade` may only read. The code is unverified against the live API."""
    if key is None or perm not in key.perm.split(","):
        raise OkxError("50120", "API key doesn't have permission to use this endpoint.", 403)


def _find_okx_position(
    state: OkxState, inst_id: str, pos_side: str, mgn_mode: str | None = None
) -> OkxPosition | None:
    return next(
        (
            p
            for p in state.account.positions
            if p.inst_id == inst_id
            and p.pos_side == pos_side
            and p.pos != 0
            and (mgn_mode is None or p.mgn_mode == mgn_mode)
        ),
        None,
    )


def _fills_now(ord_type: str, side: str, px: float | None, mark: float) -> bool:
    if ord_type in ("market", "optimal_limit_ioc") or px is None:
        return True
    return px >= mark if side == "buy" else px <= mark


def _place_one(state: OkxState, body: dict[str, Any]) -> OkxOrder:
    """Validate, fill at the mark and book one order (OKX v5 "Place order",
    www.okx.com/docs-v5/en/#order-book-trading-trade-post-place-order).

    Per-order codes: 51001 unknown instrument, 51000 parameter errors, 51016 duplicated
    clOrdId, 51008 insufficient margin, 51169 reduce-only with no position in the
    direction it would reduce (code and text from OKX's error-code list; not confirmed
    against the live API). Resting orders (limit, post_only) are not modelled: 51000.
    """
    inst_id = str(body.get("instId") or "")
    inst = state.instruments.get(inst_id)
    if inst is None:
        raise OkxOrderRejected("51001", "Instrument ID does not exist")
    if inst.settle_ccy != "USDT":
        raise OkxOrderRejected("51000", "Parameter instId error: only USDT swaps trade here")
    td_mode = str(body.get("tdMode") or "")
    if td_mode not in ("cross", "isolated"):
        raise OkxOrderRejected("51000", "Parameter tdMode error")
    side = str(body.get("side") or "")
    if side not in ("buy", "sell"):
        raise OkxOrderRejected("51000", "Parameter side error")
    ord_type = str(body.get("ordType") or "")
    if ord_type not in ("market", "optimal_limit_ioc", "ioc", "fok"):
        raise OkxOrderRejected("51000", "Parameter ordType error")
    try:
        sz = float(body.get("sz") or 0)
        px = float(body["px"]) if body.get("px") not in (None, "") else None
    except ValueError:
        raise OkxOrderRejected("51000", "Parameter sz error") from None
    if sz <= 0:
        raise OkxOrderRejected("51000", "Parameter sz error")
    cl_ord_id = str(body.get("clOrdId") or "")
    if cl_ord_id and any(o.cl_ord_id == cl_ord_id for o in state.account.orders):
        raise OkxOrderRejected("51016", "Duplicated client order ID")
    reduce_only = str(body.get("reduceOnly", "false")).lower() == "true"
    hedged = state.account.pos_mode == "long_short_mode"
    pos_side = str(body.get("posSide") or ("" if hedged else "net"))
    if (hedged and pos_side not in ("long", "short")) or (not hedged and pos_side != "net"):
        raise OkxOrderRejected("51000", "Parameter posSide error")
    # OKX keeps cross and isolated positions of one instrument apart: an order reduces the
    # position of its own tdMode only (a cross reduce-only against an isolated position
    # finds nothing to reduce).
    position = _find_okx_position(state, inst_id, pos_side, td_mode)
    if hedged:  # buy+long / sell+short open; sell+long / buy+short close
        closing = (side == "sell") == (pos_side == "long")
        reducing = closing and position is not None
        if closing and not reducing:
            raise OkxOrderRejected(
                "51169",
                "Order placement failed because you don't have any positions in this "
                "direction for this contract.",
            )
    else:
        reducing = position is not None and (position.pos > 0) == (side == "sell")
    if reduce_only and not reducing:
        raise OkxOrderRejected(
            "51169",
            "Order placement failed because you don't have any positions in this "
            "direction for this contract.",
        )
    mark = state.mark_prices[inst_id]
    taker = _taker(state)
    close_sz = min(sz, abs(position.pos)) if reducing and position is not None else 0.0
    open_sz = 0.0 if reduce_only or (hedged and reducing) else sz - close_sz
    lever = position.lever if position is not None else 10.0
    filled = _fills_now(ord_type, side, px, mark)
    fill_sz = close_sz + open_sz if filled else 0.0
    fee = inst.ct_val * fill_sz * mark * taker
    if filled and open_sz:
        needed = inst.ct_val * open_sz * mark / lever + fee
        if needed > _usdt_detail(state).avail_eq:
            raise OkxOrderRejected("51008", "Order failed. Insufficient USDT margin in account")
    order = OkxOrder(
        ord_id=str(next(_ORDER_IDS)),
        cl_ord_id=cl_ord_id,
        inst_id=inst_id,
        td_mode=td_mode,
        side=side,
        pos_side=pos_side,
        ord_type=ord_type,
        sz=sz,
        px=px,
        reduce_only=reduce_only,
        state="filled" if filled else "canceled",
        fill_px=mark if filled else 0.0,
        fill_sz=fill_sz,
        fee=-fee,
        pnl=0.0,
        lever=lever,
        c_time_ms=int(time.time() * 1000),
    )
    if filled:
        before = _usdt_view(state)
        realised = _close(state, position, close_sz) if position and close_sz else 0.0
        if open_sz:
            _open(state, inst, side=side, pos_side=pos_side, td_mode=td_mode, sz=open_sz)
        _usdt_detail(state).cash_bal += realised - fee
        touched = _find_okx_position(state, inst_id, pos_side, td_mode)
        if touched is not None:
            touched.realized_pnl += realised - fee
            _reprice(state, touched)
        _refresh_usdt(state, before)
        order.pnl = realised
    state.account.orders.append(order)
    return order


_ORDER_IDS = itertools.count(612_000_000_000_000_001)
_TRANSFER_IDS = itertools.count(754_147)


def _close(state: OkxState, position: OkxPosition, contracts: float) -> float:
    """Close `contracts` at the mark; isolated margin is released in proportion."""
    inst = state.instruments[position.inst_id]
    mark = state.mark_prices[position.inst_id]
    realised = _direction(position) * inst.ct_val * contracts * (mark - position.avg_px)
    old = abs(position.pos)
    remaining = old - contracts
    if position.mgn_mode == "isolated" and position.margin is not None:
        position.margin *= remaining / old
    position.pos = remaining * (1 if position.pos > 0 else -1)
    if remaining == 0:
        state.account.positions.remove(position)
    return realised


def _open(
    state: OkxState, inst: OkxInstrument, *, side: str, pos_side: str, td_mode: str, sz: float
) -> None:
    """Open or increase at the mark; isolated margin = notional / leverage."""
    mark = state.mark_prices[inst.inst_id]
    position = _find_okx_position(state, inst.inst_id, pos_side, td_mode)
    if position is None:
        position = OkxPosition(
            inst.inst_id, td_mode, pos=0.0, avg_px=mark, lever=10.0, ccy="USDT", upl=0.0,
            mmr=0.0, mgn_ratio=None, liq_px=None,
            margin=0.0 if td_mode == "isolated" else None,
            pos_id=str(next(_ORDER_IDS)), pos_side=pos_side,
        )  # fmt: skip
        state.account.positions.append(position)
    old = abs(position.pos)
    new = old + sz
    position.avg_px = (old * position.avg_px + sz * mark) / new
    sign = -1 if (pos_side == "net" and side == "sell") or pos_side == "short" else 1
    position.pos = sign * new if pos_side == "net" else new
    if position.mgn_mode == "isolated":
        position.margin = (position.margin or 0.0) + inst.ct_val * sz * mark / position.lever


def _order_reply(orders: list[OkxOrder | OkxOrderRejected], cl_ids: list[str]) -> dict[str, Any]:
    """OKX's place-order envelope: code 0 all placed, 1 all failed, 2 partly."""
    now = str(int(time.time() * 1000))
    rows = []
    for result, cl_id in zip(orders, cl_ids, strict=True):
        if isinstance(result, OkxOrder):
            rows.append(
                {"clOrdId": result.cl_ord_id, "ordId": result.ord_id, "tag": "", "ts": now,
                 "sCode": "0", "sMsg": "Order placed"}
            )  # fmt: skip
        else:
            rows.append(
                {"clOrdId": cl_id, "ordId": "", "tag": "", "ts": now,
                 "sCode": result.s_code, "sMsg": result.s_msg}
            )  # fmt: skip
    failed = sum(isinstance(r, OkxOrderRejected) for r in orders)
    code, msg = ("0", "") if not failed else ("1", "All operations failed")
    if failed and failed < len(orders):
        code, msg = "2", "Bulk operation partially succeeded"
    micros = str(time.time_ns() // 1000)
    return {"code": code, "msg": msg, "data": rows, "inTime": micros, "outTime": micros}


def _place(state: OkxState, bodies: list[dict[str, Any]]) -> dict[str, Any]:
    results: list[OkxOrder | OkxOrderRejected] = []
    for body in bodies:
        try:
            results.append(_place_one(state, body))
        except OkxOrderRejected as rejected:
            results.append(rejected)
    return _order_reply(results, [str(b.get("clOrdId") or "") for b in bodies])


def _order_detail(state: OkxState, q: dict[str, str], _key: OkxApiKey | None) -> list[dict]:
    """`GET /api/v5/trade/order` by ordId or clOrdId (ordId wins), OKX "Get order details"."""
    inst_id = _required(q, "instId")
    if inst_id not in state.instruments:
        raise OkxError("51001", "Instrument ID does not exist")
    if not q.get("ordId") and not q.get("clOrdId"):
        raise OkxError("51003", "Either client order ID or order ID is required.")
    match = next(
        (
            o
            for o in reversed(state.account.orders)
            if o.inst_id == inst_id
            and (o.ord_id == q["ordId"] if q.get("ordId") else o.cl_ord_id == q["clOrdId"])
        ),
        None,
    )
    if match is None:
        raise OkxError("51603", "Order does not exist")
    return [_render_order(match)]


def _margin_balance(state: OkxState, body: dict[str, Any], key: OkxApiKey | None) -> list[dict]:
    """`POST /api/v5/account/position/margin-balance` (OKX "Increase/decrease margin").

    Reply `[{"amt", "ccy", "instId", "leverage", "posSide", "type"}]`. 59300: no isolated
    position for instId/posSide; 59301: more than the position's margin currency has
    available (`availEq` of that currency in the balance `details`, in every account
    mode: the USD-valued equity of a multi-currency account does not count) on an add,
    or more than the position can release above its MM on a reduce. Errors come back as
    OKX lists them (www.okx.com/docs-v5/en/#error-code-rest-api-account): HTTP 200, the
    code in the envelope, `data` empty. Only USDT-margined positions move here.
    """
    _require_perm(key, "trade")
    inst_id = str(body.get("instId") or "")
    pos_side = str(body.get("posSide") or "")
    kind = str(body.get("type") or "")
    if kind not in ("add", "reduce"):
        raise OkxError("51000", "Parameter type error")
    try:
        amount = float(body.get("amt") or 0)
    except ValueError:
        raise OkxError("51000", "Parameter amt error") from None
    if amount <= 0:
        raise OkxError("51000", "Parameter amt error")
    position = _find_okx_position(state, inst_id, pos_side, "isolated")
    if position is None or position.ccy != "USDT":
        raise OkxError("59300", "Margin call failed. Position does not exist.", 200)
    before = _usdt_view(state)
    margin = position.margin or 0.0
    too_much = OkxError("59301", "Margin adjustment failed for exceeding the max limit.", 200)
    if kind == "add":
        coin = next(d for d in state.account.balance.details if d.ccy == position.ccy)
        if amount > coin.avail_eq or state.refuse_adds:
            state.refuse_adds = max(0, state.refuse_adds - 1)
            raise too_much
        position.margin = margin + amount
    else:
        if margin + position.upl - amount < position.mmr:
            raise too_much
        position.margin = margin - amount
    _reprice(state, position)
    _refresh_usdt(state, before)
    state.account.margin_moves.append((inst_id, kind, amount))
    return [
        {"amt": num(amount), "ccy": position.ccy, "instId": inst_id,
         "leverage": num(position.lever), "posSide": pos_side, "type": kind}
    ]  # fmt: skip


FUNDING, TRADING = "6", "18"


def _funds_transfer(state: OkxState, body: dict[str, Any], key: OkxApiKey | None) -> list[dict]:
    """`POST /api/v5/asset/transfer` within one account, funding (6) <-> trading (18).

    OKX "Funds transfer" (www.okx.com/docs-v5/en/#funding-account-rest-api-funds-transfer):
    reply `[{"transId", "ccy", "clientId", "from", "amt", "to"}]`. OKX does not document
    `clientId` as an idempotency key, so a repeated clientId moves again here: look the
    transfer up by clientId (`GET /api/v5/asset/transfer-state`) before retrying.
    58350 insufficient balance.
    """
    _require_perm(key, "trade")
    ccy = str(body.get("ccy") or "")
    source, target = str(body.get("from") or ""), str(body.get("to") or "")
    if str(body.get("type", "0")) != "0" or {source, target} != {FUNDING, TRADING}:
        raise OkxError("51000", "Parameter from error")
    if ccy != "USDT":
        raise OkxError("51000", "Parameter ccy error")
    try:
        amount = float(body.get("amt") or 0)
    except ValueError:
        raise OkxError("51000", "Parameter amt error") from None
    funding = state.account.funding
    available = funding.get(ccy, 0.0) if source == FUNDING else _usdt_detail(state).avail_eq
    if amount <= 0 or amount > available:
        raise OkxError("58350", "Insufficient balance")
    before = _usdt_view(state)
    sign = 1 if source == FUNDING else -1
    funding[ccy] = funding.get(ccy, 0.0) - sign * amount
    _usdt_detail(state).cash_bal += sign * amount
    _refresh_usdt(state, before)
    transfer = OkxTransfer(
        str(next(_TRANSFER_IDS)), str(body.get("clientId") or ""), ccy, amount, source, target
    )
    state.account.transfers.append(transfer)
    return [
        {"transId": transfer.trans_id, "ccy": ccy, "clientId": transfer.client_id,
         "from": source, "amt": num(amount), "to": target}
    ]  # fmt: skip


def _transfer_state(state: OkxState, q: dict[str, str], key: OkxApiKey | None) -> list[dict]:
    """`GET /api/v5/asset/transfer-state` by transId or clientId (OKX "Get funds transfer
    state"); every transfer here completed at once (`state: success`)."""
    if not q.get("transId") and not q.get("clientId"):
        raise OkxError("50014", "Parameter transId can not be empty.")
    rows = [
        t
        for t in state.account.transfers
        if (t.trans_id == q["transId"] if q.get("transId") else t.client_id == q["clientId"])
    ]
    return [
        {"transId": t.trans_id, "clientId": t.client_id, "ccy": t.ccy, "amt": num(t.amt),
         "type": "0", "from": t.source, "to": t.target, "subAcct": "", "instId": "",
         "toInstId": "", "state": "success"}
        for t in rows
    ]  # fmt: skip


def _asset_balances(state: OkxState, q: dict[str, str], key: OkxApiKey | None) -> list[dict]:
    """`GET /api/v5/asset/balances`: the funding account (the reserve)."""
    wanted = set(q["ccy"].split(",")) if q.get("ccy") else None
    return [
        {"ccy": ccy, "bal": num(amount), "availBal": num(amount), "frozenBal": "0"}
        for ccy, amount in state.account.funding.items()
        if wanted is None or ccy in wanted
    ]


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
    "/api/v5/trade/order": _order_detail,
    "/api/v5/asset/transfer-state": _transfer_state,
    "/api/v5/asset/balances": _asset_balances,
}

PostHandler = Callable[[OkxState, Any, OkxApiKey | None], list[dict[str, Any]]]
"""(state, the parsed JSON body, the authenticated key) -> the `data` rows."""

POST_ROUTES: dict[str, PostHandler] = {
    "/api/v5/account/position/margin-balance": _margin_balance,
    "/api/v5/asset/transfer": _funds_transfer,
}
ORDER_ROUTES = ("/api/v5/trade/order", "/api/v5/trade/batch-orders")
EXPIRED_MSG = (
    "The expTime can't be earlier than the current system time. Please adjust the expTime "
    "and try again."
)


def _before_deadline(state: OkxState, exp_time: str | None) -> None:
    """OKX's request deadline, the `expTime` header (Unix ms) of Place (multiple) orders
    and Amend (multiple) orders (www.okx.com/docs-v5/en/#overview-transaction-timeouts):
    "the request will not be processed if the current system time of the server is
    after the expTime". Refused with 50036 (its text above; OKX also lists 50037 "Order
    expired."), HTTP 200, nothing placed."""
    if exp_time is None:
        return
    try:
        deadline = int(exp_time)
    except ValueError:
        raise OkxError("51000", "Parameter expTime error") from None
    if time.time() * 1000 > deadline:
        state.expired_requests += 1
        raise OkxError("50036", EXPIRED_MSG, 200)


"""Place one order (a JSON object) or several (a JSON array: ccxt's default createOrder)."""


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
    """Route by exact path and method; anything unknown is a 404, never an empty 200."""
    state = request.app[STATE_KEY]
    body = await request.text()
    path = request.path
    query = dict(request.query)
    post = request.method == "POST"
    private = path in PRIVATE_ROUTES or path in POST_ROUTES or path in ORDER_ROUTES
    exp_time = request.headers.get("expTime")
    stamp = request.headers.get("OK-ACCESS-TIMESTAMP")
    state.requests.append(
        RecordedRequest(request.method, path, query, body, private, exp_time, stamp)
    )
    handler = PRIVATE_ROUTES.get(path) or PUBLIC_ROUTES.get(path)
    if handler is None and path not in POST_ROUTES and path not in ORDER_ROUTES:
        return _json({"code": "404", "msg": f"Not Found: {path}", "data": []}, status=404)
    if (post and path not in POST_ROUTES and path not in ORDER_ROUTES) or (
        not post and handler is None
    ):
        return _json({"code": "50115", "msg": "Invalid request method.", "data": []}, 405)
    try:
        key = _authenticate(request, state, body) if private else None
        if not post:
            assert handler is not None
            return _ok(handler(state, query, key))
        try:
            payload = orjson.loads(body) if body else {}
        except orjson.JSONDecodeError:
            raise OkxError("50002", "Json data format error.") from None
        if path in POST_ROUTES:
            reply = {"code": "0", "msg": "", "data": POST_ROUTES[path](state, payload, key)}
            fault = state.fail_next_post.pop(path, None)
        else:
            _require_perm(key, "trade")
            if state.delay_next_order_s:
                delay, state.delay_next_order_s = state.delay_next_order_s, 0.0
                await asyncio.sleep(delay)
            _before_deadline(state, exp_time)
            bodies = payload if isinstance(payload, list) else [payload]
            reply = _place(state, [b for b in bodies if isinstance(b, dict)])
            fault, state.fail_next_order = state.fail_next_order, None
    except OkxError as error:
        return _json({"code": error.code, "msg": error.msg, "data": []}, status=error.status)
    if fault is None:
        return _json(reply)
    failed = await transport_fault(request, fault)
    timeout_msg = (
        "API endpoint request timeout (does not mean that the request was successful or "
        "failed, please check the request result)."
    )
    return failed or _json({"code": "50004", "msg": timeout_msg, "data": []})


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


def multi_currency_account(perm: str = "read_only") -> OkxState:
    """Multi-currency margin (acctLv 3) with BTC as collateral and little free USDT: the
    hybrid account's two USDT swaps, 5,000 USDT cash and 1 BTC (no inverse position).

    The account's USD-valued equity is large, the USDT margin currency's own
    availability small: an isolated add is checked against the latter. Hand-derived
    with the marks of `hybrid_account` (BTC-USDT 60,000, ETH-USDT 3,000; BTC valued at
    60,000 USD, discount 1):
      USDT: cash 5,000, of which 2,900 isolated margin (frozen); upl = 1,000 (BTC
        isolated) + 200 (ETH cross) = 1,200; eq = 6,200; isoEq = 2,900 + 1,000 = 3,900;
        cross imr 1,200; availEq = 6,200 - 3,900 - 1,200 = 1,100; availBal = 5,000 -
        2,900 = 2,100.
      BTC: cash = eq = availEq = availBal = 1; eqUsd = disEq = 60,000.
      Account: totalEq = 6,200 + 60,000 = 66,200; isoEq 3,900; adjEq = (6,200 - 3,900)
        + 60,000 = 62,300; imr 1,200, mmr 30 (the ETH short); mgnRatio = 62,300 / 33;
        notionalUsd = 30,000 + 6,000; upl 1,200.
      ETH liqPx (other prices fixed): 62,300 - 2 (P - 3,000) = 2 P x 0.0055
        => P = 68,300 / 2.011 = 33,963.2024...
    """
    state = hybrid_account(perm)
    account = state.account
    account.positions = [p for p in account.positions if p.inst_id != BTC_USD]
    eth = next(p for p in account.positions if p.inst_id == ETH_USDT)
    eth.mgn_ratio, eth.liq_px = 62_300 / 33, 68_300 / 2.011
    usdt = OkxBalanceDetail(
        "USDT", eq=6_200, cash_bal=5_000, avail_eq=1_100, avail_bal=2_100, frozen_bal=2_900,
        upl=1_200, iso_eq=3_900, eq_usd=6_200, dis_eq=6_200, imr=1_200, mmr=30,
    )  # fmt: skip
    btc = OkxBalanceDetail(
        "BTC", eq=1, cash_bal=1, avail_eq=1, avail_bal=1, frozen_bal=0, upl=0, iso_eq=0,
        eq_usd=60_000, dis_eq=60_000,
    )  # fmt: skip
    account.balance = OkxBalance(
        total_eq=66_200, adj_eq=62_300, iso_eq=3_900, imr=1_200, mmr=30,
        mgn_ratio=62_300 / 33, notional_usd=36_000, upl=1_200, details=[usdt, btc],
    )  # fmt: skip
    return state


def make_client(
    base_url: str,
    *,
    api_key: str = FIXTURE_API_KEY,
    secret: str = FIXTURE_SECRET,
    password: str = FIXTURE_PASSPHRASE,
    minimal: bool = True,
    mixins: tuple[type, ...] = (),
) -> Any:
    """The client settings the monitor should use: swap only, no currency list.
    `mixins`: classes in front of ccxt's okx, as the daemon puts `OkxAdapter.client_mixins`.

    The rate limiter is off only because the server is local; against OKX keep it on.
    """
    factory = type("okx", (*mixins, ccxt_async.okx), {}) if mixins else ccxt_async.okx
    client = factory(
        {"apiKey": api_key, "secret": secret, "password": password, "enableRateLimit": False}
    )
    client.urls["api"] = rebase_urls(client.urls["api"], base_url)
    client.options["defaultType"] = "swap"
    if minimal:
        client.options["fetchMarkets"] = {"types": ["swap"]}
        client.has["fetchCurrencies"] = False
    return client
