"""Websocket connections of the simulated venue: admission, send queues, and faults.

Publishing never awaits a socket: the venue's clock puts frames into per-connection
queues and each connection's writer drains its own, so one slow reader cannot stall the
prices of everyone else. The faults are the two that broke real clients: every stream
dropped at once (a network blip), and a server that refuses, or accepts and closes at
once, for a while (websockets' backoff resets after every successful handshake).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import orjson
from aiohttp import WSMsgType, web

from monitor.aio import cancel_and_wait
from monitor.simulator.binance_usdm.state import SimExchange

TRY_AGAIN_LATER = 1013
GOING_AWAY = 1001


class Connection:
    """One accepted websocket with its own bounded send queue.

    A client more than MAX_QUEUED frames behind is cut off, as Binance disconnects
    consumers that cannot keep up, instead of letting the queue grow without bound.
    """

    MAX_QUEUED = 1024

    def __init__(self, request: web.Request, ws: web.WebSocketResponse) -> None:
        self.ws = ws
        self._transport = request.transport
        self._queue: asyncio.Queue[str | int] = asyncio.Queue(self.MAX_QUEUED)

    def send(self, payload: Any) -> None:
        """Queue one JSON text frame."""
        self._put(orjson.dumps(payload).decode())

    def close_after_pending(self, code: int = GOING_AWAY) -> None:
        """Close once the frames queued so far are sent (a final event, then the close)."""
        self._put(code)

    def abort(self) -> None:
        """Cut the TCP connection without a closing handshake, as a network failure does."""
        if self._transport is not None:
            self._transport.abort()

    def _put(self, item: str | int) -> None:
        if self.ws.closed:
            return
        try:
            self._queue.put_nowait(item)
        except asyncio.QueueFull:
            self.abort()

    async def serve(self, on_text: Callable[[str], None]) -> None:
        """Read client frames (handing text to `on_text`) while the writer sends; return
        when either side closes."""
        writer = asyncio.create_task(self._write())
        try:
            async for message in self.ws:
                if message.type is WSMsgType.TEXT:
                    on_text(message.data)
        finally:
            await cancel_and_wait(writer)

    async def _write(self) -> None:
        while True:
            item = await self._queue.get()
            if isinstance(item, int):
                await self.ws.close(code=item)
                return
            await self.ws.send_str(item)


class SocketGate:
    """Admits websocket connections, tracks the open ones, and applies stream faults."""

    def __init__(self, exchange: SimExchange) -> None:
        self._exchange = exchange
        self._open: set[Connection] = set()
        self._refused_until = 0.0
        self._refuse_handshake = True

    @property
    def open_count(self) -> int:
        return len(self._open)

    def refuse(self, seconds: float, *, handshake: bool = True) -> None:
        """For `seconds`, turn every new connection away.

        handshake=True accepts the websocket and closes it at once (1013, try again
        later): the case that defeats a client's backoff. handshake=False answers the
        upgrade with HTTP 503 instead.
        """
        self._refused_until = asyncio.get_running_loop().time() + seconds
        self._refuse_handshake = handshake

    async def drop_all(self, *, graceful: bool = False) -> int:
        """Drop every open stream now; returns how many. By default the TCP connections
        are cut (a network failure); graceful=True sends a 1001 close frame instead."""
        connections = list(self._open)
        if graceful:
            await asyncio.gather(*(c.ws.close(code=GOING_AWAY) for c in connections))
        else:
            for connection in connections:
                connection.abort()
        return len(connections)

    async def close_all(self) -> None:
        """Close everything with 1001 (server shutdown), so the app can stop promptly."""
        await self.drop_all(graceful=True)

    async def open(self, request: web.Request) -> Connection | web.StreamResponse:
        """A registered Connection, or the response that turned the client away."""
        self._exchange.requests.append(f"WS {request.path_qs}")
        if asyncio.get_running_loop().time() < self._refused_until:
            if not self._refuse_handshake:
                return web.Response(status=503, text="Service Unavailable")
            ws = web.WebSocketResponse()
            await ws.prepare(request)
            await ws.close(code=TRY_AGAIN_LATER, message=b"try again later")
            return ws
        ws = web.WebSocketResponse(autoping=True)
        await ws.prepare(request)
        connection = Connection(request, ws)
        self._open.add(connection)
        return connection

    def forget(self, connection: Connection) -> None:
        self._open.discard(connection)
