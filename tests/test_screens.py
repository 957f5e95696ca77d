"""The screens as a person sees them: `status` and the live view at 80x24 and 160x48.

Rendered by rich's recording console at a fixed size, then read as plain text: no
figure may be split across lines or cut with "…", a target is one line, the events
pane is on screen, and every figure the exchange gave is there. The venues are the real
dialect servers and the simulator on loopback; the figures that matter for layout are
checked against hand derivations where the fixtures document them.
"""

from __future__ import annotations

import asyncio
import math
import re
import tempfile
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path

import pytest
from rich.console import Console

from monitor.collect import fetch_all
from monitor.config import Thresholds, load_config
from monitor.config.secrets import Secret
from monitor.daemon.events import Event, EventKind, TargetKind
from monitor.daemon.live import MIN_EVENT_LINES, LiveView
from monitor.daemon.service import Daemon
from monitor.daemon.sinks import describe
from monitor.demo import demo_config, phase_line
from monitor.domain import MarginMode, Position, Side
from monitor.engine.levels import Level
from monitor.formatting import level_reason, pct, price, quantity, short_symbol, size
from monitor.render import print_status
from monitor.report import Assessed, assess
from monitor.simulator.binance_usdm import (
    FAQ_API_KEY,
    FAQ_SECRET,
    binance_faq_hybrid_account,
    build_app,
)
from monitor.simulator.http import LocalServer
from monitor.simulator.runner import SimulatedVenue
from monitor.simulator.scenario import load_scenario, parse_scenario
from tests.e2e import run_cli, write_config
from tests.servers import okx, weex

SIZES = ((80, 24), (160, 48))
FIGURE = re.compile(r"\d[\d,]*(?:\.\d+)?%?")


def recorded(width: int, height: int) -> Console:
    return Console(record=True, width=width, height=height, color_system=None)


def assert_whole(lines: list[str], figures: list[str]) -> None:
    """Each figure stands whole on some line: a split one would be on none."""
    for figure in figures:
        assert any(figure in line for line in lines), f"{figure!r} not whole on any line"


# --- formatting ---------------------------------------------------------------------


def test_quantities_read_with_separators_and_never_in_exponent_form():
    assert quantity(40_000) == "40,000"
    assert quantity(5e7) == "50,000,000"
    assert quantity(30 * 0.1) == "3"  # 3.0000000000000004: float dust is not a figure
    assert quantity(3683.979) == "3,683.979"
    assert quantity(0.0025) == "0.0025"
    assert pct(math.inf) == "∞" and price(None) == "unknown"
    assert price(0.129315) == "0.129315" and price(0.16) == "0.16"
    assert price(0.0000123456) == "0.0000123456"  # a SHIB mark, not 1.23456e-05
    assert price(64_578.6) == "64,578.60"


def test_an_unbounded_ratio_reads_infinity_in_the_log_line():
    event = Event(EventKind.LEVEL, "a", "pool USDT", TargetKind.POOL, "imminent", "critical",
                  margin_ratio=math.inf, liquidation_distance=0.0)  # fmt: skip
    line = describe(event)
    assert "ratio ∞" in line and "inf" not in line


def test_sizes_are_in_base_units_with_contracts_where_they_differ():
    def position(symbol: str, contracts: float, contract_size: float, inverse: bool = False):
        return Position(
            symbol, Side.LONG, MarginMode.ISOLATED, contracts, contract_size, 60_000, 60_000,
            "BTC" if inverse else "USDT", inverse=inverse,
        )  # fmt: skip

    # OKX BTC-USDT-SWAP: a contract is 0.01 BTC, so 50 contracts are 0.5 BTC
    assert size(position("BTC/USDT:USDT", 50, 0.01)) == "0.5 BTC (50 ct)"
    assert size(position("BTC/USDT:USDT", 50, 0.01), contracts=False) == "0.5 BTC"
    # OKX BTC-USD-SWAP (inverse): a contract is 100 USD of face value
    assert size(position("BTC/USD:BTC", 30, 100, inverse=True)) == "3,000 USD (30 ct)"
    # Binance: a contract is one unit of the base asset, so the count is not repeated
    assert size(position("DOGE/USDT:USDT", 40_000, 1)) == "40,000 DOGE"
    assert short_symbol("BTC/USDT:USDT") == "BTC/USDT" and short_symbol("BTC/USD:BTC") == (
        "BTC/USD:BTC"
    )


