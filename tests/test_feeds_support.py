"""Harness shared by the feed tests: a loopback websocket server, a callback recorder, and
helpers to run a feed for the length of a test.

Each dialect's own server lives next to its tests (test_feeds_<exchange>.py); this module
only holds what they share, plus a check that the harness itself binds to loopback.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from types import TracebackType
from typing import Any

from websockets.asyncio.server import Server, ServerConnection, serve

from monitor.feeds import FeedStatus, MarkFeed, MarkTick

LOOPBACK = "127.0.0.1"

#: Timers short enough for tests that finish in well under a second or two.
FAST: dict[str, Any] = {
    "stale_after": 1.0,
    "min_reconnect_delay": 0.05,
    "max_reconnect_delay": 0.2,
}

Handler = Callable[[ServerConnection], Awaitable[None]]


class WsServer:
    """A `websockets` server on 127.0.0.1 (port 0) running the test's handler.

    Records the request path of every connection, so tests can count attempts and check
    which URL a feed chose. `ping_interval=None`: the server only pings when a dialect
    test says so.
    """

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.paths: list[str] = []
        self.connected_at: list[float] = []
        self._server: Server | None = None
        self.port = 0

    @property
    def origin(self) -> str:
        return f"ws://{LOOPBACK}:{self.port}"

    @property
    def connections(self) -> int:
        return len(self.paths)

    async def _handle(self, ws: ServerConnection) -> None:
        assert ws.request is not None
        self.paths.append(ws.request.path)
        self.connected_at.append(asyncio.get_running_loop().time())
        await self.handler(ws)

    async def __aenter__(self) -> WsServer:
        self._server = await serve(self._handle, LOOPBACK, 0, ping_interval=None)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()


class Recorder:
    """Collects what a feed reports through its two callbacks."""

    def __init__(self) -> None:
        self.frames: list[list[MarkTick]] = []
        self.statuses: list[tuple[FeedStatus, str]] = []

    def on_ticks(self, ticks: list[MarkTick]) -> None:
        self.frames.append(list(ticks))

    def on_status(self, status: FeedStatus, reason: str) -> None:
        self.statuses.append((status, reason))

    @property
    def ticks(self) -> list[MarkTick]:
        return [tick for frame in self.frames for tick in frame]

    @property
    def status_sequence(self) -> list[FeedStatus]:
        return [status for status, _ in self.statuses]

    def last(self, symbol: str) -> MarkTick:
        return [tick for tick in self.ticks if tick.symbol == symbol][-1]

    def symbols_seen(self) -> set[str]:
        return {tick.symbol for tick in self.ticks}

    def callbacks(self) -> dict[str, Any]:
        return {"on_ticks": self.on_ticks, "on_status": self.on_status}


async def eventually(predicate: Callable[[], bool], timeout: float = 2.0) -> None:
    """Wait until `predicate()` holds; fail the test after `timeout` seconds of the loop's
    clock (simulated ones under tests/simclock.py)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError(f"condition not met within {timeout:.1f}s")
        await asyncio.sleep(0.01)


@contextlib.asynccontextmanager
async def running(feed: MarkFeed) -> AsyncIterator[asyncio.Task[None]]:
    """Run `feed` in a task for the duration of the block, then cancel it."""
    task = asyncio.create_task(feed.run())
    try:
        yield task
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def recv_json_forever(ws: ServerConnection) -> None:
    """Keep a connection open, reading (and dropping) whatever the client sends."""
    with contextlib.suppress(Exception):
        async for _ in ws:
            pass


async def test_harness_serves_on_loopback_only() -> None:
    async with WsServer(recv_json_forever) as server:
        assert server.origin.startswith("ws://127.0.0.1:")
        assert server.port > 0
