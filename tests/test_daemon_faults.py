"""The fault suite: the daemon against the simulator through a proxy that breaks replies.

Real parts: the simulated venue speaks Binance USD-M, the daemon reads it through
unmodified ccxt, and a reverse proxy on loopback (tests/servers/fault_proxy.py) stands
between them on the REST side, breaking the replies of one account each: 429 with
Retry-After, 500, a 502 HTML page, no reply, HTML with status 200, truncated JSON, a reset
connection. One account is left alone as the control.

What must hold: each failure is typed and readable (not "'str' object has no attribute
'get'"); the errors metric counts them by typed kind; the control keeps its cadence while
the others wait out timeouts; nobody is paged for a single failed read (BLIND waits for
`account_stale_after`); and once the faults stop every account is fresh again within one
poll (plus the request that was hanging, or the wait the exchange asked for).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from monitor.bus import Polled
from monitor.config import Config
from monitor.daemon.runner import Runner
from monitor.events import Event, EventKind
from monitor.exchange.errors import ErrorKind, ExchangeError
from monitor.simulator.runner import SimulatedVenue
from monitor.simulator.scenario import parse_scenario
from tests.servers.fault_proxy import RETRY_AFTER_S, Fault, FaultProxy

POLL = 1.0
REQUEST_TIMEOUT = 1.0
MARGIN = 1.5
"""Slack for a loaded test machine on top of each bound derived below."""
STALE_AFTER = POLL + RETRY_AFTER_S + MARGIN
"""The control may go this long between reads (a poll, plus the 429's hold that every
account on the host waits out), so BLIND must not fire before it: a shorter limit made
the test page the control for a gap the test itself accepts."""
FAULT_WINDOW = STALE_AFTER + 1.0 + POLL + MARGIN + 1.0
"""Long enough for every faulted account to go blind (the limit, then the watchdog's
once-a-second look, with a poll and the slack), and for a backoff that grows with
failures (what the audit found) to outlast the recovery bound."""

EXPECTED: dict[Fault, tuple[ErrorKind, tuple[str, ...]]] = {
    Fault.RATE_LIMIT: (ErrorKind.RATE_LIMIT, ("429",)),
    Fault.SERVER_ERROR: (ErrorKind.EXCHANGE_DOWN, ("HTTP 500",)),
    Fault.BAD_GATEWAY: (ErrorKind.EXCHANGE_DOWN, ("HTTP 502", "'502 Bad Gateway'")),
    Fault.TIMEOUT: (ErrorKind.NETWORK, ("no ",)),  # no reply within the request timeout
    Fault.HTML_200: (
        ErrorKind.BAD_REPLY,
        ("exchange sent HTML with status 200", "'System Maintenance'"),
    ),
    Fault.TRUNCATED: (ErrorKind.BAD_REPLY, ("truncated JSON",)),
    Fault.RESET: (ErrorKind.NETWORK, ("connection",)),
}
CONTROL = "control"


def scenario_text() -> str:
    names = [fault.name.lower() for fault in Fault] + [CONTROL]
    accounts = "".join(
        f"""  - name: {name}
    balances: {{USDT: 10000}}
    positions:
      - {{symbol: BTCUSDT, side: long, size: 0.01, leverage: 5}}
"""
        for name in names
    )
    return f"""\
description: one quiet BTC long per account, for the fault suite
seed: 3
tick_seconds: 1
symbols:
  BTCUSDT: {{start: 65000}}
segments:
  - {{duration: 120s, volatility: 0.001}}
accounts:
{accounts}"""


@dataclass
class Polls:
    """Every poll's outcome per account: (monotonic time, error or None)."""

    by_account: dict[str, list[tuple[float, ExchangeError | None]]] = field(default_factory=dict)

    def record(self, account: str, error: ExchangeError | None) -> None:
        self.by_account.setdefault(account, []).append((time.monotonic(), error))

    def errors(self, account: str, start: float, end: float) -> list[ExchangeError]:
        return [e for t, e in self.by_account.get(account, []) if e and start <= t <= end]

    def successes(self, account: str, start: float, end: float = float("inf")) -> list[float]:
        return [t for t, e in self.by_account.get(account, []) if e is None and start <= t <= end]


