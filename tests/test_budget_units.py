"""The host budget's arithmetic on a fake clock: shared windows, holds, and what it says."""

from __future__ import annotations

import logging

from monitor.exchange.budget import Budgets, HostBudget, WeightLimit
from monitor.venues.bybit.adapter import REQUEST_ALLOWANCE
from monitor.venues.registry import venue_for

LIMIT = WeightLimit("x-mbx-used-weight-1m", 100, 60.0)


class FakeClock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += seconds


def budget(clock: FakeClock, share: float = 0.8) -> HostBudget:
    return HostBudget("binanceusdm h", LIMIT, share, clock=clock, sleep=clock.sleep)


async def test_two_accounts_share_one_window_and_the_overflow_waits_for_the_next(caplog):
    clock = FakeClock(600.0)  # the start of a window (600 = 10 x 60)
    shared = budget(clock)  # cap 80 of 100
    assert await shared.acquire("a", 40) == 0 and await shared.acquire("b", 40) == 0
    caplog.set_level(logging.WARNING)
    assert await shared.acquire("a", 10) == 60.0  # 90 > 80: the next window, at 660
    assert clock.now == 660.0 and shared.used == 10 and shared.waits == 1
    assert "request weight budget reached (80 of 100 a window)" in caplog.text


async def test_the_venue_header_counts_other_programs_on_the_ip():
    clock = FakeClock(600.0)
    shared = budget(clock)
    shared.observe("a", {"X-MBX-USED-WEIGHT-1M": "75"})  # someone else used 75
    assert shared.used == 75
    assert await shared.acquire("a", 10) == 60.0  # 85 > 80


async def test_a_refusal_holds_every_account_until_retry_after(caplog):
    clock = FakeClock(600.0)
    shared = budget(clock)
    shared.refused(12.0)
    caplog.set_level(logging.WARNING)
    assert await shared.acquire("b", 1) == 12.0 and shared.refusals == 1
    # said as the venue's hold, not as our budget: 1 of a cap of 80 was never reached
    assert "the venue asked every account on it to hold" in caplog.text
    assert "budget reached" not in caplog.text


async def test_bybit_holds_only_the_account_at_its_last_request():
    clock = FakeClock(1_000.0)
    shared = HostBudget(
        "bybit h", None, allowance=REQUEST_ALLOWANCE, clock=clock, sleep=clock.sleep
    )
    headers = {"X-Bapi-Limit-Status": "1", "X-Bapi-Limit-Reset-Timestamp": "1002500"}
    shared.observe("a", headers)
    assert await shared.acquire("b", 0) == 0
    assert await shared.acquire("a", 0) == 2.5


def test_one_budget_per_exchange_and_host_none_for_venues_without_one():
    budgets = Budgets()

    def budget_of(exchange: str, url: str | None) -> HostBudget | None:
        return budgets.for_account(exchange, url, venue_for(exchange).request_limit)

    first = budget_of("binanceusdm", "http://127.0.0.1:9000")
    assert first is budget_of("binanceusdm", "http://127.0.0.1:9000/")
    assert first is not budget_of("binanceusdm", "http://127.0.0.1:9001")
    assert first is not None and first.limit is not None and first.limit.per_window == 2400
    assert budget_of("okx", None) is None
    bybit = budget_of("bybit", None)
    assert bybit is not None and bybit.limit is None and bybit.allowance == REQUEST_ALLOWANCE
