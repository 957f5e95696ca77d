"""One MarkFeed over several child feeds, each symbol routed to exactly one child.

Why: the daemon wants one feed per exchange, but some exchanges serve each product family
on its own endpoint (Bybit: `/v5/public/linear` and `/v5/public/inverse`), and one account
can hold both. Children keep their own connection, timers and backoff; the composite only
routes symbols, merges the status (the worst child that has symbols) and sums the stats.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Mapping
from dataclasses import fields
from typing import Any

from monitor.feeds.base import (
    FeedStats,
    FeedStatus,
    MarkFeed,
    StatusCallback,
    TicksCallback,
)

#: Worse statuses win the merge: one dead endpoint makes the whole feed not live.
_SEVERITY = {FeedStatus.LIVE: 0, FeedStatus.CONNECTING: 1, FeedStatus.STALE: 2, FeedStatus.DOWN: 3}

Route = Callable[[str, str], str]  # (market id, unified symbol) -> child key
ChildFactory = Callable[[str, dict[str, str], StatusCallback], MarkFeed]


class CompositeMarkFeed(MarkFeed):
    def __init__(
        self,
        exchange_id: str,
        symbols: Mapping[str, str],
        on_ticks: TicksCallback,
        on_status: StatusCallback,
        *,
        keys: Iterable[str],
        route: Route,
        make_child: ChildFactory,
        **options: Any,
    ) -> None:
        super().__init__(exchange_id, symbols, on_ticks, on_status, **options)
        self._route = route
        self._children: dict[str, MarkFeed] = {}
        for key in keys:
            status = self._child_status_callback(key)
            self._children[key] = make_child(key, self._subset(key), status)

    @property
    def children(self) -> Mapping[str, MarkFeed]:
        return dict(self._children)

    async def run(self) -> None:
        self._set_status(FeedStatus.CONNECTING, "starting")
        async with asyncio.TaskGroup() as group:
            for child in self._children.values():
                group.create_task(child.run())

    def set_symbols(self, symbols: Mapping[str, str]) -> None:
        new = self._normalize_symbols(symbols)
        if new == self._symbols:
            return
        self._symbols = new
        for key, child in self._children.items():
            child.set_symbols(self._subset(key))
        self._merge_status("symbols changed")

    @property
    def last_message_at(self) -> float | None:
        times = [t for c in self._children.values() if (t := c.last_message_at) is not None]
        return max(times, default=None)

    @property
    def stats(self) -> FeedStats:
        total = FeedStats()
        for child in self._children.values():
            stats = child.stats
            for f in fields(FeedStats):
                setattr(total, f.name, getattr(total, f.name) + getattr(stats, f.name))
        return total

    def _subset(self, key: str) -> dict[str, str]:
        return {mid: sym for mid, sym in self._symbols.items() if self._route(mid, sym) == key}

    def _child_status_callback(self, key: str) -> StatusCallback:
        def report(_status: FeedStatus, reason: str) -> None:
            self._merge_status(f"{key}: {reason}")

        return report

    def _merge_status(self, reason: str) -> None:
        active = [child.status for child in self._children.values() if child.symbols]
        if not active:
            self._set_status(FeedStatus.CONNECTING, "no symbols to watch")
            return
        self._set_status(max(active, key=_SEVERITY.__getitem__), reason)
