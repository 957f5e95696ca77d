"""Alerting end to end: simulated crash → daemon → alert pipeline → outbox → PTB → phone.

Every part is the real one, over loopback: the simulator serves Binance's REST and mark
streams, the daemon (in-process `Runner`, or the `marginwatch run` process) loads the
alerts plugin by entry point, and unmodified python-telegram-bot delivers to the local
Bot API server (`notifiers.telegram.api_url`). Assertions are on what that server
received, i.e. what the trader's phone would show.

Expected levels are derived by hand from Binance's isolated formula at the scenario's
deterministic prices (volatility 0, jumps only), not read back from the engine.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import sys
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml

from alerts.plugin import AlertsPlugin
from alerts.store import FILENAME
from monitor.config import Config
from monitor.daemon.runner import Runner
from monitor.events import Event, EventKind
from monitor.simulator.prices import price_ticks
from monitor.simulator.runner import SimulatedVenue
from monitor.simulator.scenario import MARKETS, parse_scenario
from tests.servers.telegram import FIXTURE_TOKEN, telegram_server
from tests.test_daemon_e2e import NotifySocket

CHAT = 1001
USER = 42
STRANGER = 666
STRANGE_CHAT = 2002
SPEED = 2.0
"""Simulated seconds per wall second: a tick every 0.5 s."""

# --- Binance's isolated formula, by hand ---------------------------------------------
#
# One isolated long: 0.01 BTC from 65,000 with 130 USDT of margin (5x), first bracket
# (MMR 0.4 %, cum 0):
#   LP    = (WB + cum - size x EP) / (size x MMR - size) = 520 / 0.00996 = 52,208.84
#   ratio = MM / margin balance = size x mark x MMR / (WB + size x (mark - EP))
#   dist  = (mark - LP) / mark
# Default isolated thresholds: warn ratio 0.60 or dist <= 10 %, critical 0.80 or 5 %,
# imminent 0.95 or 1 %. At the walk's marks:
#   57,000: dist 8.41 %, ratio 0.046 -> warn
#   54,000: dist 3.32 %, ratio 0.108 -> critical
#   52,500: dist 0.55 %, ratio 0.420 -> imminent (ratio < 1: not liquidated)
#   65,000: dist 19.7 %, ratio 0.020 -> ok (past every level's 5 % clear margin)
ISOLATED = {"warn": (0.60, 0.10), "critical": (0.80, 0.05), "imminent": (0.95, 0.01)}
BTC_LIQUIDATION = 520 / 0.00996
WALK = [(8, 57000.0), (14, 54000.0), (20, 52500.0), (26, 65000.0)]
"""(simulated second, BTC mark): each level holds 6 s (3 s of wall time)."""


def isolated_long(
    mark: float, entry: float, size: float, wallet: float, mmr: float, cum: float = 0.0
) -> tuple[float, float, float]:
    """(liquidation price, margin ratio, distance) of an isolated long, Binance's way."""
    liquidation = (wallet + cum - size * entry) / (size * mmr - size)
    ratio = size * mark * mmr / (wallet + size * (mark - entry))
    return liquidation, ratio, (mark - liquidation) / mark


def level_of(ratio: float, distance: float) -> str:
    """The worst isolated level either figure reached (no hysteresis: the walk's steps
    land far from every threshold, so the clear margin never decides)."""
    for name in ("imminent", "critical", "warn"):
        ratio_at, distance_at = ISOLATED[name]
        if ratio >= ratio_at or distance <= distance_at:
            return name
    return "ok"


def jumps(start: float, path: list[tuple[float, float]]) -> str:
    """The YAML jump list taking a symbol from `start` through `path`'s marks."""
    items, previous = [], start
    for at, mark in path:
        items.append(f"{{at: {at:g}s, size: {mark / previous - 1!r}}}")
        previous = mark
    return "[" + ", ".join(items) + "]"


WALK_SCENARIO = f"""
description: one isolated long walked down through warn, critical, imminent, then back
seed: 1
tick_seconds: 1
symbols:
  BTCUSDT: {{start: 65000}}
segments:
  - {{duration: 30s, volatility: 0, jumps: {jumps(65000.0, WALK)}}}
accounts:
  - name: solo
    balances: {{USDT: 1000}}
    positions:
      - {{symbol: BTCUSDT, side: long, size: 0.01, entry: 65000, margin_mode: isolated,
         leverage: 5, isolated_margin: 130}}
"""

