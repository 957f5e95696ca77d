"""When an account's REST read runs, and what it may spend of its host's request budget.

Every read goes through here, scheduled or asked for by the user data stream:
- it waits for its host's budget (monitor/exchange/budget.py) with the weight the
  adapter expects it to cost, and feeds back what the venue's reply headers say;
- a scheduled read is skipped while the account's user data stream keeps it current
  (live, and synced since it connected), except every `reconcile_interval`: the stream
  carries every change, REST only reconciles. The first reconciliation falls at a random
  point of the interval, so accounts whose streams came up together (a restart) do not
  reconcile together for ever: 200 accounts spread 2,000 weight over two minutes instead
  of sending it in one. Auto-deleverage is unaffected: before it
  acts, its controller reads the account afresh whenever the data is older than
  `actions.max_data_age` (monitor/actions/controller.py).
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from typing import TYPE_CHECKING

from monitor.aio import cancel_and_wait
from monitor.exchange.budget import HostBudget
from monitor.exchange.errors import ErrorKind
from monitor.feeds.base import FeedStatus

log = logging.getLogger(__name__)

if TYPE_CHECKING:
    from monitor.daemon.poller import AccountPoller
    from monitor.venues.binance.userstream import BinanceUserStream


class RestCadence:
    """The REST reads of one account."""

    def __init__(
        self,
        poller: AccountPoller,
        budget: HostBudget | None,
        reconcile_interval: float,
        stream: BinanceUserStream | None = None,
    ) -> None:
        self.poller = poller
        self.budget = budget
        self.reconcile_interval = reconcile_interval
        self.stream = stream
        self.last_read: float | None = None
        self._born = time.monotonic()
        self._reconcile_at: float | None = None
        """When the next reconciliation is due; None while the stream does not keep the
        account current (every scheduled read runs then)."""
        self.skipped = 0
        """Scheduled reads skipped because the stream kept the account current."""
        self.waiting_for: str | None = None
        """The host whose request budget a read is waiting for right now, if any."""
        self._run: asyncio.Task[None] | None = None
        if stream is not None:
            stream.read = self.read

    @property
    def reconciling_only(self) -> bool:
        """Whether the stream alone keeps the account current, so REST only reconciles."""
        return self.stream is not None and self.stream.current

    async def start_scheduled(self) -> None:
        """The scheduler's entry (a coroutine, so the scheduler runs it on the loop, not in
        a thread): start this run unless the last one is still going, and return. The
        scheduler never waits on a read, so a slow one (a timeout, or the budget's wait)
        never makes it skip runs and warn; the run in flight is the retry."""
        if self._run is not None and not self._run.done():
            log.debug("%s: a read is in flight; this poll is skipped", self.poller.name)
            return
        self._run = asyncio.create_task(self.scheduled(), name=f"poll {self.poller.name}")

    async def stop(self) -> None:
        """Cancel the run in flight (a read, or its wait for the budget)."""
        if self._run is not None:
            await cancel_and_wait(self._run)

    async def scheduled(self) -> None:
        """The scheduler's job: read, unless the stream made this read unnecessary (it
        keeps the account current, or its syncing read is already queued), or will soon:
        for one `poll_interval` after start the first read waits for the stream's first
        connection, because a read begun before it connects cannot sync it and would be
        made twice (at 200 accounts, 2,000 weight of every restart)."""
        now = time.monotonic()
        stream = self.stream
        if stream is not None and (
            stream.syncing
            or (
                stream.status is FeedStatus.CONNECTING
                and now - self._born < self.poller.settings.poll_interval
            )
        ):
            self.skipped += 1
            return
        if not self.reconciling_only:
            self._reconcile_at = None
        elif self._reconcile_at is None:
            self._reconcile_at = now + random.uniform(0.0, self.reconcile_interval)
        # the job runs every poll_interval: the run nearest the deadline takes it
        early = self.poller.settings.poll_interval / 2
        if self._reconcile_at is not None and now + early < self._reconcile_at:
            self.skipped += 1
            return
        if self._reconcile_at is not None:
            self._reconcile_at = now + self.reconcile_interval
        await self.read()

    async def read(self) -> None:
        """One read of the account, within its host's budget."""
        poller, budget = self.poller, self.budget
        if budget is not None:
            self.waiting_for = budget.host
            try:
                await budget.acquire(poller.name, self._weight())
            finally:
                self.waiting_for = None
        error_before = poller.last_error
        await poller.poll()
        self.last_read = time.monotonic()
        if budget is None:
            return
        headers = getattr(poller.client, "last_response_headers", None)
        budget.observe(poller.name, headers)
        error = poller.last_error
        if error is not None and error is not error_before and error.kind is ErrorKind.RATE_LIMIT:
            budget.refused(_retry_after(headers))

    def _weight(self) -> int:
        poller = self.poller
        tiers_due = time.monotonic() - poller.tiers_at >= poller.settings.tiers_refresh
        return poller.adapter.poll_weight(
            tiers_due=tiers_due, markets_loaded=poller.client.markets is not None
        )


def _retry_after(headers: dict[str, str] | None) -> float | None:
    value = next((v for k, v in (headers or {}).items() if k.lower() == "retry-after"), None)
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None
