"""OKX v5 mark prices from the public `mark-price` channel.

One endpoint serves every instrument type, so one connection covers swaps, futures and
both margin kinds; market ids are OKX instIds (BTC-USDT-SWAP). OKX pushes a mark every
200 ms while it moves and at least every 10 s when it does not: a `stale_after` below
~10 s can flag a flat market on OKX as stale.

Keepalive is OKX's own and text-only: after ~25 s without any frame send `ping`, the
server answers `pong`; OKX does not use protocol-level pings. A missing pong needs no
timer of its own: without pushes the staleness timer closes the connection anyway.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import orjson
from websockets.asyncio.client import ClientConnection

from monitor.feeds.base import MarkTick, UnexpectedMessage
from monitor.feeds.stream import Frame, StreamFeed, chunks

log = logging.getLogger(__name__)

#: OKX caps a request at 64 KB; stay far below it.
MAX_ARGS_PER_REQUEST = 100


class OkxMarkFeed(StreamFeed):
    origin = "wss://ws.okx.com:8443"
    keepalive_interval = 25.0
    keepalive_when_idle = True

    def _stream_url(self) -> str:
        return f"{self.origin}/ws/v5/public"

    def _keepalive_message(self) -> Frame:
        return "ping"

    async def _subscribe(self, ws: ClientConnection, market_ids: Sequence[str]) -> None:
        await self._request(ws, "subscribe", market_ids)

    async def _unsubscribe(self, ws: ClientConnection, market_ids: Sequence[str]) -> None:
        await self._request(ws, "unsubscribe", market_ids)

    async def _request(self, ws: ClientConnection, op: str, market_ids: Sequence[str]) -> None:
        for batch in chunks(market_ids, MAX_ARGS_PER_REQUEST):
            args = [{"channel": "mark-price", "instId": inst_id} for inst_id in batch]
            await ws.send(orjson.dumps({"op": op, "args": args}).decode())

    def _parse(self, raw: Frame, received: float) -> list[MarkTick]:
        if raw == "pong":
            return []
        message = orjson.loads(raw)
        if "event" in message:
            return self._event(message)
        if message["arg"]["channel"] != "mark-price":
            raise UnexpectedMessage(f"channel {message['arg']['channel']!r}")
        ticks = []
        for row in message["data"]:
            symbol = self._symbols.get(row["instId"])
            if symbol is not None:
                ts = int(row["ts"]) / 1000.0
                ticks.append(MarkTick(self.exchange_id, symbol, float(row["markPx"]), ts, received))
        return ticks

    def _event(self, message: dict[str, Any]) -> list[MarkTick]:
        """`subscribe`/`unsubscribe` acks, `error` (bad instId...), `notice` (upcoming
        maintenance disconnect, which the reconnect loop handles when it happens)."""
        event, code, text = message["event"], message.get("code"), message.get("msg")
        if event == "error":
            log.warning("%s error %s: %s", self.exchange_id, code, text)
        elif event == "notice":
            log.info("%s notice %s: %s", self.exchange_id, code, text)
        elif event not in ("subscribe", "unsubscribe"):
            raise UnexpectedMessage(f"event {event!r}")
        return []