class Events:
    def __init__(self) -> None:
        self.seen: list[tuple[float, Event]] = []

    def emit(self, event: Event) -> None:
        self.seen.append((time.monotonic(), event))

    def of(self, kind: EventKind, account: str) -> list[float]:
        return [t for t, e in self.seen if e.kind is kind and e.account == account]


def config_for(venue: SimulatedVenue, proxy: FaultProxy, state: Path) -> Config:
    accounts = [
        {"name": name, "exchange": "binanceusdm", "api_key": c.api_key, "secret": c.secret,
         "rest_url": proxy.base_url, "ws_url": venue.ws_url}
        for name, c in venue.credentials.items()
    ]  # fmt: skip
    # REST is the subject here: it reconciles at every poll, not only every 120 s as it
    # does while a user data stream keeps the account current.
    daemon = {"poll_interval": POLL, "poll_jitter": 0, "request_timeout": REQUEST_TIMEOUT,
              "account_stale_after": STALE_AFTER, "feed_stale_after": 30,
              "reconcile_interval": POLL}  # fmt: skip
    return Config.model_validate({"state_dir": str(state), "daemon": daemon, "accounts": accounts})


async def until(predicate: Callable[[], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.05)


async def test_faults_are_typed_contained_and_recovered_from_within_a_poll(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="apscheduler")
    polls, events = Polls(), Events()
    async with (
        SimulatedVenue(parse_scenario(scenario_text()), speed=1) as venue,
        FaultProxy(venue.base_url) as proxy,
    ):
        config = config_for(venue, proxy, tmp_path)
        runner = Runner(tmp_path / "unused.yaml", config, extra_sinks=[events], use_plugins=False)
        runner.bus.subscribe(Polled, lambda read: polls.record(read.account, read.error))
        pollers = runner.daemon.pollers.values()
        await runner.daemon.start()
        try:
            await until(lambda: all(p.last_ok for p in pollers), 20)
            keys = {name: c.api_key for name, c in venue.credentials.items()}
            faulted_at = time.monotonic()
            for fault in Fault:
                proxy.faults[keys[fault.name.lower()]] = fault
            await asyncio.sleep(FAULT_WINDOW)
            proxy.faults.clear()
            cleared_at = time.monotonic()
            await until(
                lambda: all(polls.successes(p.name, cleared_at) for p in pollers),
                POLL + REQUEST_TIMEOUT + RETRY_AFTER_S + 10,
            )
            await until(  # the watchdog's RECOVERED (it looks once a second)
                lambda: all(
                    any(t > cleared_at for t in events.of(EventKind.RECOVERED, f.name.lower()))
                    for f in EXPECTED
                ),
                5,
            )
        finally:
            await runner.daemon.stop()

    for fault, (kind, fragments) in EXPECTED.items():
        name = fault.name.lower()
        assert proxy.injected[keys[name], fault] > 0, f"{fault} never injected"
        # typed, readable, and the only kind this account saw while its fault lasted
        errors = polls.errors(name, faulted_at, cleared_at)
        assert errors, f"{name}: no failed poll during {fault}"
        assert {e.kind for e in errors} == {kind}, f"{name}: {[str(e) for e in errors]}"
        for error in errors:
            assert all(f in error.message for f in fragments), f"{name}: {error}"
            assert "object has no attribute" not in error.message
        # the metric counts them by the same typed kind
        counted = runner.metrics.registry.get_sample_value(
            "marginwatch_rest_errors_total",
            {"account": name, "exchange": "binanceusdm", "call": "snapshot", "kind": kind.value},
        )
        assert counted == len(polls.errors(name, 0, float("inf"))), name
        # nobody paged for one failed read: BLIND only once a read is older than the limit
        last_ok = max(polls.successes(name, 0, faulted_at))
        blind = events.of(EventKind.BLIND, name)
        assert blind and blind[0] - last_ok >= STALE_AFTER - 0.01, (name, blind, last_ok)
        assert not events.of(EventKind.ERROR, name), f"{name}: paged for a transient error"
        # fresh again within one poll of the faults stopping; plus, for a request that was
        # hanging when they stopped, its timeout, and for a rate limit, the wait asked for
        bound = POLL + MARGIN
        bound += REQUEST_TIMEOUT if fault is Fault.TIMEOUT else 0.0
        bound += RETRY_AFTER_S if fault is Fault.RATE_LIMIT else 0.0
        recovered = min(polls.successes(name, cleared_at)) - cleared_at
        assert recovered <= bound, f"{name}: fresh {recovered:.1f} s after the faults stopped"
        assert any(t > cleared_at for t in events.of(EventKind.RECOVERED, name)), name

    # the control account kept its cadence while six others failed and one hung; only the
    # 429 holds it, as it holds every account on the host: Binance counts weight per IP, so
    # a 429 to one account is a 429 to all of them (monitor/exchange/budget.py)
    control = polls.successes(CONTROL, faulted_at, cleared_at)
    gaps = [b - a for a, b in zip([faulted_at, *control], [*control, cleared_at], strict=True)]
    assert max(gaps) <= POLL + MARGIN + RETRY_AFTER_S, f"control's polls stalled: gaps {gaps}"
    assert not polls.errors(CONTROL, 0, float("inf"))
    assert not events.of(EventKind.BLIND, CONTROL)
    # APScheduler never had to skip or drop a run while reads waited out timeouts
    assert not [r for r in caplog.records if r.name.startswith("apscheduler")]


async def test_an_account_is_read_at_once_when_its_venues_stream_recovers(tmp_path: Path) -> None:
    """REST and the stream down together, then back: the failed account does not wait for
    its next scheduled poll (10 s away here), it is read when the stream is live again."""
    slow_poll = 10.0
    polls, events = Polls(), Events()
    async with (
        SimulatedVenue(parse_scenario(scenario_text()), speed=1) as venue,
        FaultProxy(venue.base_url) as proxy,
    ):
        config = config_for(venue, proxy, tmp_path)
        settings = config.daemon.model_copy(
            update={"poll_interval": slow_poll, "feed_stale_after": 1.0, "account_stale_after": 60}
        )
        runner = Runner(
            tmp_path / "unused.yaml",
            config.model_copy(update={"daemon": settings}),
            extra_sinks=[events],
            use_plugins=False,
        )

        def feed_events(kind: EventKind, since: float) -> list[float]:
            return [t for t, e in events.seen if e.kind is kind and e.account is None and t > since]

        victim = runner.daemon.pollers[CONTROL]
        runner.bus.subscribe(Polled, lambda read: polls.record(read.account, read.error))
        # Without user data streams, as on every venue but Binance: a Binance account's
        # own stream also reads the account when it reconnects, which would hide this.
        # The cadences forget them too, or the first read waits a whole poll interval
        # for a stream that never connects.
        runner.daemon.user_streams = []
        for cadence in runner.daemon.cadences.values():
            cadence.stream = None
        await runner.daemon.start()
        try:
            await until(lambda: victim.last_ok is not None, 20)
            proxy.faults[victim.account.api_key.reveal()] = Fault.RESET  # type: ignore[union-attr]
            await victim.poll()  # fails now; the next scheduled poll is ~10 s away
            failed_at = time.monotonic()
            assert polls.errors(CONTROL, 0, failed_at)
            venue.streams.refuse(1.0)
            await venue.streams.drop_all()
            await until(lambda: feed_events(EventKind.BLIND, failed_at), 10)
            proxy.faults.clear()
            await until(lambda: feed_events(EventKind.RECOVERED, failed_at), 10)
            live_at = feed_events(EventKind.RECOVERED, failed_at)[0]
            await until(lambda: polls.successes(CONTROL, failed_at), 10)
        finally:
            await runner.daemon.stop()
    read_at = min(polls.successes(CONTROL, failed_at))
    assert read_at - live_at <= MARGIN, f"read {read_at - live_at:.1f} s after the stream"
    assert read_at < failed_at + slow_poll / 2, "it waited for the scheduled poll"
