"""One request-weight budget per venue host, shared by every account that reads from it.

Binance counts request weight per IP, not per account: 2,400 a minute on USD-M, in fixed
one-minute windows, reported on every reply as `X-MBX-USED-WEIGHT-1M`; past it a 429, and
an IP that keeps sending after a 429 is banned (418), which blinds every account on the
server at once. So the accounts on one host draw from one budget: a read is admitted
while the window's weight (the larger of what we spent and what the venue reports, which
includes any other program on the same IP) plus the read's own stays within `share` of
the limit; otherwise it waits for the next window. Waiting is said (a log line per
window and a counter), never silent. A 429 or 418 holds every account on the host until
its `Retry-After`, so the ban never grows.

Bybit (v5) limits per UID and endpoint rather than per IP, and reports the requests left
in `X-Bapi-Limit-Status` with the reset time in `X-Bapi-Limit-Reset-Timestamp`: an
account down to its last request waits for the reset, alone.

Venues without such figures (OKX, Hyperliquid, ...) get no budget: nothing is read or
held for them. Which venue counts what is declared by each venue (its `RequestLimit` in
the venue registry, monitor/venues/registry.py); this module only keeps the accounts.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

log = logging.getLogger(__name__)

DEFAULT_SHARE = 0.8
"""Of the venue's limit: what is left is for other programs on the IP and for orders."""


@dataclass(frozen=True, slots=True)
class WeightLimit:
    """A venue's per-IP request-weight limit and the reply header that reports its use."""

    header: str
    per_window: int
    window_s: float


@dataclass(frozen=True, slots=True)
class AccountAllowance:
    """A venue's per-account (UID) allowance: the requests left, and when they reset (ms
    since the epoch), reported on every reply."""

    left_header: str
    reset_header: str


RequestLimit = WeightLimit | AccountAllowance


def _header(headers: Mapping[str, str] | None, name: str) -> str | None:
    if not headers:
        return None
    return next((v for k, v in headers.items() if k.lower() == name), None)


def _number(text: str | None) -> float | None:
    try:
        return float(text) if text is not None else None
    except ValueError:
        return None


class HostBudget:
    """The budget of one venue host; `clock` is wall time (Binance's windows are the
    clock's minutes), `sleep` is injectable for tests."""

    def __init__(
        self,
        host: str,
        limit: WeightLimit | None,
        share: float = DEFAULT_SHARE,
        *,
        allowance: AccountAllowance | None = None,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.host = host
        self.limit = limit
        self.allowance = allowance
        self.cap = int(limit.per_window * share) if limit else None
        self._clock = clock
        self._sleep = sleep
        self._window = -1
        self._spent = 0
        self._reported = 0
        self._held_until = 0.0
        self._account_holds: dict[str, float] = {}
        self._order = asyncio.Lock()
        self._said_in = -1
        self.waits = 0
        """Reads that had to wait for the budget (a metric: non-zero means slowed)."""
        self.waited_s = 0.0
        self.refusals = 0
        """429s and 418s the venue sent anyway (another program on the IP, or a bug)."""

    # --- accounting ---------------------------------------------------------------

    def _roll(self, now: float) -> int:
        if self.limit is None:
            return 0
        window = math.floor(now / self.limit.window_s)
        if window != self._window:
            self._window, self._spent, self._reported = window, 0, 0
        return window

    @property
    def used(self) -> int:
        """The current window's weight as best known: ours, or the venue's if higher."""
        self._roll(self._clock())
        return max(self._spent, self._reported)

    def observe(self, account: str, headers: Mapping[str, str] | None) -> None:
        """Learn from a reply's headers: the IP's used weight, or the UID's allowance."""
        now = self._clock()
        if self.limit is not None:
            used = _number(_header(headers, self.limit.header))
            if used is not None:
                self._roll(now)
                self._reported = max(self._reported, int(used))
        if self.allowance is None:
            return
        left = _number(_header(headers, self.allowance.left_header))
        reset_ms = _number(_header(headers, self.allowance.reset_header))
        if left is not None and left <= 1 and reset_ms is not None:
            self._account_holds[account] = reset_ms / 1000.0
            reset = time.strftime("%H:%M:%S", time.gmtime(reset_ms / 1000))
            log.warning(
                "%s: %s has %d request(s) left until %s UTC: its reads wait",
                self.host, account, int(left), reset,
            )  # fmt: skip

    def refused(self, retry_after: float | None) -> None:
        """The venue answered 429 or 418: every account on the host holds until it says."""
        self.refusals += 1
        now = self._clock()
        if retry_after is None and self.limit is not None:  # to the end of the window
            retry_after = (math.floor(now / self.limit.window_s) + 1) * self.limit.window_s - now
        self._held_until = max(self._held_until, now + (retry_after or 60.0))
        log.warning(
            "%s: the venue refused a request (rate limit): every account on it holds %.0f s",
            self.host, self._held_until - now,
        )  # fmt: skip

    # --- admission ----------------------------------------------------------------

    async def acquire(self, account: str, weight: int) -> float:
        """Wait until a read of `weight` fits the budget, then count it; returns the wait."""
        started = self._clock()
        # an account's own hold (its allowance spent) is waited out alone, before queueing
        while (own := self._account_holds.get(account, 0.0) - self._clock()) > 0:
            await self._sleep(own)
        async with self._order:  # first come, first served: no account starves
            while (delay := self._delay(weight)) > 0:
                self._say(delay)
                await self._sleep(delay)
            self._spent += weight
        waited = self._clock() - started
        if waited > 0:
            self.waits += 1
            self.waited_s += waited
        return waited

    def _delay(self, weight: int) -> float:
        now = self._clock()
        holds = [self._held_until]
        if self.limit is not None and self.cap is not None:
            window = self._roll(now)
            if max(self._spent, self._reported) + weight > self.cap and (
                self._spent or self._reported
            ):  # an empty window admits any single read
                holds.append((window + 1) * self.limit.window_s)
        return max(0.0, max(holds) - now)

    def _say(self, delay: float) -> None:
        """Once per window: what is slowing reads, the venue's hold (a 429 or 418 it sent)
        or our own share of its limit; the two call for different fixes."""
        window = self._window
        if window == self._said_in:
            return
        self._said_in = window
        if self._held_until > self._clock() or not (self.limit and self.cap):
            reason = "the venue asked every account on it to hold"
        else:
            share = f"{self.cap:,} of {self.limit.per_window:,} a window"
            reason = f"request weight budget reached ({share})"
        log.warning("%s: %s: reads slowed, the next waits %.1f s", self.host, reason, delay)


class Budgets:
    """The budgets of a process, one per (exchange, host): accounts on the same host
    share one, whichever account config they come from."""

    def __init__(self, share: float = DEFAULT_SHARE) -> None:
        self.share = share
        self._by_host: dict[tuple[str, str], HostBudget] = {}

    def for_account(
        self, exchange: str, api_url: str | None, limit: RequestLimit | None
    ) -> HostBudget | None:
        """The budget of the host an account reads from, under its venue's `limit`; None
        for venues that count nothing."""
        if limit is None:
            return None
        host = urlsplit(api_url).netloc if api_url else f"{exchange} (production)"
        key = (exchange, host)
        budget = self._by_host.get(key)
        if budget is None:
            weight = limit if isinstance(limit, WeightLimit) else None
            allowance = limit if isinstance(limit, AccountAllowance) else None
            budget = self._by_host[key] = HostBudget(
                f"{exchange} {host}", weight, self.share, allowance=allowance
            )
        return budget

    def all(self) -> list[HostBudget]:
        return list(self._by_host.values())
