"""Binance USD-M's user data stream: an account's positions and balances as they change.

Polling alone leaves positions up to `poll_interval` old and costs request weight, which
Binance counts per IP (monitor/exchange/budget.py). Binance pushes every change of an
account on a stream opened with a listen key: ACCOUNT_UPDATE carries the changed legs and
balances themselves, and is applied to the snapshot at once without a REST read
(monitor/venues/binance/account_update.py), in order with the REST reads (after any read in
flight). While the stream is live and was synced by a read after it connected, it keeps
the account current: each sign of life counts as a fresh reading (`last_ok`), and REST
only reconciles at `daemon.reconcile_interval` (monitor/daemon/cadence.py). A REST read is
still asked for when the stream connects (events may have been missed), on a MARGIN_CALL,
and when an update cannot be applied alone (a new symbol's tiers; a Multi-Assets balance).
While the stream is down, polling carries on at `poll_interval` as before.

A LIQUIDATION order (client id `autoclose-...`) is the exchange's own word that a position
is being liquidated: it is reported at once, as the same PROBABLE_LIQUIDATION event the
reconciliation raises when a critical position vanishes between two polls, and the
`LiquidationLedger` (liquidations.py) makes sure only one of the two reports each
disappearance. A MARGIN_CALL is only logged: Binance may send it after the liquidation,
so it never stands in for our own margin ratio.

Other exchanges have no user stream here (Bybit and OKX authenticate over the socket
itself); their accounts are polled only (the venue registry declares none for them).

The stream drives the daemon's account poller through `StreamedAccount`, declared here by
its user, so that the venues never import the daemon that composes them.

The connection loop is the mark feeds' (`monitor.feeds.stream`), reused through its hooks:
- the URL carries the listen key, obtained (POST, which returns the live key if there is
  one) before every connection; forgetting the key changes the URL, which makes the
  loop's supervisor replace the connection at once;
- a user stream is silent while nothing happens, so liveness is a websocket ping answered
  (every `keepalive_interval`), not a mark: a pong or an event marks the stream live, and
  `stale_after` without either ends the connection;
- its logs read "binanceusdm/<account> user data stream ..." (`exchange_id`, `kind`).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from typing import TYPE_CHECKING, Any, Protocol

import orjson
from websockets.asyncio.client import ClientConnection

from monitor.actions.decision import is_ours
from monitor.bus import EventBus
from monitor.config import AccountConfig
from monitor.domain import AccountSnapshot, MarginMode, Position, Side
from monitor.engine.levels import Level
from monitor.events import Event, EventKind, TargetKind, position_target
from monitor.exchange.adapters.base import ExchangeAdapter
from monitor.exchange.clients import secret_values
from monitor.exchange.errors import ErrorKind, classify
from monitor.feeds.base import FeedStatus, MarkTick, StatusCallback
from monitor.feeds.stream import Frame, StreamFeed
from monitor.venues.binance.account_update import apply_account_update

if TYPE_CHECKING:
    from monitor.feeds.stream import _Connection, _Ending

log = logging.getLogger(__name__)

FILLS = ("TRADE", "CALCULATED")
"""Execution types of an ORDER_TRADE_UPDATE that moved a position."""
PRODUCTION_ORIGIN = "wss://fstream.binance.com"
LIQUIDATION_ORDER = "LIQUIDATION"
LIQUIDATION_CLIENT_ID = "autoclose-"
#: The loop idles without symbols; a user stream watches the whole account, so it has one
#: fixed pseudo-entry and that rule never applies.
_WHOLE_ACCOUNT = "<user data>"


class OwnFillWitness(Protocol):
    def heard(self, client_id: str, symbol: str, position_side: str, filled: float) -> None:
        """A fill of our order `client_id` (`filled` cumulative)."""


class LiquidationClaims(Protocol):
    def claim(self, target: str) -> bool:
        """True for the first report of this disappearance: the caller reports it."""


class StreamedState(Protocol):
    """The account state the stream keeps current (the daemon's `AccountState`)."""

    snapshot: AccountSnapshot | None
    marks: Mapping[str, float]
    liquidations: LiquidationClaims
    own_fills: OwnFillWitness

    def install(self, snapshot: AccountSnapshot) -> None: ...


class StreamedAccount(Protocol):
    """What the stream reads from, and does to, the account it keeps current (the
    daemon's account poller satisfies it structurally)."""

    name: str
    account: AccountConfig
    client: Any
    """The account's ccxt client (typed Any like everywhere ccxt is handed around)."""
    adapter: ExchangeAdapter
    state: StreamedState
    bus: EventBus
    last_ok: float | None
    last_error: object | None

    def reading(self) -> AbstractAsyncContextManager[None]:
        """Held by every REST read: an update is applied between reads, never during one."""

    async def poll(self) -> None: ...


class BinanceUserStream(StreamFeed):
    """The user data stream of one binanceusdm account with API keys; runs until cancelled.

    ACCOUNT_UPDATE events are applied to `poller`'s snapshot in arrival order. Refreshes
    (REST reads, through `read`, which the daemon points at the account's budgeted read)
    are coalesced: a burst of requests costs one read, and requests arriving during a
    read cost exactly one more, because the read in flight may have been answered before
    they happened.
    """

    kind = "stream"  # after exchange_id "binanceusdm/<account> user data"

    #: Websocket pings: the only sign of life a quiet account's stream gives.
    keepalive_interval = 20.0
    #: Binance closes a connection after 24 h; the reconnect POSTs the key again.
    max_connection_age = 23.5 * 3600.0
    #: Binance drops a key not kept alive for 60 min; PUT well within that.
    key_keepalive_every = 30 * 60.0
    #: A keepalive that failed for a network reason is retried this much sooner.
    key_retry_after = 60.0
    #: Lets the frames of one change (NEW, ACCOUNT_UPDATE, FILLED) land in one poll.
    refresh_settle = 0.1
    min_refresh_spacing = 2.0
    """Each refresh costs 10 request weight. Bursts coalesce, and refreshes are at least
    this far apart; fills no longer cause one (their ACCOUNT_UPDATE is applied), so they
    are rare: a connection, a margin call, a new symbol."""
    #: Where the key goes; Binance also serves `/private/ws/<key>`.
    path = "/ws/"

    def __init__(
        self,
        poller: StreamedAccount,
        ws_origin: str | None = None,
        on_status: StatusCallback | None = None,
        stale_after: float = 60.0,
        min_reconnect_delay: float = 1.0,
        max_reconnect_delay: float = 60.0,
    ) -> None:
        super().__init__(
            exchange_id=f"{poller.account.exchange}/{poller.name} user data",
            symbols={_WHOLE_ACCOUNT: poller.name},
            on_ticks=lambda _ticks: None,
            on_status=on_status or (lambda _status, _reason: None),
            ws_origin=ws_origin,
            stale_after=stale_after,
            min_reconnect_delay=min_reconnect_delay,
            max_reconnect_delay=max_reconnect_delay,
        )
        self.poller = poller
        self.read: Callable[[], Awaitable[None]] = poller.poll
        """How a refresh reads the account; the daemon routes it through the budget."""
        self.refreshes = 0
        """Polls this stream caused (for tests and the status page)."""
        self.updates_applied = 0
        """ACCOUNT_UPDATE events applied to the snapshot without a REST read."""
        self.synced = False
        """True once a read succeeded after the stream last went live: from then on, the
        stream's events are every change, and the account is as current as the stream."""
        self._updates: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._connections = 0
        """Times the stream went live: a read syncs only the connection it started in."""
        self._listen_key: str | None = None
        self._refresh_wanted = asyncio.Event()
        self._reading = False
        self._last_refresh = float("-inf")
        self._margin_modes: dict[tuple[str, str], MarginMode] = {}

    # ------------------------------------------------------------------ lifecycle

    async def run(self) -> None:
        helpers = [
            asyncio.create_task(self._refresher(), name=f"{self.exchange_id}: refresh"),
            asyncio.create_task(self._keep_key_alive(), name=f"{self.exchange_id}: key"),
            asyncio.create_task(self._applier(), name=f"{self.exchange_id}: updates"),
        ]
        try:
            await super().run()
        finally:
            # The key is not DELETEd: POST hands the same key to every client of the
            # account, so closing it would cut off any other consumer; unused, it
            # expires by itself within the hour.
            for task in helpers:
                task.cancel()
            await asyncio.gather(*helpers, return_exceptions=True)

    def request_refresh(self, reason: str) -> None:
        """Queue a re-read of the account; many requests before it starts make one."""
        log.debug("%s: refresh: %s", self.exchange_id, reason)
        self._refresh_wanted.set()

    async def _refresher(self) -> None:
        while True:
            await self._refresh_wanted.wait()
            await asyncio.sleep(self.refresh_settle)
            spacing = time.monotonic() - self._last_refresh
            if spacing < self.min_refresh_spacing:
                await asyncio.sleep(self.min_refresh_spacing - spacing)
            self._last_refresh = time.monotonic()
            self._refresh_wanted.clear()
            self.refreshes += 1
            live, connection = self.status is FeedStatus.LIVE, self._connections
            self._reading = True
            try:
                await self.read()  # serialized with the scheduled polls by the poll lock
            except Exception:  # poll() reports its own failures; this is a bug guard
                log.exception("%s: refresh failed", self.exchange_id)
                continue
            finally:
                self._reading = False
            if live and connection == self._connections and self.poller.last_error is None:
                self.synced = self.status is FeedStatus.LIVE

    @property
    def current(self) -> bool:
        """Whether the stream alone keeps the account current (live and synced)."""
        return self.synced and self.status is FeedStatus.LIVE

    @property
    def syncing(self) -> bool:
        """Live, and the read that syncs it is queued or under way: a scheduled read
        meanwhile would only repeat it."""
        pending = self._refresh_wanted.is_set() or self._reading
        return self.status is FeedStatus.LIVE and not self.synced and pending

    async def _applier(self) -> None:
        """Apply ACCOUNT_UPDATEs in arrival order, each after any REST read in flight: the
        event's figures are absolute, so applying them after a read never goes back in
        time, while a read finishing after them could."""
        while True:
            update = await self._updates.get()
            async with self.poller.reading():
                self._apply(update)

    def _apply(self, update: dict[str, Any]) -> None:
        poller = self.poller
        snapshot = poller.state.snapshot
        if snapshot is None:  # nothing to update yet: the first read brings it all
            self.request_refresh("account update before the first read")
            return
        client = poller.client
        try:
            applied = apply_account_update(
                snapshot,
                update,
                market=lambda market_id: client.safe_market(market_id, None, None, "swap"),
                marks=poller.state.marks,
                market_info=lambda symbol: poller.adapter.market_info(client, symbol),
            )
        except (KeyError, TypeError, ValueError) as exc:
            self.request_refresh(f"account update not understood ({exc!r})")
            return
        self.updates_applied += 1
        poller.state.install(applied.snapshot)
        if self.current:
            poller.last_ok = time.monotonic()
        if applied.needs_read:
            self.request_refresh(applied.needs_read)

    # ------------------------------------------------------------------ listen key

    async def _cycle(self) -> None:
        """POST for the key before every connection, backing off like a failed connection
        when that fails. POST returns the live key (extended) or a new one, so a key that
        expired during an outage is never reused: on `/ws/` a dead key is not refused but
        answered by a silent market stream."""
        if not await self._new_listen_key():
            await asyncio.sleep(self._next_delay())
            return
        await super()._cycle()

    async def _new_listen_key(self) -> bool:
        try:
            reply = await self.poller.client.fapiPrivatePostListenKey()
            self._listen_key = str(reply["listenKey"])
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            error = classify(exc, secret_values(self.poller.account))
            self._set_status(FeedStatus.DOWN, f"no listen key: {error}")
            return False
        return True

    async def _keep_key_alive(self) -> None:
        delay = self.key_keepalive_every
        while True:
            await asyncio.sleep(delay)
            delay = self.key_keepalive_every
            if self._listen_key is None:
                continue
            try:
                await self.poller.client.fapiPrivatePutListenKey()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                error = classify(exc, secret_values(self.poller.account))
                if error.kind in (ErrorKind.AUTH, ErrorKind.BAD_REPLY):  # the key is gone
                    self._forget_key(f"listen key keepalive refused: {error}")
                else:  # the key outlives a short outage: just try again soon
                    log.warning("%s: listen key keepalive failed: %s", self.exchange_id, error)
                    delay = self.key_retry_after

    def _forget_key(self, reason: str) -> None:
        """Drop the key; the changed URL makes the supervisor reconnect with a new one."""
        log.info("%s: new listen key needed: %s", self.exchange_id, reason)
        self._listen_key = None
        self._wake.set()

    def _stream_url(self) -> str:
        # Without a key the URL matches no open connection, so it is replaced at once.
        return f"{PRODUCTION_ORIGIN}{self.path}{self._listen_key or ''}"

    # ------------------------------------------------------------------ liveness

    async def _subscribe(self, ws: ClientConnection, market_ids: Sequence[str]) -> None:
        """Nothing to subscribe (the key is in the URL); ping at once, so the stream is
        live as soon as the server is seen answering rather than after the first beat."""
        await self._ping(ws)

    async def _check(self, conn: _Connection) -> _Ending | None:
        """The loop's timers, with its keepalive beat sent as a websocket ping."""
        pinged = conn.last_ping_at
        ending = await super()._check(conn)
        if ending is None and conn.last_ping_at != pinged:
            await self._ping(conn.ws)
        return ending

    async def _ping(self, ws: ClientConnection) -> None:
        waiter = asyncio.ensure_future(await ws.ping())
        waiter.add_done_callback(self._on_pong)

    def _on_pong(self, waiter: asyncio.Future[float]) -> None:
        if not waiter.cancelled() and waiter.exception() is None:
            self._alive()

    def _alive(self) -> None:
        """The server is answering: fresh for the staleness timer, backoff reset, LIVE.

        Becoming live re-reads the account: whatever happened while the stream was down
        (or before it first connected) was not pushed to us.
        """
        self._last_data_at = time.monotonic()
        self._failures = 0
        if self.status is not FeedStatus.LIVE:
            self.synced = False
            self._connections += 1
            self._set_status(FeedStatus.LIVE, "user data stream connected")
            self.request_refresh("stream connected: events may have been missed")
        elif self.synced:  # nothing missed since the last read: the account is current
            self.poller.last_ok = time.monotonic()

    # ------------------------------------------------------------------ events

    def _parse(self, raw: Frame, received: float) -> list[MarkTick]:
        """Act on one event; never returns ticks (marks come from the mark feed)."""
        self._alive()
        event: dict[str, Any] = orjson.loads(raw)
        kind = event.get("e")
        if kind == "ACCOUNT_UPDATE":
            self._remember_margin_modes(event["a"].get("P", ()))
            self._updates.put_nowait(event["a"])
        elif kind == "ORDER_TRADE_UPDATE":
            order = event["o"]
            if _is_liquidation(order):  # its ACCOUNT_UPDATE follows and closes the leg
                self._report_liquidation(order)
            elif order.get("x") in FILLS:  # its ACCOUNT_UPDATE follows and moves the leg
                self._remember_own_fill(order)
        elif kind == "MARGIN_CALL":
            legs = ", ".join(f"{p.get('s')} {p.get('mt')}" for p in event.get("p", ()))
            log.warning("%s: margin call from the exchange: %s", self.exchange_id, legs)
            self.request_refresh("margin call")
        elif kind == "listenKeyExpired":
            self._forget_key("the exchange expired the listen key")
        # Other events (leverage and strategy updates, TRADE_LITE, ...) do not move
        # positions; ignoring them is not a parse error.
        return []

    def _remember_own_fill(self, order: dict[str, Any]) -> None:
        """A fill of our own order (client id `mw-...`): the witness that a position it
        closed was closed by us (monitor/daemon/ownfills.py)."""
        client_id = str(order.get("c", ""))
        if not is_ours(client_id):
            return
        symbol = self.poller.client.safe_symbol(order["s"], None, None, "swap")
        filled = float(order.get("z") or 0.0)
        self.poller.state.own_fills.heard(client_id, symbol, order.get("ps", "BOTH"), filled)

    def _remember_margin_modes(self, rows: Iterable[dict[str, Any]]) -> None:
        """Margin mode per leg, for naming a liquidated position no poll has seen."""
        for row in rows:
            mode = str(row.get("mt", "")).lower()
            isolated = mode.startswith("isolated")
            self._margin_modes[(row["s"], row["ps"])] = (
                MarginMode.ISOLATED if isolated else MarginMode.CROSS
            )

    def _report_liquidation(self, order: dict[str, Any]) -> None:
        """Emit the definitive event, named like the reconciliation's, unless already told."""
        market_id, position_side = order["s"], order.get("ps", "BOTH")
        symbol = self.poller.client.safe_symbol(market_id, None, None, "swap")
        side = _liquidated_side(order["S"], position_side)
        position = self._open_position(symbol, side, position_side)
        if position is not None:
            mode = position.margin_mode
        else:
            mode = self._margin_modes.get((market_id, position_side), MarginMode.CROSS)
        target = position_target(symbol, side.value, mode.value, position_side)
        if not self.poller.state.liquidations.claim(target):
            return
        price = float(order.get("ap") or 0) or None
        at = f" at {price:g}" if price else ""
        self.poller.bus.publish(
            Event(
                EventKind.PROBABLE_LIQUIDATION,
                self.poller.name,
                target,
                TargetKind.POSITION,
                level=Level.CRITICAL,
                margin_mode=mode.value,
                mark_price=self.poller.state.marks.get(symbol),
                exchange_liquidation_price=(
                    position.exchange_liquidation_price if position else None
                ),
                message=(
                    "liquidation order reported by the exchange: "
                    f"{order['S'].lower()} {order.get('q')} {market_id}{at} ({order.get('c')})"
                ),
                order_id=str(order["i"]) if order.get("i") is not None else None,
            )
        )

    def _open_position(self, symbol: str, side: Side, position_side: str) -> Position | None:
        snapshot = self.poller.state.snapshot
        if snapshot is None:
            return None
        for position in snapshot.positions:
            if (position.symbol, position.side, position.position_side) == (
                symbol,
                side,
                position_side,
            ):
                return position
        return None


def _is_liquidation(order: dict[str, Any]) -> bool:
    return order.get("o") == LIQUIDATION_ORDER or str(order.get("c", "")).startswith(
        LIQUIDATION_CLIENT_ID
    )


def _liquidated_side(order_side: str, position_side: str) -> Side:
    """The side of the position a closing order closes: a SELL closes a long."""
    if position_side in ("LONG", "SHORT"):
        return Side(position_side.lower())
    return Side.LONG if order_side == "SELL" else Side.SHORT


def open_user_stream(
    poller: StreamedAccount,
    ws_origin: str | None = None,
    on_status: StatusCallback | None = None,
) -> BinanceUserStream | None:
    """The account's user data stream, or None without an API key (a listen key needs
    one): such an account is polled only."""
    account = poller.account
    if account.api_key is None or account.secret is None:
        return None
    return BinanceUserStream(poller, ws_origin=ws_origin, on_status=on_status)
