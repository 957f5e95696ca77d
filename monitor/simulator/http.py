"""A loopback-only aiohttp server runner shared by the simulator and the test servers."""

from __future__ import annotations

from types import TracebackType

from aiohttp import web

LOOPBACK = "127.0.0.1"


class LocalServer:
    """Serve an aiohttp application on 127.0.0.1; port 0 picks a free port.

    Binding to loopback only is deliberate: the simulator hands out test credentials
    and must never be reachable from another machine.
    """

    def __init__(self, app: web.Application, port: int = 0) -> None:
        self._app = app
        self._requested_port = port
        self._runner: web.AppRunner | None = None
        self.port: int = port

    @property
    def base_url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    async def start(self) -> LocalServer:
        self._runner = web.AppRunner(self._app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, LOOPBACK, self._requested_port)
        await site.start()
        server = site._server
        assert server is not None and server.sockets
        self.port = server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> LocalServer:
        return await self.start()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()
