"""Bybit v5's public `tickers.<symbol>` stream on `/v5/public/linear`.

Bybit's protocol (v5 docs, "WebSocket Connect" and "Ticker"): the client sends
`{"op":"subscribe","args":["tickers.BTCUSDT"],"req_id":..}` and gets
`{"success":true,"ret_msg":"","conn_id":..,"req_id":..,"op":"subscribe"}`; the first
message of a topic is a `snapshot` with every ticker field, then `delta`s carry only the
fields that changed (a client merges them). `{"op":"ping"}` is answered with
`{"success":true,"ret_msg":"pong",..,"op":"ping"}`; an unknown topic fails the whole
request with `success: false`. `/v5/public/inverse` is served too but lists no market.
Every simulator tick sends each subscriber one delta per topic with the fields that
moved (just the symbol when none did).
"""

from __future__ import annotations

import itertools
from typing import Any

import orjson
from aiohttp import web

from monitor.simulator.binance_usdm.sockets import Connection, SocketGate
from monitor.simulator.binance_usdm.state import SimExchange
from monitor.simulator.bybit_v5.render import ticker

TOPIC = "tickers."
CATEGORIES = ("linear", "inverse")


class Subscriber:
    """One connection: its topics, and the ticker it last sent on each (deltas)."""

    def __init__(self, exchange: SimExchange, connection: Connection, symbols: set[str]) -> None:
        self._exchange = exchange
        self.connection = connection
        self._symbols = symbols
        self._sent: dict[str, dict[str, Any]] = {}
        self._conn_id = f"sim-{id(connection):x}"
        self._sequence = itertools.count(1)

    def on_text(self, raw: str) -> None:
        try:
            request = orjson.loads(raw)
        except orjson.JSONDecodeError:
            self._answer({}, "", success=False, message="error:request not json")
            return
        if not isinstance(request, dict):
            self._answer({}, "", success=False, message="error:request not object")
            return
        op = request.get("op")
        if op == "ping":
            self._answer(request, "ping", message="pong")
        elif op in ("subscribe", "unsubscribe"):
            self._topics(request, op)
        else:
            self._answer(request, str(op), success=False, message=f"error:unknown op {op}")

    def _topics(self, request: dict[str, Any], op: str) -> None:
        args = request.get("args")
        topics = [a for a in args if isinstance(a, str)] if isinstance(args, list) else []
        bad = [t for t in topics if not (t.startswith(TOPIC) and t[len(TOPIC) :] in self._symbols)]
        if bad or not topics:
            self._answer(request, op, success=False, message=f"Invalid topic :{bad or topics}")
            return
        self._answer(request, op)
        for topic in topics:
            symbol = topic[len(TOPIC) :]
            if op == "unsubscribe":
                self._sent.pop(symbol, None)
            elif symbol not in self._sent:
                self._send(symbol, "snapshot", ticker(self._exchange, symbol))

    def publish(self) -> None:
        """One delta per topic, even when nothing moved: a live ticker always has
        something new (book, volume), so the stream never goes quiet while the market
        holds, and a monitor must not call a flat market a dead feed."""
        for symbol, last in list(self._sent.items()):
            current = ticker(self._exchange, symbol)
            changed = {k: v for k, v in current.items() if last.get(k) != v}
            self._send(symbol, "delta", {"symbol": symbol, **changed})

    def _send(self, symbol: str, kind: str, data: dict[str, Any]) -> None:
        self._sent[symbol] = {**self._sent.get(symbol, {}), **data}
        self.connection.send(
            {
                "topic": f"{TOPIC}{symbol}",
                "type": kind,
                "data": data,
                "cs": next(self._sequence),
                "ts": self._exchange.clock_ms(),
            }
        )

    def _answer(
        self, request: dict[str, Any], op: str, *, success: bool = True, message: str = ""
    ) -> None:
        self.connection.send(
            {
                "success": success,
                "ret_msg": message,
                "conn_id": self._conn_id,
                "req_id": request.get("req_id", ""),
                "op": op,
            }
        )


class TickerStreams:
    """Every public connection of one simulated Bybit; `publish_marks()` on each tick.
    Stream faults (`drop_all`, `refuse`) are the shared socket gate's."""

    def __init__(self, exchange: SimExchange) -> None:
        self._exchange = exchange
        self._gate = SocketGate(exchange)
        self._live: set[Subscriber] = set()

    @property
    def open_connections(self) -> int:
        return self._gate.open_count

    def publish_marks(self) -> None:
        for subscriber in list(self._live):
            subscriber.publish()

    async def drop_all(self, *, graceful: bool = False) -> int:
        return await self._gate.drop_all(graceful=graceful)

    def refuse(self, seconds: float, *, handshake: bool = True) -> None:
        self._gate.refuse(seconds, handshake=handshake)

    async def close_all(self) -> None:
        await self._gate.close_all()

    def add_routes(self, app: web.Application) -> None:
        for category in CATEGORIES:
            app.router.add_get(f"/v5/public/{category}", self._serve)

    async def _serve(self, request: web.Request) -> web.StreamResponse:
        connection = await self._gate.open(request)
        if not isinstance(connection, Connection):
            return connection
        linear = request.path.endswith("/linear")
        symbols = set(self._exchange.markets) if linear else set()
        subscriber = Subscriber(self._exchange, connection, symbols)
        self._live.add(subscriber)
        try:
            await connection.serve(subscriber.on_text)
        finally:
            self._live.discard(subscriber)
            self._gate.forget(connection)
        return connection.ws
