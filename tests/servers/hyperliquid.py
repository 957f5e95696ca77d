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

Trading (`POST /exchange`, see the "exchange" section below): orders (IOC, reduce-only `r`,
`cloid`), `updateIsolatedMargin`, `usdClassTransfer`, the signer recovered from the
signature and checked against the user's main wallet and approved agents
(tests/servers/hl_signing.py). Info adds `orderStatus` (by oid or cloid), `userRole` and
`extraAgents`. ccxt calls for an executor (client from `make_trading_client`, signing with
the agent key for the main wallet address):
    create_order(sym, "market", side, amount, mark, {"reduceOnly": True, "clientOrderId": cloid})
    fetch_order(None, sym, {"clientOrderId": cloid})          info orderStatus
    add_margin(sym, usd) / reduce_margin(sym, usd)             updateIsolatedMargin
    transfer("USDC", amount, "spot", "swap")                   usdClassTransfer (main key only)
    publicPostInfo({"type": "userRole", "user": agent})       the key's role
    privatePostExchange({action: agentSendAsset, ...})         spot -> perp by the agent,
                      signed with ccxt's sign_l1_action; read back with info
                      `userNonFundingLedgerUpdates` (a `send` delta carrying the nonce)
An L1 action signed with `expiresAfter` (ms) is refused once that time has passed.
"""

from __future__ import annotations

import itertools
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Literal

import ccxt.async_support as ccxt_async
import orjson
from aiohttp import web

from monitor.exchange.urls import rebase_urls
from monitor.simulator.candles import candles, window
from tests.servers.faults import OrderFault, transport_fault
from tests.servers.hl_signing import address_of_key, l1_digest, recover_signer, user_signed_digest

__all__ = [
    "AGENT_KEY",
    "MAIN_KEY",
    "HlAsset",
    "HlAssetCtx",
    "HlCumFunding",
    "HlOrder",
    "HlPosition",
    "HlState",
    "HlUser",
    "RecordedRequest",
    "create_app",
    "hybrid_user",
    "make_trading_client",
    "move_mark",
    "trading_user",
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
    approved_builders: set[str] = field(default_factory=set)


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
    #: Approved agent (API) wallets: agent address -> the user (main) address, lower case.
    agents: dict[str, str] = field(default_factory=dict)
    orders: list[HlOrder] = field(default_factory=list)
    #: Successful updateIsolatedMargin actions: (coin, USD added; negative = removed).
    margin_updates: list[tuple[str, float]] = field(default_factory=list)
    #: Successful spot <-> perp moves (usdClassTransfer, agentSendAsset): (user, amount,
    #: toPerp).
    class_transfers: list[tuple[str, float, bool]] = field(default_factory=list)
    #: Non-funding ledger updates: (user, the row `userNonFundingLedgerUpdates` returns).
    ledger: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    #: Nonces each signer has used (lower-case address -> nonces).
    used_nonces: dict[str, set[int]] = field(default_factory=dict)
    #: Fail the reply of the next `order` action (after it filled); cleared when used.
    fail_next_order: OrderFault | None = None
    #: Action type -> fail the reply of its next action after it was applied; each
    #: cleared when used (`fail_next_order` is the same for "order").
    fail_next_action: dict[str, OrderFault] = field(default_factory=dict)
    taker_fee: float = 0.00045  # Hyperliquid's base-tier taker rate
    mainnet: bool = True  # phantom-agent source "a" (mainnet) or "b" (testnet)
    new_position_leverage_type: Literal["cross", "isolated"] = "cross"
    order_ids: itertools.count[int] = field(
        default_factory=lambda: itertools.count(90_000_000_001), repr=False
    )

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

# --------------------------------------------------------------------------- exchange
#
# `POST /exchange` (Hyperliquid docs, "Exchange endpoint"): the signed actions an executor
# sends. The signer is recovered from the signature (tests/servers/hl_signing.py) and must
# be the user's main wallet or one of its approved agent (API) wallets; user-signed
# actions (usdClassTransfer, approveBuilderFee) must come from the main wallet itself.
#
# Fills happen at once at the mark for IOC orders that cross it (ccxt sends market orders
# as IOC limits 5% through the mark); resting orders (Gtc, Alo) are not modelled. Ledger
# bookkeeping: a fill of signed size dq at price p moves the ledger's totalRawUsd by
# -(dq x p) - fee, so realised PnL follows from accountValue = rawUsd + szi x mark without
# a separate entry. The figures Hyperliquid computes are then recomputed with the
# fixture's rules (single-tier margin tables, l = 1 / (2 x maxLeverage)):
#   marginUsed = |szi| x mark / leverage (cross), rawUsd + szi x mark (isolated)
#   crossMaintenanceMarginUsed = sum over cross |szi| x mark x l
#   withdrawable = cross accountValue - cross marginUsed (floored at 0)
#   liq = mark - side x margin_available / |szi| / (1 - l x side)


@dataclass(slots=True)
class HlOrder:
    """One order as `orderStatus` reports it."""

    oid: int
    cloid: str | None
    user: str
    coin: str
    is_buy: bool
    limit_px: str
    sz: float
    reduce_only: bool
    tif: str
    status: str  # filled | iocCancelRejected | reduceOnlyRejected
    timestamp: int
    filled_sz: float = 0.0
    avg_px: float = 0.0


def _render_order(order: HlOrder) -> dict[str, Any]:
    remaining = order.sz - order.filled_sz
    return {
        "order": {
            "coin": order.coin,
            "side": "B" if order.is_buy else "A",
            "limitPx": order.limit_px,
            "sz": num(remaining),
            "oid": order.oid,
            "timestamp": order.timestamp,
            "triggerCondition": "N/A",
            "isTrigger": False,
            "triggerPx": "0.0",
            "children": [],
            "isPositionTpsl": False,
            "reduceOnly": order.reduce_only,
            "orderType": "Limit",
            "origSz": num(order.sz),
            "tif": order.tif,
            "cloid": order.cloid,
        },
        "status": order.status,
        "statusTimestamp": order.timestamp,
    }


def _maintenance_rate(state: HlState, coin: str) -> float:
    return 1 / (2 * state.asset(coin).max_leverage)


def _recompute_user(state: HlState, user: HlUser) -> None:
    """Re-derive marginUsed, crossMaintenanceMarginUsed, withdrawable and liquidation prices."""
    marks = {p.coin: state.contexts[p.coin].mark_px for p in user.positions}
    cross = [p for p in user.positions if p.leverage_type == "cross"]
    for p in cross:
        p.margin_used = abs(p.szi) * marks[p.coin] / p.leverage
    for p in user.positions:
        if p.leverage_type == "isolated":
            p.margin_used = (p.raw_usd or 0.0) + p.szi * marks[p.coin]
    cross_value = user.cross_raw_usd + sum(p.szi * marks[p.coin] for p in cross)
    user.cross_maintenance_margin_used = sum(
        abs(p.szi) * marks[p.coin] * _maintenance_rate(state, p.coin) for p in cross
    )
    user.withdrawable = max(0.0, cross_value - sum(p.margin_used for p in cross))
    for p in user.positions:
        rate = _maintenance_rate(state, p.coin)
        side = 1 if p.szi > 0 else -1
        if p.leverage_type == "cross":
            available = cross_value - user.cross_maintenance_margin_used
        else:
            available = p.margin_used - abs(p.szi) * marks[p.coin] * rate
        liq = marks[p.coin] - side * available / abs(p.szi) / (1 - rate * side)
        p.liquidation_px = liq if liq > 0 else None


def move_mark(state: HlState, coin: str, price: float) -> None:
    """Move a coin's mark and recompute each holder's figures with the fixture's rules."""
    state.contexts[coin].mark_px = price
    for user in state.users.values():
        if any(p.coin == coin for p in user.positions):
            _recompute_user(state, user)


