"""The vocabulary every mark-price feed shares: ticks, status, counters and the MarkFeed contract.

The daemon recomputes margin on every tick, so a feed's job is narrow: deliver marks fast,
say honestly when it cannot (status), and never take the process down. Everything here is
transport-agnostic; the websocket loop lives in `stream.py`, REST polling in `polling.py`.
"""

from __future__ import annotations

import asyncio
import logging
import random
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import ClassVar, NamedTuple

log = logging.getLogger(__name__)


class MarkTick(NamedTuple):
    """One mark price of one symbol, as the exchange pushed it.

    A named tuple, not a frozen dataclass: a frame builds one per held symbol, and the
    frozen `__init__` (one `object.__setattr__` per field) cost four times the tuple."""

    exchange: str  # ccxt id, e.g. "binanceusdm"
    symbol: str  # ccxt unified symbol, e.g. "BTC/USDT:USDT"
    price: float
    event_time: float | None  # exchange timestamp, seconds since epoch
    received: float  # time.monotonic() when the frame arrived (the event loop's clock)
    funding_rate: float | None = None
    next_funding_time: float | None = None  # seconds since epoch


class FeedStatus(StrEnum):
    """CONNECTING before the first mark, LIVE while marks flow, STALE when they stopped
    arriving on an open connection, DOWN when the connection failed or was closed."""

    CONNECTING = "connecting"
    LIVE = "live"
    STALE = "stale"
    DOWN = "down"


@dataclass(slots=True)
class FeedStats:
    """Counters for the status page; `reconnects` counts connection attempts after the first."""

    messages: int = 0
    ticks: int = 0
    reconnects: int = 0
    parse_errors: int = 0


TicksCallback = Callable[[list[MarkTick]], None]
StatusCallback = Callable[[FeedStatus, str], None]

#: Relative spread of the random jitter on every reconnect delay, so that many feeds cut
#: off together (a network blip) do not all hammer the exchange in the same instant.
JITTER = 0.2


class UnexpectedMessage(ValueError):
    """A well-formed frame the dialect does not know: counted as a parse error (like any
    exception a parser raises), so protocol drift shows in the stats instead of passing
    silently."""


def optional_float(value: object) -> float | None:
    """Exchanges send "" or null for figures that do not apply (funding on a delivery future)."""
    if value is None or value == "":
        return None
    return float(value)  # type: ignore[arg-type]


def optional_ms(value: object) -> float | None:
    """Milliseconds since epoch → seconds; 0, "" and null mean "none" on every exchange here."""
    number = optional_float(value)
    return number / 1000.0 if number else None


