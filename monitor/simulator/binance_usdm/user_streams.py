"""The user data stream: account events pushed to `/ws/<listenKey>` and `/private/ws`.

Binance serves it at `/private/ws/<listenKey>` (and `?listenKey=`, which ccxt.pro uses)
and at the older `/ws/<listenKey>`; all three are served. Events come from
`SimExchange.publish`, whoever mutated the account (a REST order, the risk engine,
funding), so the stream reports exactly what the account went through.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from monitor.simulator.binance_usdm.listen_keys import listen_key_missing
from monitor.simulator.binance_usdm.responses import json_response
from monitor.simulator.binance_usdm.sockets import Connection, SocketGate
from monitor.simulator.binance_usdm.state import SimAccount, SimExchange


class UserStreams:
    """Open user-stream connections by account; delivers every event published for it."""

    def __init__(self, exchange: SimExchange, gate: SocketGate) -> None:
        self._exchange = exchange
        self._gate = gate
        self._by_account: dict[str, set[Connection]] = {}
        exchange.listeners.append(self._deliver)

    def add_routes(self, app: web.Application) -> None:
        app.router.add_get("/private/ws", self._private)
        app.router.add_get("/private/ws/{listen_key}", self._private)

    async def _private(self, request: web.Request) -> web.StreamResponse:
        listen_key = request.match_info.get("listen_key") or request.query.get("listenKey", "")
        account = self._exchange.account_for_listen_key(listen_key)
        if account is None:
            self._exchange.requests.append(f"WS {request.path_qs}")
            error = listen_key_missing()
            return json_response(error.body(), error.status)
        return await self.serve(request, account)

    async def serve(self, request: web.Request, account: SimAccount) -> web.StreamResponse:
        """Stream `account`'s events until the client leaves or its key is closed."""
        connection = await self._gate.open(request)
        if not isinstance(connection, Connection):
            return connection
        connections = self._by_account.setdefault(account.api_key, set())
        connections.add(connection)
        try:
            await connection.serve(lambda _text: None)  # Binance ignores client frames here
        finally:
            connections.discard(connection)
            self._gate.forget(connection)
        return connection.ws

    def _deliver(self, account: SimAccount, event: dict[str, Any]) -> None:
        for connection in list(self._by_account.get(account.api_key, ())):
            connection.send(event)
            if event.get("e") == "listenKeyExpired":
                connection.close_after_pending()
