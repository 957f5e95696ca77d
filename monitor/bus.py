"""One event bus for the running daemon: synchronous, typed fan-out.

Everything the daemon has to say goes through here: level changes and the other events
people read (`Event`), and the daemon's own news (an account evaluated, a read done, an
account's symbols changed, a configuration reloaded). Whoever cares subscribes: the log
and audit sinks, metrics, the auto-deleverage controllers, the feed wiring, the live
view, the alerts plugin. Nobody hands anybody a callback slot to overwrite, so adding a
listener never silently unplugs another.

Delivery is synchronous, on the publisher's stack: the tick path pays a dict lookup and a
loop, and a subscriber that needs to do more (the alert pipeline, a controller) only
records the message and wakes its own task. A subscriber that raises is logged and
skipped; the others still receive the message, and the publisher never sees the error:
one broken listener must not stop monitoring.

A subscription can be narrowed to one account: messages carry their account (None for
what concerns none, a feed say), so 200 controllers cost one lookup per message, not 200
calls.

A burst (`with bus.burst:`, one mark frame's evaluation) delivers as ever, message by
message; a subscriber that buffers (the audit file) asks `flush_after` to flush, which
happens at once outside a burst and once at its end inside one: a crash frame's hundred
events cost one write to the disk, not a hundred, and are all written before the frame's
`Evaluated` news reaches the controllers.

`publish_all` hands out a batch (a frame's level changes) exactly as one `publish` per
message would, in order, each message to every subscriber before the next; it only looks
the subscribers up once per run of one kind, rather than per message.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, TypeVar

if TYPE_CHECKING:
    from monitor.config import Config
    from monitor.exchange.errors import ExchangeError

log = logging.getLogger(__name__)

REPEAT_LOG_PERIOD = 60.0
"""A subscriber failing on every tick is logged with its traceback once, then at most
once per this many seconds with a count: the log stays readable in a fast market."""


class Message(Protocol):
    """Anything published: it says which account it concerns (None: no single one)."""

    @property
    def account(self) -> str | None: ...


M = TypeVar("M", bound=Message)
Handler = Callable[[M], None]


@dataclass(frozen=True, slots=True)
class Evaluated:
    """An account's figures were evaluated and may call for the auto-deleverage
    controller: after every snapshot installed (a read, a stream update), and after a tick
    that left some target above OK."""

    account: str


@dataclass(frozen=True, slots=True)
class Polled:
    """A REST read of an account finished; `error` is None when it succeeded."""

    account: str
    exchange: str
    error: ExchangeError | None


@dataclass(frozen=True, slots=True)
class SymbolsChanged:
    """The symbols an account holds changed: its feed must follow."""

    account: str


@dataclass(frozen=True, slots=True)
class ConfigReloaded:
    """A new configuration is running (and a new daemon under it)."""

    config: Config

    @property
    def account(self) -> None:
        return None


class Subscription:
    """What `subscribe` returns: `cancel()` stops the deliveries (idempotent)."""

    __slots__ = ("_bus", "_handler", "_key")

    def __init__(self, bus: EventBus, kind: type, account: str | None, handler: Handler) -> None:
        self._bus, self._key, self._handler = bus, (kind, account), handler

    def cancel(self) -> None:
        self._bus._remove(*self._key, self._handler)


class _Failures:
    __slots__ = ("logged_at", "since")

    def __init__(self) -> None:
        self.logged_at = float("-inf")
        self.since = 0


class _Burst:
    """`EventBus.burst`: one object, entered without allocating; bursts nest."""

    __slots__ = ("_bus",)

    def __init__(self, bus: EventBus) -> None:
        self._bus = bus

    def __enter__(self) -> None:
        self._bus._bursts += 1

    def __exit__(self, *_exc: object) -> None:
        bus = self._bus
        bus._bursts -= 1
        if not bus._bursts and bus._flushes:
            bus._end_burst()


class EventBus:
    """Typed publish/subscribe; see the module doc."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._handlers: dict[type, dict[str | None, tuple[Handler, ...]]] = {}
        """kind -> account (None: every account) -> subscribers, in subscription order."""
        self._version = 0
        """Moved by every subscription and cancellation: `publish_all` looks its
        subscribers up again when it moved under it (a subscriber that cancelled hears
        nothing more, as with `publish`)."""
        self._failures: dict[Handler, _Failures] = {}
        self._clock = clock
        self.failed = 0
        """Deliveries that raised, since start."""
        self.burst = _Burst(self)
        """`with bus.burst:` defers the subscribers' flushes (`flush_after`) to its end."""
        self._bursts = 0
        self._flushes: dict[Callable[[], None], None] = {}
        """The flushes asked for in the current burst, in order, each once."""

    def subscribe(
        self, kind: type[M], handler: Callable[[M], None], *, account: str | None = None
    ) -> Subscription:
        """Deliver every message of exactly type `kind` published from now on to
        `handler` (only those about `account` when given), after the subscribers
        already there."""
        by_account = self._handlers.setdefault(kind, {})
        by_account[account] = (*by_account.get(account, ()), handler)
        self._version += 1
        return Subscription(self, kind, account, handler)

    def _remove(self, kind: type, account: str | None, handler: Handler) -> None:
        # A new tuple, never an edit in place: a publish under way keeps its own list.
        self._version += 1
        by_account = self._handlers.get(kind, {})
        handlers = list(by_account.get(account, ()))
        if handler in handlers:
            handlers.remove(handler)
        if handlers:
            by_account[account] = tuple(handlers)
        else:
            by_account.pop(account, None)

    def publish(self, message: Message) -> None:
        """Hand `message` to each of its subscribers in turn; never raises."""
        self.publish_all((message,))

    def publish_all(self, messages: Iterable[Message]) -> None:
        """`publish` each of `messages` in turn (never raises). A crash frame publishes
        hundreds of level changes: the subscribers of their kind are looked up once, and
        a message's account only where some subscriber is narrowed to one (with none,
        every message of the kind has the same subscribers)."""
        kind: type | None = None
        version = -1
        everyone: tuple[Handler, ...] = ()
        by_account: dict[str | None, tuple[Handler, ...]] = {}
        narrowed = False
        for message in messages:
            if type(message) is not kind or self._version != version:
                kind, version = type(message), self._version
                by_account = self._handlers.get(kind) or {}
                everyone = by_account.get(None, ())
                narrowed = len(by_account) > (None in by_account)
            handlers = everyone
            if narrowed:
                account = message.account
                if account is not None and (mine := by_account.get(account)):
                    handlers += mine
            for handler in handlers:
                try:
                    handler(message)
                except Exception:
                    self._failed(handler, message)

    def listens(self, kind: type) -> bool:
        """Whether anyone (for any account) hears messages of `kind`: a publisher of
        many (a frame's `Evaluated` news, one per account above OK) skips them all when
        nobody does."""
        return bool(self._handlers.get(kind))

    def flush_after(self, flush: Callable[[], None]) -> None:
        """For a subscriber that buffers what it was handed: `flush` runs now, or, inside
        a burst, once when it ends."""
        if self._bursts:
            self._flushes[flush] = None
        else:
            flush()

    def _end_burst(self) -> None:
        flushes = list(self._flushes)
        self._flushes.clear()
        for flush in flushes:
            try:
                flush()
            except Exception:
                self._failed(flush, None)

    def _failed(self, handler: Handler, message: Message | None) -> None:
        self.failed += 1
        failures = self._failures.setdefault(handler, _Failures())
        now = self._clock()
        if now - failures.logged_at < REPEAT_LOG_PERIOD:
            failures.since += 1
            return
        again = f" ({failures.since} more failures since last logged)" if failures.since else ""
        log.exception(
            "event subscriber %s failed on %s%s; the others received it",
            getattr(handler, "__qualname__", repr(handler)),
            type(message).__name__ if message is not None else "its flush",
            again,
        )
        failures.logged_at, failures.since = now, 0