class MarkFeed(ABC):
    """A source of mark prices for a set of symbols on one exchange.

    `symbols` maps the exchange's market id (what the wire speaks) to the ccxt unified
    symbol (what the rest of the monitor speaks). `on_ticks` is called synchronously from
    the feed's own task with the ticks of one frame, already limited to those symbols;
    `on_status` on every status change. Both callbacks are guarded: an exception in them
    is logged and the feed carries on, because a bug downstream must not stop the prices.
    """

    kind: ClassVar[str] = "mark feed"
    """What the logs call it after `exchange_id`: a feed of another kind says so."""

    def __init__(
        self,
        exchange_id: str,
        symbols: Mapping[str, str],
        on_ticks: TicksCallback,
        on_status: StatusCallback,
        ws_origin: str | None = None,
        stale_after: float = 10.0,
        min_reconnect_delay: float = 1.0,
        max_reconnect_delay: float = 60.0,
    ) -> None:
        if stale_after <= 0:
            raise ValueError("stale_after must be positive")
        # A zero minimum would let a server that accepts and closes at once drive a
        # reconnect loop as fast as the network allows: exactly the websockets pitfall.
        if min_reconnect_delay <= 0:
            raise ValueError("min_reconnect_delay must be positive")
        if max_reconnect_delay < min_reconnect_delay:
            raise ValueError("max_reconnect_delay must be >= min_reconnect_delay")
        self.exchange_id = exchange_id
        self.ws_origin = ws_origin
        self.stale_after = stale_after
        self.min_reconnect_delay = min_reconnect_delay
        self.max_reconnect_delay = max_reconnect_delay
        self._on_ticks = on_ticks
        self._on_status = on_status
        self._symbols: dict[str, str] = self._normalize_symbols(symbols)
        self._status: FeedStatus | None = None
        self._last_data_at: float | None = None
        self._stats = FeedStats()
        self._failures = 0
        self._attempts = 0
        self._wake = asyncio.Event()

    # ------------------------------------------------------------------ public contract

    @abstractmethod
    async def run(self) -> None:
        """Deliver marks until cancelled; reconnects by itself and never returns otherwise."""

    def set_symbols(self, symbols: Mapping[str, str]) -> None:
        """Replace the symbol set; the running feed resubscribes (or reconnects) on its own."""
        new = self._normalize_symbols(symbols)
        if new == self._symbols:
            return
        self._symbols = new
        self._wake.set()

    @property
    def symbols(self) -> Mapping[str, str]:
        return dict(self._symbols)

    @property
    def status(self) -> FeedStatus:
        return self._status or FeedStatus.CONNECTING

    @property
    def last_message_at(self) -> float | None:
        """time.monotonic() of the last frame that carried a mark for a subscribed symbol.

        Acknowledgements and pongs do not count: a connection that answers pings but sends
        no prices is exactly the failure the staleness timer exists to catch.
        """
        return self._last_data_at

    @property
    def stats(self) -> FeedStats:
        return replace(self._stats)

    # ------------------------------------------------------------------ for subclasses

    def _normalize_symbols(self, symbols: Mapping[str, str]) -> dict[str, str]:
        """Hook: a dialect whose wire keys differ from ccxt market ids rewrites them here."""
        return dict(symbols)

    def _set_status(self, status: FeedStatus, reason: str, *, expected: bool = False) -> None:
        """Record and report a change; `expected` (we stopped it) is news, not a problem."""
        if status is self._status:
            return
        self._status = status
        trouble = status in (FeedStatus.STALE, FeedStatus.DOWN) and not expected
        level = logging.WARNING if trouble else logging.INFO
        log.log(level, "%s %s %s: %s", self.exchange_id, self.kind, status.value, reason)
        try:
            self._on_status(status, reason)
        except Exception:
            log.exception("%s %s: on_status callback failed", self.exchange_id, self.kind)

    def _emit(self, ticks: list[MarkTick]) -> None:
        """Hand one frame's ticks downstream and mark the feed live."""
        self._stats.ticks += len(ticks)
        self._last_data_at = ticks[-1].received
        self._set_status(FeedStatus.LIVE, "receiving mark prices")
        try:
            self._on_ticks(ticks)
        except Exception:
            log.exception("%s %s: on_ticks callback failed", self.exchange_id, self.kind)

    def _parse_error(self, exc: Exception, raw: object) -> None:
        """Count, and log the first few and then every hundredth: a server spewing garbage
        must show up in the log without flooding it."""
        self._stats.parse_errors += 1
        count = self._stats.parse_errors
        if count <= 10 or count % 100 == 0:
            excerpt = repr(raw)[:200]
            log.warning(
                "%s %s: unparsable frame #%d (%s: %s): %s",
                self.exchange_id,
                self.kind,
                count,
                type(exc).__name__,
                exc,
                excerpt,
            )

    def _next_delay(self) -> float:
        """Exponential backoff with jitter, never below the minimum nor above the maximum.

        `_failures` is reset only when a connection actually delivered marks, not when the
        handshake succeeds: that reset-on-handshake is what made websockets' own reconnect
        loop spin against a server that accepts and closes at once.
        """
        self._failures += 1
        base = self.min_reconnect_delay * 2.0 ** min(self._failures - 1, 30)
        delay = base * random.uniform(1.0 - JITTER, 1.0 + JITTER)
        return min(self.max_reconnect_delay, max(self.min_reconnect_delay, delay))

    async def _wait_wake(self, timeout: float | None) -> None:
        """Sleep until set_symbols() changes something, or until `timeout`.

        The caller clears `_wake` *before* looking at the state it depends on, so a change
        made between that look and this wait is not lost.
        """
        try:
            async with asyncio.timeout(timeout):
                await self._wake.wait()
        except TimeoutError:
            pass


class LoopingFeed(MarkFeed):
    """A feed with one source, worked in cycles (a connection, or one REST call).

    Holds what both transports share around the cycle: idle without symbols (no point
    connecting to watch nothing), and report DOWN "stopped" when cancelled.
    """

    async def run(self) -> None:
        self._set_status(FeedStatus.CONNECTING, "starting")
        try:
            while True:
                self._wake.clear()
                if not self._symbols:
                    self._set_status(FeedStatus.CONNECTING, "no symbols to watch")
                    await self._wait_wake(None)
                    continue
                await self._cycle()
        finally:
            self._set_status(FeedStatus.DOWN, "stopped", expected=True)

    @abstractmethod
    async def _cycle(self) -> None:
        """One connection or call, including the pause (backoff, interval) after it."""