BURST = {"BTCUSDT": (65000, 0.01), "ETHUSDT": (3400, 0.2), "SOLUSDT": (150, 5),
         "DOGEUSDT": (0.16, 5000), "AVAXUSDT": (35, 20)}  # fmt: skip
"""symbol: (start, size). Five isolated 5x longs; one tick takes every mark 17 % down."""
BURST_DROP = -0.17
BURST_SCENARIO = f"""
description: every position of the account gaps down in the same tick, then recovers
seed: 2
tick_seconds: 1
symbols: {{{", ".join(f"{s}: {{start: {p}}}" for s, (p, _) in BURST.items())}}}
segments:
  - {{duration: 16s, volatility: 0,
     jumps: [{{at: 6s, size: {BURST_DROP}}}, {{at: 12s, size: {1 / (1 + BURST_DROP) - 1!r}}}]}}
accounts:
  - name: burst
    balances: {{USDT: 1000}}
    positions:
""" + "".join(
    f"      - {{symbol: {s}, side: long, size: {n}, margin_mode: isolated, leverage: 5}}\n"
    for s, (_, n) in BURST.items()
)


# --- harness ------------------------------------------------------------------------


async def until(predicate: Callable[[], Any], timeout: float, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while not (result := predicate()):
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not met in {timeout:g}s")
        await asyncio.sleep(0.02)
    return result


def config_document(
    venue: SimulatedVenue, state_dir: Path, api_url: str, **sections: Any
) -> dict[str, Any]:
    """Fast polls, console notifier off, one Telegram chat on the local Bot API."""
    telegram = {"bot_token": FIXTURE_TOKEN, "api_url": api_url, "chats": [{"chat_id": CHAT}],
                "commands": False}  # fmt: skip
    telegram.update(sections.pop("telegram", {}))
    accounts = [
        {"name": name, "exchange": "binanceusdm", "api_key": c.api_key, "secret": c.secret,
         "rest_url": venue.base_url, "ws_url": venue.ws_url}
        for name, c in venue.credentials.items()
    ]  # fmt: skip
    return {
        "state_dir": str(state_dir),
        "daemon": {"poll_interval": 1, "poll_jitter": 0},
        "notifiers": {"console": False, "telegram": telegram},
        "accounts": accounts,
        **sections,
    }


@asynccontextmanager
async def running(
    venue: SimulatedVenue, tmp_path: Path, api_url: str, events: list[Event], **sections: Any
) -> AsyncIterator[tuple[Runner, AlertsPlugin]]:
    """An in-process Runner (plugins by entry point) running `Runner.run()` as a task."""
    config = Config.model_validate(config_document(venue, tmp_path / "state", api_url, **sections))
    runner = Runner(tmp_path / "config.yaml", config, extra_sinks=[_Collect(events)])
    (plugin,) = [p for p in runner.plugins if isinstance(p, AlertsPlugin)]
    task = asyncio.create_task(runner.run(), name="runner")
    try:
        yield runner, plugin
    finally:
        runner.stopping.set()
        await asyncio.wait_for(task, 15)


class _Collect:
    """An extra event sink: the daemon's LEVEL events, to compare with the pages."""

    def __init__(self, events: list[Event]) -> None:
        self.events = events

    def emit(self, event: Event) -> None:
        self.events.append(event)


def header_level(text: str) -> str:
    """ "🔴 solo · CRITICAL" → "CRITICAL": every alert message's first line says it."""
    return text.splitlines()[0].rsplit(" · ", 1)[-1]


def assert_walk_messages(texts: list[str]) -> None:
    """warn → critical → imminent → resolved, once each, with the hand-derived figures."""
    expected = [level_of(*isolated_long(m, 65000, 0.01, 130, 0.004)[1:]) for _, m in WALK]
    assert expected == ["warn", "critical", "imminent", "ok"]
    assert [header_level(t) for t in texts] == [e.upper() for e in expected], texts
    target = "BTC/USDT:USDT long · isolated"
    assert f"{target} · WARN (new)" in texts[0]
    assert f"{target} · CRITICAL (was WARN)" in texts[1]
    assert f"{target} · IMMINENT (was CRITICAL)" in texts[2]
    assert "BTC/USDT:USDT long isolated back to OK (was IMMINENT)" in texts[3]
    for text, (_, mark) in zip(texts[:3], WALK, strict=False):
        liquidation, ratio, distance = isolated_long(mark, 65000, 0.01, 130, 0.004)
        assert f"liq {liquidation:,.2f}" in text  # ours, at Binance's formula
        assert f"ratio {ratio * 100:.2f}%" in text
        assert f"dist {distance * 100:.2f}%" in text
    assert len(set(texts)) == len(texts)


# --- 1. a crash yields warn → critical → imminent → resolved ------------------------


def test_walk_scenario_marks_are_the_ones_reasoned_about() -> None:
    """The levels below are derived from WALK's marks: the simulator must play exactly
    those (volatility 0, jumps rounded to the tick) or the derivation proves nothing."""
    scenario = parse_scenario(WALK_SCENARIO)
    marks = {tick.time: tick.marks["BTCUSDT"] for tick in price_ticks(scenario)}
    for at, mark in WALK:
        assert marks[at] == mark and marks[at - 1] != mark
    assert isolated_long(60000, 65000, 0.01, 130, 0.004)[0] == pytest.approx(BTC_LIQUIDATION)


async def test_crash_pages_warn_critical_imminent_then_resolved_once_each(tmp_path: Path) -> None:
    events: list[Event] = []
    async with (
        telegram_server() as (state, api_url),
        SimulatedVenue(parse_scenario(WALK_SCENARIO), speed=SPEED, hold=True) as venue,
        running(venue, tmp_path, api_url, events, alerts={"group_wait": "1s"}) as (runner, _),
    ):
        monitor = runner.daemon.monitors[0]
        await until(lambda: monitor.evaluated, 10, "first evaluation")
        venue.start()  # the walk begins once the daemon has read the book, however slow
        await until(lambda: len(state.sent) >= 4, 25, "four pages")
        await asyncio.sleep(1.5)  # a duplicate or a late repeat would show up here
    texts = state.texts(CHAT)
    assert_walk_messages(texts)
    levels = [e.level for e in events if e.kind is EventKind.LEVEL and e.target.startswith("BTC")]
    assert levels == ["warn", "critical", "imminent", "ok"]  # one page per level change


async def test_a_reload_keeps_paging_without_re_attaching_the_alerts(tmp_path: Path) -> None:
    """The alerts plugin subscribes once, to the runner's bus; a configuration reload
    stops the daemon and builds another under the same host and bus, and the walk's pages
    still arrive once each, now from the new daemon, with nothing re-attached. The confirm
    bridge reaches the new daemon's controllers too (before the bus, a reload left them
    without one: confirm mode ran as a dry run until restart)."""
    events: list[Event] = []
    async with (
        telegram_server() as (state, api_url),
        SimulatedVenue(parse_scenario(WALK_SCENARIO), speed=SPEED, hold=True) as venue,
        running(venue, tmp_path, api_url, events, alerts={"group_wait": "1s"}) as (runner, plugin),
    ):
        await until(runner.daemon.first_evaluation.is_set, 10, "first evaluation")
        first = runner.daemon
        document = config_document(venue, tmp_path / "state", api_url, alerts={"group_wait": "1s"})
        document["daemon"]["poll_interval"] = 2  # a change the walk does not depend on
        (tmp_path / "config.yaml").write_text(yaml.safe_dump(document))
        assert await runner.reload()
        assert runner.daemon is not first
        venue.start()  # the walk begins after the reload, however long it took
        assert runner.daemon.controllers  # dry run by default: a controller per account
        assert all(c.confirmer is plugin.approvals for c in runner.daemon.controllers.values())
        await until(lambda: len(state.sent) >= 4, 25, "four pages")
        await asyncio.sleep(1.5)  # a duplicate or a late repeat would show up here
    assert_walk_messages(state.texts(CHAT))


def test_burst_levels_by_hand() -> None:
    """At 17 % down every 5x isolated long sits between 1 % and 5 % from liquidation:
    critical, not imminent, and not liquidated (ratio well below 1)."""
    for symbol, (start, size) in BURST.items():
        mmr = MARKETS[symbol].brackets[0].maint_rate
        mark = start * (1 + BURST_DROP)
        _, ratio, distance = isolated_long(mark, start, size, start * size / 5, mmr)
        assert level_of(ratio, distance) == "critical", (symbol, ratio, distance)


async def test_positions_moving_in_one_tick_make_one_message_not_n(tmp_path: Path) -> None:
    events: list[Event] = []
    async with (
        telegram_server() as (state, api_url),
        SimulatedVenue(parse_scenario(BURST_SCENARIO), speed=SPEED, hold=True) as venue,
        running(venue, tmp_path, api_url, events, alerts={"group_wait": "1s"}) as (runner, _),
    ):
        await until(runner.daemon.first_evaluation.is_set, 10, "first evaluation")
        venue.start()
        await until(lambda: len(state.sent) >= 2, 20, "the crash and the recovery")
        await venue.finished.wait()
        await asyncio.sleep(1.5)
    changes = [e for e in events if e.kind is EventKind.LEVEL]
    assert len([e for e in changes if e.level == "critical"]) == len(BURST)
    assert len([e for e in changes if e.level == "ok"]) == len(BURST)
    crash, recovery = state.texts(CHAT)  # two pages for ten level changes
    assert header_level(crash) == "CRITICAL" and header_level(recovery) == "OK"
    for symbol in BURST:
        name = f"{symbol.removesuffix('USDT')}/USDT:USDT long"
        assert crash.count(f"{name} · isolated · CRITICAL (new)") == 1
        assert recovery.count(f"{name} isolated back to OK (was CRITICAL)") == 1


# --- 2. the Bot API down for a while, then up -----------------------------------------


@pytest.mark.parametrize("mode", ["502", "drop"])
async def test_bot_api_outage_delays_pages_but_loses_and_reorders_none(
    tmp_path: Path, mode: str
) -> None:
    events: list[Event] = []
    async with (
        telegram_server() as (state, api_url),
        SimulatedVenue(parse_scenario(WALK_SCENARIO), speed=SPEED, hold=True) as venue,
        running(venue, tmp_path, api_url, events, alerts={"group_wait": "1s"}) as (runner, plugin),
    ):
        # The outbox's own knobs, shortened so the retry after the outage comes within
        # the test's time (default cap 60 s); the ordering logic is the same.
        plugin.outbox.backoff_base, plugin.outbox.backoff_cap = 0.2, 1.0
        await until(runner.daemon.first_evaluation.is_set, 10, "first evaluation")
        venue.start()
        await until(lambda: len(state.sent) == 1, 15, "the warn page")
        state.outage, state.outage_mode = True, mode
        await until(lambda: plugin.outbox.stats.enqueued == 4, 20, "all pages queued")
        assert len(state.sent) == 1  # critical, imminent, resolved all held back
        failed = [c for c in state.calls("sendMessage") if c.status == 502]
        assert len(failed) >= 3, "the outbox never tried during the outage"
        state.outage = False
        assert await plugin.outbox.drain(10)
        await asyncio.sleep(1.0)
    assert_walk_messages(state.texts(CHAT))
    rows = StateFile(tmp_path / "state").rows()
    assert [r["level"] for r in rows] == ["warn", "critical", "imminent", "ok"]
    assert all(r["delivered"] for r in rows)
    stats = plugin.outbox.stats
    assert (stats.delivered, stats.expired, stats.failed) == (4, 0, 0)


# --- 3. SIGKILL mid-crash, restart on the same state dir ------------------------------

KILL_SCENARIO = f"""
description: BTC to critical and ETH to warn together, then BTC on to imminent
seed: 3
tick_seconds: 1
symbols:
  BTCUSDT:
    start: 65000
    segments: [{{duration: 24s, volatility: 0, jumps: {jumps(65000.0, [(8, 54000), (20, 52500)])}}}]
  ETHUSDT:
    start: 3400
    segments: [{{duration: 24s, volatility: 0, jumps: {jumps(3400.0, [(8, 2950)])}}}]
accounts:
  - name: crash
    balances: {{USDT: 1000}}
    positions:
      - {{symbol: BTCUSDT, side: long, size: 0.01, margin_mode: isolated, leverage: 5,
         isolated_margin: 130}}
      - {{symbol: ETHUSDT, side: long, size: 0.2, margin_mode: isolated, leverage: 5}}
"""
# ETH: 0.2 from 3,400 with 136 USDT (5x), MMR 0.5 %: LP = 544 / 0.199 = 2,733.67;
# at 2,950 dist 7.33 % -> warn (and stays warn). BTC as in WALK: critical, then imminent.

REANNOUNCE_AFTER = 3.0
LAUNCHER = (
    "import functools, sys\n"
    "import alerts.plugin as plugin\n"
    "plugin.AlertPipeline = functools.partial(\n"
    "    plugin.AlertPipeline, reannounce_delay=float(sys.argv.pop(1)))\n"
    "from monitor.cli import main\n"
    "raise SystemExit(main())\n"
)
"""`marginwatch run` with one knob shortened: the re-announcement waits 30 s after a
restart (time for fresh figures); 3 s keeps the test short, and the daemon here has
fresh figures within a second."""


@asynccontextmanager
async def daemon_process(
    config: Path, notify: NotifySocket, log: Path, *launcher: str
) -> AsyncIterator[asyncio.subprocess.Process]:
    """`marginwatch run` as a child process; killed on the way out if the test left it
    running (a failed assertion must not leave a daemon behind)."""
    env = dict(os.environ, NOTIFY_SOCKET=str(notify.path))
    notify.messages.clear()
    command = launcher or ("-m", "monitor.cli")
    process = await asyncio.create_subprocess_exec(
        sys.executable, *command, "run", "--config", str(config), env=env,
        stdout=asyncio.subprocess.DEVNULL, stderr=log.open("ab"),
    )  # fmt: skip
    try:
        yield process
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


class StateFile:
    """Read-only peeks into the daemon's SQLite file while it runs (WAL allows it)."""

    def __init__(self, state_dir: Path) -> None:
        self.path = state_dir / FILENAME

    def _query(self, sql: str) -> list[tuple[Any, ...]]:
        if not self.path.exists():
            return []
        with sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, timeout=5) as db:
            return db.execute(sql).fetchall()

    def rows(self) -> list[dict[str, Any]]:
        """Outbox rows in delivery order: notification id, payload, delivered or not."""
        found = self._query("SELECT notification_id, payload, delivered_at FROM outbox ORDER BY id")
        return [{"id": i, **orjson.loads(p), "delivered": d is not None} for i, p, d in found]

    def announced(self) -> dict[str, str | None]:
        """target → level last handed to the outbox, as persisted for a restart."""
        found = self._query("SELECT value FROM kv WHERE key = 'alert_pipeline'")
        if not found:
            return {}
        return {a["key"][1]: a["announced"] for a in orjson.loads(found[0][0])["alerts"]}


