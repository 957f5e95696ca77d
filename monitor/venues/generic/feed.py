"""Fallback feeds for exchanges without a dedicated stream client, through a ccxt client.

`PollingMarkFeed` asks over REST every `poll_interval` (ccxt `fetch_mark_prices` where the
exchange has it, else `fetch_tickers` and its `markPrice`). `WatchMarkFeed` uses ccxt.pro
`watch_mark_prices`. Both take the client from the caller, who owns its credentials, its
endpoints (`monitor.exchange.clients.create_client`) and its lifetime (`close()`).

Status follows the stream feeds: LIVE on marks, STALE when a call got no answer within
`stale_after` or answers carried no mark for `stale_after`, DOWN on errors, with the same
backoff (minimum delay, growth, jitter) before the next call. Timeouts are ours
(`asyncio.timeout`), on top of ccxt's own `timeout`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from abc import abstractmethod
from collections.abc import Mapping
from typing import Any

from monitor.feeds.base import (
    FeedStatus,
    LoopingFeed,
    MarkTick,
    StatusCallback,
    TicksCallback,
)

log = logging.getLogger(__name__)


class _CcxtMarkFeed(LoopingFeed):
    def __init__(
        self,
        exchange_id: str,
        symbols: Mapping[str, str],
        on_ticks: TicksCallback,
        on_status: StatusCallback,
        *,
        client: Any,
        **options: Any,
    ) -> None:
        super().__init__(exchange_id, symbols, on_ticks, on_status, **options)
        self.client = client
        self._started = time.monotonic()

    @abstractmethod
    async def _fetch(self, symbols: list[str]) -> Mapping[str, Any]:
        """ccxt tickers keyed by unified symbol."""

    async def _after_success(self) -> None:
        """Pause between successful calls (polling); a watch returns when data arrives."""

    async def _after_timeout(self) -> None:
        """Hook to drop a wedged connection before the next attempt."""

    async def run(self) -> None:
        self._started = time.monotonic()
        await super().run()

    async def _cycle(self) -> None:
        if await self._attempt():
            await self._after_success()
        else:
            await asyncio.sleep(self._next_delay())

    async def _attempt(self) -> bool:
        """One call; False when it failed and the backoff applies (`reconnects` counts those)."""
        wanted = sorted(set(self._symbols.values()))
        try:
            async with asyncio.timeout(self.stale_after):
                tickers = await self._fetch(wanted)
        except asyncio.CancelledError:
            raise
        except TimeoutError:
            self._stats.reconnects += 1
            self._set_status(FeedStatus.STALE, f"no answer within {self.stale_after:g}s")
            await self._after_timeout()
            return False
        except Exception as exc:
            self._stats.reconnects += 1
            self._set_status(FeedStatus.DOWN, f"{type(exc).__name__}: {exc}"[:200])
            return False
        received = time.monotonic()
        self._stats.messages += 1
        ticks = self._ticks(tickers, received)
        if ticks:
            self._failures = 0
            self._emit(ticks)
        elif received - (self._last_data_at or self._started) > self.stale_after:
            self._set_status(FeedStatus.STALE, f"no mark price for {self.stale_after:g}s")
        return True

    def _ticks(self, tickers: Mapping[str, Any], received: float) -> list[MarkTick]:
        wanted = set(self._symbols.values())
        ticks = []
        for symbol, ticker in tickers.items():
            if symbol not in wanted:
                continue
            try:
                mark = ticker.get("markPrice")
                if mark is None:
                    continue
                stamp = ticker.get("timestamp")
                event_time = stamp / 1000.0 if stamp else None
                ticks.append(MarkTick(self.exchange_id, symbol, float(mark), event_time, received))
            except Exception as exc:  # one odd row must not hide the others
                self._parse_error(exc, ticker)
        return ticks


class PollingMarkFeed(_CcxtMarkFeed):
    """REST polling: slower and heavier than a stream, but works wherever ccxt does."""

    def __init__(self, *args: Any, poll_interval: float = 2.0, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if poll_interval <= 0:
            raise ValueError("poll_interval must be positive")
        self.poll_interval = poll_interval

    async def _fetch(self, symbols: list[str]) -> Mapping[str, Any]:
        if self.client.has.get("fetchMarkPrices"):
            return await self.client.fetch_mark_prices(symbols)
        return await self.client.fetch_tickers(symbols)

    async def _after_success(self) -> None:
        await asyncio.sleep(self.poll_interval)


class WatchMarkFeed(_CcxtMarkFeed):
    """ccxt.pro `watch_mark_prices`; ccxt owns that connection and its keepalive, so on
    staleness its websocket clients are closed and the next watch opens a fresh one."""

    async def _fetch(self, symbols: list[str]) -> Mapping[str, Any]:
        result: Mapping[str, Any] = await self.client.watch_mark_prices(symbols)
        return result

    async def _after_success(self) -> None:
        # A watch waits for the next pushed message, so back-to-back calls do not spin;
        # yielding here keeps the loop fair should a call ever return without waiting.
        # No pause beyond that: updates that arrive while nobody watches are not returned.
        await asyncio.sleep(0)

    async def _after_timeout(self) -> None:
        try:
            await self.client.close_ws_clients()
        except Exception:
            log.exception("%s: closing the ccxt.pro websocket failed", self.exchange_id)
