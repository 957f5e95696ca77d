"""Request weight per IP: the simulator counts it like Binance, the daemon stays within it.

- The simulator reports `X-MBX-USED-WEIGHT-1M` on every /fapi reply, answers past the
  limit with 429 (Retry-After), and bans (418) an IP that keeps sending after a 429.
- Several accounts on one host share one budget (monitor/exchange/budget.py): with the
  venue's limit shrunk (160 weight per 2-second window) and more demand than the budget
  (eight accounts reading every second, 10 weight each), reads slow down and say so, and
  the venue never has to refuse one.
- With its user data stream live, an account's positions follow the stream while REST
  only reconciles.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import aiohttp
import pytest

from monitor.collect import fetch_account
from monitor.daemon.service import Daemon
from monitor.events import Event, EventKind
from monitor.exchange.budget import HostBudget, WeightLimit
from monitor.exchange.markets import SharedMarkets
from monitor.simulator.binance_usdm.weights import IpWeights
from monitor.simulator.runner import SimulatedVenue
from monitor.simulator.scenario import parse_scenario
from tests.test_daemon_e2e import config_for
from tests.test_daemon_userstream import assert_order_refreshes_at_once, btc_contracts, settled
from tests.test_feeds_support import eventually

ACCOUNTS = 8
SCENARIO = """
description: eight quiet accounts on one server
seed: 3
tick_seconds: 1
symbols:
  BTCUSDT: {start: 60000}
segments:
  - {duration: 60s, volatility: 0}
accounts:
""" + "".join(
    f"""  - name: acct{i}
    balances: {{USDT: 10000}}
    positions:
      - {{symbol: BTCUSDT, side: long, size: 0.{i + 1}, leverage: 5}}
