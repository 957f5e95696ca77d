"""Fast start: what a command loads before it does anything, and when READY is said.

`marginwatch --help` (and every subcommand's --help) must answer without importing the
libraries of the work it describes: ccxt (an exchange), aiohttp (the simulator),
python-telegram-bot (paging), matplotlib (`/chart`), numpy and pydantic. Checked in a fresh
interpreter, since this test process has long since imported all of them.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys

import pytest

from monitor.daemon import service
from monitor.daemon.service import Daemon
from monitor.events import Event
from monitor.simulator.runner import SimulatedVenue
from tests.test_daemon_e2e import config_for

HEAVY = ("ccxt", "aiohttp", "telegram", "matplotlib", "numpy", "pydantic")

PROBE = """
import contextlib, io, sys
from monitor.cli import main
with contextlib.redirect_stdout(io.StringIO()) as out, contextlib.suppress(SystemExit):
    main(sys.argv[1:])
print(out.getvalue())
print("modules:", " ".join(sorted({name.split(".")[0] for name in sys.modules})))
"""


@pytest.mark.parametrize(
    "argv",
    [
        ["--help"],
        ["--version"],
        ["run", "--help"],
        ["status", "--help"],
        ["sim", "--help"],
        ["drill", "--help"],
        ["telegram", "setup", "--help"],
    ],
    ids=" ".join,
)
def test_help_loads_no_heavy_library(argv: list[str]) -> None:
    probe = subprocess.run(
        [sys.executable, "-c", PROBE, *argv], capture_output=True, text=True, timeout=60
    )
    assert probe.returncode == 0, probe.stderr
    answer, _, modules = probe.stdout.rpartition("modules:")
    assert "marginwatch" in answer  # usage, or the version
    loaded = set(modules.split())
    assert "monitor" in loaded
    assert loaded.isdisjoint(HEAVY), sorted(loaded & set(HEAVY))


@pytest.mark.parametrize(
    "module",
    ["monitor.report", "monitor.render", "monitor.config", "monitor.engine.book",
     "monitor.events", "monitor.simulator.cli", "alerts.cli"],
)  # fmt: skip
def test_modules_that_touch_no_exchange_load_no_exchange_library(module: str) -> None:
    """Exit statuses, verdicts, screens, configuration and the engine are wanted before
    (or without) any exchange: ccxt, aiohttp and Telegram come with the first request."""
    probe = subprocess.run(
        [sys.executable, "-c", f"import sys, {module}; print(' '.join(sys.modules))"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert probe.returncode == 0, probe.stderr
    loaded = {name.split(".")[0] for name in probe.stdout.split()}
    assert loaded.isdisjoint({"ccxt", "aiohttp", "telegram", "matplotlib"}), module


def test_the_alerts_plugin_leaves_matplotlib_for_the_first_chart() -> None:
    """The daemon loads the alerts plugin (console included) at start; /chart is rare."""
    probe = subprocess.run(
        [sys.executable, "-c",
         "import sys, alerts.plugin, alerts.console.commands; print('matplotlib' in sys.modules)"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert probe.returncode == 0, probe.stderr
    assert probe.stdout.strip() == "False"


async def test_first_evaluation_does_not_wait_for_the_staleness_watch(tmp_path, monkeypatch):
    """READY (systemd) follows `first_evaluation`: it must be set by the evaluation itself.
    The staleness watch is pushed an hour away, so only the evaluation can set it."""
    monkeypatch.setattr(service, "WATCHDOG_PERIOD", 3600.0)
    events: list[Event] = []
    async with SimulatedVenue("calm", speed=1) as venue:
        daemon = Daemon(config_for(venue, tmp_path), events.append)
        await daemon.start()
        try:
            await asyncio.wait_for(daemon.first_evaluation.wait(), 15)
            assert any(m.evaluated for m in daemon.monitors)
        finally:
            await daemon.stop()
