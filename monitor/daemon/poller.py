"""The REST half of one watched account: its ccxt client, its reads, their backoff.

Each account fails alone: its errors back it off (monitor/daemon/retry.py) without
delaying any other account. A successful read is installed into the account's state
(monitor/daemon/account.py), which evaluates and reports it; this module never looks at
figures. Every read's outcome is published on the bus (`Polled`): metrics count them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator

from monitor.aio import cancel_and_wait
from monitor.bus import EventBus, Polled
from monitor.config import AccountConfig, DaemonConfig
from monitor.daemon.account import AccountState
from monitor.daemon.retry import TRANSIENT, retry_delay
from monitor.domain import AccountSnapshot, TierTable
from monitor.events import Event, EventKind, TargetKind
from monitor.exchange.clients import create_client, secret_values
from monitor.exchange.errors import ErrorKind, ExchangeError, classify
from monitor.exchange.markets import SharedMarkets
from monitor.venues.registry import adapter_for

log = logging.getLogger(__name__)

LOUD_ERRORS = (ErrorKind.AUTH,)
"""Errors a person must fix, reported as events at once. Everything else is retried
quietly until it makes the account blind: the staleness watchdog reports that after
`account_stale_after`, with the last error, so one failed read never pages."""


class AccountPoller:
    """Reads one account over REST into its `state`."""

    def __init__(
        self,
        state: AccountState,
        settings: DaemonConfig,
        markets: SharedMarkets,
        bus: EventBus,
    ) -> None:
        self.state = state
        self.account: AccountConfig = state.account
        self.name = state.name
        self.settings = settings
        self.markets = markets
        self.bus = bus
        self.adapter = adapter_for(self.account.exchange)
        self.client = create_client(
            self.account,
            timeout_ms=int(settings.request_timeout * 1000),
            mixins=self.adapter.client_mixins,
        )
        self.adapter.configure(self.client)
        self.markets_key = SharedMarkets.key(
            self.account.exchange, self.account.rest_url, self.account.sandbox
        )
        self.tiers: dict[str, TierTable] = {}
        self.tiers_at = 0.0
        self.last_ok: float | None = None
        """Monotonic time of the last read (or stream update) known to be current."""
        self.failures = 0
        self.resume_at = 0.0
        self.last_error: ExchangeError | None = None
        # The scheduler and the user data stream both call poll(): the lock keeps reads
        # (and the stream's updates) in order, so an older reply can never overwrite a
        # newer snapshot.
        self._poll_lock = asyncio.Lock()
        self._poll_task: asyncio.Task[None] | None = None

    @contextlib.asynccontextmanager
    async def reading(self) -> AsyncIterator[None]:
        """Hold off reads meanwhile (a stream update applied between two reads)."""
        async with self._poll_lock:
            yield

    def expire_tiers(self) -> None:
        self.tiers_at = 0.0

    async def reload_markets(self) -> None:
        await self.markets.ensure(self.client, self.markets_key, reload=True)

    def _start_poll(self) -> None:
        if self._poll_lock.locked() or (self._poll_task and not self._poll_task.done()):
            log.debug("%s: a read is in flight; this poll is skipped", self.name)
            return
        self._poll_task = asyncio.create_task(self.poll(), name=f"poll {self.name}")

    def venue_back(self) -> None:
        """The venue's stream is live again after an outage: a read that failed for a
        transient reason is retried now rather than at the next scheduled poll. A rate
        limit's or refused key's wait still holds: a stream says nothing about those."""
        if self.last_error is None or self.last_error.kind not in TRANSIENT:
            return
        self.failures, self.resume_at = 0, 0.0
        self._start_poll()

    async def poll(self) -> None:
        """Read the account once; never raises (failures are reported, and retried as
        monitor/daemon/retry.py says).

        Never overlaps itself: a call made during a read waits and then reads again,
        because the read in flight may predate the change that prompted the call.
        """
        async with self._poll_lock:
            await self._poll_once()

    async def _poll_once(self) -> None:
        if time.monotonic() < self.resume_at:
            return
        fresh_tiers = time.monotonic() - self.tiers_at < self.settings.tiers_refresh
        read_started = time.time()
        try:
            async with asyncio.timeout(self.settings.request_timeout * 3):
                await self.markets.ensure(self.client, self.markets_key)
                snapshot = await self.adapter.fetch_snapshot(
                    self.client, self.name, self.tiers if fresh_tiers else None
                )
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self._failed(exc)
            return
        if not fresh_tiers:
            self.tiers_at = time.monotonic()
        self.tiers = dict(snapshot.tiers)
        self._succeeded(snapshot, read_started)

    def _failed(self, exc: BaseException) -> None:
        error = classify(
            ExchangeError(
                ErrorKind.NETWORK,
                f"no complete reply within {self.settings.request_timeout * 3:g} s "
                "(3 x request_timeout for the whole read)",
            )
            if isinstance(exc, TimeoutError)
            else exc,
            secret_values(self.account),
        )
        self.failures += 1
        retry_after = error.retry_after or self._retry_after()
        delay = retry_delay(error.kind, self.failures, self.settings.poll_interval, retry_after)
        self.resume_at = time.monotonic() + delay
        log.warning(
            "%s: %s (retry in %.0f s)",
            self.name,
            error,
            max(delay, self.settings.poll_interval),
        )
        if error.kind in LOUD_ERRORS and (
            self.last_error is None or self.last_error.kind is not error.kind
        ):
            self.bus.publish(
                Event(EventKind.ERROR, self.name, "account", TargetKind.ACCOUNT, message=str(error))
            )
        self.last_error = error
        self.bus.publish(Polled(self.name, self.account.exchange, error))

    def _retry_after(self) -> float | None:
        headers = getattr(self.client, "last_response_headers", None) or {}
        value = next((v for k, v in headers.items() if k.lower() == "retry-after"), None)
        try:
            return float(value) if value is not None else None
        except ValueError:
            return None

    def _succeeded(self, snapshot: AccountSnapshot, read_started: float | None = None) -> None:
        self.failures = 0
        self.resume_at = 0.0
        self.last_error = None
        self.last_ok = time.monotonic()
        self.state.install(snapshot, read_started)
        self.bus.publish(Polled(self.name, self.account.exchange, None))

    async def close(self) -> None:
        if self._poll_task is not None:
            await cancel_and_wait(self._poll_task)
        await self.client.close()
