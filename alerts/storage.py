"""Whether the alert store can be written, said once when it fails and once when it heals.

Why a page about our own disk: a full disk or a broken SQLite file must never cost a page
(the outbox then delivers from memory), but it does remove the safety net: a restart
while it lasts loses whatever memory held, and the pipeline's memory of what it already
said is not saved either. The trader must hear that once, not once per failed write, and
must hear when it is over. Every failed write is logged (ERROR when the failure starts,
WARNING while it lasts, never INFO: the audit found these lost among routine lines).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from pathlib import Path

from alerts.messages import ICONS
from alerts.notification import Notification
from monitor.engine.levels import Level

__all__ = ["StorageHealth"]

log = logging.getLogger(__name__)

TARGET = "storage"
"""The notification target of storage pages (they concern no account)."""
RULE = "storage"
REPEAT_WARNING = 60.0
"""While a failure lasts, each kind of failed write is logged at most this often."""


class StorageHealth:
    """Tracks failing/healthy; `failed` and `recovered` return the page to send, if any."""

    def __init__(self, path: Path, clock: Callable[[], float]) -> None:
        self.path = path
        self.clock = clock
        self.failing_since: float | None = None
        self.error: str | None = None
        self.failures = 0
        """Failed writes in the current failure (for the recovery message and metrics)."""
        self._warned: dict[str, float] = {}

    @property
    def failing(self) -> bool:
        return self.failing_since is not None

    def failed(self, what: str, exc: BaseException) -> Notification | None:
        """Record one failed write of `what`; the page for the first one of a failure."""
        error = describe(exc)
        self.failures += 1
        now = self.clock()
        if self.failing_since is not None:
            if now - self._warned.get(what, -REPEAT_WARNING) >= REPEAT_WARNING:
                self._warned[what] = now
                log.warning("still cannot write %s (%s): %s", self.path, what, error)
            return None
        self.failing_since, self.error, self._warned = now, error, {what: now}
        log.error(
            "cannot write %s (%s): %s. Pages are delivered from memory until it can be "
            "written again; a restart before then loses the undelivered ones",
            self.path,
            what,
            error,
        )
        text = (
            f"{ICONS[Level.CRITICAL]} marginwatch · STORAGE FAILING\n\n"
            f"Cannot write {self.path}: {error}\n"
            "Monitoring continues and pages are sent from memory, but a restart now would "
            "lose the undelivered ones and re-announce what was said. Free the disk or "
            "fix the file."
        )
        return self._notification(Level.CRITICAL, text)

    def recovered(self) -> Notification | None:
        """A write worked (and everything held back was written): the page saying so."""
        if self.failing_since is None:
            return None
        lasted = self.clock() - self.failing_since
        log.warning(
            "%s can be written again after %.0fs (%d failed writes)",
            self.path,
            lasted,
            self.failures,
        )
        text = (
            f"{ICONS[Level.OK]} marginwatch · storage OK\n\n"
            f"{self.path} can be written again after {lasted:.0f}s of failure "
            f"({self.error}). Pages are durable again."
        )
        self.failing_since, self.error, self.failures, self._warned = None, None, 0, {}
        return self._notification(Level.OK, text)

    def _notification(self, level: Level, text: str) -> Notification:
        now = self.clock()
        kind = "resolved" if level is Level.OK else "alert"
        material = f"storage\x1f{kind}\x1f{self.path}\x1f{now!r}"
        identity = hashlib.sha256(material.encode()).hexdigest()[:20]
        item = (TARGET, RULE, level, Level.CRITICAL if level is Level.OK else "")
        return Notification(identity, None, (), level, text, now, kind, (TARGET,), (item,))


def describe(exc: BaseException) -> str:
    """`OperationalError: database or disk is full`: the class says which layer refused."""
    return f"{type(exc).__name__}: {exc}"
