"""The pages a drill would have sent: the real alert pipeline, delivering into a list.

`marginwatch drill` (monitor/drill.py) finds this through the `marginwatch.drill`
entry point, so `monitor` never imports `alerts`. Every rule, group window, `for` and
repeat interval of the user's `alerts` section applies, on the scenario's simulated
clock; only delivery is replaced: no notifier is built, nothing leaves the process.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field

from alerts.notification import Notification
from alerts.pipeline import AlertPipeline
from alerts.view import HostView
from monitor.daemon.plugins import DaemonState
from monitor.events import Event


@dataclass(slots=True)
class PageCounter:
    """Counts the notifications the user's alert config makes of a drill's events."""

    pipeline: AlertPipeline
    sent: list[Notification] = field(default_factory=list)
    _task: asyncio.Task[None] | None = None

    def emit(self, event: Event) -> None:
        self.pipeline.emit(event)

    def start(self) -> None:
        self._task = asyncio.create_task(self.pipeline.run(), name="drill-pages")

    async def stop(self, now: float) -> None:
        """One last tick at `now`, so a group still waiting is counted, then stop."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        self.pipeline.tick(now)

    def pages(self, account: str) -> int:
        """Messages that concern `account` (its own, and blind feeds pricing it)."""
        return sum(1 for n in self.sent if account in n.accounts)


def page_counter(daemon: DaemonState, clock: Callable[[], float]) -> PageCounter:
    """The `marginwatch.drill` entry point: a counter over `daemon` on `clock`."""
    sent: list[Notification] = []
    config = daemon.config
    view = HostView(daemon)
    return PageCounter(AlertPipeline(lambda: config, view, clock, sent.append), sent)