def test_a_level_says_which_figure_and_threshold_set_it():
    limits = Thresholds().isolated
    # isolated defaults: critical at ratio 80 % or distance 5 %; it clears past the wider
    # of 5 % of the threshold (5.25 %) and 2 points absolute (7 %)
    assert level_reason(Level.CRITICAL, 0.1078, 0.041, limits) == "distance 4.10% ≤ 5%"
    assert level_reason(Level.CRITICAL, 0.85, 0.2, limits) == "ratio 85.00% ≥ 80%"
    assert level_reason(Level.CRITICAL, 0.1, 0.041, limits, compact=True) == "dist≤5%"
    # held: 5.2 % is past 5 % but not past 5 % + 2 % = 7 %
    assert level_reason(Level.CRITICAL, 0.1, 0.052, limits) == "distance 5.20%, held until > 7%"
    assert level_reason(Level.OK, 0.01, 0.5, limits) == ""


def test_the_scenario_phase_follows_the_segments():
    # flash-crash.yaml: 20 s calm, 25 s of -7 % with a -5 % gap 12 s in, 20 s of +3 %
    scenario = load_scenario("flash-crash")
    assert scenario.phase_at(0) == (1, 3, "calm", 0, 20)
    assert scenario.phase_at(20) == (2, 3, "drift -7%, gap -5% at 12s", 20, 45)
    assert scenario.phase_at(64.9) == (3, 3, "drift +3%", 45, 65)
    assert scenario.phase_at(100).number == 3  # the path has ended: its last phase


# --- status ---------------------------------------------------------------------------


@asynccontextmanager
async def four_accounts_served(tmp_path: Path) -> AsyncIterator[Path]:
    """Binance's FAQ account (critical), OKX's hybrid (contracts of 0.01 BTC and 100 USD),
    WEEX (no tiers: unknown), and a Binance account with a wrong secret: the config."""
    async with AsyncExitStack() as stack:
        binance = await stack.enter_async_context(
            LocalServer(build_app(binance_faq_hybrid_account()))
        )
        okx_server = await stack.enter_async_context(
            LocalServer(okx.create_app(okx.hybrid_account()))
        )
        weex_server = await stack.enter_async_context(
            LocalServer(weex.create_app(weex.hybrid_account()))
        )
        accounts = [
            {"name": "binance-main", "exchange": "binanceusdm", "api_key": FAQ_API_KEY,
             "secret": FAQ_SECRET, "rest_url": binance.base_url},
            {"name": "okx-main", "exchange": "okx", "api_key": okx.FIXTURE_API_KEY,
             "secret": okx.FIXTURE_SECRET, "password": okx.FIXTURE_PASSPHRASE,
             "rest_url": okx_server.base_url},
            {"name": "weex", "exchange": "weex", "api_key": weex.FIXTURE_API_KEY,
             "secret": weex.FIXTURE_SECRET, "rest_url": weex_server.base_url},
            {"name": "binance-bad", "exchange": "binanceusdm", "api_key": FAQ_API_KEY,
             "secret": "not-the-secret", "rest_url": binance.base_url},
        ]  # fmt: skip
        if hasattr(weex, "FIXTURE_PASSPHRASE"):
            accounts[2]["password"] = weex.FIXTURE_PASSPHRASE
        yield write_config(tmp_path / "config.yaml", accounts)


async def _status_of_four_accounts(tmp_path: Path) -> list[Assessed]:
    async with four_accounts_served(tmp_path) as path:
        config = load_config(path)
        results = await fetch_all(config.accounts, config.state_dir / "cache")
        return [assess(r, config.thresholds_for(r.account.name)) for r in results]