class ActionError(Exception):
    """A whole-action refusal: `{"status": "err", "response": message}` (HTTP 200)."""


def _trade(state: HlState, user: HlUser, coin: str, dq: float, price: float) -> float:
    """Fill signed size `dq` of `coin` at `price`; returns the fee charged (taker)."""
    fee = abs(dq) * price * state.taker_fee
    position = next((p for p in user.positions if p.coin == coin), None)
    if position is None:
        position = HlPosition(
            coin, szi=0.0, entry_px=price, leverage_type=state.new_position_leverage_type,
            leverage=min(20, state.asset(coin).max_leverage), margin_used=0.0,
            liquidation_px=None,
            raw_usd=0.0 if state.new_position_leverage_type == "isolated" else None,
        )  # fmt: skip
        user.positions.append(position)
    old = position.szi
    new = old + dq
    isolated = position.leverage_type == "isolated"
    if isolated:
        value_before = (position.raw_usd or 0.0) + old * price
        posted = abs(dq) * price / position.leverage if abs(new) > abs(old) else 0.0
        user.cross_raw_usd -= posted
        position.raw_usd = (position.raw_usd or 0.0) + posted - dq * price - fee
    else:
        user.cross_raw_usd -= dq * price + fee
    if old == 0 or (old > 0) == (dq > 0):
        position.entry_px = (abs(old) * position.entry_px + abs(dq) * price) / abs(new)
    elif abs(dq) > abs(old):
        position.entry_px = price  # flipped: the rest opened at the fill price
    position.szi = new
    if isolated and abs(new) < abs(old):
        # Margin released in proportion to the size closed goes back to cross.
        value_after = value_before - fee
        released = value_after * (1 - abs(new) / abs(old)) if new else value_after
        position.raw_usd = (position.raw_usd or 0.0) - released
        user.cross_raw_usd += released
    if new == 0:
        user.positions.remove(position)
    return fee


