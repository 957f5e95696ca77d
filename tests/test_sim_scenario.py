"""Scenario files: validation with located errors, seeded price paths, built-ins, `sim` command."""

from __future__ import annotations

import argparse
import textwrap
from pathlib import Path

import pytest
import yaml

from monitor.config.schema import AccountConfig
from monitor.simulator import command
from monitor.simulator.binance_usdm.accounting import reserve_balance
from monitor.simulator.build import build_exchange
from monitor.simulator.prices import price_ticks
from monitor.simulator.scenario import (
    Scenario,
    ScenarioError,
    builtin_names,
    load_scenario,
    parse_scenario,
)

ACCOUNT = """
accounts:
  - name: trader
    balances: {USDT: 1000}
"""


def scenario(body: str, seed: int = 1) -> Scenario:
    return parse_scenario(f"seed: {seed}\n" + textwrap.dedent(body) + ACCOUNT)


NOISY = """
symbols:
  BTCUSDT: {start: 65000}
  ETHUSDT: {start: 3400}
segments:
  - {duration: 30s, drift: -0.1, volatility: 0.05, jumps: [{at: 10s, size: -0.05}]}
  - {duration: 30s, drift: 0.05, volatility: 0.05}
"""


def path(s: Scenario) -> list[tuple[float, dict[str, float]]]:
    return [(tick.time, tick.marks) for tick in price_ticks(s)]


def test_same_seed_same_path_different_seed_different_path() -> None:
    first = path(scenario(NOISY, seed=7))
    assert len(first) == 60
    assert first == path(scenario(NOISY, seed=7))
    other = path(scenario(NOISY, seed=8))
    assert [m for _, m in other] != [m for _, m in first]


def test_symbol_paths_are_independent_of_other_symbols() -> None:
    """Adding a symbol must not change the others' paths (each has its own generator)."""
    both = path(scenario(NOISY))
    btc_only = path(scenario(NOISY.replace("  ETHUSDT: {start: 3400}\n", "")))
    assert [m["BTCUSDT"] for _, m in both] == [m["BTCUSDT"] for _, m in btc_only]


def test_drift_and_jumps_without_volatility_are_exact() -> None:
    s = scenario(
        """
        tick_seconds: 2
        symbols:
          SOLUSDT: {start: 100}
        segments:
          - {duration: 10s, drift: -0.3, jumps: [{at: 4s, size: -0.5}]}
          - {duration: 500ms}
        """
    )
    ticks = list(price_ticks(s))
    assert [t.time for t in ticks] == [2, 4, 6, 8, 10, 10.5]
    marks = [t.marks["SOLUSDT"] for t in ticks]
    assert marks[0] == pytest.approx(100 * 0.7**0.2, abs=0.01)  # 1/5 of the drift
    assert marks[1] == pytest.approx(100 * 0.7**0.4 * 0.5, abs=0.01)  # the jump at 4 s
    assert marks[4] == pytest.approx(100 * 0.7 * 0.5, abs=0.01)  # whole drift, one jump
    assert marks[5] == marks[4]  # a flat segment


def test_own_segments_replace_shared_ones_and_shorter_paths_hold() -> None:
    s = scenario(
        """
        symbols:
          BTCUSDT: {start: 60000}
          ETHUSDT:
            start: 3000
            funding_rate: 0.0002
            segments: [{duration: 2s, drift: 0.1, funding_rate: -0.001}]
        segments:
          - {duration: 4s, drift: -0.2}
        """
    )
    assert s.duration == 4
    ticks = list(price_ticks(s))
    assert ticks[-1].marks["BTCUSDT"] == pytest.approx(48_000)
    assert [t.marks["ETHUSDT"] for t in ticks][1:] == [3300.0] * 3
    assert [t.funding_rates["ETHUSDT"] for t in ticks] == [-0.001, -0.001, 0.0002, 0.0002]
    assert {t.funding_rates["BTCUSDT"] for t in ticks} == {0.0001}


