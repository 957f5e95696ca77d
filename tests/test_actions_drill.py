"""`marginwatch drill` as the proof: its JSON, its suite, its verdict, its equity.

Real runs go over loopback against the simulator, as fast as the checks allow. Expected
figures are derived by hand from the scenarios (comments say how).
"""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path

import orjson
import pytest
from rich.console import Console

from monitor.cli import main
from monitor.config import Config
from monitor.drill import (
    Drill,
    Outcome,
    Request,
    Run,
    Timed,
    builtin_scenarios,
    flaps,
    largest_move,
    outcome,
    rehearse_suite,
    render,
    report,
    suite_markdown,
    suite_table,
    verdict,
    with_reserve,
)
from monitor.events import Event, EventKind, TargetKind
from monitor.simulator.binance_usdm.transfers import transfer
from monitor.simulator.build import build_exchange
from monitor.simulator.scenario import builtin_names, parse_scenario
from tests.test_actions_sim import CUT, STILL

KEYS = {"cross", "equity", "liquidated", "closed_by_us", "positions", "orders", "transfers",
        "transferred", "realized_pnl", "fees", "pages"} - {"cross"}  # fmt: skip


def write_config(path: Path, actions: dict) -> Path:
    path.write_bytes(
        orjson.dumps(
            {
                "daemon": {"poll_interval": 1, "poll_jitter": 0},
                "actions": actions,
                "accounts": [{"name": "real", "exchange": "binanceusdm"}],
            }
        )
    )
    return path


@pytest.fixture
def root_logging():
    """The command configures logging for the process; later tests keep theirs."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def test_json_of_a_real_drill_counts_the_reserve_and_our_order(tmp_path, capsys, root_logging):
    """STILL (tests/test_actions_sim.py): 0.5 BTC long at 60,000 on a 1,000 USDT wallet,
    critical, in a market that never moves. CUT reduces it once. With a 500 USDT reserve
    the run left alone ends at 1,000 + 500 = 1,500.00 exactly (no PnL, no funding), and
    the acting run at 1,500 less the taker fee of its cut, 0.05 % of what it sold."""
    scenario = tmp_path / "still.yaml"
    scenario.write_text(STILL.format(wallet=1000).replace("600s", "6s"))
    config = write_config(tmp_path / "config.json", CUT)
    argv = ["drill", "--config", str(config), "--scenario", str(scenario), "--json"]
    assert main([*argv, "--speed", "3", "--reserve", "500"]) == 0
    document = orjson.loads(capsys.readouterr().out)
    assert document["scenario"] == str(scenario)
    assert set(document["runs"]) == {"off", "actions"}
    off = document["runs"]["off"]["accounts"]["lev"]
    acted = document["runs"]["actions"]["accounts"]["lev"]
    assert set(off) == set(acted) == KEYS
    assert off["equity"] == pytest.approx(1500.0)
    assert off["positions"] == {"BTC/USDT:USDT": 0.5}
    assert (off["orders"], off["fees"], off["liquidated"], off["closed_by_us"]) == (0, 0, [], [])
    assert acted["orders"] == 1 and acted["liquidated"] == []
    sold = 0.5 - acted["positions"]["BTC/USDT:USDT"]
    assert 0 < sold < 0.5
    assert acted["fees"] == pytest.approx(sold * 60_000 * 0.0005)
    assert acted["equity"] == pytest.approx(1500.0 - acted["fees"])
    assert acted["realized_pnl"] == pytest.approx(0.0)  # sold at the entry price
    assert (acted["transfers"], acted["transferred"]) == (0, 0.0)
    assert isinstance(acted["pages"], int) and isinstance(off["pages"], int)
    assert off["pages"] >= 1  # critical from the first read, said at least once


def test_equity_counts_the_reserve_and_a_transfer_moves_it_without_changing_it():
    """1,000 in futures (a BTC long at its entry: no PnL) and 5,000 in spot: 6,000. A
    1,500 transfer into futures leaves 6,000, counted once as a transfer of 1,500."""
    scenario = with_reserve(parse_scenario(STILL.format(wallet=1000)), 5000)
    exchange = build_exchange(scenario)
    (account,) = exchange.accounts.values()
    before = outcome(exchange, account, pages=None)
    assert before.equity == pytest.approx(6000.0)
    assert (before.transfers, before.transferred) == (0, 0.0)
    transfer(exchange, account, {"type": "MAIN_UMFUTURE", "asset": "USDT", "amount": "1500"})
    after = outcome(exchange, account, pages=None)
    assert after.equity == pytest.approx(6000.0)
    assert (after.transfers, after.transferred) == (1, 1500.0)
    assert account.spot["USDT"] == pytest.approx(3500.0)


async def test_the_suite_plays_every_builtin_scenario_without_a_flap(tmp_path):
    """Every built-in scenario at once, each squeezed into a few seconds, with the
    default thresholds: no target may page critical, drop, and page critical again
    within a minute of the scenario's time (the hysteresis of monitor/engine/levels.py)."""
    config = Config.model_validate(
        {
            "state_dir": str(tmp_path / "never-used"),
            "actions": {"mode": "dry_run"},
            "accounts": [{"name": "real", "exchange": "binanceusdm"}],
        }
    )
    drills = await rehearse_suite(
        builtin_scenarios(), None, config.accounts[0], config, wall_seconds=8
    )
    assert [d.scenario for d in drills] == builtin_names()
    for drill in drills:
        for run in (drill.actions, drill.off):
            assert run.accounts, drill.scenario
            assert not flaps(run), (drill.scenario, run.label, flaps(run))
    levels = [t.event for d in drills for t in d.off.events if t.event.kind.value == "level"]
    assert any(e.level == "critical" for e in levels)  # the suite does reach critical
    request = Request(builtin_scenarios(), None, suite=True, output="json")
    console = Console(record=True, width=80)
    report(drills, request, source=config.accounts[0], console=console, took=1.0)
    document = orjson.loads(console.export_text())
    assert [d["scenario"] for d in document] == builtin_names()
    for one in document:
        for run in one["runs"].values():
            assert all(set(a) == KEYS for a in run["accounts"].values())
    markdown = suite_markdown(drills, "heading").splitlines()
    assert markdown[2].startswith("| scenario | liquidations off | liquidations auto |")
    assert len(markdown) == 4 + len(drills)
    assert not (tmp_path / "never-used").exists()


