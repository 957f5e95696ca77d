"""The websocket connection loop every dedicated feed shares; dialects only parse and subscribe.

Why not `async for ws in websockets.asyncio.client.connect(...)`: its backoff resets after
every successful handshake, so a server that accepts and closes at once drove hundreds of
reconnects per second. Here one connection at a time is opened by hand, and the backoff
resets only once a connection has delivered marks.

Per connection there are two coroutines: the reader (this task: subscribe, then parse every
frame) and a supervisor task that owns every timer — staleness, the dialect's keepalive,
the maximum connection age — and applies symbol changes. The supervisor ends a connection
by recording why and closing the socket, which ends the reader's loop.
"""

from __future__ import annotations

import asyncio
import logging
from abc import abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from monitor.aio import cancel_and_wait
from monitor.exchange.urls import replace_origin
from monitor.feeds.base import FeedStatus, LoopingFeed, MarkTick
from monitor.gcpolicy import COLLECTION_PAUSED

log = logging.getLogger(__name__)

Frame = str | bytes


@dataclass(slots=True)
class _Ending:
    """Why a connection ended, and how the run loop should react."""

    reason: str
    status: FeedStatus | None  # None: leave the status as it is (a planned reconnect)
    retry_now: bool = False  # planned reconnects (new symbols, age limit) skip the backoff


@dataclass(slots=True)
class _Connection:
    ws: ClientConnection
    url: str
    opened: float
    subscribed: set[str] = field(default_factory=set)
    last_frame_at: float = 0.0
    last_ping_at: float = 0.0
    delivered: bool = False
    ending: _Ending | None = None