def test_validation_errors_name_path_and_line() -> None:
    text = textwrap.dedent(
        """\
        seed: 1
        symbols:
          BTCUSDT: {start: 65000}
        segments:
          - duration: 30s
            drift: -1.5
            volatilty: 0.02
          - {duration: soon}
        accounts:
          - name: trader
            balances: {USDT: 1000}
            positions:
              - {symbol: BTCUSDT, side: up, size: 1}
        """
    )
    with pytest.raises(ScenarioError) as caught:
        parse_scenario(text, "bad.yaml")
    problems = caught.value.problems
    assert any(p.startswith("segments[0].drift (bad.yaml:6)") for p in problems), problems
    assert any(p.startswith("segments[0].volatilty (bad.yaml:7): unknown key") for p in problems)
    assert any(p.startswith("segments[1].duration (bad.yaml:8)") for p in problems)
    assert any(p.startswith("accounts[0].positions[0].side (bad.yaml:13)") for p in problems)


def test_cross_field_errors_name_their_path() -> None:
    """Checks across keys run once every key is valid on its own, each at its own path."""
    text = textwrap.dedent(
        """\
        seed: 1
        symbols:
          BTCUSDT: {start: 65000}
          PEPEUSDT: {start: 1}
        segments:
          - {duration: 30s, jumps: [{at: 40s, size: 0.1}]}
        accounts:
          - name: trader
            balances: {USDT: 1000}
            positions:
              - {symbol: ETHUSDT, side: long, size: 1}
              - {symbol: BTCUSDT, side: long, size: 1, leverage: 100}
        """
    )
    with pytest.raises(ScenarioError) as caught:
        parse_scenario(text, "bad.yaml")
    problems = "\n".join(caught.value.problems)
    assert "symbols.PEPEUSDT (bad.yaml:4): unknown symbol" in problems
    assert "segments[0].jumps[0].at (bad.yaml:6): after the segment's end" in problems
    assert "accounts[0].positions[0].symbol (bad.yaml:11): not listed under symbols" in problems
    duplicate = text.replace("ETHUSDT, side: long", "BTCUSDT, side: short").replace("PEPE", "ETH")
    with pytest.raises(ScenarioError, match=r"accounts\[0\] \(bad.yaml:8\): BTCUSDT appears twice"):
        parse_scenario(duplicate.replace("at: 40s", "at: 4s"), "bad.yaml")


RESERVES = """
seed: 2
symbols: {BTCUSDT: {start: 65000}}
segments: [{duration: 5s}]
accounts:
  - name: spot_reserve
    balances: {USDT: 1000}
    reserve: {USDT: 5000}
  - name: funding_reserve
    balances: {USDT: 1000}
    reserve: {USDT: 2500, USDC: 100}
    reserve_wallet: funding
    can_transfer: false
  - name: no_reserve
    balances: {USDT: 1000}
"""


def test_reserve_fills_the_spot_or_funding_wallet_outside_futures() -> None:
    exchange = build_exchange(parse_scenario(RESERVES))
    spot, funding, bare = exchange.accounts.values()
    assert (spot.spot, spot.funding, spot.can_transfer) == ({"USDT": 5000}, {}, True)
    assert (funding.spot, funding.funding) == ({}, {"USDT": 2500, "USDC": 100})
    assert funding.can_transfer is False
    assert (bare.spot, bare.funding) == ({}, {})
    assert [reserve_balance(a, "USDT") for a in (spot, funding, bare)] == [5000, 2500, 0]
    assert spot.cross_wallet == {"USDT": 1000}  # the reserve is not in futures


def test_reserve_errors_name_the_key_and_line() -> None:
    bad = RESERVES.replace("reserve: {USDT: 5000}", "reserve: {USDT: -5}")
    bad = bad.replace("reserve_wallet: funding", "reserve_wallet: bank")
    bad = bad.replace("reserve: {USDT: 2500, USDC: 100}", "reserves: {USDT: 2500}")
    with pytest.raises(ScenarioError) as caught:
        parse_scenario(bad, "mine.yaml")
    assert caught.value.problems == [
        "accounts[0].reserve.USDT (mine.yaml:8): must be greater than or equal to 0",
        "accounts[1].reserve_wallet (mine.yaml:12): must be 'spot' or 'funding'",
        "accounts[1].reserves (mine.yaml:11): unknown key",
    ]


