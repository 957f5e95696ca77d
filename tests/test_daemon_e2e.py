"""The daemon end to end against the simulated exchange, over loopback.

Real parts: the simulator serves Binance's REST and stream dialects; the daemon reads
it through unmodified ccxt and its own websocket client. Expected figures are derived
by hand from Binance's formula, and the marks are read by the test's own stream client.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
import sys
import time
from pathlib import Path

import orjson
import pytest
import websockets
import yaml

from monitor.config import Config
from monitor.daemon.service import Daemon
from monitor.events import Event, EventKind
from monitor.simulator.binance_usdm.events import LIQUIDATION
from monitor.simulator.runner import SimulatedVenue
from monitor.simulator.scenario import parse_scenario

SPEED = 2.0  # simulated seconds per wall second: one tick every 0.5 s

# One isolated BTC long: 0.01 BTC from 65,000 with 130 USDT of margin (5x), first bracket
# (0.4 %, cum 0). Binance's isolated formula by hand:
#   LP = (WB + cum - side x size x EP) / (size x MMR - side x size)
#      = (130 - 0.01 x 65,000) / (0.01 x 0.004 - 0.01) = 520 / 0.00996
LIQUIDATION_PRICE = 520 / 0.00996
JUMP_SCENARIO = """
description: one isolated long and a 12 % gap down at 6 s
seed: 7
tick_seconds: 1
symbols:
  BTCUSDT: {start: 65000}
segments:
  - {duration: 14s, volatility: 0, jumps: [{at: 6s, size: -0.12}]}
accounts:
  - name: solo
    balances: {USDT: 1000}
    positions:
      - {symbol: BTCUSDT, side: long, size: 0.01, entry: 65000, margin_mode: isolated,
         leverage: 5, isolated_margin: 130}
"""


def config_for(venue: SimulatedVenue, state: Path, **daemon: float) -> Config:
    accounts = [
        {"name": name, "exchange": "binanceusdm", "api_key": c.api_key, "secret": c.secret,
         "rest_url": venue.base_url, "ws_url": venue.ws_url}
        for name, c in venue.credentials.items()
    ]  # fmt: skip
    settings = {"poll_interval": 1, "poll_jitter": 0, **daemon}
    return Config.model_validate(
        {"state_dir": str(state), "daemon": settings, "accounts": accounts}
    )


async def record_marks(url: str, out: list[tuple[float, float]], symbol: str = "BTCUSDT") -> None:
    """The test's own view of the stream: (arrival time, mark) of every frame."""
    async with websockets.connect(f"{url}/market/ws/!markPrice@arr@1s") as ws:
        async for frame in ws:
            for update in orjson.loads(frame):
                if update["s"] == symbol:
                    out.append((time.time(), float(update["p"])))


async def test_level_change_is_emitted_within_one_tick_of_the_crossing_mark(tmp_path):
    events: list[Event] = []
    marks: list[tuple[float, float]] = []
    async with SimulatedVenue(parse_scenario(JUMP_SCENARIO), speed=SPEED) as venue:
        recorder = asyncio.create_task(record_marks(venue.ws_url, marks))
        daemon = Daemon(config_for(venue, tmp_path), events.append)
        await daemon.start()
        try:
            await asyncio.wait_for(venue.finished.wait(), 30)
        finally:
            await daemon.stop()
            recorder.cancel()

    warn = [e for e in events if e.kind is EventKind.LEVEL and e.target.startswith("BTC/USDT")]
    assert warn, f"no level event; events: {events}"
    event = warn[0]
    # default isolated thresholds: distance warn 10 %, critical 5 %
    crossing = next((at, m) for at, m in marks if (m - LIQUIDATION_PRICE) / m <= 0.10)
    assert event.level in ("warn", "critical")
    assert event.mark_price == crossing[1]
    assert event.liquidation_price == pytest.approx(LIQUIDATION_PRICE, rel=1e-9)
    # the mark pins the event to the crossing frame; both clients got that frame at once
    assert abs(event.time - crossing[0]) < 1 / SPEED, "event more than one tick away"


async def test_a_stop_right_after_start_logs_no_scheduler_error(tmp_path, caplog):
    """A restart under a busy loop: a poll the scheduler has submitted but not yet run
    when the daemon stops must not be cancelled into an "Error running job" traceback."""
    caplog.set_level(logging.WARNING, logger="apscheduler")
    async with SimulatedVenue(parse_scenario(JUMP_SCENARIO), speed=SPEED) as venue:
        daemon = Daemon(config_for(venue, tmp_path))
        await daemon.start()  # the first poll is due at once: submitted, not yet run
        await daemon.stop()
        await asyncio.sleep(0.1)  # any job's completion callback has run
    assert not [r.getMessage() for r in caplog.records if r.name.startswith("apscheduler")]


