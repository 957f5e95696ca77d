"""Silences: "don't tell me about this account (or target) until then", set at runtime.

The console adds and removes them; the pipeline asks `silenced` before saying anything.
A silenced alert is held, not forgotten: if it still fires when the silence ends, the
user hears it then. Expired silences drop out on their own.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

ANY_ACCOUNT = "*"
"""Matches every account, and alerts about no single account (a blind feed)."""


@dataclass(frozen=True, slots=True)
class Silence:
    id: str
    account: str
    target: str | None
    """None = the whole account; otherwise a target prefix, or the exact target."""
    exact: bool
    starts: float
    ends: float
    comment: str = ""
    created_by: str = ""

    def matches(self, account: str | None, target: str) -> bool:
        if self.account != ANY_ACCOUNT and self.account != account:
            return False
        if self.target is None:
            return True
        return target == self.target if self.exact else target.startswith(self.target)


class Silences:
    """The active silences; `clock` is injected so expiry is testable without waiting."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._silences: dict[str, Silence] = {}
        self._next = 1

    def add(
        self,
        account: str,
        duration: float,
        target: str | None = None,
        exact: bool = False,
        comment: str = "",
        created_by: str = "",
    ) -> Silence:
        if duration <= 0:
            raise ValueError(f"a silence needs a positive duration, got {duration}")
        now = self._clock()
        silence = Silence(
            f"s{self._next}", account, target, exact, now, now + duration, comment, created_by
        )
        self._next += 1
        self._silences[silence.id] = silence
        return silence

    def remove(self, silence_id: str) -> bool:
        """False when there is no such silence (already expired or removed)."""
        return self._silences.pop(silence_id, None) is not None

    def active(self) -> list[Silence]:
        """The silences still in force, soonest to end first; expired ones are dropped."""
        now = self._clock()
        for silence in [s for s in self._silences.values() if s.ends <= now]:
            del self._silences[silence.id]
        return sorted(self._silences.values(), key=lambda s: s.ends)

    def silenced(self, account: str | None, target: str) -> bool:
        return any(s.matches(account, target) for s in self.active())

    def export(self) -> dict[str, Any]:
        return {"next": self._next, "silences": [asdict(s) for s in self.active()]}

    def restore(self, doc: dict[str, Any]) -> None:
        """Take over exported silences; those that ended while we were down stay gone."""
        self._next = max(self._next, int(doc.get("next", 1)))
        for item in doc.get("silences", ()):
            silence = Silence(**item)
            self._silences[silence.id] = silence
        self.active()
