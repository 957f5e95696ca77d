"""The daemon's verdict on itself, for whoever asks from outside: /healthz and the heartbeat.

Healthy means what the systemd watchdog is fed on (monitor/daemon/runner.py): the event loop
runs and the data is fresh (the first evaluation done, no blind account, no blind feed).
The loop reports every few seconds; a reader in another thread (the metrics server) also
checks that the last report is recent, so a wedged loop, which can report nothing, reads
as unhealthy instead of as its last good word.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

__all__ = ["Health", "HealthReport"]


@dataclass(frozen=True, slots=True)
class HealthReport:
    healthy: bool
    summary: str
    at: float
    """Monotonic seconds."""


class Health:
    """Written by the event loop (`report`), read from any thread (`verdict`).

    One attribute holds an immutable report, so a reader never sees half of an update.
    """

    def __init__(self, max_age: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.max_age = max_age
        self.clock = clock
        self._last: HealthReport | None = None

    def report(self, healthy: bool, summary: str) -> None:
        self._last = HealthReport(healthy, summary, self.clock())

    def verdict(self) -> tuple[bool, dict[str, Any]]:
        """(healthy, a short JSON-able body saying why)."""
        last = self._last
        if last is None:
            return False, {"status": "starting", "summary": "no evaluation yet"}
        age = self.clock() - last.at
        if age > self.max_age:
            body = {"status": "stalled", "summary": last.summary, "age_seconds": round(age, 1)}
            return False, body
        status = "ok" if last.healthy else "unhealthy"
        return last.healthy, {"status": status, "summary": last.summary,
                              "age_seconds": round(age, 1)}  # fmt: skip