def test_resolver_takes_builtin_names_and_paths(tmp_path: Path) -> None:
    assert builtin_names() == [
        "calm",
        "crash-revert",
        "flash-crash",
        "hedge-gap",
        "short-squeeze",
        "slow-bleed",
        "slow-slide",
        "squeeze-short-book",
        "whipsaw",
    ]
    for name in builtin_names():
        loaded = load_scenario(name)
        assert loaded.accounts[0].positions, name
    own = tmp_path / "mine.yaml"
    own.write_text("seed: 3\nsymbols: {BTCUSDT: {start: 1}}\nsegments: [{duration: 1}]" + ACCOUNT)
    assert load_scenario(str(own)).seed == 3
    with pytest.raises(
        ScenarioError, match="unknown scenario 'crash'; built-in: calm, crash-revert, flash"
    ):
        load_scenario("crash")
    with pytest.raises(ScenarioError, match="cannot read"):
        load_scenario(str(tmp_path / "missing.yaml"))


def test_builtin_default_account_is_hybrid() -> None:
    book = load_scenario("flash-crash").accounts[0]
    modes = {(p.symbol, p.side, p.margin_mode) for p in book.positions}
    assert {("BTCUSDT", "long", "cross"), ("SOLUSDT", "short", "cross")} <= modes
    assert sum(p.margin_mode == "isolated" for p in book.positions) == 2


def sim_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="marginwatch")
    command.add_parser(parser.add_subparsers(dest="command", required=True))
    return parser


def test_sim_command_prints_urls_credentials_and_a_valid_config_snippet(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    short = tmp_path / "short.yaml"
    short.write_text(
        "seed: 1\nsymbols: {BTCUSDT: {start: 65000}}\nsegments: [{duration: 5s}]" + ACCOUNT
    )
    args = sim_parser().parse_args(["sim", "--scenario", str(short), "--speed", "100"])
    assert args.handler(args) == 0
    out = capsys.readouterr().out
    assert "REST: http://127.0.0.1:" in out and "WS:   ws://127.0.0.1:" in out
    assert "api_key=sim-trader-api-key secret=sim-trader-secret" in out
    pasted = out.split("Paste into the monitor's configuration:")[1].split("\n\n")[1]
    snippet = yaml.safe_load(pasted)
    account = AccountConfig.model_validate(snippet["accounts"][0])
    assert account.exchange == "binanceusdm"
    assert account.rest_url is not None and account.rest_url.startswith("http://127.0.0.1:")
    assert account.ws_url == account.rest_url.replace("http://", "ws://")
    assert "Scenario finished after 5s simulated." in out


def test_sim_command_shows_each_reserve_and_what_is_left(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    reserved = tmp_path / "reserved.yaml"
    reserved.write_text(RESERVES)
    args = sim_parser().parse_args(["sim", "--scenario", str(reserved), "--speed", "100"])
    assert args.handler(args) == 0
    out = capsys.readouterr().out
    assert "    reserve 5,000 USDT in spot; the key may transfer it in" in out
    assert "    reserve 2,500 USDT in funding, 100 USDC in funding; the key may NOT" in out
    assert "  spot_reserve: liquidated nothing\n    0 transfer(s); reserve left 5,000 USDT" in out
    assert "  no_reserve: liquidated nothing\n" in out and out.count("transfer(s)") == 2


def test_sim_command_rejects_bad_scenario_and_speed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("seed: x\n")
    args = sim_parser().parse_args(["sim", "--scenario", str(bad)])
    assert args.handler(args) == command.EXIT_CONFIG
    assert "seed (bad.yaml:1)" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        sim_parser().parse_args(["sim", "--scenario", "calm", "--speed", "0"])
