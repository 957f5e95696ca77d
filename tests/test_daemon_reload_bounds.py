"""A hostile file sent with SIGHUP to the running daemon: refused, and monitoring goes on.

A fault audit sent a 1 KB file of nested anchors and aliases ("billion laughs") to a
running daemon: it froze (no ticks, no watchdog, metrics stale) at 4 GB. Here the real
process, against the simulator, gets the same file and must refuse it with the line of
the alias, while its tick counter, read from its own /metrics, keeps rising.
"""

from __future__ import annotations

import asyncio
import signal
import socket
import time
import urllib.request
from pathlib import Path

import orjson
import yaml
from prometheus_client.parser import text_string_to_metric_families

from monitor.config import load_config
from monitor.daemon.runner import Runner
from monitor.events import Event, EventKind
from monitor.simulator.runner import SimulatedVenue
from tests.ports import refused_port
from tests.test_daemon_e2e import NotifySocket, start_daemon

LAUGHS = """\
accounts: &a [{name: lol, exchange: bybit}, {name: lol, exchange: bybit}]
b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]
c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]
d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]
e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]
f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e, *e]
g: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f, *f]
h: &h [*g, *g, *g, *g, *g, *g, *g, *g, *g, *g]
i: &i [*h, *h, *h, *h, *h, *h, *h, *h, *h, *h]
"""


class Recorder:
    def __init__(self) -> None:
        self.events: list[Event] = []

    def emit(self, event: Event) -> None:
        self.events.append(event)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def ticks(port: int) -> float:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as reply:
        text = reply.read().decode()
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "marginwatch_ticks_total":
                return sample.value
    return 0.0


async def rising(port: int, timeout: float) -> float:
    """Wait until the daemon's tick counter moves; return where it got to."""
    start = await asyncio.to_thread(ticks, port)
    deadline = time.monotonic() + timeout
    while (now := await asyncio.to_thread(ticks, port)) <= start:
        assert time.monotonic() < deadline, f"ticks stuck at {start}"
        await asyncio.sleep(0.2)
    return now


async def test_a_billion_laughs_reload_is_refused_and_ticks_go_on(tmp_path: Path) -> None:
    notify = NotifySocket(tmp_path / "notify")
    events = tmp_path / "events.jsonl"
    metrics_port = free_port()
    async with SimulatedVenue("whipsaw", speed=4) as venue:
        creds = next(iter(venue.credentials.values()))
        good = {
            "state_dir": str(tmp_path / "state"),
            "daemon": {"poll_interval": 1, "poll_jitter": 0},
            "metrics": {"port": metrics_port},
            "accounts": [{"name": "sim", "exchange": "binanceusdm", "api_key": creds.api_key,
                          "secret": creds.secret, "rest_url": venue.base_url,
                          "ws_url": venue.ws_url}],
        }  # fmt: skip
        config = tmp_path / "config.yaml"
        config.write_text(yaml.safe_dump(good))
        process = await start_daemon(config, events, notify)
        try:
            await notify.wait_for("READY=1", 30)
            await rising(metrics_port, 10)
            config.write_text(LAUGHS)
            process.send_signal(signal.SIGHUP)
            deadline = time.monotonic() + 10
            while b"reload refused" not in (events.read_bytes() if events.exists() else b""):
                assert time.monotonic() < deadline, "no refusal"
                await asyncio.sleep(0.1)
            await rising(metrics_port, 10)  # still ticking after the refusal
            assert process.returncode is None, "the daemon died on the reload"
            process.send_signal(signal.SIGTERM)
            code = await asyncio.wait_for(process.wait(), 15)
        finally:
            if process.returncode is None:
                process.kill()
                await process.wait()
    assert code == 0
    refused = [orjson.loads(line) for line in events.read_bytes().splitlines()
               if b"reload refused" in line]  # fmt: skip
    assert "billion laughs" in refused[0]["message"]
    # expanded by hand: a = 1 + 2 x 5 = 11 values, d = 11,111; before line 5's list the
    # running count is 12,349, and its 8th alias *d takes it to 101,239 > 100,000
    assert "at alias *d" in refused[0]["message"]
    assert "(config.yaml:5)" in refused[0]["message"]


async def test_a_reload_to_an_unusable_state_dir_is_refused_before_anything_stops(
    tmp_path: Path,
) -> None:
    rest_url = f"http://127.0.0.1:{refused_port()}"
    account = {"name": "a", "exchange": "binanceusdm", "api_key": "test-key",
               "secret": "test-secret", "rest_url": rest_url}  # fmt: skip
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({"state_dir": str(tmp_path / "state"), "accounts": [account]}))
    sink = Recorder()
    runner = Runner(config, load_config(config), extra_sinks=[sink], use_plugins=False)
    running = runner.daemon
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    config.write_text(yaml.safe_dump({"state_dir": str(blocker), "accounts": [account]}))
    try:
        assert await runner.reload() is False
        assert runner.daemon is running  # never stopped for a configuration it cannot run
    finally:
        await runner.daemon.stop()
    (refused,) = [e for e in sink.events if e.kind is EventKind.CONFIG]
    assert "state_dir: unusable:" in refused.message and "is not a directory" in refused.message