def _place_order(state: HlState, user: HlUser, wire: dict[str, Any]) -> dict[str, Any]:
    """One entry of the `order` action's `orders`: returns its status object.

    Per-order errors are Hyperliquid's texts (docs, "Place an order" / error responses):
    "Order could not immediately match against any resting orders. asset=N",
    "Reduce only order would increase position. asset=N",
    "Insufficient margin to place order. asset=N".
    """
    try:
        asset_id = int(wire["a"])
        is_buy = bool(wire["b"])
        px = float(wire["p"])
        sz = float(wire["s"])
        reduce_only = bool(wire.get("r", False))
        tif = str(wire["t"]["limit"]["tif"])
    except (KeyError, TypeError, ValueError) as error:
        raise DeserializeError(f"order: {error}") from None
    cloid = wire.get("c")
    if cloid is not None and not re.fullmatch(r"0x[0-9a-fA-F]{32}", str(cloid)):
        raise DeserializeError(f"cloid: invalid value {cloid!r}, expected 16 bytes hex")
    if not 0 <= asset_id < len(state.assets):
        return {"error": f"Invalid asset. asset={asset_id}"}
    coin = state.assets[asset_id].name
    if tif != "Ioc":
        return {"error": f"Only IOC orders are modelled by this test server. asset={asset_id}"}
    order = HlOrder(
        oid=next(state.order_ids), cloid=cloid, user=user.address.lower(), coin=coin,
        is_buy=is_buy, limit_px=str(wire["p"]), sz=sz, reduce_only=reduce_only, tif=tif,
        status="filled", timestamp=state.now_ms(),
    )  # fmt: skip
    position = next((p for p in user.positions if p.coin == coin), None)
    mark = state.contexts[coin].mark_px
    reduces = position is not None and (position.szi > 0) != is_buy
    if reduce_only and not reduces:
        order.status = "reduceOnlyRejected"
        state.orders.append(order)
        return {"error": f"Reduce only order would increase position. asset={asset_id}"}
    if (px < mark) if is_buy else (px > mark):
        order.status = "iocCancelRejected"
        state.orders.append(order)
        return {
            "error": "Order could not immediately match against any resting orders. "
            f"asset={asset_id}"
        }
    fill = min(sz, abs(position.szi)) if reduce_only and position is not None else sz
    closing = min(fill, abs(position.szi)) if reduces and position is not None else 0.0
    opening = fill - closing
    leverage = (
        position.leverage if position is not None else min(20, state.asset(coin).max_leverage)
    )
    if opening and opening * mark * (1 / leverage + state.taker_fee) > user.withdrawable:
        return {"error": f"Insufficient margin to place order. asset={asset_id}"}
    _trade(state, user, coin, fill if is_buy else -fill, mark)
    _recompute_user(state, user)
    order.filled_sz, order.avg_px = fill, mark
    state.orders.append(order)
    filled: dict[str, Any] = {"totalSz": num(fill), "avgPx": num(mark), "oid": order.oid}
    if cloid is not None:
        filled["cloid"] = cloid
    return {"filled": filled}


def _order_action(state: HlState, user: HlUser, action: dict[str, Any]) -> dict[str, Any]:
    builder = action.get("builder")
    if (
        isinstance(builder, dict)
        and int(builder.get("f", 0)) > 0
        and str(builder.get("b", "")).lower() not in user.approved_builders
    ):
        raise ActionError("Builder fee has not been approved.")
    orders = action.get("orders")
    if not isinstance(orders, list):
        raise DeserializeError("missing field `orders`")
    statuses = [_place_order(state, user, wire) for wire in orders]
    return {"type": "order", "data": {"statuses": statuses}}


