"""Binance USD-M and COIN-M mark prices (`markPriceUpdate`), subscribed through the URL.

Since 2026-04-23 USD-M routes streams by path: mark prices live under `/market`. The old
path (`wss://fstream.binance.com/stream?...`) still connects and acknowledges, but never
sends a mark price — a silent failure that looks like a quiet market. COIN-M
(`dstream.binance.com`) is not split by path (Binance's stream-routing page names USD-M as
the only exception), so it keeps `/stream` and `/ws`.

Streams are named in the URL, so a changed symbol set means a new URL and a planned
reconnect (the base class notices the URL changed). Up to MANY_STREAMS symbols use one
`<id>@markPrice@1s` stream each on the combined endpoint; beyond that a single stream
covers them all — USD-M `!markPrice@arr@1s` (every symbol each second, ~100 KB/s, no long
URL, no resubscription when the set changes), COIN-M, which has no all-market array,
`<pair>@markPrice@1s` (every contract of a pair). Either way the frames are filtered to
the subscribed ids.

The all-market array is decoded by a typed decoder first (`_ARRAY`): it builds one small
struct of the six fields read per market and skips the others (`i`, `P`) without
allocating them, where a generic decoder builds ~560 dicts of eight keys a second. Every
other frame, and any array that does not fit those types, takes the generic path, so the
outcome of a frame (its ticks, or the error it raises) is the generic path's.

Keepalive is Binance's own: the server pings every few minutes and websockets answers by
itself. A connection lives at most 24 h, so it is replaced after MAX_CONNECTION_AGE.
"""

from __future__ import annotations

import logging
from abc import abstractmethod
from typing import Any, Literal

import msgspec
import orjson

from monitor.feeds.base import MarkTick, UnexpectedMessage, optional_float, optional_ms
from monitor.feeds.stream import Frame, StreamFeed

log = logging.getLogger(__name__)

#: Above this many symbols, one all-market (USD-M) or per-pair (COIN-M) stream is cheaper
#: than one stream per symbol, and the URL stays short.
MANY_STREAMS = 50


class _MarkPrice(msgspec.Struct, gc=False):
    """One `markPriceUpdate` as the fast path reads it. Numbers stay strings (as sent):
    only the held markets' are converted, as on the generic path. No cycles, so the
    structs stay out of the collector."""

    e: Literal["markPriceUpdate"]
    E: int
    s: str
    p: str
    r: str | None = None
    T: int | None = None


_ARRAY = msgspec.json.Decoder(list[_MarkPrice])


class _BinanceMarkFeed(StreamFeed):
    origin: str
    prefix: str  # the routed path ("/market") or "" where the host has no routing
    max_connection_age = 23.5 * 3600.0
    recv_decode = False  # both decoders read the frame's bytes as they are

    def _stream_url(self) -> str:
        ids = sorted(self._symbols)
        if len(ids) > MANY_STREAMS:
            return self.origin + self.prefix + self._many_path(ids)
        streams = "/".join(f"{market_id.lower()}@markPrice@1s" for market_id in ids)
        return f"{self.origin}{self.prefix}/stream?streams={streams}"

    @abstractmethod
    def _many_path(self, ids: list[str]) -> str:
        """The path of the one stream that covers more than MANY_STREAMS symbols."""

    def _parse(self, raw: Frame, received: float) -> list[MarkTick]:
        try:
            items = _ARRAY.decode(raw)
        except msgspec.MsgspecError:  # not an array of well-typed marks
            return self._parse_any(raw, received)
        # The all-market array carries ~560 markets a second for the few held: only the
        # held ones cost a conversion and a tick.
        held, exchange = self._symbols.get, self.exchange_id
        return [
            _tick(exchange, symbol, received, price=item.p, event_ms=item.E, rate=item.r,
                  next_funding_ms=item.T)
            for item in items
            if (symbol := held(item.s)) is not None
        ]  # fmt: skip

    def _parse_any(self, raw: Frame, received: float) -> list[MarkTick]:
        """Any frame: the wrapper, answers, errors, single objects, and the odd array
        (a stranger's event raises UnexpectedMessage, an unheld market's odd value is
        ignored)."""
        message = orjson.loads(raw)
        if isinstance(message, dict):
            if "stream" in message:  # combined-stream wrapper
                message = message["data"]
            elif "result" in message and "id" in message:  # answer to a SUBSCRIBE request
                return []
            elif "error" in message:
                log.warning("%s stream error: %s", self.exchange_id, message["error"])
                return []
        items: list[Any] = message if isinstance(message, list) else [message]
        held, exchange, ticks = self._symbols.get, self.exchange_id, []
        for item in items:
            if item["e"] != "markPriceUpdate":
                raise UnexpectedMessage(f"event {item['e']!r}")
            symbol = held(item["s"])
            if symbol is not None:
                ticks.append(
                    _tick(exchange, symbol, received, price=item["p"], event_ms=item["E"],
                          rate=item.get("r"), next_funding_ms=item.get("T"))
                )  # fmt: skip
        return ticks


def _tick(
    exchange: str,
    symbol: str,
    received: float,
    *,
    price: str,
    event_ms: int,
    rate: str | None,
    next_funding_ms: int | None,
) -> MarkTick:
    """One held market's tick from its markPriceUpdate fields as sent (numbers as
    strings, times in ms): the one conversion both decoders' items go through."""
    return MarkTick(
        exchange,
        symbol,
        float(price),
        event_ms / 1000.0,
        received,
        optional_float(rate),
        optional_ms(next_funding_ms),
    )


class BinanceUsdmMarkFeed(_BinanceMarkFeed):
    """USD-M futures (`binanceusdm`): market ids like BTCUSDT, under the `/market` route."""

    origin = "wss://fstream.binance.com"
    prefix = "/market"

    def _many_path(self, ids: list[str]) -> str:
        return "/ws/!markPrice@arr@1s"


class BinanceCoinmMarkFeed(_BinanceMarkFeed):
    """COIN-M futures (`binancecoinm`): market ids like BTCUSD_PERP, BTCUSD_250627."""

    origin = "wss://dstream.binance.com"
    prefix = ""

    def _many_path(self, ids: list[str]) -> str:
        pairs = sorted({market_id.split("_", 1)[0].lower() for market_id in ids})
        return "/stream?streams=" + "/".join(f"{pair}@markPrice@1s" for pair in pairs)
