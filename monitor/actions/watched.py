"""What the action controller reads from, and asks of, the account it defends.

Declared here, by its user, so that `monitor.actions` never imports the daemon that
composes it: the daemon's account poller and state satisfy this structurally and are handed over.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Protocol

from monitor.config import AccountConfig
from monitor.domain import AccountSnapshot
from monitor.engine.book import AccountBook
from monitor.engine.results import PoolRisk, PositionRisk
from monitor.events.tracker import LevelTracker
from monitor.exchange.adapters.base import ExchangeAdapter
from monitor.exchange.markets import SharedMarkets


class SeenMarks(Protocol):
    """The mark board as the controller reads it: symbol -> latest mark, the `Marks`
    mapping a plan is made with, that also says when each mark was observed (what the
    staleness guard refuses on). A protocol cannot extend `Mapping`, so its reads are
    spelled out."""

    def __getitem__(self, symbol: str, /) -> float: ...
    def __contains__(self, symbol: object, /) -> bool: ...
    def __iter__(self) -> Iterator[str]: ...
    def __len__(self) -> int: ...
    def get(self, symbol: str, default: float | None = None, /) -> float | None: ...
    def observed_at(self, symbol: str) -> float | None: ...


class WatchedState(Protocol):
    """The account's evaluated state: what a plan is made from."""

    name: str
    marks: SeenMarks
    tracker: LevelTracker
    snapshot: AccountSnapshot | None
    book: AccountBook | None

    @property
    def isolated_targets(self) -> list[str]: ...

    @property
    def latest_pools(self) -> dict[str, PoolRisk]: ...

    @property
    def latest_positions(self) -> dict[str, PositionRisk]: ...


class AccountReader(Protocol):
    """The account's reader: its exchange client, and a fresh read on demand."""

    name: str
    account: AccountConfig
    client: Any
    """The account's ccxt client (typed Any like everywhere ccxt is handed around)."""
    adapter: ExchangeAdapter
    markets: SharedMarkets
    markets_key: str
    state: WatchedState

    async def poll(self) -> None:
        """Read the account again, now."""
