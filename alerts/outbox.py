"""Durable, ordered, per-destination delivery of notifications.

Why an outbox: the monitor must never wait for Telegram, and a page decided during an
outage (or just before a crash) must still arrive once the way is clear. So `enqueue`
only writes rows to SQLite (one per destination, committed before anything is sent)
and wakes the destination's worker; the worker delivers rows in order, one at a time.

Guarantees and their limits:
- Ordered per destination: row n+1 is not attempted before row n is delivered, expired
  or failed permanently (head-of-line blocking is the point: "resolved" must not
  overtake "critical").
- Isolated between destinations: one worker per destination (per Telegram chat, per
  webhook), so a 429 on one chat or a dead webhook never delays another.
- Retries: exponential backoff with jitter (`backoff_base * 2**(attempt-1)`, capped,
  scaled by a random 0.5-1.0 so a fleet of chats does not retry in lockstep); a
  `RetryLater(after=N)` (Telegram's retry_after, a Retry-After header) is honoured
  exactly instead.
- Expiry: a row older than `expire_after` is marked expired and logged at ERROR with
  its text, never dropped silently; a page that old would mislead more than inform.
- Restart: undelivered rows are resumed by `start()`; rows for a destination no longer
  configured are closed as failed, loudly.
- Idempotent enqueue: (notification id, destination) is unique, so the pipeline
  re-emitting a notification after a crash does not queue it twice.

At-least-once window: Telegram has no idempotency key, so a message can be repeated
when the process dies after Telegram accepted it but before `delivered_at` is
committed, or when a request times out after Telegram acted on it. The window is kept
to the in-flight request itself: the row is marked delivered synchronously right
after the send returns (no await in between), and multi-part messages remember the
parts already sent so a retry resumes mid-message. A duplicate page is the accepted
failure mode; a lost one is not.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from alerts.notification import Notification
from alerts.notifiers.base import (
    Destination,
    PermanentFailure,
    RetryLater,
    notification_from_payload,
    notification_payload,
    plain_text,
)
from alerts.store import OutboxRow, Store
from monitor.aio import cancel_and_wait
from monitor.backoff import exponential_backoff

__all__ = ["Outbox", "OutboxStats"]

log = logging.getLogger(__name__)


@dataclass
class OutboxStats:
    """Counters since start, for metrics and tests."""

    enqueued: int = 0
    delivered: int = 0
    retried: int = 0
    expired: int = 0
    failed: int = 0
    by_destination: dict[str, int] = field(default_factory=dict)


class Outbox:
    """Owns one worker task per destination; `enqueue` is synchronous and cheap."""

    def __init__(
        self,
        store: Store,
        notifiers: Iterable[Destination],
        expire_after: float,
        clock: Callable[[], float] = time.time,
        *,
        backoff_base: float = 1.0,
        backoff_cap: float = 60.0,
        send_timeout: float = 30.0,
        retention: float = 7 * 86400.0,
        rng: Callable[[], float] = random.random,
    ) -> None:
        self.store = store
        self.destinations = {d.key: d for d in notifiers}
        self.expire_after = expire_after
        self.clock = clock
        self.backoff_base = backoff_base
        self.backoff_cap = backoff_cap
        self.send_timeout = send_timeout
        self.retention = retention
        self.rng = rng
        self.stats = OutboxStats()
        self._wake: dict[str, asyncio.Event] = {}
        self._workers: dict[str, asyncio.Task[None]] = {}

    # -- producer side -----------------------------------------------------------------

    def enqueue(self, notification: Notification) -> int:
        """Persist one row per interested destination, then wake their workers.

        Returns how many rows were new (0 if this notification was queued before). Safe
        to call from the event loop at any time, before `start()` and after `stop()`
        included: rows wait in SQLite for the next worker.
        """
        keys = [key for key, d in self.destinations.items() if d.wants(notification)]
        if not keys:
            log.warning(
                "notification %s (%s) has no destination", notification.id, notification.kind
            )
            return 0
        new = self.store.outbox_add(
            notification.id, notification_payload(notification), keys, self.clock()
        )
        self.stats.enqueued += len(new)
        for key in keys:
            self._poke(key)
        return len(new)

    def _poke(self, key: str) -> None:
        if key in self._wake:
            self._wake[key].set()

    # -- lifecycle ---------------------------------------------------------------------

    async def start(self) -> None:
        """Prune old finished rows, close rows for vanished destinations, start workers."""
        pruned = self.store.outbox_prune(self.clock() - self.retention)
        if pruned:
            log.debug("pruned %d finished outbox rows", pruned)
        for row in self.store.outbox_pending():
            if row.destination not in self.destinations:
                self.stats.failed += 1
                self.store.outbox_failed(row.id, self.clock(), "destination no longer configured")
                log.error(
                    "UNDELIVERED %s notification %s for %s: its destination %s is no longer "
                    "configured: %s",
                    row.payload.get("level"),
                    row.notification_id,
                    row.payload.get("account") or "-",
                    row.destination,
                    _one_line(str(row.payload.get("text", ""))),
                )
        for key in self.destinations:
            if key in self._workers:
                continue
            self._wake[key] = asyncio.Event()
            self._wake[key].set()  # resume whatever a previous run left
            self._workers[key] = asyncio.create_task(self._work(key), name=f"outbox {key}")

    async def stop(self) -> None:
        """Cancel workers (an in-flight send is abandoned and retried next start)."""
        workers, self._workers = list(self._workers.values()), {}
        await cancel_and_wait(*workers)
        self._wake.clear()
        for destination in self.destinations.values():
            try:
                await destination.close()
            except Exception as exc:
                log.warning("closing %s: %s", destination.label, destination.redact(str(exc)))

    async def drain(self, timeout: float | None = None) -> bool:
        """Wait until no row is pending (delivered, expired or failed); False on timeout.

        Polls the store: it is for tests and for a graceful shutdown, never the hot path.
        """
        try:
            async with asyncio.timeout(timeout):
                while self.store.outbox_pending():
                    await asyncio.sleep(0.02)
        except TimeoutError:
            return False
        return True

    # -- worker ------------------------------------------------------------------------

    async def _work(self, key: str) -> None:
        """Run the destination's loop forever; a failing store pauses it, never ends it."""
        while True:
            try:
                await self._deliver_pending(key)
            except asyncio.CancelledError:
                raise
            except Exception:
                # sqlite3.OperationalError (disk full, locked file) and the like: a dead
                # worker would silently stop all paging to this destination.
                log.exception("outbox worker for %s failed; resuming in 5s", key)
                await asyncio.sleep(5.0)

    async def _deliver_pending(self, key: str) -> None:
        destination = self.destinations[key]
        wake = self._wake[key]
        while True:
            rows = self.store.outbox_pending(key)
            if not rows:
                wake.clear()
                await wake.wait()
                continue
            row = rows[0]
            now = self.clock()
            if now >= row.created + self.expire_after:
                self._expire(destination, row, now)
                continue
            if row.next_attempt > now:
                # Sleep to the retry time or the expiry, whichever is first; an enqueue
                # in between must not shortcut the backoff, so `wake` is not awaited.
                await asyncio.sleep(min(row.next_attempt, row.created + self.expire_after) - now)
                continue
            await self._attempt(destination, row)

    async def _attempt(self, destination: Destination, row: OutboxRow) -> None:
        self.store.outbox_attempt(row.id)
        attempt = row.attempts + 1
        try:
            notification = notification_from_payload(row.payload)
            await asyncio.wait_for(destination.send(notification), self.send_timeout)
        except RetryLater as exc:
            self._retry(destination, row, attempt, str(exc), exc.after)
        except PermanentFailure as exc:
            self._fail(destination, row, destination.redact(str(exc)))
        except TimeoutError:
            self._retry(destination, row, attempt, f"no answer in {self.send_timeout:g}s", None)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.exception(
                "%s: unexpected error delivering %s", destination.label, row.notification_id
            )
            self._retry(destination, row, attempt, f"{type(exc).__name__}: {exc}", None)
        else:
            # No await between the send returning and this commit: the at-least-once
            # window is the request itself.
            self.store.outbox_delivered(row.id, self.clock())
            self.stats.delivered += 1
            self.stats.by_destination[destination.key] = (
                self.stats.by_destination.get(destination.key, 0) + 1
            )
            log.info(
                "delivered %s %s to %s%s",
                row.payload.get("kind"),
                row.notification_id,
                destination.label,
                f" after {attempt} attempts" if attempt > 1 else "",
            )

    def _retry(
        self,
        destination: Destination,
        row: OutboxRow,
        attempt: int,
        error: str,
        after: float | None,
    ) -> None:
        error = destination.redact(error)
        delay = after if after is not None else self._backoff(attempt)
        self.store.outbox_retry(row.id, self.clock() + delay, error)
        self.stats.retried += 1
        log.warning(
            "%s: delivery of %s failed (attempt %d, retry in %.1fs): %s",
            destination.label,
            row.notification_id,
            attempt,
            delay,
            error,
        )

    def _backoff(self, attempt: int) -> float:
        return exponential_backoff(attempt, self.backoff_base, self.backoff_cap, self.rng)

    def _fail(self, destination: Destination, row: OutboxRow, error: str) -> None:
        self.store.outbox_failed(row.id, self.clock(), error)
        self.stats.failed += 1
        log.error(
            "UNDELIVERED %s notification %s for %s to %s, permanently refused: %s. Text: %s",
            row.payload.get("level"),
            row.notification_id,
            row.payload.get("account") or "-",
            destination.label,
            error,
            _one_line(_row_text(row)),
        )

    def _expire(self, destination: Destination, row: OutboxRow, now: float) -> None:
        self.store.outbox_expired(row.id, now)
        self.stats.expired += 1
        log.error(
            "EXPIRED undelivered %s notification %s for %s to %s: %d attempts over %.0fs, "
            "last error: %s. Text: %s",
            row.payload.get("level"),
            row.notification_id,
            row.payload.get("account") or "-",
            destination.label,
            row.attempts,
            now - row.created,
            row.last_error or "none",
            _one_line(_row_text(row)),
        )


def _row_text(row: OutboxRow) -> str:
    try:
        return plain_text(notification_from_payload(row.payload))
    except (TypeError, KeyError):
        return str(row.payload.get("text", ""))


def _one_line(text: str) -> str:
    return " | ".join(line.strip() for line in text.splitlines() if line.strip())