def _update_isolated_margin(state: HlState, user: HlUser, action: dict[str, Any]) -> dict[str, Any]:
    """`updateIsolatedMargin` {asset, isBuy, ntli}: ntli is USD x 1e6, negative removes.

    Refusal texts are this server's (unverified against the live venue).
    """
    try:
        coin = state.assets[int(action["asset"])].name
        amount = int(action["ntli"]) / 1_000_000
    except (KeyError, TypeError, ValueError, IndexError) as error:
        raise DeserializeError(f"updateIsolatedMargin: {error}") from None
    position = next((p for p in user.positions if p.coin == coin), None)
    if position is None or position.leverage_type != "isolated":
        raise ActionError(f"Cannot update margin of a position that is not isolated. {coin}")
    mark = state.contexts[coin].mark_px
    if amount > user.withdrawable:
        raise ActionError("Insufficient margin to add.")
    if amount < 0 and position.margin_used + amount < abs(position.szi) * mark / position.leverage:
        raise ActionError("Insufficient margin to remove.")
    position.raw_usd = (position.raw_usd or 0.0) + amount
    user.cross_raw_usd -= amount
    _recompute_user(state, user)
    state.margin_updates.append((coin, amount))
    return {"type": "default"}


def _move_usdc(
    state: HlState, user: HlUser, amount: float, *, to_perp: bool, delta: dict[str, Any]
) -> dict[str, Any]:
    """Move USDC between the user's spot and perp ledgers; books `delta` in the user's
    non-funding ledger (`userNonFundingLedgerUpdates`)."""
    spot = user.spot_balances.get("USDC", 0.0)
    if amount <= 0 or amount > (spot if to_perp else user.withdrawable):
        raise ActionError("Insufficient balance for transfer.")
    sign = 1 if to_perp else -1
    user.spot_balances["USDC"] = spot - sign * amount
    user.cross_raw_usd += sign * amount
    _recompute_user(state, user)
    state.class_transfers.append((user.address.lower(), amount, to_perp))
    at = state.now_ms()
    state.ledger.append(
        (user.address.lower(), {"time": at, "hash": f"0x{len(state.ledger) + 1:064x}",
                                "delta": delta})
    )  # fmt: skip
    return {"type": "default"}


def _usd_class_transfer(state: HlState, user: HlUser, action: dict[str, Any]) -> dict[str, Any]:
    """Spot <-> perp USDC (`toPerp`), signed by the main wallet (checked by the caller)."""
    try:
        amount = float(str(action["amount"]).split(" ")[0])
        to_perp = bool(action["toPerp"])
    except (KeyError, ValueError) as error:
        raise DeserializeError(f"usdClassTransfer: {error}") from None
    delta = {"type": "accountClassTransfer", "usdc": num(amount), "toPerp": to_perp}
    return _move_usdc(state, user, amount, to_perp=to_perp, delta=delta)


PERP_DEX, SPOT_DEX = "", "spot"
"""How `sendAsset`/`agentSendAsset` name the main perp dex's balance and the spot balance."""


def _agent_send_asset(state: HlState, user: HlUser, action: dict[str, Any]) -> dict[str, Any]:
    """`agentSendAsset`: the L1 action an approved agent (API) wallet may sign to move a
    token between its user's own balances (spot and perp dexes), never to another
    account. Fields (@nktkas/hyperliquid 0.33 and its signing vectors): destination,
    sourceDex, destinationDex, token ("USDC:0x<tokenId>"), amount, fromSubAccount, nonce.
    Only USDC between spot and the main perp dex is modelled; the refusal texts are this
    server's. The ledger row is a `send` delta carrying the action's nonce."""
    try:
        destination = str(action["destination"]).lower()
        source, target = str(action["sourceDex"]), str(action["destinationDex"])
        token = str(action["token"])
        amount = float(str(action["amount"]))
        nonce = int(action["nonce"])
    except (KeyError, TypeError, ValueError) as error:
        raise DeserializeError(f"agentSendAsset: {error}") from None
    if destination != user.address.lower() or action.get("fromSubAccount"):
        raise ActionError("agentSendAsset may only move funds within the signer's own account.")
    if token.split(":")[0] != "USDC" or {source, target} != {SPOT_DEX, PERP_DEX}:
        raise ActionError("Only USDC between spot and the perp dex is modelled.")
    delta = {
        "type": "send", "user": user.address.lower(), "destination": destination,
        "sourceDex": source, "destinationDex": target, "token": token.split(":")[0],
        "amount": num(amount), "usdcValue": num(amount), "fee": "0.0",
        "nativeTokenFee": "0.0", "nonce": nonce,
    }  # fmt: skip
    return _move_usdc(state, user, amount, to_perp=target == PERP_DEX, delta=delta)