class StreamFeed(LoopingFeed):
    """A MarkFeed over one websocket connection; subclasses speak one exchange's dialect."""

    # Timers are plain class attributes rather than constructor arguments: an instance (a
    # test) may shadow them without widening the constructor every caller shares.

    #: Seconds between the dialect's application-level pings; None: the dialect has none.
    keepalive_interval: float | None = None
    #: True: ping only after that long without any frame (OKX); False: ping on a fixed beat.
    keepalive_when_idle: bool = False
    #: Reconnect on purpose before the exchange drops an old connection (Binance: 24 h).
    max_connection_age: float | None = None
    open_timeout: float = 10.0
    #: Short: a peer that stopped answering must not hold up the reconnect for long.
    close_timeout: float = 2.0
    #: Binance's all-market array is ~100 KB a second; leave room.
    max_frame: int = 8 * 1024 * 1024
    #: websockets' `recv(decode=...)`: None hands text frames over as str (binary ones as
    #: bytes); False hands every frame over as bytes, for a parser that reads bytes and
    #: need not pay for decoding a large frame to str first.
    recv_decode: bool | None = None

    # ------------------------------------------------------------------ dialect hooks

    @abstractmethod
    def _stream_url(self) -> str:
        """The production URL for the current symbol set (the origin is swapped later)."""

    async def _subscribe(self, ws: ClientConnection, market_ids: Sequence[str]) -> None:
        """Send the subscription for these ids; nothing to do where the URL carries them."""

    async def _unsubscribe(self, ws: ClientConnection, market_ids: Sequence[str]) -> None:
        """Stop the stream for these ids; frames that still arrive are filtered anyway."""

    def _keepalive_message(self) -> Frame | None:
        return None

    def _connection_started(self) -> None:
        """Reset per-connection parser state (Bybit's snapshot cache)."""

    @abstractmethod
    def _parse(self, raw: Frame, received: float) -> list[MarkTick]:
        """Ticks of subscribed symbols in one frame; [] for control frames (acks, pongs).

        Raise on a malformed or unknown frame (UnexpectedMessage for well-formed strangers);
        whatever is raised is counted as a parse error and the feed reads on.
        """

    # ------------------------------------------------------------------ the loop

    def _target_url(self) -> str:
        url = self._stream_url()
        return replace_origin(url, self.ws_origin) if self.ws_origin else url

    async def _cycle(self) -> None:
        try:
            ending = await self._connect_once()
        except Exception as exc:  # a dialect bug must cost a reconnect, not the feed
            log.exception("%s %s: connection failed", self.exchange_id, self.kind)
            ending = _Ending(f"internal error: {_describe(exc)}", FeedStatus.DOWN)
        if ending.status is not None:
            self._set_status(ending.status, ending.reason)
        else:
            log.info("%s %s: reconnecting: %s", self.exchange_id, self.kind, ending.reason)
        if ending.retry_now:
            return
        delay = self._next_delay()
        log.info("%s %s: next attempt in %.2fs", self.exchange_id, self.kind, delay)
        await asyncio.sleep(delay)

    async def _connect_once(self) -> _Ending:
        url = self._target_url()
        if self._attempts:
            self._stats.reconnects += 1
        self._attempts += 1
        try:
            ws = await connect(
                url,
                # Only the dialect's own keepalive: OKX has no protocol-level ping, Binance
                # pings from the server (answered automatically), the others want JSON pings.
                ping_interval=None,
                open_timeout=self.open_timeout,
                close_timeout=self.close_timeout,
                max_size=self.max_frame,
            )
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            return _Ending(f"connect failed: {_describe(exc)}", FeedStatus.DOWN)
        now = _now()
        conn = _Connection(ws, url, opened=now, last_frame_at=now, last_ping_at=now)
        conn.subscribed = set(self._symbols)
        self._connection_started()
        supervisor = asyncio.create_task(self._supervise(conn))
        try:
            await self._subscribe(ws, sorted(conn.subscribed))
            decode = self.recv_decode
            while True:  # `async for raw in ws` without the choice of decoding
                self._on_frame(await ws.recv(decode), conn)
        except ConnectionClosed:  # the iterator ends on a normal closure: so does this
            pass
        finally:
            try:
                await cancel_and_wait(supervisor)
            finally:
                await ws.close()
        if conn.delivered:
            self._failures = 0
        if conn.ending is not None:
            return conn.ending
        return _Ending(f"closed by server ({_close_text(ws)})", FeedStatus.DOWN)

    def _on_frame(self, raw: Frame, conn: _Connection) -> None:
        with COLLECTION_PAUSED:  # the collector runs between frames (monitor/gcpolicy.py)
            received = _now()
            conn.last_frame_at = received
            self._stats.messages += 1
            try:
                ticks = self._parse(raw, received)
            except Exception as exc:  # the hot path never dies of one frame
                self._parse_error(exc, raw)
                return
            if ticks:
                conn.delivered = True
                self._emit(ticks)

    async def _supervise(self, conn: _Connection) -> None:
        try:
            while True:
                self._wake.clear()
                ending = await self._check(conn)
                if ending is not None:
                    conn.ending = ending
                    await conn.ws.close()
                    return
                await self._wait_wake(self._next_deadline(conn) - _now())
        except asyncio.CancelledError:
            raise
        except ConnectionClosed:
            return  # the reader sees the same closure and reports it
        except Exception as exc:  # a bug here must not leave a connection unsupervised
            log.exception("%s %s: supervisor failed", self.exchange_id, self.kind)
            conn.ending = _Ending(f"internal error: {_describe(exc)}", FeedStatus.DOWN)
            await conn.ws.close()

    async def _check(self, conn: _Connection) -> _Ending | None:
        """One pass over the timers and the symbol set; an _Ending closes the connection."""
        now = _now()
        if not self._symbols:
            return _Ending("no symbols left", None, retry_now=True)
        if self._target_url() != conn.url:
            return _Ending("symbol set changed the stream URL", None, retry_now=True)
        wanted = set(self._symbols)
        if wanted != conn.subscribed:
            removed, added = sorted(conn.subscribed - wanted), sorted(wanted - conn.subscribed)
            conn.subscribed = wanted
            if removed:
                await self._unsubscribe(conn.ws, removed)
            if added:
                await self._subscribe(conn.ws, added)
        if now >= self._stale_at(conn):
            return _Ending(f"no mark price for {self.stale_after:g}s", FeedStatus.STALE)
        age = self.max_connection_age
        if age is not None and now >= conn.opened + age:
            return _Ending(f"connection older than {age:g}s", None, retry_now=True)
        ping_at = self._ping_at(conn)
        if ping_at is not None and now >= ping_at:
            message = self._keepalive_message()
            if message is not None:
                await conn.ws.send(message)
            conn.last_ping_at = now
        return None

    def _stale_at(self, conn: _Connection) -> float:
        return max(conn.opened, self._last_data_at or 0.0) + self.stale_after

    def _ping_at(self, conn: _Connection) -> float | None:
        if self.keepalive_interval is None:
            return None
        since = conn.last_ping_at
        if self.keepalive_when_idle:
            since = max(since, conn.last_frame_at)
        return since + self.keepalive_interval

    def _next_deadline(self, conn: _Connection) -> float:
        deadlines = [self._stale_at(conn), self._ping_at(conn)]
        if self.max_connection_age is not None:
            deadlines.append(conn.opened + self.max_connection_age)
        return min(d for d in deadlines if d is not None)


def _now() -> float:
    """The feed's clock is its event loop's: the sleeps and timeouts that wait for its
    deadlines run on the same clock, and a test loop may simulate it. On asyncio's loops
    it is time.monotonic(), which the daemon compares the ticks' `received` with."""
    return asyncio.get_running_loop().time()


def _describe(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _close_text(ws: ClientConnection) -> str:
    code, reason = ws.close_code, ws.close_reason
    if code is None:
        return "connection lost"
    return f"code {code}, {reason}" if reason else f"code {code}"


def chunks(items: Sequence[str], size: int) -> list[Sequence[str]]:
    """Exchanges cap the topics per subscribe message (Bybit: 10)."""
    return [items[i : i + size] for i in range(0, len(items), size)]
