"""The Alertmanager notifier against a real Alertmanager on 127.0.0.1.

The test starts the Debian package's `prometheus-alertmanager` with a minimal config: one
route to a webhook receiver that the test itself runs on loopback and that records what
Alertmanager delivers. Two marginwatch replicas (two in-process daemons with their own
state, same configuration) watch the same simulated crash and both send their alerts, to
one Alertmanager or to both peers of a two-peer cluster (gossip on loopback): either way
the receiver must get one notification for the crash and one for its resolution, each
listing every position once. Without the binary (no apt), the test says so and skips.
"""

from __future__ import annotations

import asyncio
import shutil
import socket
import subprocess
import time
import urllib.request
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml
from aiohttp import web

from alerts.notification import Notification
from alerts.notifiers.alertmanager import alertmanager_alerts
from alerts.storage import StorageHealth
from monitor.config import Config
from monitor.daemon.runner import Runner
from monitor.simulator.http import LocalServer
from monitor.simulator.runner import SimulatedVenue
from monitor.simulator.scenario import parse_scenario
from tests.test_alerts_e2e import BURST, BURST_SCENARIO, SPEED, until

BINARY = shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@asynccontextmanager
async def webhook_receiver() -> AsyncIterator[tuple[list[dict[str, Any]], str]]:
    """What Alertmanager delivers (its webhook payload, version 4), in arrival order."""
    received: list[dict[str, Any]] = []

    async def hook(request: web.Request) -> web.Response:
        received.append(orjson.loads(await request.read()))
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_post("/hook", hook)
    server = await LocalServer(app).start()
    try:
        yield received, f"{server.base_url}/hook"
    finally:
        await server.stop()


@contextmanager
def alertmanager(tmp_path: Path, hook_url: str, peers: int = 1) -> Iterator[list[str]]:
    """Real Alertmanagers on 127.0.0.1, clustered when `peers` > 1 (gossip on loopback,
    short intervals so the cluster settles in a second); yields their base URLs."""
    if BINARY is None:
        pytest.skip(
            "prometheus-alertmanager not installed (apt-get install prometheus-alertmanager)"
        )
    config = {
        "route": {"receiver": "hook", "group_by": ["alertname", "account"],
                  "group_wait": "2s", "group_interval": "2s", "repeat_interval": "1h"},
        "receivers": [{"name": "hook",
                       "webhook_configs": [{"url": hook_url, "send_resolved": True}]}],
    }  # fmt: skip
    (tmp_path / "am.yml").write_text(yaml.safe_dump(config))
    gossip = [free_port() for _ in range(peers)]
    processes, urls = [], []
    try:
        for index in range(peers):
            port = free_port()
            cluster = ["--cluster.listen-address="]
            if peers > 1:
                cluster = [
                    f"--cluster.listen-address=127.0.0.1:{gossip[index]}",
                    *(f"--cluster.peer=127.0.0.1:{p}" for p in gossip if p != gossip[index]),
                    "--cluster.gossip-interval=50ms", "--cluster.pushpull-interval=1s",
                    "--cluster.peer-timeout=2s", "--cluster.settle-timeout=5s",
                ]  # fmt: skip
            log = tmp_path / f"am{index}.log"
            processes.append(subprocess.Popen(
                [BINARY, f"--config.file={tmp_path / 'am.yml'}",
                 f"--storage.path={tmp_path / f'am{index}'}",
                 f"--web.listen-address=127.0.0.1:{port}", *cluster, "--log.level=warn"],
                stdout=subprocess.DEVNULL, stderr=log.open("wb"),
            ))  # fmt: skip
            urls.append(f"http://127.0.0.1:{port}")
        for process, base, index in zip(processes, urls, range(peers), strict=True):
            _wait_ready(process, base, tmp_path / f"am{index}.log")
        yield urls
    finally:
        for process in processes:
            process.terminate()
            process.wait(10)


def _wait_ready(process: subprocess.Popen[bytes], base: str, log: Path) -> None:
    for _ in range(200):
        try:
            with urllib.request.urlopen(f"{base}/-/ready", timeout=1) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        if process.poll() is not None:
            raise AssertionError(log.read_text())
        time.sleep(0.05)
    raise AssertionError("Alertmanager never became ready")


def replica_config(venue: SimulatedVenue, state: Path, urls: list[str], replica: str) -> Config:
    accounts = [
        {"name": name, "exchange": "binanceusdm", "api_key": c.api_key, "secret": c.secret,
         "rest_url": venue.base_url, "ws_url": venue.ws_url}
        for name, c in venue.credentials.items()
    ]  # fmt: skip
    return Config.model_validate({
        "state_dir": str(state),
        "daemon": {"poll_interval": 1, "poll_jitter": 0},
        "alerts": {"group_wait": "1s"},
        "notifiers": {"console": False, "alertmanager": {
            "url": urls, "instance": "marginwatch-ha", "replica": replica,
            "labels": {"team": "risk"}}},
        "actions": {"mode": "off"},
        "accounts": accounts,
    })  # fmt: skip


