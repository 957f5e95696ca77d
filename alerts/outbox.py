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
- Storage failure (disk full, I/O error, a locked, read-only or corrupt file): a page is
  never lost to it. The worker's queue lives in memory (SQLite is the copy that survives
  a restart), so a row that could not be stored is delivered from memory at once, with
  the same retries and expiry; a delivered or expired mark that could not be written is
  kept and written when the file heals, together with the rows held only in memory. The
  failure is paged once (`alerts.storage`) and its end said once.

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
import itertools
import logging
import random
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from alerts.notification import Notification
from alerts.notifiers.base import (
    Destination,
    PermanentFailure,
    RetryLater,
    notification_from_payload,
    notification_payload,
    plain_text,
)
from alerts.storage import StorageHealth
from alerts.store import STORAGE_ERRORS, OutboxRow, Store
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
    unstored: int = 0
    """Rows that could not be written to SQLite and were delivered from memory."""
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
        mend_interval: float = 5.0,
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
        self.mend_interval = mend_interval
        self.rng = rng
        self.stats = OutboxStats()
        self.storage = StorageHealth(store.path, clock)
        self._queues: dict[str, list[OutboxRow]] = {key: [] for key in self.destinations}
        """Pending rows per destination, in delivery order: the workers' source of truth
        while running. Rows with a negative id exist only here (their write failed)."""
        self._memory_ids = itertools.count(-1, -1)
        self._unsaved: dict[int, Callable[[], None]] = {}
        """Stored row id -> the write that closes it (delivered, expired, failed), kept
        while the file cannot be written, so a restart after it heals does not resend."""
        self._wake: dict[str, asyncio.Event] = {}
        self._workers: dict[str, asyncio.Task[None]] = {}
        self._mender: asyncio.Task[None] | None = None

    # -- producer side -----------------------------------------------------------------

    def enqueue(self, notification: Notification, *, state: Mapping[str, Any] | None = None) -> int:
        """Persist one row per interested destination, then wake their workers.

        Returns how many rows were new (0 if this notification was queued before). Safe
        to call from the event loop at any time, before `start()` and after `stop()`
        included: rows wait in SQLite for the next worker. `state` (kv key -> value) is
        committed in the same transaction as the rows. Never raises for a storage
        failure: the rows are then held in memory and delivered from there.
        """
        keys = [key for key, d in self.destinations.items() if d.wants(notification)]
        if not keys:
            log.warning(
                "notification %s (%s) has no destination", notification.id, notification.kind
            )
            for key, value in (state or {}).items():
                self._write("saving state", lambda k=key, v=value: self.store.kv_set(k, v))
            return 0
        payload = notification_payload(notification)
        try:
            rows = self.store.outbox_add(notification.id, payload, keys, self.clock(), state=state)
        except STORAGE_ERRORS as exc:
            self._storage_failed(f"notification {notification.id}", exc)
            rows = self._hold(notification.id, payload, keys)
        else:
            self._storage_ok()
        self._queue(rows)
        return len(rows)

    def _hold(
        self, notification_id: str, payload: dict[str, Any], keys: list[str]
    ) -> list[OutboxRow]:
        """Rows that exist only in memory; a notification already queued is not doubled."""
        queued = {(r.notification_id, r.destination) for q in self._queues.values() for r in q}
        now = self.clock()
        rows = [
            OutboxRow(next(self._memory_ids), notification_id, key, payload, now, 0, now)
            for key in keys
            if (notification_id, key) not in queued
        ]
        if rows:
            self.stats.unstored += len(rows)
            log.error(
                "NOT STORED %s notification %s for %s: delivering from memory. Text: %s",
                payload.get("level"),
                notification_id,
                payload.get("account") or "-",
                _one_line(str(payload.get("text", ""))),
            )
        return rows

    def _queue(self, rows: Iterable[OutboxRow]) -> None:
        for row in rows:
            self.stats.enqueued += 1
            self._queues.setdefault(row.destination, []).append(row)
            self._poke(row.destination)

    def _poke(self, key: str) -> None:
        if key in self._wake:
            self._wake[key].set()

    # -- storage failure -----------------------------------------------------------------

    def storage_failed(self, what: str, exc: BaseException) -> None:
        """A write to the store failed elsewhere (the plugin's state or history)."""
        self._storage_failed(what, exc)

    def storage_ok(self) -> None:
        """A write to the store worked elsewhere: write back what was held, if any."""
        self._storage_ok()

    def _storage_failed(self, what: str, exc: BaseException) -> None:
        page = self.storage.failed(what, exc)
        if page is not None:
            # Straight to memory: the file just refused a write, and this page is about it.
            keys = [k for k, d in self.destinations.items() if d.wants(page)]
            self._queue(self._hold(page.id, notification_payload(page), keys))

    def _storage_ok(self) -> None:
        """Some write worked; the failure is over once a probe with room to spare and
        the write-back of everything held work too (no flapping on a nearly full disk)."""
        if not self.storage.failing:
            return
        if not self._write("probing for room", self.store.probe) or not self._write_back():
            return
        page = self.storage.recovered()
        if page is not None:
            self.enqueue(page)

    def _write(self, what: str, write: Callable[[], object]) -> bool:
        """One best-effort write; a failure is reported, never raised into a worker."""
        try:
            write()
        except STORAGE_ERRORS as exc:
            self._storage_failed(what, exc)
            return False
        return True

    def _close(self, row: OutboxRow, what: str, write: Callable[[], object]) -> None:
        """Write a row's end; kept for later if the file refuses (a memory row has none)."""
        if row.id < 0:
            return
        if not self._write(what, write):
            self._unsaved[row.id] = write

    def _write_back(self) -> bool:
        """Write the held marks and the rows held only in memory; False while it fails."""
        try:
            for row_id, write in list(self._unsaved.items()):
                write()
                del self._unsaved[row_id]
            for key, queue in self._queues.items():
                for index, row in enumerate(queue):
                    if row.id >= 0:
                        continue
                    (stored,) = self.store.outbox_add(
                        row.notification_id, row.payload, [key], row.created
                    ) or (None,)
                    if stored is not None:
                        queue[index] = replace(stored, attempts=row.attempts,
                                               next_attempt=row.next_attempt)  # fmt: skip
        except STORAGE_ERRORS as exc:
            self._storage_failed("writing back held rows", exc)
            return False
        return True

    async def _mend(self) -> None:
        """While the store fails, try writing back what was held every `mend_interval`."""
        while True:
            await asyncio.sleep(self.mend_interval)
            if self.storage.failing:
                self._storage_ok()

    # -- lifecycle ---------------------------------------------------------------------

    async def start(self) -> None:
        """Prune old finished rows, close rows for vanished destinations, start workers."""
        try:
            pruned = self.store.outbox_prune(self.clock() - self.retention)
            stored = self.store.outbox_pending()
        except STORAGE_ERRORS as exc:
            self._storage_failed("reading the outbox", exc)
            pruned, stored = 0, []
        if pruned:
            log.debug("pruned %d finished outbox rows", pruned)
        for row in stored:
            if row.destination not in self.destinations:
                self.stats.failed += 1
                error = "destination no longer configured"
                self._close(
                    row,
                    "closing a row",
                    lambda r=row, e=error: self.store.outbox_failed(r.id, self.clock(), e),
                )
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
            queue = self._queues.setdefault(key, [])
            queue[:] = [r for r in stored if r.destination == key] + [r for r in queue if r.id < 0]
            if key in self._workers:
                continue
            self._wake[key] = asyncio.Event()
            self._wake[key].set()  # resume whatever a previous run left
            self._workers[key] = asyncio.create_task(self._work(key), name=f"outbox {key}")
        if self._mender is None:
            self._mender = asyncio.create_task(self._mend(), name="outbox mend")

    async def stop(self) -> None:
        """Cancel workers (an in-flight send is abandoned and retried next start); rows
        held in memory get a last chance to be written for the next start."""
        if self.storage.failing:
            self._storage_ok()
        workers, self._workers = list(self._workers.values()), {}
        if self._mender is not None:
            workers.append(self._mender)
            self._mender = None
        await cancel_and_wait(*workers)
        self._wake.clear()
        for destination in self.destinations.values():
            try:
                await destination.close()
            except Exception as exc:
                log.warning("closing %s: %s", destination.label, destination.redact(str(exc)))

    def pending(self) -> list[OutboxRow]:
        """Rows not yet delivered, expired or failed, stored or held in memory."""
        return [row for queue in self._queues.values() for row in queue]

    async def drain(self, timeout: float | None = None) -> bool:
        """Wait until no row is pending (delivered, expired or failed); False on timeout.

        Polls: it is for tests and for a graceful shutdown, never the hot path.
        """
        try:
            async with asyncio.timeout(timeout):
                while self.pending():
                    await asyncio.sleep(0.02)
        except TimeoutError:
            return False
        return True

    # -- worker ------------------------------------------------------------------------

    async def _work(self, key: str) -> None:
        """Run the destination's loop forever; an unexpected error pauses it, never ends it."""
        while True:
            try:
                await self._deliver_pending(key)
            except asyncio.CancelledError:
                raise
            except Exception:
                # A dead worker would silently stop all paging to this destination.
                log.exception("outbox worker for %s failed; resuming in 5s", key)
                await asyncio.sleep(5.0)

    async def _deliver_pending(self, key: str) -> None:
        destination = self.destinations[key]
        wake = self._wake[key]
        queue = self._queues[key]
        while True:
            if not queue:
                wake.clear()
                await wake.wait()
                continue
            row = queue[0]
            now = self.clock()
            if now >= row.created + self.expire_after:
                queue.pop(0)
                self._expire(destination, row, now)
                continue
            if row.next_attempt > now:
                # Sleep to the retry time or the expiry, whichever is first; an enqueue
                # in between must not shortcut the backoff, so `wake` is not awaited.
                await asyncio.sleep(min(row.next_attempt, row.created + self.expire_after) - now)
                continue
            await self._attempt(destination, queue, row)

    async def _attempt(
        self, destination: Destination, queue: list[OutboxRow], row: OutboxRow
    ) -> None:
        if row.id >= 0:
            self._write("counting an attempt", lambda: self.store.outbox_attempt(row.id))
        attempt = row.attempts + 1
        queue[0] = row = replace(row, attempts=attempt)
        try:
            notification = notification_from_payload(row.payload)
            await asyncio.wait_for(destination.send(notification), self.send_timeout)
        except RetryLater as exc:
            self._retry(destination, queue, row, str(exc), exc.after)
        except PermanentFailure as exc:
            self._fail(destination, queue.pop(0), destination.redact(str(exc)))
        except TimeoutError:
            self._retry(destination, queue, row, f"no answer in {self.send_timeout:g}s", None)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.exception(
                "%s: unexpected error delivering %s", destination.label, row.notification_id
            )
            self._retry(destination, queue, row, f"{type(exc).__name__}: {exc}", None)
        else:
            # No await between the send returning and this commit: the at-least-once
            # window is the request itself. The head is this row, though a write-back
            # may have stored it meanwhile (its id changed): close that one.
            row = queue.pop(0)
            at = self.clock()
            self._close(
                row, "marking a page delivered", lambda: self.store.outbox_delivered(row.id, at)
            )
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
        queue: list[OutboxRow],
        row: OutboxRow,
        error: str,
        after: float | None,
    ) -> None:
        error = destination.redact(error)
        delay = after if after is not None else self._backoff(row.attempts)
        next_attempt = self.clock() + delay
        queue[0] = row = replace(queue[0], next_attempt=next_attempt, last_error=error)
        if row.id >= 0:
            self._write(
                "scheduling a retry", lambda: self.store.outbox_retry(row.id, next_attempt, error)
            )
        self.stats.retried += 1
        log.warning(
            "%s: delivery of %s failed (attempt %d, retry in %.1fs): %s",
            destination.label,
            row.notification_id,
            row.attempts,
            delay,
            error,
        )

    def _backoff(self, attempt: int) -> float:
        return exponential_backoff(attempt, self.backoff_base, self.backoff_cap, self.rng)

    def _fail(self, destination: Destination, row: OutboxRow, error: str) -> None:
        at = self.clock()
        self._close(
            row, "closing a refused page", lambda: self.store.outbox_failed(row.id, at, error)
        )
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
        self._close(row, "expiring a page", lambda: self.store.outbox_expired(row.id, now))
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
