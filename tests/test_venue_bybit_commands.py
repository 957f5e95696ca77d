"""`--venue bybit` for the commands that play the simulator: `drill` (same `--json`
shape as on Binance), `sim` (its banner and config snippet) and `demo` (at 80x24)."""

from __future__ import annotations

import io
import re

import orjson
import pytest
from rich.console import Console

from monitor.cli import main
from monitor.demo import run_demo
from monitor.simulator.command import serve
from monitor.simulator.scenario import parse_scenario
from tests.test_actions_drill import KEYS, root_logging, write_config
from tests.test_actions_sim import CUT, STILL

__all__ = ["root_logging"]  # the fixture, used by name


def test_drill_on_bybit_prints_the_same_json_as_on_binance(tmp_path, capsys, root_logging):
    """STILL on Bybit: 0.5 BTC long at 60,000, 50x, wallet 1,000. Bybit's MM at the mark
    is 30,000 x 0.5 % + the fee to close 0.5 x 60,000 x (1 - 1/50) x 0.00055 = 16.17, so
    the pool liquidates at 1,000 + 0.5 (P - 60,000) = 0.0025 P + 16.17, P = 58,324.96:
    2.8 % away, critical; CUT reduces it once. With a 500 USDT reserve the run left alone
    ends at 1,000 + 500 = 1,500 exactly, the acting one at 1,500 less Bybit's taker fee
    (0.055 %) on what it sold at 60,000 (no PnL: sold at the entry price)."""
    scenario = tmp_path / "still.yaml"
    scenario.write_text(STILL.format(wallet=1000).replace("600s", "6s"))
    config = write_config(tmp_path / "config.json", CUT)
    argv = ["drill", "--config", str(config), "--scenario", str(scenario), "--json"]
    assert main([*argv, "--speed", "3", "--reserve", "500", "--venue", "bybit"]) == 0
    document = orjson.loads(capsys.readouterr().out)
    assert set(document) == {"scenario", "runs"} and set(document["runs"]) == {"off", "actions"}
    off = document["runs"]["off"]["accounts"]["lev"]
    acted = document["runs"]["actions"]["accounts"]["lev"]
    assert set(off) == set(acted) == KEYS
    assert off["equity"] == pytest.approx(1500.0)
    assert off["positions"] == {"BTC/USDT:USDT": 0.5}
    assert acted["orders"] == 1 and acted["liquidated"] == [] == off["liquidated"]
    sold = 0.5 - acted["positions"]["BTC/USDT:USDT"]
    assert 0 < sold < 0.5
    assert acted["fees"] == pytest.approx(sold * 60_000 * 0.00055)
    assert acted["equity"] == pytest.approx(1500.0 - acted["fees"])
    assert acted["realized_pnl"] == pytest.approx(0.0)


SHORT = """
seed: 1
symbols:
  BTCUSDT: {start: 60000}
segments:
  - {duration: 2s}
accounts:
  - name: uta
    balances: {USDT: 1000}
    reserve: {USDT: 500}
    positions:
      - {symbol: BTCUSDT, side: long, size: 0.1, leverage: 10}
"""


async def test_sim_on_bybit_names_the_venue_and_configures_the_bybit_exchange():
    out = io.StringIO()
    await serve(parse_scenario(SHORT), 20, 0, out, venue="bybit")
    text = out.getvalue()
    assert text.startswith("Simulated Bybit v5 (unified account) on http://127.0.0.1:")
    assert "exchange: bybit" in text and "binance" not in text
    # the reserve sits in Bybit's Funding account, whichever wallet the scenario named
    assert "reserve 500 USDT in funding; the key may transfer it in" in text
    assert all(len(line) <= 80 for line in text.splitlines())


async def test_demo_on_bybit_fits_80x24_and_shows_the_liquidation():
    """flash-crash at 20x: the neglected AVAX bet is liquidated by the simulated Bybit's
    own rule, and the last screen says so on a person's 80x24 terminal. The recording
    holds every frame the live view drew, run together where the cursor moved back up:
    the last screen starts at the last status line."""
    console = Console(
        file=io.StringIO(), record=True, width=80, height=24, color_system=None, force_terminal=True
    )
    assert await run_demo("flash-crash", 20, console, venue_name="bybit") == 0
    text = console.export_text()
    assert "on simulated Bybit v5" in text.splitlines()[0]
    last = list(re.finditer(r"\d\d:\d\d:\d\d  flash-crash 20x  ended", text))[-1]
    screen = text[last.start() :].splitlines()
    assert len(screen) <= 24 and all(len(line) <= 80 for line in screen), text
    [avax] = [line for line in screen if line.startswith("AVAX/USDT long")]
    assert "LIQUIDATED" in avax
    assert any(line.startswith("scenario finished; events:") for line in screen[-3:]), screen


def test_a_leverage_bybit_refuses_is_one_clear_error_before_anything_starts(tmp_path, capsys):
    """125x is within Binance's first BTCUSDT bracket, past Bybit's 100x risk limit."""
    scenario = tmp_path / "lev.yaml"
    scenario.write_text(SHORT.replace("leverage: 10", "leverage: 125"))
    config = write_config(tmp_path / "config.json", CUT)
    for argv in (
        ["sim", "--scenario", str(scenario)],
        ["demo", "--scenario", str(scenario)],
        ["drill", "--config", str(config), "--scenario", str(scenario)],
    ):
        try:
            code = main([*argv, "--venue", "bybit"])
        except SystemExit as exc:  # demo and drill exit from their scenario check
            code = exc.code
        assert code == 78
        error = capsys.readouterr().err
        assert "accounts[0].positions[0].leverage: BTCUSDT allows at most 100x on Bybit" in error
        assert "Traceback" not in error