@pytest.mark.parametrize("peers", [1, 2], ids=["one-alertmanager", "alertmanager-cluster"])
async def test_two_replicas_page_once_through_alertmanager(tmp_path: Path, peers: int) -> None:
    """Each replica sends every alert to every Alertmanager peer; one Alertmanager
    deduplicates the replicas' alerts, a cluster also its peers' notifications."""
    async with webhook_receiver() as (received, hook_url):
        with alertmanager(tmp_path, hook_url, peers) as am_urls:
            async with SimulatedVenue(parse_scenario(BURST_SCENARIO), speed=SPEED) as venue:
                runners = [
                    Runner(tmp_path / f"{r}.yaml",
                           replica_config(venue, tmp_path / r, am_urls, r))
                    for r in ("replica-a", "replica-b")
                ]  # fmt: skip
                tasks = [asyncio.create_task(r.run()) for r in runners]
                try:
                    await until(lambda: len(received) >= 2, 30, "the crash and its recovery")
                    await asyncio.sleep(4.5)  # two group intervals: a duplicate would be here
                finally:
                    for runner in runners:
                        runner.stopping.set()
                    await asyncio.wait_for(asyncio.gather(*tasks), 15)
            sent = [p.outbox.stats.delivered for r in runners for p in r.plugins]
    assert sent == [2 * peers, 2 * peers]  # each replica sent both pages to every peer
    crash, recovery = received
    assert [len(received)] == [2], received
    assert crash["status"] == "firing" and recovery["status"] == "resolved"
    targets = {f"{s.removesuffix('USDT')}/USDT:USDT long isolated" for s in BURST}
    for payload, status in ((crash, "firing"), (recovery, "resolved")):
        alerts = payload["alerts"]
        assert sorted(a["labels"]["target"] for a in alerts) == sorted(targets)  # once each
        for alert in alerts:
            assert alert["status"] == status
            assert alert["labels"] == {
                "alertname": "MarginLevel", "account": "burst", "target": alert["labels"]["target"],
                "exchange": "binanceusdm", "instance": "marginwatch-ha", "level": "critical",
                "severity": "critical", "team": "risk",
            }  # fmt: skip
            assert alert["annotations"]["replica"] in ("replica-a", "replica-b")
            assert alert["annotations"]["summary"].startswith(f"burst {alert['labels']['target']}")
    assert "CRITICAL (new)" in crash["alerts"][0]["annotations"]["description"]


def test_an_escalation_resolves_the_level_left_and_fires_the_level_entered() -> None:
    """One alert per (target, level), like one Prometheus rule per severity."""
    notification = Notification(
        "n1", "main", ("main",), "critical", "🔴 main · CRITICAL\n...", 1_800_000_000.0,
        "alert", ("pool USDT",), (("pool USDT", "price", "critical", "warn"),),
    )  # fmt: skip
    left, entered = alertmanager_alerts(
        notification, instance="mw", replica="a", labels={}, hold=3600.0, exchanges={}
    )
    assert (left["labels"]["level"], left["endsAt"]) == ("warn", "2027-01-15T08:00:00.000Z")
    assert left["startsAt"] == left["endsAt"]  # resolved now
    assert (entered["labels"]["level"], entered["endsAt"]) == (
        "critical", "2027-01-15T09:00:00.000Z",  # held one hour ahead
    )  # fmt: skip
    assert "exchange" not in entered["labels"]  # unknown: no empty label
    assert entered["annotations"]["summary"] == "main pool USDT: CRITICAL"


def test_the_storage_failure_fires_and_its_end_resolves_it() -> None:
    health = StorageHealth(Path("/var/lib/marginwatch/alerts.sqlite3"), lambda: 1_800_000_000.0)
    failing = health.failed("notification n1", OSError(28, "No space left on device"))
    healed = health.recovered()
    assert failing is not None and healed is not None
    (fired,) = alertmanager_alerts(
        failing, instance="mw", replica="a", labels={}, hold=3600.0, exchanges={}
    )
    (resolved,) = alertmanager_alerts(
        healed, instance="mw", replica="a", labels={}, hold=3600.0, exchanges={}
    )
    assert fired["labels"] == resolved["labels"] == {
        "alertname": "MarginwatchStorage", "target": "storage", "instance": "mw",
        "level": "critical", "severity": "critical",
    }  # fmt: skip
    assert fired["endsAt"] > fired["startsAt"] and resolved["endsAt"] == resolved["startsAt"]
