"""The latest mark price per symbol on one exchange, shared by all its accounts."""

from __future__ import annotations

from collections.abc import Iterator, Mapping


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
        if at < self._times.get(symbol, float("-inf")) or price <= 0:
            return False
        self._times[symbol] = at
        if self.prices.get(symbol) == price:
            return False
        self.prices[symbol] = price
        self.version += 1
        return True

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
