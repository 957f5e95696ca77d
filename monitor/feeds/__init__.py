"""Push mark prices: one feed per exchange, delivering MarkTicks and a FeedStatus.

Dedicated websocket clients (Binance USD-M/COIN-M, Bybit, OKX, Hyperliquid) share the
connection loop of `stream.py`; other exchanges fall back to ccxt (`ccxt_feeds.py`).
`feed_for` picks one.
"""

from monitor.feeds.base import FeedStats, FeedStatus, MarkFeed, MarkTick
from monitor.venues.binance.feed import BinanceCoinmMarkFeed, BinanceUsdmMarkFeed
from monitor.venues.bybit.feed import BybitMarkFeed, bybit_feed
from monitor.venues.generic.feed import PollingMarkFeed, WatchMarkFeed
from monitor.feeds.composite import CompositeMarkFeed
from monitor.feeds.factory import feed_for
from monitor.venues.hyperliquid.feed import HyperliquidMarkFeed
from monitor.venues.okx.feed import OkxMarkFeed
from monitor.feeds.stream import StreamFeed

__all__ = [
    "BinanceCoinmMarkFeed",
    "BinanceUsdmMarkFeed",
    "BybitMarkFeed",
    "CompositeMarkFeed",
    "FeedStats",
    "FeedStatus",
    "HyperliquidMarkFeed",
    "MarkFeed",
    "MarkTick",
    "OkxMarkFeed",
    "PollingMarkFeed",
    "StreamFeed",
    "WatchMarkFeed",
    "bybit_feed",
    "feed_for",
]
