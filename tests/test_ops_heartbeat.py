"""A monitor of the monitor: the push heartbeat and /healthz, over real HTTP on loopback.

A push monitor (healthchecks.io, Uptime Kuma) is stood in for by an aiohttp server that
records each request, the way those services do: the GET is the signal, its path names
the check, "/fail" (or ?status=down) says unhealthy.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import urllib.error
import urllib.request
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import orjson
from aiohttp import web

from monitor.config import Config
from monitor.daemon.runner import Runner
from monitor.ops.health import Health
from monitor.ops.heartbeat import Heartbeat, redacted
from monitor.ops.metrics import Metrics
from monitor.simulator.http import LocalServer
from monitor.simulator.runner import SimulatedVenue
from tests.test_alerts_e2e import until

CHECK = "3f1c0c6e-5a1e-4b7e-9d1a-8c2f7d4e9b10"
"""The secret part of a push URL, as healthchecks.io hands them out."""


@asynccontextmanager
async def push_monitor() -> AsyncIterator[tuple[list[str], str]]:
    """(paths requested, base URL): a push monitor's receiving end."""
    seen: list[str] = []

    async def ping(request: web.Request) -> web.Response:
        seen.append(request.path_qs)
        return web.Response(text="OK")

    app = web.Application()
    app.router.add_get("/{tail:.*}", ping)
    server = await LocalServer(app).start()
    try:
        yield seen, server.base_url
    finally:
        await server.stop()


async def test_pings_while_healthy_fail_while_not_and_never_logs_the_secret(caplog) -> None:
    caplog.set_level(logging.DEBUG)
    healthy: list[bool | None] = [None]  # starting: neither ok nor failing
    async with push_monitor() as (seen, base):
        beat = Heartbeat(
            f"{base}/{CHECK}", 0.05, lambda: healthy[0], fail_url=f"{base}/{CHECK}/fail"
        )
        task = asyncio.create_task(beat.run())
        await asyncio.sleep(0.3)
        assert seen == []  # a slow start must not page as a failure
        healthy[0] = True
        await until(lambda: len(seen) >= 3, 5, "three pings")
        healthy[0] = False
        await until(lambda: f"/{CHECK}/fail" in seen, 5, "a fail ping")
        healthy[0] = True
        count = len(seen)
        await until(lambda: len(seen) >= count + 2, 5, "pings again")
        task.cancel()
    fails = [i for i, path in enumerate(seen) if path.endswith("/fail")]
    assert fails and all(seen[i] == f"/{CHECK}" for i in range(fails[0]))
    assert seen[-1] == f"/{CHECK}"
    assert CHECK not in caplog.text
    assert "withheld: unhealthy" in caplog.text and "resumed" in caplog.text


async def test_without_a_fail_url_an_unhealthy_daemon_is_silent_and_a_dead_receiver_is_no_error(
    caplog,
) -> None:
    healthy = [False]
    async with push_monitor() as (seen, base):
        beat = Heartbeat(f"{base}/{CHECK}?status=up", 0.05, lambda: healthy[0])
        task = asyncio.create_task(beat.run())
        await asyncio.sleep(0.3)
        assert seen == []  # silence is the signal
        healthy[0] = True
        await until(lambda: seen, 5, "a ping")
        assert seen[0] == f"/{CHECK}?status=up"
    await asyncio.sleep(0.2)  # the receiver is gone: failures are logged, the task lives on
    assert not task.done()
    task.cancel()
    assert "heartbeat to http://127.0.0.1" in caplog.text and CHECK not in caplog.text


def test_redacted_keeps_scheme_and_host_only() -> None:
    assert redacted(f"https://hc-ping.com/{CHECK}/fail") == "https://hc-ping.com/…"
    assert redacted("https://user:pw@kuma.example:3001/api/push/t0k?status=up") == (
        "https://kuma.example:3001/…"
    )


def healthz(port: int) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as response:
            return response.status, orjson.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, orjson.loads(error.read())


def test_healthz_answers_200_while_healthy_503_when_not_or_stalled() -> None:
    now = [100.0]
    health = Health(max_age=15.0, clock=lambda: now[0])
    with Metrics().start_http(0, health=health) as server:
        assert healthz(server.port) == (503, {"status": "starting", "summary": "no evaluation yet"})
        health.report(True, "2 accounts, 1/1 feeds live, worst level ok")
        status, body = healthz(server.port)
        assert status == 200 and body["status"] == "ok" and "2 accounts" in body["summary"]
        health.report(False, "2 accounts, 0/1 feeds live, worst level ok, 1 BLIND")
        assert healthz(server.port)[0] == 503
        health.report(True, "fine again")
        now[0] += 16.0  # the loop stopped reporting: a wedged loop is not healthy
        status, body = healthz(server.port)
        assert (status, body["status"]) == (503, "stalled")
        with urllib.request.urlopen(f"http://127.0.0.1:{server.port}/metrics") as response:
            assert response.status == 200 and b"marginwatch_" in response.read()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def test_the_daemon_pings_and_serves_healthz_while_running_and_falls_silent_when_stopped(
    tmp_path: Path,
) -> None:
    port = free_port()
    async with push_monitor() as (seen, base), SimulatedVenue("calm", speed=1) as venue:
        accounts = [
            {"name": name, "exchange": "binanceusdm", "api_key": c.api_key, "secret": c.secret,
             "rest_url": venue.base_url, "ws_url": venue.ws_url}
            for name, c in venue.credentials.items()
        ]  # fmt: skip
        config = Config.model_validate({
            "state_dir": str(tmp_path / "state"),
            "daemon": {"poll_interval": 1, "poll_jitter": 0, "heartbeat_url": f"{base}/{CHECK}",
                       "heartbeat_interval": 1},
            "metrics": {"port": port},
            "notifiers": {"console": False},
            "accounts": accounts,
        })  # fmt: skip
        runner = Runner(tmp_path / "config.yaml", config, use_plugins=False)
        task = asyncio.create_task(runner.run())
        try:
            await until(lambda: len(seen) >= 2, 15, "two heartbeats")
            status, body = await asyncio.to_thread(healthz, port)
            assert status == 200 and body["status"] == "ok", body
            assert runner.metrics.registry.get_sample_value("marginwatch_healthy") == 1
        finally:
            runner.stopping.set()
            await asyncio.wait_for(task, 15)
        count = len(seen)
        await asyncio.sleep(1.5)
    assert seen[:count] == [f"/{CHECK}"] * count
    assert len(seen) == count  # dead: no more pings, and the push monitor pages
