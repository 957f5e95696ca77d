"""Hyperliquid perp mark prices from the per-coin `activeAssetCtx` subscription.

Why `activeAssetCtx` and not `allMids`: `allMids` carries mid prices, while liquidation on
Hyperliquid is decided on the mark (`markPx`); the asset context also brings the funding
rate, and is what ccxt.pro itself switched its single-ticker watch to. The cost is one
subscription per coin, which is fine for the handful of coins an account holds. The
context has no timestamp, so `event_time` is None; funding is Hyperliquid's hourly rate.

The wire speaks coin names ("BTC", and "dex:COIN" for HIP-3 markets), while ccxt's market
id for a perp is the asset index ("0"). Symbol keys may be either: a numeric key is turned
into the coin name from the unified symbol's base, which is exact for ordinary perps; pass
the coin (ccxt `market["baseName"]`) as the key for HIP-3 markets.

Keepalive is Hyperliquid's own: the server drops a connection that sent nothing for 60 s,
so `{"method":"ping"}` goes out every 30 s and `{"channel":"pong"}` comes back.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

import orjson
from websockets.asyncio.client import ClientConnection

from monitor.feeds.base import MarkTick, UnexpectedMessage, optional_float
from monitor.feeds.stream import Frame, StreamFeed

log = logging.getLogger(__name__)

_PING = orjson.dumps({"method": "ping"}).decode()


class HyperliquidMarkFeed(StreamFeed):
    origin = "wss://api.hyperliquid.xyz"
    keepalive_interval = 30.0

    def _normalize_symbols(self, symbols: Mapping[str, str]) -> dict[str, str]:
        return {
            (symbol.partition("/")[0] if key.isdigit() else key): symbol
            for key, symbol in symbols.items()
        }

    def _stream_url(self) -> str:
        return f"{self.origin}/ws"

    def _keepalive_message(self) -> Frame:
        return _PING

    async def _subscribe(self, ws: ClientConnection, market_ids: Sequence[str]) -> None:
        await self._request(ws, "subscribe", market_ids)

    async def _unsubscribe(self, ws: ClientConnection, market_ids: Sequence[str]) -> None:
        await self._request(ws, "unsubscribe", market_ids)

    async def _request(self, ws: ClientConnection, method: str, coins: Sequence[str]) -> None:
        # One request per coin: the subscription object names a single coin.
        for coin in coins:
            request = {"method": method, "subscription": {"type": "activeAssetCtx", "coin": coin}}
            await ws.send(orjson.dumps(request).decode())

    def _parse(self, raw: Frame, received: float) -> list[MarkTick]:
        message = orjson.loads(raw)
        channel = message["channel"]
        if channel == "activeAssetCtx":
            return self._context(message["data"], received)
        if channel == "error":
            log.warning("%s error: %s", self.exchange_id, message.get("data"))
        elif channel not in ("subscriptionResponse", "pong"):
            raise UnexpectedMessage(f"channel {channel!r}")
        return []

    def _context(self, data: dict[str, Any], received: float) -> list[MarkTick]:
        context = data["ctx"]
        mark = float(context["markPx"])
        symbol = self._symbols.get(data["coin"])
        if symbol is None:
            return []
        funding = optional_float(context.get("funding"))
        return [MarkTick(self.exchange_id, symbol, mark, None, received, funding_rate=funding)]
