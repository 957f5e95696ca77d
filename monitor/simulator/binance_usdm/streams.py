"""All websocket streams of one simulated venue, served beside its REST on one origin.

`StreamHub` is what the rest of the simulator talks to: `publish_marks()` on every price
tick, and the stream fault hooks `drop_all()` and `refuse()`. User events need no call:
the hub listens on `SimExchange.publish`.
"""

from __future__ import annotations

from aiohttp import web

from monitor.simulator.binance_usdm.market_streams import MarketStreams
from monitor.simulator.binance_usdm.sockets import SocketGate
from monitor.simulator.binance_usdm.state import SimExchange
from monitor.simulator.binance_usdm.user_streams import UserStreams


class StreamHub:
    """Mark-price streams, user data streams, and the faults scripted on both."""

    def __init__(self, exchange: SimExchange) -> None:
        self._exchange = exchange
        self._gate = SocketGate(exchange)
        self._market = MarketStreams(exchange, self._gate)
        self._users = UserStreams(exchange, self._gate)

    @property
    def open_connections(self) -> int:
        return self._gate.open_count

    def publish_marks(self) -> None:
        """Send the exchange's current marks on every connected /market stream."""
        self._market.publish()

    async def drop_all(self, *, graceful: bool = False) -> int:
        """Fault: drop every open stream now (TCP cut, or a 1001 close if graceful)."""
        return await self._gate.drop_all(graceful=graceful)

    def refuse(self, seconds: float, *, handshake: bool = True) -> None:
        """Fault: for `seconds`, accept-and-close new streams at once (or answer 503)."""
        self._gate.refuse(seconds, handshake=handshake)

    async def close_all(self) -> None:
        await self._gate.close_all()

    def add_routes(self, app: web.Application) -> None:
        self._market.add_routes(app)
        self._users.add_routes(app)
        app.router.add_get("/ws/{name}", self._ws_name)

    async def _ws_name(self, request: web.Request) -> web.StreamResponse:
        """`/ws/<name>` is the user stream when `name` is a live listen key, else the old
        market path (acknowledges, never sends a mark price)."""
        name = request.match_info["name"]
        account = self._exchange.account_for_listen_key(name)
        if account is not None:
            return await self._users.serve(request, account)
        return await self._market.serve(request, [name], combined=False, live=False)