def _approve_builder_fee(state: HlState, user: HlUser, action: dict[str, Any]) -> dict[str, Any]:
    user.approved_builders.add(str(action.get("builder", "")).lower())
    return {"type": "default"}


L1_ACTIONS: dict[str, Callable[[HlState, HlUser, dict[str, Any]], dict[str, Any]]] = {
    "order": _order_action,
    "updateIsolatedMargin": _update_isolated_margin,
    "agentSendAsset": _agent_send_asset,
    "setReferrer": lambda _state, _user, _action: {"type": "default"},
}
USER_SIGNED_ACTIONS: dict[str, Callable[[HlState, HlUser, dict[str, Any]], dict[str, Any]]] = {
    "usdClassTransfer": _usd_class_transfer,
    "approveBuilderFee": _approve_builder_fee,
}


def _signing_user(state: HlState, body: dict[str, Any], action: dict[str, Any]) -> HlUser:
    """The account the action is for, from the recovered signer; raises ActionError."""
    kind = str(action.get("type"))
    try:
        nonce = int(body["nonce"])
        signature = body["signature"]
    except (KeyError, TypeError, ValueError):
        raise DeserializeError("missing field `nonce` or `signature`") from None
    if kind in USER_SIGNED_ACTIONS:
        signer = recover_signer(user_signed_digest(action), signature)
    else:
        vault = body.get("vaultAddress")
        expires = body.get("expiresAfter")
        digest = l1_digest(
            action, nonce, vault_address=vault, expires_after=expires, mainnet=state.mainnet
        )
        signer = recover_signer(digest, signature)
    if signer is None:
        raise ActionError("Invalid signature.")
    expires = body.get("expiresAfter")
    if kind not in USER_SIGNED_ACTIONS and expires is not None and state.now_ms() > int(expires):
        # Hyperliquid docs ("Nonces and API wallets", expiresAfter): an action is rejected
        # once its expiresAfter has passed, so a request lost in flight cannot land later.
        # The wording is this server's.
        raise ActionError(f"Action expired: expiresAfter {expires} is in the past.")
    user = state.users.get(signer)
    if user is None and kind not in USER_SIGNED_ACTIONS and signer in state.agents:
        user = state.users.get(state.agents[signer])
    if user is None:
        # An agent signing a user-signed action is looked up as a user of its own, which it
        # is not: Hyperliquid refuses it, as it refuses an unknown signer.
        raise ActionError(f"User or API Wallet {signer} does not exist.")
    # Hyperliquid uses each nonce of a signer once (docs, "Nonces and API wallets"): the
    # same signed request sent twice is refused the second time (wording is this server's).
    used = state.used_nonces.setdefault(signer, set())
    if nonce in used:
        raise ActionError(f"Invalid nonce: duplicate nonce {nonce} for signer {signer}")
    used.add(nonce)
    return user


async def _exchange(request: web.Request) -> web.Response:
    state = request.app[STATE_KEY]
    raw = await request.read()
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as error:
        return _text(f"Failed to parse the request body as JSON: {error}", 400)
    state.requests.append(RecordedRequest("POST", "/exchange", body, dict(request.headers)))
    action = body.get("action") if isinstance(body, dict) else None
    if not isinstance(action, dict) or "type" not in action:
        return _text("Failed to deserialize the JSON body into the target type: action", 422)
    kind = str(action["type"])
    handler = L1_ACTIONS.get(kind) or USER_SIGNED_ACTIONS.get(kind)
    if handler is None:
        return _text(
            f"Failed to deserialize the JSON body into the target type: unknown variant `{kind}`",
            422,
        )
    try:
        user = _signing_user(state, body, action)
        result = handler(state, user, action)
    except DeserializeError as error:
        return _text(f"Failed to deserialize the JSON body into the target type: {error}", 422)
    except ActionError as error:
        return _json({"status": "err", "response": str(error)})
    fault = state.fail_next_action.pop(kind, None)
    if kind == "order" and state.fail_next_order is not None:
        fault, state.fail_next_order = state.fail_next_order, None
    if fault is not None:
        # Hyperliquid has no "timeout, outcome unknown" code of its own: that one is a 504.
        if fault is OrderFault.VENUE_TIMEOUT:
            fault = OrderFault.GATEWAY_TIMEOUT
        return await transport_fault(request, fault) or web.Response(status=504)
    return _json({"status": "ok", "response": result})


