"""Binance USD-M mark-price streams: the /market paths that carry prices, and the old
paths that don't.

Since 2026-04-23 Binance serves mark prices only under `/market` (`/market/ws/<stream>`,
`/market/stream?streams=a/b`). The old `/ws`, `/stream` (and `/public`) paths still
accept connections and acknowledge SUBSCRIBE, but never send a mark price. The simulator
copies that exactly, so a client on the wrong path fails its tests here rather than in
production. Every connected mark stream gets one update per simulator tick.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import orjson
from aiohttp import web

from monitor.simulator.binance_usdm.render import next_funding_time, num
from monitor.simulator.binance_usdm.sockets import Connection, SocketGate
from monitor.simulator.binance_usdm.state import SimExchange

MARK_PRICE = re.compile(r"^(?P<symbol>[a-z0-9]+)@markPrice(?:@1s)?$")
ALL_MARK_PRICES = re.compile(r"^!markPrice@arr(?:@1s)?$")

Payloads = Callable[[str], Any]


def mark_price_update(exchange: SimExchange, symbol: str) -> dict[str, Any]:
    """One markPriceUpdate object; the estimated settle price is the index, as at Binance
    outside the hour before a delivery."""
    index = exchange.index(symbol)
    return {
        "e": "markPriceUpdate",
        "E": exchange.clock_ms(),
        "s": symbol,
        "p": num(exchange.mark(symbol)),
        "i": num(index),
        "P": num(index),
        "r": num(exchange.funding_rate(symbol)),
        "T": next_funding_time(exchange),
    }


def stream_payload(exchange: SimExchange, stream: str) -> Any:
    """The payload of a mark-price stream name, or None for a stream that carries none."""
    if ALL_MARK_PRICES.match(stream):
        return [mark_price_update(exchange, symbol) for symbol in exchange.markets]
    match = MARK_PRICE.match(stream)
    if match is not None and match["symbol"].upper() in exchange.markets:
        return mark_price_update(exchange, match["symbol"].upper())
    return None


def split_streams(names: str) -> list[str]:
    return [name for name in names.split("/") if name]


class Subscriber:
    """One market connection: its streams, and the SUBSCRIBE protocol Binance speaks.

    `combined` wraps each payload as {"stream", "data"}; on a raw connection the payload
    goes out as it is.
    """

    def __init__(self, connection: Connection, streams: list[str], combined: bool) -> None:
        self.connection = connection
        self.streams = list(dict.fromkeys(streams))
        self.combined = combined

    def on_text(self, text: str) -> None:
        try:
            request = orjson.loads(text)
        except orjson.JSONDecodeError:
            self.connection.send({"code": 3, "msg": "Invalid JSON: expected value", "id": None})
            return
        if not isinstance(request, dict):
            self.connection.send({"code": 2, "msg": "Invalid request", "id": None})
            return
        method, params, request_id = request.get("method"), request.get("params"), request.get("id")
        names = [p for p in params if isinstance(p, str)] if isinstance(params, list) else []
        if method == "SUBSCRIBE":
            self.streams.extend(n for n in names if n not in self.streams)
            self.connection.send({"result": None, "id": request_id})
        elif method == "UNSUBSCRIBE":
            self.streams = [s for s in self.streams if s not in names]
            self.connection.send({"result": None, "id": request_id})
        elif method == "LIST_SUBSCRIPTIONS":
            self.connection.send({"result": list(self.streams), "id": request_id})
        else:
            message = f"Invalid request: unknown method {method!r}"
            self.connection.send({"code": 2, "msg": message, "id": request_id})

    def publish(self, payloads: Payloads) -> None:
        for stream in self.streams:
            payload = payloads(stream)
            if payload is None:
                continue
            self.connection.send({"stream": stream, "data": payload} if self.combined else payload)


class MarketStreams:
    """Every market-stream connection of one venue; `publish()` sends one tick to all."""

    def __init__(self, exchange: SimExchange, gate: SocketGate) -> None:
        self._exchange = exchange
        self._gate = gate
        self._live: set[Subscriber] = set()

    def publish(self) -> None:
        """Send the current marks to every live subscriber, rendering each stream once."""
        cache: dict[str, Any] = {}

        def payloads(stream: str) -> Any:
            if stream not in cache:
                cache[stream] = stream_payload(self._exchange, stream)
            return cache[stream]

        for subscriber in list(self._live):
            subscriber.publish(payloads)

    def add_routes(self, app: web.Application) -> None:
        """The /market paths, and the old paths that only acknowledge. `/ws/{name}` is
        not here: the hub shares it with the user data stream."""
        app.router.add_get("/market/ws", self._raw)
        app.router.add_get("/market/ws/{streams:.+}", self._raw)
        app.router.add_get("/market/stream", self._combined)
        app.router.add_get("/ws", self._legacy)
        app.router.add_get("/stream", self._legacy)
        app.router.add_get("/public/ws", self._legacy)
        app.router.add_get("/public/ws/{streams:.+}", self._legacy)
        app.router.add_get("/public/stream", self._legacy)

    async def _raw(self, request: web.Request) -> web.StreamResponse:
        streams = split_streams(request.match_info.get("streams", ""))
        return await self.serve(request, streams, combined=False, live=True)

    async def _combined(self, request: web.Request) -> web.StreamResponse:
        streams = split_streams(request.query.get("streams", ""))
        return await self.serve(request, streams, combined=True, live=True)

    async def _legacy(self, request: web.Request) -> web.StreamResponse:
        streams = split_streams(
            request.match_info.get("streams", "") or request.query.get("streams", "")
        )
        return await self.serve(request, streams, combined=False, live=False)

    async def serve(
        self, request: web.Request, streams: list[str], *, combined: bool, live: bool
    ) -> web.StreamResponse:
        """Serve one market connection; `live=False` is an old path: it acknowledges
        subscriptions like Binance's, and never sends a mark price."""
        connection = await self._gate.open(request)
        if not isinstance(connection, Connection):
            return connection
        subscriber = Subscriber(connection, streams, combined)
        if live:
            self._live.add(subscriber)
        try:
            await connection.serve(subscriber.on_text)
        finally:
            self._live.discard(subscriber)
            self._gate.forget(connection)
        return connection.ws
