"""Bybit v5 mark prices from the public `tickers.<symbol>` topic.

Bybit serves linear (USDT/USDC-settled) and inverse (coin-settled) contracts on separate
endpoints, `/v5/public/linear` and `/v5/public/inverse`; `bybit_feed` builds one
BybitMarkFeed per category behind a CompositeMarkFeed so the daemon still sees one feed.

The topic sends a snapshot, then deltas that omit unchanged fields: each delta is merged
into the symbol's last state, and a tick is emitted whenever the merged state has a mark
price (a delta without `markPrice` means the mark did not change, which is still news).
The cache is dropped with the connection; the next subscription starts with a snapshot.

Keepalive is Bybit's own: `{"op":"ping"}` every 20 s (no protocol-level ping).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

import orjson
from websockets.asyncio.client import ClientConnection

from monitor.feeds.base import (
    MarkFeed,
    MarkTick,
    StatusCallback,
    TicksCallback,
    UnexpectedMessage,
    optional_float,
    optional_ms,
)
from monitor.feeds.composite import CompositeMarkFeed
from monitor.feeds.stream import Frame, StreamFeed, chunks

log = logging.getLogger(__name__)

#: Bybit rejects subscribe requests with more than 10 topics.
MAX_TOPICS_PER_REQUEST = 10
CATEGORIES = ("linear", "inverse")
_PING = orjson.dumps({"op": "ping"})


def bybit_category(_market_id: str, symbol: str) -> str:
    """The Bybit endpoint: inverse when the contract settles in its base coin (BTC/USD:BTC)."""
    base, _, rest = symbol.partition("/")
    settle = rest.partition(":")[2].partition("-")[0]
    return "inverse" if settle and settle == base else "linear"


class BybitMarkFeed(StreamFeed):
    """One category's connection; market ids like BTCUSDT (linear) or BTCUSD (inverse)."""

    origin = "wss://stream.bybit.com"
    keepalive_interval = 20.0

    def __init__(self, *args: Any, category: str = "linear", **kwargs: Any) -> None:
        if category not in CATEGORIES:
            raise ValueError(f"unknown Bybit category {category!r}")
        super().__init__(*args, **kwargs)
        self.category = category
        self._state: dict[str, dict[str, Any]] = {}

    def _stream_url(self) -> str:
        return f"{self.origin}/v5/public/{self.category}"

    def _keepalive_message(self) -> Frame:
        return _PING.decode()

    def _connection_started(self) -> None:
        self._state.clear()

    async def _subscribe(self, ws: ClientConnection, market_ids: Sequence[str]) -> None:
        await self._request(ws, "subscribe", market_ids)

    async def _unsubscribe(self, ws: ClientConnection, market_ids: Sequence[str]) -> None:
        await self._request(ws, "unsubscribe", market_ids)
        for market_id in market_ids:
            self._state.pop(market_id, None)

    async def _request(self, ws: ClientConnection, op: str, market_ids: Sequence[str]) -> None:
        for batch in chunks(market_ids, MAX_TOPICS_PER_REQUEST):
            args = [f"tickers.{market_id}" for market_id in batch]
            await ws.send(orjson.dumps({"op": op, "args": args}).decode())

    def _parse(self, raw: Frame, received: float) -> list[MarkTick]:
        message = orjson.loads(raw)
        if "topic" not in message:
            return self._control(message)
        if not message["topic"].startswith("tickers."):
            raise UnexpectedMessage(f"topic {message['topic']!r}")
        data = message["data"]
        market_id = data["symbol"]
        kind = message["type"]
        if kind == "snapshot":
            state = self._state[market_id] = dict(data)
        elif kind == "delta":
            state = self._state.setdefault(market_id, {})
            state.update(data)
        else:
            raise UnexpectedMessage(f"type {kind!r}")
        symbol = self._symbols.get(market_id)
        mark = optional_float(state.get("markPrice"))
        if symbol is None or mark is None:
            return []
        tick = MarkTick(
            self.exchange_id,
            symbol,
            mark,
            message["ts"] / 1000.0,
            received,
            funding_rate=optional_float(state.get("fundingRate")),
            next_funding_time=optional_ms(state.get("nextFundingTime")),
        )
        return [tick]

    def _control(self, message: dict[str, Any]) -> list[MarkTick]:
        """Acknowledgements and pongs: `{"success", "ret_msg", "op", ...}`."""
        op = message["op"]
        if op not in ("subscribe", "unsubscribe", "ping", "pong"):
            raise UnexpectedMessage(f"op {op!r}")
        if message.get("success") is False:
            log.warning(
                "%s %s %s failed: %s", self.exchange_id, self.category, op, message.get("ret_msg")
            )
        return []


def bybit_feed(
    exchange_id: str,
    symbols: Mapping[str, str],
    on_ticks: TicksCallback,
    on_status: StatusCallback,
    **options: Any,
) -> MarkFeed:
    """A feed over both categories; a category without symbols stays idle (no connection)."""

    def make_child(category: str, subset: dict[str, str], status: StatusCallback) -> MarkFeed:
        return BybitMarkFeed(exchange_id, subset, on_ticks, status, category=category, **options)

    return CompositeMarkFeed(
        exchange_id,
        symbols,
        on_ticks,
        on_status,
        keys=CATEGORIES,
        route=bybit_category,
        make_child=make_child,
        **options,
    )