def _order_status(state: HlState, body: dict[str, Any]) -> dict[str, Any]:
    """Info `orderStatus` by oid (int) or cloid (16-byte hex), Hyperliquid docs "Query order
    status by oid or cloid"; unknown: `{"status": "unknownOid"}`."""
    user = _user_field(body)
    oid = body.get("oid")
    match = next(
        (
            o
            for o in reversed(state.orders)
            if o.user == user
            and (o.oid == oid if isinstance(oid, int) else str(o.cloid).lower() == str(oid).lower())
        ),
        None,
    )
    if match is None:
        return {"status": "unknownOid"}
    return {"status": "order", "order": _render_order(match)}


def _non_funding_ledger(state: HlState, body: dict[str, Any]) -> list[dict[str, Any]]:
    """Info `userNonFundingLedgerUpdates` {user, startTime, endTime?}: the user's
    transfers (and other non-funding ledger moves) in the window, oldest first."""
    user = _user_field(body)
    try:
        start = int(body["startTime"])
        end = int(body["endTime"]) if body.get("endTime") is not None else None
    except (KeyError, TypeError, ValueError) as error:
        raise DeserializeError(f"startTime: {error}") from None
    return [
        row for owner, row in state.ledger
        if owner == user and row["time"] >= start and (end is None or row["time"] <= end)
    ]  # fmt: skip


def _user_role(state: HlState, body: dict[str, Any]) -> dict[str, Any]:
    """Info `userRole`: is this address a user (main wallet), an agent, or unknown. The
    executor's permission check: its signing key must be an agent, never the main wallet
    (which can withdraw)."""
    address = _user_field(body)
    if address in state.users:
        return {"role": "user"}
    if address in state.agents:
        return {"role": "agent", "data": {"user": state.agents[address]}}
    return {"role": "missing"}


def _extra_agents(state: HlState, body: dict[str, Any]) -> list[dict[str, Any]]:
    """Info `extraAgents`: the agent wallets a user approved."""
    user = _user_field(body)
    return [
        {"name": "marginwatch", "address": agent, "validUntil": 1_900_000_000_000}
        for agent, owner in state.agents.items()
        if owner == user
    ]


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
    "orderStatus": _order_status,
    "userRole": _user_role,
    "userNonFundingLedgerUpdates": _non_funding_ledger,
    "extraAgents": _extra_agents,
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
    """An aiohttp app answering Hyperliquid `/info` and `/exchange` from `state`."""
    app = web.Application()
    app[STATE_KEY] = state
    app.router.add_post("/info", _info)
    app.router.add_post("/exchange", _exchange)
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


#: Test wallets (never real funds): the user's main wallet and its approved agent wallet.
MAIN_KEY = "0x" + "4d" * 32
AGENT_KEY = "0x" + "a6" * 32


def trading_user() -> HlState:
    """`hybrid_user` owned by MAIN_KEY's address, with AGENT_KEY approved as its agent
    wallet and 2,000 USDC in the spot ledger (the reserve usdClassTransfer draws on)."""
    main = address_of_key(MAIN_KEY)
    state = hybrid_user(main)
    state.agents[address_of_key(AGENT_KEY)] = main.lower()
    state.users[main.lower()].spot_balances["USDC"] = 2_000.0
    return state


def make_trading_client(base_url: str, *, private_key: str, wallet_address: str) -> Any:
    """An unmodified ccxt `hyperliquid` that signs with `private_key` for `wallet_address`.

    Options keep ccxt from sending actions the executor did not ask for: `refSet` skips
    the one-off setReferrer action, and `approvedBuilderFee` with `builderFee` off skips
    the approveBuilderFee action (which an agent wallet may not sign) while ccxt attaches
    its builder with a zero fee, which this server accepts.
    """
    client = ccxt_async.hyperliquid(
        {
            "walletAddress": wallet_address,
            "privateKey": private_key,
            "enableRateLimit": False,
            "options": {"refSet": True, "approvedBuilderFee": True, "builderFee": False},
        }
    )
    client.urls["api"] = rebase_urls(client.urls["api"], base_url)
    client.options["fetchMarkets"] = {"types": ["swap"]}
    client.has["fetchCurrencies"] = False
    return client
