"""Grouping: one message per account per burst of changes.

A crash moves every position of an account within a tick or two; forty messages would
bury the one that matters. The first alert due for an account opens its group; every
alert of that account due in the next `group_wait` seconds joins it; then the group is
flushed as one message. Only keys are kept: the pipeline re-reads each alert's state at
flush time, so a level overtaken (or cancelled) inside the window is said as it is now.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from alerts.rules import AlertKey


@dataclass(slots=True)
class _Group:
    opened: float
    keys: dict[AlertKey, None] = field(default_factory=dict)
    """An ordered set: arrival order, each key once."""


class Grouper:
    def __init__(self) -> None:
        self._groups: dict[str | None, _Group] = {}

    def add(self, account: str | None, key: AlertKey, now: float) -> None:
        """`account` None gathers what concerns no single account (blind feeds)."""
        self._groups.setdefault(account, _Group(now)).keys[key] = None

    def ready(self, now: float, wait: float) -> list[tuple[str | None, list[AlertKey]]]:
        """Groups open for at least `wait` seconds, removed from the grouper."""
        flushed = [
            (account, list(group.keys))
            for account, group in self._groups.items()
            if now - group.opened >= wait
        ]
        for account, _ in flushed:
            del self._groups[account]
        return flushed