def _outcome(**figures) -> Outcome:
    base = dict(equity=0.0, liquidated=[], closed_by_us=[], positions={}, orders=0,
                transfers=0, transferred=0.0, realized_pnl=0.0, fees=0.0, pages=3)  # fmt: skip
    return Outcome(**{**base, **figures})


def crash_drill() -> Drill:
    """Left alone, AVAX is liquidated (equity 4,840.06); in auto, marginwatch closed it
    first, paid 1.75 in fees over 2 orders and moved 1,500 from the reserve, and ends at
    5,512.34: 672.28 better."""
    alone = _outcome(
        equity=4840.06, liquidated=["AVAX/USDT:USDT"], realized_pnl=-875.0,
        positions={"BTC/USDT:USDT": 0.5, "SOL/USDT:USDT": -80.0}, pages=6,
    )  # fmt: skip
    acted = _outcome(
        equity=5512.34, closed_by_us=["AVAX/USDT:USDT"], realized_pnl=-203.4, orders=2,
        fees=1.75, transfers=1, transferred=1500.0,
        positions={"BTC/USDT:USDT": 0.5, "SOL/USDT:USDT": -80.0}, pages=4,
    )  # fmt: skip
    return Drill("flash-crash", 2.0, Run("auto", accounts={"hybrid": acted}),
                 Run("off", accounts={"hybrid": alone}))  # fmt: skip


def test_the_verdict_says_what_was_avoided_what_it_cost_and_why():
    lines = verdict(crash_drill())
    assert lines[:3] == [
        ("hybrid", "auto avoided 1 of 1 liquidation(s)"),
        ("equity", "5,512.34 vs 4,840.06 off (+672.28)"),
        ("cost", "2 order(s), fees 1.75, 1 reserve transfer(s) of 1,500.00; pages 4 vs 6 off"),
    ]
    why = "\n".join(text for heading, text in lines[3:] if heading == "why")
    assert "AVAX/USDT:USDT liquidated when left alone; closed by marginwatch first" in why
    assert "realized PnL -203.40 vs -875.00 off" in why


def test_the_text_fits_80_columns_without_splitting_a_number():
    console = Console(record=True, width=80)
    render(crash_drill(), console)
    longest = replace(crash_drill(), scenario="squeeze-short-book")
    console.print(suite_table([crash_drill(), longest]))
    text = console.export_text()
    assert "squeeze-short-book" in text and "…" not in text
    assert all(len(line) <= 80 for line in text.splitlines())
    for number in ("5,512.34", "4,840.06", "+672.28", "1,500.00", "-203.40", "-875.00"):
        assert number in text, number


def test_a_liquidation_in_auto_names_the_move_that_beat_the_defense():
    """A still BTC that gaps -6 % at 15 s (the jump at 5 s into the second segment): the
    largest one-tick move in the 3 s before a liquidation at 16 s is that gap."""
    scenario = parse_scenario(
        STILL.format(wallet=1000).replace(
            "  - {duration: 600s}",
            "  - {duration: 10s}\n  - {duration: 10s, jumps: [{at: 5s, size: -0.06}]}",
        )
    )
    move, at = largest_move(scenario, "BTCUSDT", 16.0)
    assert (move, at) == (pytest.approx(-0.06), 15.0)
    drill = crash_drill()
    acted = replace(drill.actions.accounts["hybrid"], liquidated=["AVAX/USDT:USDT"],
                    closed_by_us=[])  # fmt: skip
    beaten = replace(
        drill,
        actions=Run("auto", accounts={"hybrid": acted}),
        gaps={("hybrid", "AVAX/USDT:USDT"): (-0.06, 32.0)},
    )
    why = [text for heading, text in verdict(beaten) if heading == "why"]
    assert (
        "AVAX/USDT:USDT liquidated in both runs: the defense did not save it (largest "
        "one-tick move before it: -6.00 % at 32 s)"
    ) in why


def test_a_flap_is_a_paged_drop_not_the_legs_of_one_liquidation_passing_by():
    """critical -> warn for 5 s -> critical is a flap; critical -> warn for 5 ms ->
    critical (one liquidation's legs closing one by one, inside the alerts' 2 s group
    window, so never paged) is not."""

    def level(at: float, target: str, level: str) -> Timed:
        event = Event(EventKind.LEVEL, "acct", target, TargetKind.POOL, level=level)
        return Timed(at, event)

    run = Run("auto")
    run.events = [
        level(10.0, "pool USDT", "critical"),
        level(20.0, "pool USDT", "warn"),
        level(25.0, "pool USDT", "critical"),
        level(30.0, "pool USDC", "critical"),
        level(40.919, "pool USDC", "warn"),
        level(40.924, "pool USDC", "critical"),
    ]
    assert flaps(run) == [("acct", "pool USDT", 20.0, 25.0)]