"""
    for i in range(ACCOUNTS)
)


async def test_simulator_counts_weight_per_ip_and_refuses_like_binance():
    async with SimulatedVenue("calm") as venue:
        # a frozen clock: every request in one window; the limit is 12 weight
        venue.exchange.weights = IpWeights(limit=12, window_s=60.0, clock=lambda: 6_000.0)
        async with aiohttp.ClientSession(venue.base_url) as http:

            async def get(path: str) -> aiohttp.ClientResponse:
                async with http.get(path) as response:
                    await response.read()
                    return response

            info = await get("/fapi/v1/exchangeInfo")  # weight 1
            assert info.headers["X-MBX-USED-WEIGHT-1M"] == "1"
            every = await get("/fapi/v1/premiumIndex")  # 10 without a symbol
            assert every.headers["X-MBX-USED-WEIGHT-1M"] == "11"
            one = await get("/fapi/v1/premiumIndex?symbol=BTCUSDT")  # 1 with one
            assert one.headers["X-MBX-USED-WEIGHT-1M"] == "12"
            over = await get("/fapi/v1/exchangeInfo")
            assert over.status == 429 and int(over.headers["Retry-After"]) == 60
            assert over.headers["X-MBX-USED-WEIGHT-1M"] == "12"  # refused: not counted
            banned = await get("/fapi/v1/exchangeInfo")  # sent on after a 429
            assert banned.status == 418 and int(banned.headers["Retry-After"]) == 120
    assert venue.exchange.weights.refusals == {429: 1, 418: 1}


async def test_accounts_on_one_host_share_one_budget_and_slow_down_without_a_ban(tmp_path, caplog):
    caplog.set_level(logging.WARNING, "monitor.exchange.budget")
    window, limit = 2.0, 160
    async with SimulatedVenue(parse_scenario(SCENARIO)) as venue:
        venue.exchange.weights = IpWeights(limit=limit, window_s=window)
        config = config_for(venue, tmp_path, reconcile_interval=1)
        daemon = Daemon(config, lambda _event: None)
        shared = HostBudget("sim", WeightLimit("x-mbx-used-weight-1m", limit, window), 0.8)
        for cadence in daemon.cadences.values():  # the test's window, one budget for all
            cadence.budget = shared
        await daemon.start()
        try:
            await eventually(lambda: all(m.snapshot is not None for m in daemon.monitors), 20)
            await asyncio.sleep(3 * window)  # steady demand: 8 x 10 a second > 128 / 2 s
        finally:
            await daemon.stop()
        history = list(venue.exchange.weights.history)
    assert venue.exchange.weights.refusals == {}  # never a 429, never a ban
    assert all(p.last_error is None for p in daemon.pollers.values())
    assert shared.waits > 0  # slowed ...
    assert "request weight budget reached" in caplog.text  # ... and said so
    per_window = Counter()
    for at, weight in history:
        per_window[math.floor(at / window)] += weight
    assert max(per_window.values()) <= limit
    # the budget, 80 % of the limit, bounds what the accounts spent together
    assert max(per_window.values()) <= 0.8 * limit + 20  # + listen keys and window edges


async def test_positions_follow_the_stream_while_rest_only_reconciles(tmp_path):
    async with SimulatedVenue("calm") as venue:
        config = config_for(venue, tmp_path, reconcile_interval=3600, account_stale_after=600)
        daemon = Daemon(config, lambda _event: None)
        await daemon.start()
        try:
            (monitor,), (stream,) = daemon.pollers.values(), daemon.user_streams
            cadence = daemon.cadences[monitor.name]
            await eventually(lambda: stream.current, 10)
            await settled(monitor)
            requests = len(venue.exchange.requests)
            await asyncio.sleep(2.5)  # 2 scheduled reads at poll_interval 1 s: skipped
            assert cadence.skipped >= 2
            before = btc_contracts(monitor)
            await assert_order_refreshes_at_once(venue, monitor)  # within 2 s, by the stream
            await settled(monitor)
            reads = [r for r in venue.exchange.requests[requests:] if "positionRisk" in r]
        finally:
            await daemon.stop()
    assert reads == []  # no REST read: the ACCOUNT_UPDATE was applied
    assert btc_contracts(monitor) == pytest.approx((before or 0) - 0.1)
    assert stream.updates_applied >= 1


async def test_an_account_blind_because_its_read_waits_for_the_budget_says_so(tmp_path):
    events: list[Event] = []
    async with SimulatedVenue("calm") as venue:
        daemon = Daemon(config_for(venue, tmp_path, account_stale_after=1), events.append)
        (cadence,) = daemon.cadences.values()
        assert cadence.budget is not None
        cadence.budget.refused(30.0)  # as after a 429 from another program on the IP
        await daemon.start()
        try:
            await eventually(lambda: any(e.kind is EventKind.BLIND for e in events), 5)
        finally:
            await daemon.stop()
    (blind,) = [e for e in events if e.kind is EventKind.BLIND and e.account == "hybrid"]
    assert "its read waits for the request budget of binanceusdm 127.0.0.1:" in blind.message


def minute_from_now() -> Callable[[], float]:
    """Wall time shifted so that a one-minute window starts now. Binance's windows (and
    the budget's, and the simulator's) are the clock's minutes: a read that ends in the
    next one leaves `used` at 0, rightly, the weight it counted being last minute's. On
    this clock the test's reads, held 2.5 s and then a few seconds at most even on a busy
    machine, fall in one window whatever second of the minute the test starts at."""
    shift = time.time() % 60.0
    return lambda: time.time() - shift


async def test_status_reads_wait_for_the_budget_outside_their_timeout_and_learn_the_header():
    clock = minute_from_now()
    async with SimulatedVenue("calm") as venue:
        venue.exchange.weights = IpWeights(clock=clock)
        (account,) = config_for(venue, Path("/nonexistent")).accounts
        budget = HostBudget("sim", WeightLimit("x-mbx-used-weight-1m", 2400, 60.0), clock=clock)
        budget.refused(2.5)  # the host is held longer than the read may take
        started = time.monotonic()
        result = await fetch_account(account, SharedMarkets(), timeout=2.0, budget=budget)
    assert result.error is None and result.snapshot is not None  # the wait was not timed
    assert time.monotonic() - started >= 2.5
    # the venue's own count, from the reply header: at least this read's weight
    # (positionRisk 5 + account 5 + mode check 5 + leverageBracket 1 + exchangeInfo 1)
    assert budget.used >= 17
