"""Push mark prices: one feed per exchange, delivering MarkTicks and a FeedStatus.

Venue-neutral machinery only: the feed contract (`base.py`), the websocket connection
loop the dedicated clients share (`stream.py`) and the composite of several feeds
(`composite.py`). Each exchange's client lives in its venue package
(monitor/venues/<venue>/feed.py; other exchanges fall back to ccxt,
monitor/venues/generic/feed.py); `monitor.venues.registry.feed_for` picks one.
"""

from monitor.feeds.base import FeedStats, FeedStatus, MarkFeed, MarkTick
from monitor.feeds.composite import CompositeMarkFeed
from monitor.feeds.stream import StreamFeed

__all__ = ["CompositeMarkFeed", "FeedStats", "FeedStatus", "MarkFeed", "MarkTick", "StreamFeed"]