async def test_sigkill_mid_crash_loses_no_page_and_restart_does_not_storm(tmp_path: Path) -> None:
    notify = NotifySocket(tmp_path / "notify")
    log = tmp_path / "daemon.log"
    state_dir = tmp_path / "state"
    peek = StateFile(state_dir)
    btc, eth = "BTC/USDT:USDT long isolated", "ETH/USDT:USDT long isolated"
    async with (
        telegram_server() as (state, api_url),
        SimulatedVenue(parse_scenario(KILL_SCENARIO), speed=SPEED, hold=True) as venue,
    ):
        config = tmp_path / "config.yaml"
        document = config_document(venue, state_dir, api_url, alerts={"group_wait": "0.5s"})
        config.write_text(yaml.safe_dump(document))
        async with daemon_process(config, notify, log, "-c", LAUNCHER, "30") as process:
            await notify.wait_for("READY=1", 20)  # READY follows the first evaluation
            venue.start()  # so the crash is seen from its start, however slow the start
            first = await until(lambda: state.texts(CHAT), 15, "the crash page")
            state.outage = True  # what follows stays in the outbox
            await until(
                lambda: peek.announced().get(btc) == "imminent", 20, "imminent queued and saved"
            )
            process.send_signal(signal.SIGKILL)
            assert await asyncio.wait_for(process.wait(), 5) == -signal.SIGKILL
        before = peek.rows()
        pending = [r for r in before if not r["delivered"]]
        assert [r["level"] for r in pending] == ["imminent"], before
        assert peek.announced() == {btc: "imminent", eth: "warn"}
        assert len(state.sent) == 1

        state.outage = False
        restart = daemon_process(config, notify, log, "-c", LAUNCHER, f"{REANNOUNCE_AFTER}")
        async with restart as process:
            await notify.wait_for("READY=1", 20)
            await until(lambda: len(state.sent) >= 3, 15, "the held page and the re-announcement")
            await asyncio.sleep(2.0)  # anything more would be a storm
            process.send_signal(signal.SIGTERM)
            assert await asyncio.wait_for(process.wait(), 15) == 0
    texts = state.texts(CHAT)
    assert texts[0] == first[0]
    assert header_level(first[0]) == "CRITICAL"
    assert "CRITICAL (new)" in first[0] and "ETH/USDT:USDT long · isolated · WARN (new)" in first[0]
    held, again = texts[1:]
    assert held == pending[0]["text"]  # decided before the kill, delivered after it
    assert "BTC/USDT:USDT long · isolated · IMMINENT (was CRITICAL)" in held
    assert "IMMINENT (re-announced after a restart)" in again
    assert "ETH" not in again  # a warn is not re-announced
    after = peek.rows()
    assert [r["kind"] for r in after] == ["alert", "alert", "reannounce"]
    assert all(r["delivered"] for r in after)
    logged = log.read_text()
    # PTB itself logs each 502 at ERROR (with a traceback); ours must stay quiet.
    assert not [line for line in logged.splitlines() if " ERROR alerts." in line]
    assert "EXPIRED" not in logged and "UNDELIVERED" not in logged


