"""Pick the mark-price feed for an exchange: a dedicated stream client, else a ccxt fallback."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from monitor.feeds.base import MarkFeed
from monitor.venues.binance.feed import BinanceCoinmMarkFeed, BinanceUsdmMarkFeed
from monitor.venues.bybit.feed import bybit_feed
from monitor.venues.generic.feed import PollingMarkFeed, WatchMarkFeed
from monitor.venues.hyperliquid.feed import HyperliquidMarkFeed
from monitor.venues.okx.feed import OkxMarkFeed

#: ccxt id -> constructor taking MarkFeed's arguments.
DEDICATED: dict[str, Callable[..., MarkFeed]] = {
    "binanceusdm": BinanceUsdmMarkFeed,
    "binancecoinm": BinanceCoinmMarkFeed,
    "bybit": bybit_feed,
    "okx": OkxMarkFeed,
    "hyperliquid": HyperliquidMarkFeed,
}

#: Arguments only the ccxt fallback understands: dropped for dedicated clients so the
#: caller can pass one uniform set of options for every exchange.
_FALLBACK_ONLY = ("client", "poll_interval")


def feed_for(exchange_id: str, *, fallback: str = "poll", **kwargs: Any) -> MarkFeed:
    """The feed for `exchange_id`, taking MarkFeed's arguments as keywords.

    Exchanges without a dedicated client need `client=` (a ccxt asyncio client; a ccxt.pro
    one for `fallback="watch"`) and take `poll_interval=`; `ws_origin` does not apply to
    them (point the ccxt client's own urls instead).
    """
    dedicated = DEDICATED.get(exchange_id)
    if dedicated is not None:
        for name in _FALLBACK_ONLY:
            kwargs.pop(name, None)
        return dedicated(exchange_id=exchange_id, **kwargs)
    if kwargs.get("client") is None:
        raise ValueError(f"no dedicated mark feed for {exchange_id!r}: pass client= (ccxt)")
    kwargs.pop("ws_origin", None)
    if fallback == "poll":
        return PollingMarkFeed(exchange_id=exchange_id, **kwargs)
    if fallback == "watch":
        kwargs.pop("poll_interval", None)
        return WatchMarkFeed(exchange_id=exchange_id, **kwargs)
    raise ValueError(f"fallback must be 'poll' or 'watch', not {fallback!r}")
