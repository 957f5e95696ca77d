"""The latest mark price per symbol on one exchange, shared by all its accounts."""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Mapping

from monitor.feeds import MarkTick


class MarkBoard(Mapping[str, float]):
    """symbol -> latest mark; an older price never overwrites a newer one.

    Marks come from the stream (every tick) and from REST snapshots (every poll); when
    the stream is down, the REST marks keep the book current instead of frozen.
    """

    def __init__(self) -> None:
        self.prices: dict[str, float] = {}
        """symbol -> mark, for hot paths that want `dict.get` itself (read only)."""
        self._times: dict[str, float] = {}
        self.version = 0
        """Bumped whenever a price moves: figures computed at an older version are stale."""

    def update(self, symbol: str, price: float, at: float) -> bool:
        """Record `price` observed at wall time `at`; True only if the mark moved.

        A repeated price still counts as fresh (its time is kept), but recomputing the
        book for it would change nothing: Binance's all-market frame repeats most marks.
        """
        return bool(self._record([(symbol, price)], at))

    def update_all(self, ticks: Iterable[MarkTick], at: float) -> list[str]:
        """`update` for each tick of a frame, observed at wall time `at`: the symbols
        whose marks moved, in order."""
        return self._record([(tick.symbol, tick.price) for tick in ticks], at)

    def _record(self, marks: list[tuple[str, float]], at: float) -> list[str]:
        times, prices = self._times, self.prices
        moved = []
        for symbol, price in marks:
            if at < times.get(symbol, -math.inf) or price <= 0:
                continue  # older than the mark held, or no price at all
            times[symbol] = at
            if prices.get(symbol) != price:
                prices[symbol] = price
                moved.append(symbol)
        self.version += len(moved)
        return moved

    def observed_at(self, symbol: str) -> float | None:
        return self._times.get(symbol)

    def __getitem__(self, symbol: str) -> float:
        return self.prices[symbol]

    def get(self, symbol: str, default: float | None = None) -> float | None:  # type: ignore[override]
        return self.prices.get(symbol, default)

    def __iter__(self) -> Iterator[str]:
        return iter(self.prices)

    def __len__(self) -> int:
        return len(self.prices)