@pytest.fixture(scope="module")
def four_accounts(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("status")
    return asyncio.run(_status_of_four_accounts(tmp))


@pytest.mark.parametrize(("width", "height"), SIZES)
def test_status_fits_the_terminal_without_splitting_a_figure(four_accounts, width, height):
    assessed = four_accounts
    console = recorded(width, height)
    print_status(assessed, console)
    lines = console.export_text().splitlines()

    # the monitoring-plugin summary first; the worst target is the FAQ's isolated SOL short
    assert lines[0].startswith("MARGINWATCH CRITICAL - 4 accounts; worst: binance-main ")
    assert "unreadable: binance-bad" in lines[0]
    # the failed account is one line, with the exchange's words
    [error] = [line for line in lines if "binance-bad" in line and line is not lines[0]]
    assert "UNKNOWN · auth:" in error and "Signature" in error
    # everything else fits the width, nothing is cut, no empty note column
    for line in lines:
        if line not in (lines[0], error):
            assert len(line) <= width, line
    assert "…" not in "\n".join(lines) and " note " not in "\n".join(lines)

    figures = []
    for item in assessed:
        risk = item.result.risk
        if risk is None:
            continue
        for pool in risk.pools:
            figures += [f"pool {pool.asset}", pct(pool.liquidation_distance)]
        for p in risk.positions:
            figures += [f"{short_symbol(p.position.symbol)} {p.position.side.value}",
                        price(p.mark_price), price(p.liquidation_price),
                        pct(p.liquidation_distance)]  # fmt: skip
    assert_whole(lines, figures)
    # Binance's published FAQ liquidation price of the BTC long
    assert_whole(lines, ["26,316.89"])
    # WEEX publishes no tiers: unknown, with the reason as a numbered note
    assert any(line.startswith("[1] no maintenance tiers published for") for line in lines)
    assert any("unknown" in line and "UNKNOWN [1]" in line for line in lines)
    # rows worst first: in Binance's table, the critical SOL short above the OK BTC long
    text = "\n".join(lines)
    assert text.index("SOL/USDT short") < text.index("BTC/USDT long")


def test_status_on_a_terminal_wraps_long_lines_at_words(four_accounts):
    console = Console(record=True, width=80, height=24, force_terminal=True, color_system=None)
    print_status(four_accounts, console)
    lines = console.export_text().splitlines()
    assert all(len(line) <= 80 for line in lines)  # the terminal never cuts a figure
    # the worst target: the FAQ's isolated SOL short, LP 155.0858 at mark 148.25:
    # distance (155.0858 - 148.25) / 148.25 = 4.61 %, under the isolated critical 5 %
    assert lines[0].startswith("MARGINWATCH CRITICAL") and lines[1].startswith("distance 4.61%")


def test_status_wide_shows_the_exchange_figures_and_contracts(four_accounts):
    assessed = four_accounts
    console = recorded(160, 48)
    print_status(assessed, console)
    lines = console.export_text().splitlines()
    header = next(line for line in lines if line.startswith("target"))
    for column in ("mode", "size", "exch. liq.", "ratio", "exch. ratio", "level"):
        assert column in header
    # OKX (tests/servers/okx.py): BTC-USDT 50 contracts of 0.01 BTC, BTC-USD 30 of 100 USD
    assert_whole(lines, ["0.5 BTC (50 ct)", "3,000 USD (30 ct)"])
    # OKX's own ratio for the isolated BTC long, converted: 1 / mgnRatio = 135 / 3,900
    okx_btc = next(
        line for line in lines if line.startswith("BTC/USDT long") and "isolated" in line
    )
    assert okx_btc.count(pct(135 / 3_900)) == 2  # ours and the exchange's, side by side
    # Binance gives no ratio per cross position: its pool's (the account's) stands for it,
    # as ours does; the isolated SOL short has none at all
    binance_btc = next(line for line in lines if line.startswith("BTC/USDT long") and "BTC " in line
                       and "isolated" not in line and "31,967.27" in line)  # fmt: skip
    binance_pool = next(a for a in assessed if a.result.account.name == "binance-main")
    assert binance_btc.count(pct(binance_pool.result.risk.pools[0].exchange_margin_ratio)) == 2
    sol = next(line for line in lines if line.startswith("SOL/USDT short"))
    assert "unknown" in sol
    # a level says why, in full at this width
    assert any("CRIT: distance" in line and "≤ 5%" in line for line in lines)


async def test_piped_status_starts_with_the_summary_and_fits_80_columns(tmp_path):
    async with four_accounts_served(tmp_path) as path:
        code, out, err = await run_cli("status", "--config", str(path))
    lines = out.splitlines()
    assert code == 2, err
    assert lines[0].startswith("MARGINWATCH CRITICAL - 4 accounts")
    long = [line for line in lines[1:] if len(line) > 80]
    assert len(long) == 1 and "binance-bad" in long[0]  # the error alone, on one line


# --- the live view --------------------------------------------------------------------


async def _ended_flash_crash() -> tuple[LiveView, SimulatedVenue, Daemon, AsyncExitStack]:
    """The demo's own wiring at 20x, run to the end of the scenario (AVAX liquidated)."""
    stack = AsyncExitStack()
    state = stack.enter_context(tempfile.TemporaryDirectory())
    venue = await stack.enter_async_context(SimulatedVenue(load_scenario("flash-crash"), 20))
    view: LiveView | None = None
    daemon = Daemon(demo_config(venue, Path(state)), lambda e: view.emit(e) if view else None)
    view = LiveView(daemon, status=lambda: phase_line(venue, "flash-crash"))
    await daemon.start()
    stack.push_async_callback(daemon.stop)
    while not venue.finished.is_set():  # the demo renders 4 times a second
        view.rows()
        await asyncio.sleep(0.1)
    for _ in range(200):  # the liquidation is seen by the stream or the next poll
        if any(row.level == "liquidated" for row in view.rows()):
            break
        await asyncio.sleep(0.05)
    return view, venue, daemon, stack


async def test_live_view_fits_80x24_and_uses_160x48():
    view, venue, daemon, stack = await _ended_flash_crash()
    async with stack:
        frames = {}
        for width, height in SIZES:
            console = recorded(width, height)
            console.print(view.render(console))
            frames[width] = console.export_text().splitlines()
        positions = {key: item for m in daemon.monitors for key, item in m.latest_positions.items()}

    for (width, height), lines in zip(SIZES, frames.values(), strict=True):
        text = "\n".join(lines)
        assert len(lines) <= height and all(len(line) <= width for line in lines), text
        assert "…" not in text and "..." not in text
        # the status line: clock, scenario, phase
        assert re.match(r"\d\d:\d\d:\d\d  flash-crash 20x  ended: drift \+3%  65s/65s", lines[0])
        # one line per target: each label on exactly one line of the table
        table = lines[: next(i for i, line in enumerate(lines) if line.startswith("events"))]
        for label in ("pool USDT", "BTC/USDT long", "DOGE/USDT long", "SOL/USDT short"):
            assert sum(label in line for line in table) == 1, text
        # the liquidated position stays, saying so
        [avax] = [line for line in table if "AVAX/USDT long" in line]
        assert "LIQUIDATED" in avax
        # figures whole
        figures = [price(p.mark_price) for p in positions.values()]
        figures += [pct(p.liquidation_distance) for p in positions.values()]
        assert_whole(table, figures)
        # the events pane is on screen, with lines of its own
        rule = next(i for i, line in enumerate(lines) if line.startswith("events"))
        assert len(lines) - rule - 1 >= MIN_EVENT_LINES
        assert any("LIQUIDATED AVAX/USDT long" in line for line in lines[rule:])
        assert "ratio inf" not in text and " inf " not in text
        # each level's reason (the pool's level comes from its distance, not its ratio):
        # warn under 15 %, or critical held until it is back above 8 % + 2 % (hysteresis)
        [pool] = [line for line in table if line.startswith("pool USDT")]
        warn = r"WARN(: distance [\d.]+%)? ?(dist)?≤ ?15%"
        held = r"CRIT(: distance [\d.]+%, held until > 10%| dist held)"
        assert re.search(f"{warn}|{held}", pool), pool
    assert "40,000 DOGE" in "\n".join(frames[80]) and "isolated" in "\n".join(frames[160])
    assert "exch. ratio" in frames[160][2] and "exch. ratio" not in frames[80][2]
    assert venue.finished.is_set()


MANY = """
description: three books on five symbols, more targets than 24 lines hold
seed: 3
tick_seconds: 1
symbols:
  BTCUSDT: {start: 65000}
  ETHUSDT: {start: 3400}
  SOLUSDT: {start: 150}
  DOGEUSDT: {start: 0.16}
  AVAXUSDT: {start: 35}
segments:
  - {duration: 1s}
accounts:
""" + "".join(
    f"""
  - name: book{n}
    balances: {{USDT: 20000}}
    positions:
      - {{symbol: BTCUSDT, side: long, size: 0.1}}
      - {{symbol: ETHUSDT, side: short, size: 2}}
      - {{symbol: SOLUSDT, side: long, size: 20, margin_mode: isolated}}
      - {{symbol: DOGEUSDT, side: long, size: 10000, margin_mode: isolated}}
      - {{symbol: AVAXUSDT, side: short, size: 50}}
"""
    for n in range(3)
)


async def test_live_view_with_more_targets_than_lines_keeps_its_events_pane():
    scenario = parse_scenario(MANY)
    with tempfile.TemporaryDirectory() as state:
        async with SimulatedVenue(scenario, speed=1) as venue:
            config = demo_config(venue, Path(state))
            wrong = config.accounts[0].model_copy(
                update={"name": "wrong-key", "secret": Secret("not-the-secret")}
            )
            config = config.model_copy(update={"accounts": (*config.accounts, wrong)})
            view: LiveView | None = None
            daemon = Daemon(config, lambda e: view.emit(e) if view else None)
            view = LiveView(daemon)
            await daemon.start()
            try:
                for _ in range(200):
                    monitors = daemon.monitors
                    if all(m.book is not None or m.last_error for m in monitors):
                        break
                    await asyncio.sleep(0.05)
                console, tall = recorded(80, 24), recorded(160, 48)
                console.print(view.render(console))
                tall.print(view.render(tall))
            finally:
                await daemon.stop()
    lines = console.export_text().splitlines()
    text = "\n".join(lines)
    assert len(lines) <= 24 and all(len(line) <= 80 for line in lines), text
    assert lines[2].startswith("account")  # several accounts: a column says whose
    assert any(re.match(r"\+\d+ more, the worst of them", line) for line in lines), text
    # each book's BTC long (0.1 x 65,000 = 6,500 at most to lose) draws on a cross wallet of
    # 20,000 less the isolated margins (300 + 160): no price liquidates it. That is no
    # liquidation price and an infinite distance, not an unknown one.
    # (the farthest from liquidation, so the last rows: on the tall screen)
    tall_text = tall.export_text()
    btc = [line for line in tall_text.splitlines() if "BTC/USDT long" in line]
    assert len(btc) == 3, tall_text
    assert all(re.search(r"65,000\.00 .*\bnone\b.* ∞ .*\bOK\b", line) for line in btc), tall_text
    # the account that cannot be read is on screen (unknown outranks the OK books), saying why
    [wrong] = [line for line in lines if line.startswith("wrong-key")]
    assert "not read yet" in wrong and "UNKNOWN" in wrong and "auth" in wrong, text
    rule = next(i for i, line in enumerate(lines) if line.startswith("events"))
    assert rule < 24 - MIN_EVENT_LINES  # the pane's lines are kept, events or not
    assert rule + 1 < len(lines)
