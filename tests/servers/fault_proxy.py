"""A reverse proxy on loopback that breaks replies on purpose, per API key.

Sits between the daemon's ccxt clients and an upstream (the simulator) and forwards every
request, except those signed with a key that has a fault set: those get what a venue, its
CDN or the network sends on a bad day. Requests without a key (markets, public data) always
pass, so one account's trouble is that account's alone, as with a key that is banned.

    async with FaultProxy(venue.base_url) as proxy:
        proxy.faults[api_key] = Fault.HTML_200
        ...
        proxy.faults.clear()
"""

from __future__ import annotations

import asyncio
import socket
import struct
from collections import Counter
from enum import StrEnum
from types import TracebackType

import aiohttp
from aiohttp import web

from monitor.simulator.http import LocalServer

KEY_HEADER = "X-MBX-APIKEY"
HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "host",
              "content-encoding"}  # fmt: skip


class Fault(StrEnum):
    RATE_LIMIT = "429 with Retry-After"
    SERVER_ERROR = "500 with the venue's JSON error"
    BAD_GATEWAY = "502 with a CDN's HTML page"
    TIMEOUT = "no reply at all"
    HTML_200 = "HTML with status 200"
    TRUNCATED = "JSON cut in half, status 200"
    RESET = "connection reset"


RETRY_AFTER_S = 1
MAINTENANCE_PAGE = (
    "<!DOCTYPE html><html><head><title>System Maintenance</title></head>"
    "<body><h1>We'll be back soon</h1></body></html>"
)
BAD_GATEWAY_PAGE = "<html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>"


class FaultProxy:
    """Forward to `upstream`; `faults[api_key]` breaks that key's requests."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream.rstrip("/")
        self.faults: dict[str, Fault] = {}
        self.injected: Counter[tuple[str, Fault]] = Counter()
        self._hanging: set[asyncio.Task[object]] = set()
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._server = LocalServer(app)
        self._session: aiohttp.ClientSession | None = None

    @property
    def base_url(self) -> str:
        return self._server.base_url

    async def __aenter__(self) -> FaultProxy:
        self._session = aiohttp.ClientSession()
        await self._server.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        for task in self._hanging:  # else the server's shutdown waits a minute for them
            task.cancel()
        await self._server.stop()
        if self._session is not None:
            await self._session.close()

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        key = request.headers.get(KEY_HEADER, "")
        fault = self.faults.get(key)
        if fault is None or fault is Fault.TRUNCATED:
            status, headers, body = await self._forward(request)
            if fault is Fault.TRUNCATED:
                self.injected[key, fault] += 1
                return web.Response(
                    body=body[: len(body) // 2], status=200, content_type="application/json"
                )
            return web.Response(body=body, status=status, headers=headers)
        self.injected[key, fault] += 1
        match fault:
            case Fault.RATE_LIMIT:
                return web.json_response(
                    {"code": -1003, "msg": "Too many requests; current limit is 2400."},
                    status=429,
                    headers={"Retry-After": str(RETRY_AFTER_S)},
                )
            case Fault.SERVER_ERROR:
                return web.json_response(
                    {"code": -1000, "msg": "An unknown error occurred while processing."},
                    status=500,
                )
            case Fault.BAD_GATEWAY:
                return web.Response(text=BAD_GATEWAY_PAGE, status=502, content_type="text/html")
            case Fault.HTML_200:
                return web.Response(text=MAINTENANCE_PAGE, status=200, content_type="text/html")
            case Fault.TIMEOUT:
                task = asyncio.current_task()
                assert task is not None
                self._hanging.add(task)
                try:
                    await asyncio.sleep(3600)  # the client gives up first
                finally:
                    self._hanging.discard(task)
                raise AssertionError("unreachable")
            case Fault.RESET:
                return self._reset(request)
        raise AssertionError(fault)

    async def _forward(self, request: web.Request) -> tuple[int, dict[str, str], bytes]:
        assert self._session is not None
        headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP_BY_HOP}
        async with self._session.request(
            request.method,
            f"{self.upstream}{request.rel_url}",
            headers=headers,
            data=await request.read() if request.can_read_body else None,
        ) as reply:
            body = await reply.read()
            kept = {k: v for k, v in reply.headers.items() if k.lower() not in HOP_BY_HOP}
            return reply.status, kept, body

    @staticmethod
    def _reset(request: web.Request) -> web.Response:
        """Close the socket with SO_LINGER 0: the kernel sends RST, not FIN."""
        transport = request.transport
        assert transport is not None
        sock: socket.socket | None = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        transport.abort()
        return web.Response()  # never sent: the connection is gone
