"""What the console needs from the rest of `alerts`, stated as protocols.

The console only reads and asks; the silence book (`alerts.silence.Silences`) and the
store (`alerts.store.Store`) belong to the rules and delivery code. Structural types keep
the dependency a short, checkable list and let tests hand in small stand-ins.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol


class SilenceView(Protocol):
    @property
    def id(self) -> str: ...

    @property
    def account(self) -> str:
        """An account name, or `alerts.silence.ANY_ACCOUNT`."""
        ...

    @property
    def target(self) -> str | None: ...

    @property
    def ends(self) -> float:
        """Unix time the silence ends."""
        ...

    def matches(self, account: str | None, target: str) -> bool: ...


class SilenceBook(Protocol):
    def add(
        self,
        account: str,
        duration: float,
        target: str | None = None,
        exact: bool = False,
        comment: str = "",
        created_by: str = "",
    ) -> SilenceView: ...

    def remove(self, silence_id: str) -> bool: ...

    def active(self) -> Sequence[SilenceView]: ...


class HistorySource(Protocol):
    def history_series(
        self, account: str, since: float
    ) -> Sequence[tuple[float, str, float | None]]:
        """(unix time, target, margin ratio) of `account` since `since`, oldest first."""
        ...
