"""A quiet, polite command line: --version, validated flags, Ctrl-C without a traceback,
INFO logs an operator wants, and `sim` saying what the market does as it plays.

Ctrl-C is a real SIGINT sent to a real `marginwatch` process once it is visibly at work
(its banner printed, or its first request arrived at a server of the test's own).
"""

from __future__ import annotations

import asyncio
import signal
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib.metadata import version
from pathlib import Path

import pytest

from monitor.cli import main
from monitor.simulator.runner import SimulatedVenue
from monitor.simulator.scenario import parse_scenario
from tests.e2e import write_config

SHORT = """
seed: 3
symbols:
  BTCUSDT: {start: 65000}
  AVAXUSDT:
    start: 35
    segments: [{duration: 1s}, {duration: 2s, jumps: [{at: 1s, size: -0.3}]}]
segments: [{duration: 2s}, {duration: 1s}]
accounts:
  - name: bet
    balances: {USDT: 100}
    positions:
      - {symbol: AVAXUSDT, side: long, size: 200, margin_mode: isolated, leverage: 5}
"""


def test_version_names_the_installed_package(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0
    assert capsys.readouterr().out.strip() == f"marginwatch {version('marginwatch')}"


@pytest.mark.parametrize(
    ("argv", "flag"),
    [
        (["demo", "--speed", "0"], "--speed"),
        (["demo", "--speed", "-2"], "--speed"),
        (["demo", "--speed", "nan"], "--speed"),
        (["demo", "--speed", "fast"], "--speed"),
        (["drill", "--config", "c.yaml", "--scenario", "calm", "--speed", "0"], "--speed"),
        (["drill", "--config", "c.yaml", "--suite", "--reserve", "-5"], "--reserve"),
        (["drill", "--config", "c.yaml", "--suite", "--reserve", "inf"], "--reserve"),
        (["sim", "--scenario", "calm", "--speed", "inf"], "--speed"),
        (["sim", "--scenario", "calm", "--port", "70000"], "--port"),
        (["sim", "--scenario", "calm", "--port", "-1"], "--port"),
        (["telegram", "test", "--config", "c.yaml", "--timeout", "0"], "--timeout"),
    ],
)
def test_a_bad_flag_is_a_clear_error_with_status_2(
    argv: list[str], flag: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert f"argument {flag}: must be" in err
    assert "Traceback" not in err


def test_an_unknown_scenario_is_refused_before_anything_starts(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["demo", "--scenario", "no-such-crash"])
    assert exit_.value.code == 78
    err = capsys.readouterr().err
    assert "unknown scenario 'no-such-crash'; built-in: calm, " in err


# -- sim says what it plays --------------------------------------------------------------


def test_sim_prints_each_phase_and_each_liquidation_as_it_plays(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "short.yaml"
    path.write_text(SHORT)
    assert main(["sim", "--scenario", str(path), "--speed", "50"]) == 0
    out = capsys.readouterr().out
    played = out.split("Playing 3s simulated:\n")[1]
    lines = played.splitlines()
    # Phases are the shared segments, 2 s + 1 s (AVAX's own path does not count).
    assert lines[0] == "    0s  phase 1/2, calm (to 2s): BTCUSDT 65,000.0  AVAXUSDT 35.000"
    # AVAX 200 long at 35, 5x: isolated wallet 1,400. A -30 % jump to ~24.5 loses
    # 200 x 10.5 = 2,100 > 1,400: the bet is liquidated at 2 s, when the jump lands.
    assert "    2s  phase 2/2, calm (to the end at 3s): " in played
    assert "    2s  bet: LIQUIDATED AVAXUSDT 200 at " in played
    assert "    3s  end: BTCUSDT 65,000.0  AVAXUSDT " in played
    assert all(len(line) <= 80 for line in out.splitlines() if "phase" in line)


# -- Ctrl-C ----------------------------------------------------------------------------


@asynccontextmanager
async def silent_server() -> AsyncIterator[tuple[int, asyncio.Event]]:
    """A TCP server that accepts and never answers: a command reading it is mid-request."""
    connected = asyncio.Event()
    held: list[asyncio.StreamWriter] = []

    async def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)
        connected.set()

    server = await asyncio.start_server(accept, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1], connected
    finally:
        for writer in held:
            writer.close()
        server.close()
        await server.wait_closed()


async def interrupt(args: list[str], ready: str | asyncio.Event) -> tuple[int, str]:
    """Start `marginwatch ARGS`, wait until it is at work, SIGINT it; (status, output)."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "monitor.cli", *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    assert process.stdout is not None
    seen = b""
    async with asyncio.timeout(30):
        if isinstance(ready, str):
            while ready.encode() not in seen:
                chunk = await process.stdout.read(4096)
                assert chunk, f"ended before {ready!r}:\n{seen.decode()}"
                seen += chunk
        else:
            await ready.wait()
        process.send_signal(signal.SIGINT)
        rest, _ = await process.communicate()
    assert process.returncode is not None
    return process.returncode, (seen + rest).decode()


async def test_ctrl_c_in_demo_exits_130_without_a_traceback() -> None:
    code, output = await interrupt(["demo", "--speed", "5"], "marginwatch demo")
    assert code == 130, output
    assert "Traceback" not in output
    assert "marginwatch: interrupted" in output


async def test_ctrl_c_in_drill_exits_130_without_a_traceback(tmp_path: Path) -> None:
    config = write_config(tmp_path / "c.yaml", [{"name": "a", "exchange": "binanceusdm"}])
    code, output = await interrupt(
        ["drill", "--config", str(config), "--scenario", "flash-crash", "--speed", "5"],
        "marginwatch drill",
    )
    assert code == 130, output
    assert "Traceback" not in output


async def test_ctrl_c_in_sim_exits_130_without_a_traceback() -> None:
    code, output = await interrupt(["sim", "--scenario", "calm"], "Playing")
    assert code == 130, output
    assert "Traceback" not in output
    assert "marginwatch sim: interrupted" in output


async def test_ctrl_c_in_status_exits_130_without_a_traceback(tmp_path: Path) -> None:
    async with silent_server() as (port, connected):
        account = {"name": "a", "exchange": "binanceusdm", "rest_url": f"http://127.0.0.1:{port}"}
        config = write_config(tmp_path / "c.yaml", [account])
        code, output = await interrupt(["status", "--config", str(config)], connected)
    assert code == 130, output
    assert "Traceback" not in output


async def test_run_stops_on_ctrl_c_with_130_and_an_info_log_an_operator_wants(
    tmp_path: Path,
) -> None:
    async with SimulatedVenue(parse_scenario(SHORT.replace("-0.3", "-0.01")), speed=0.5) as venue:
        credentials = venue.credentials["bet"]
        account = {
            "name": "bet", "exchange": "binanceusdm", "api_key": credentials.api_key,
            "secret": credentials.secret, "rest_url": venue.base_url, "ws_url": venue.ws_url,
        }  # fmt: skip
        config = write_config(tmp_path / "c.yaml", [account])
        code, output = await interrupt(["run", "--config", str(config)], "first evaluation done")
    assert code == 130, output
    assert "Traceback" not in output
    lines = output.splitlines()
    assert not [line for line in lines if "apscheduler" in line], output
    assert any("INFO monitor.daemon.runner: stopping on SIGINT" in line for line in lines)
    stopped = [line for line in lines if "mark feed down: stopped" in line]
    assert stopped and all(" INFO " in line for line in stopped), output
    assert not [line for line in lines if " WARNING " in line or " ERROR " in line], output


def test_an_events_file_that_cannot_be_written_is_refused_at_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    with pytest.raises(SystemExit) as exit_:
        main(["run", "--config", "c.yaml", "--events", str(blocker / "events.jsonl")])
    assert exit_.value.code == 2
    assert f"argument --events: cannot write {blocker}/events.jsonl: " in capsys.readouterr().err
    assert main(["snapshot", "--config", "c.yaml", "--account", "a",
                 "--out", str(blocker / "book.yaml")]) == 78  # fmt: skip
    assert "cannot write" in capsys.readouterr().err


HELP = [[], ["status"], ["run"], ["demo"], ["drill"], ["snapshot"], ["stress"], ["sim"],
        ["venues"], ["telegram"], ["telegram", "setup"], ["telegram", "test"]]  # fmt: skip


@pytest.mark.parametrize("command", HELP, ids=[" ".join(c) or "marginwatch" for c in HELP])
def test_help_reads_at_80_columns(
    command: list[str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("COLUMNS", "80")
    with pytest.raises(SystemExit) as exit_:
        main([*command, "--help"])
    assert exit_.value.code == 0
    text = capsys.readouterr().out
    assert [line for line in text.splitlines() if len(line) > 80] == []
    if not command:  # one line per command in the listing: nothing wraps under it
        listing = text.split("\n  COMMAND\n", 1)[1].split("\n\n")[0].splitlines()
        # status run demo drill snapshot stress sim venues telegram
        assert len(listing) == 9, listing
        assert all(not line.startswith(" " * 6) for line in listing), text