async def test_killed_stream_makes_the_feed_blind_then_recovered(tmp_path):
    events: list[Event] = []
    async with SimulatedVenue("calm", speed=1) as venue:
        daemon = Daemon(config_for(venue, tmp_path, feed_stale_after=1.0), events.append)
        await daemon.start()
        try:
            await asyncio.wait_for(daemon.first_evaluation.wait(), 15)
            await _until(lambda: any(g.feed and g.feed.status.value == "live"
                                     for g in daemon.groups.values()), 10)  # fmt: skip
            venue.streams.refuse(3.0)
            await venue.streams.drop_all()
            await _until(lambda: any(e.kind is EventKind.BLIND for e in events), 10)
            await _until(lambda: any(e.kind is EventKind.RECOVERED for e in events), 20)
        finally:
            await daemon.stop()
    kinds = [e.kind for e in events if e.target == "feed binanceusdm"]
    assert kinds[:2] == [EventKind.BLIND, EventKind.RECOVERED]


async def test_simulator_liquidation_of_a_neglected_bet_is_reported(tmp_path):
    events: list[Event] = []
    async with SimulatedVenue("flash-crash", speed=8) as venue:
        daemon = Daemon(config_for(venue, tmp_path), events.append)
        await daemon.start()
        try:
            await asyncio.wait_for(venue.finished.wait(), 30)
            await _until(lambda: any(e.kind is EventKind.PROBABLE_LIQUIDATION for e in events), 10)
        finally:
            await daemon.stop()
    liquidated = {  # read once the venue has stopped: its order records are complete
        o.symbol
        for account in venue.exchange.accounts.values()
        for o in account.orders
        if o.type == LIQUIDATION
    }
    reported = [e for e in events if e.kind is EventKind.PROBABLE_LIQUIDATION]
    assert "AVAXUSDT" in liquidated
    assert [e.target for e in reported] == ["AVAX/USDT:USDT long isolated"]
    before = [e for e in events if e.target == reported[0].target and e.kind is EventKind.LEVEL]
    assert before and before[-1].level in ("critical", "imminent")  # flagged before it went


async def _until(predicate, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.05)


# --- the real process: sd_notify, SIGHUP, SIGTERM, exit 78 ---------------------------


class NotifySocket:
    """A real AF_UNIX datagram socket standing in for systemd's notify socket."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        self.sock.setblocking(False)
        self.messages: list[str] = []

    async def wait_for(self, text: str, timeout: float) -> None:
        loop = asyncio.get_running_loop()
        deadline = time.monotonic() + timeout
        while not any(text in m for m in self.messages):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"no {text!r} from the daemon; got {self.messages}")
            try:
                data = await asyncio.wait_for(loop.sock_recv(self.sock, 4096), remaining)
            except TimeoutError:
                continue
            self.messages.append(data.decode())


async def start_daemon(config: Path, events: Path, notify: NotifySocket):
    env = dict(os.environ, NOTIFY_SOCKET=str(notify.path))
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "monitor.cli", "run", "--config", str(config),
        "--events", str(events), env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip


async def test_daemon_process_refuses_a_bad_reload_and_keeps_monitoring(tmp_path):
    notify = NotifySocket(tmp_path / "notify")
    events_file = tmp_path / "events.jsonl"
    # Speed 2: the whipsaw's 60 s last 30 s of wall time, longer than READY may take
    # (20 s) on a loaded machine; at 4 the market could be over, with no event left to
    # show that monitoring goes on after the refused reload.
    async with SimulatedVenue("whipsaw", speed=2) as venue:
        creds = next(iter(venue.credentials.values()))
        good = {
            "state_dir": str(tmp_path / "state"),
            "daemon": {"poll_interval": 1, "poll_jitter": 0},
            "thresholds": {"cross": {"warn": 0.02, "critical": 0.9}},
            "accounts": [{"name": "sim", "exchange": "binanceusdm", "api_key": creds.api_key,
                          "secret": creds.secret, "rest_url": venue.base_url,
                          "ws_url": venue.ws_url}],
        }  # fmt: skip
        config = tmp_path / "config.yaml"
        config.write_text(yaml.safe_dump(good))
        process = await start_daemon(config, events_file, notify)
        try:
            await notify.wait_for("READY=1", 20)
            config.write_text("accounts:\n  - name: sim\n    exchange: binanceusdm\n    bogus: 1\n")
            process.send_signal(signal.SIGHUP)
            await _until(lambda: b"reload refused" in _read(events_file), 10)
            seen = len(_read(events_file).splitlines())
            await notify.wait_for("STATUS=", 10)
            await _until(lambda: len(_read(events_file).splitlines()) > seen, 20)
            assert process.returncode is None, "daemon died on a bad reload"
            process.send_signal(signal.SIGTERM)
            code = await asyncio.wait_for(process.wait(), 15)
        finally:
            if process.returncode is None:
                process.kill()
                await process.wait()
    stderr = (await process.stderr.read()).decode()
    assert code == 0, stderr
    await notify.wait_for("STOPPING=1", 5)
    refused = [orjson.loads(line) for line in _read(events_file).splitlines()
               if b"reload refused" in line]  # fmt: skip
    assert refused and "accounts[0].bogus" in refused[0]["message"]
    assert creds.secret not in stderr and creds.secret not in _read(events_file).decode()


def _read(path: Path) -> bytes:
    return path.read_bytes() if path.exists() else b""


async def test_invalid_config_exits_78_so_systemd_does_not_restart_loop(tmp_path):
    config = tmp_path / "config.yaml"
    config.write_text("accounts: []\n")
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "monitor.cli", "run", "--config", str(config),
        stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    _, err = await process.communicate()
    assert process.returncode == 78
    assert b"accounts" in err