# --- 4. the console through the daemon process ----------------------------------------


async def test_console_ignores_a_stranger_and_answers_an_allowed_user(tmp_path: Path) -> None:
    notify = NotifySocket(tmp_path / "notify")
    log = tmp_path / "daemon.log"
    quiet = {"warn": 0.9, "critical": 0.95, "imminent": 0.99, "distance_warn": 0.03,
             "distance_critical": 0.02, "distance_imminent": 0.01}  # fmt: skip
    async with (
        telegram_server() as (state, api_url),
        SimulatedVenue("calm", speed=1) as venue,
    ):
        config = tmp_path / "config.yaml"
        document = config_document(
            venue, tmp_path / "state", api_url,
            telegram={"commands": True, "allowed_users": [USER]},
            thresholds={"cross": quiet, "isolated": quiet},  # no page: only replies
        )  # fmt: skip
        config.write_text(yaml.safe_dump(document))
        async with daemon_process(config, notify, log) as process:
            await notify.wait_for("READY=1", 20)
            await until(lambda: state.commands, 20, "the console serving (menu set)")
            live = "binanceusdm mark feed live"  # READY follows the first poll, not the feed
            await until(lambda: live in log.read_text(), 10, "the mark feed live")
            state.push_message(CHAT, STRANGER, "/status")  # allowed chat, stranger
            state.push_message(STRANGE_CHAT, USER, "/status")  # allowed user, other chat
            state.push_message(CHAT, USER, "/status")
            reply = await until(lambda: state.texts(CHAT), 10, "an answer to /status")
            await asyncio.sleep(1.0)
            process.send_signal(signal.SIGTERM)
            assert await asyncio.wait_for(process.wait(), 15) == 0
    assert [m["chat_id"] for m in state.sent] == [CHAT]  # one answer, to the allowed user
    assert reply[0].startswith("✅ hybrid · binanceusdm · OK")
    assert "pool USDT: ratio" in reply[0] and reply[0].endswith("feeds: binanceusdm live")
    logged = log.read_text()
    assert f"refused an update (message) from chat {CHAT}, user {STRANGER}" in logged
    assert f"refused an update (message) from chat {STRANGE_CHAT}, user {USER}" in logged
    assert FIXTURE_TOKEN.split(":")[1] not in logged
