"""`marginwatch snapshot`: a live book as a scenario file, and a drill of it on a built-in path.

The live account is the simulator's, read over loopback by the real command (its own
ccxt, its own sockets, run in process by tests/e2e.py `run_cli`); expected figures are
the book the test wrote, by hand.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from monitor.capture import Extras, book_document
from monitor.domain import AccountSnapshot, CrossPool, MarginMode, Position, Side
from monitor.simulator.http import LocalServer
from monitor.simulator.prices import price_ticks
from monitor.simulator.repath import with_paths
from monitor.simulator.runner import SimulatedVenue
from monitor.simulator.scenario import load_scenario, parse_scenario
from tests.e2e import run_cli, write_config
from tests.servers import okx

# The flash-crash book, with a BTC entry below its mark, margin added to DOGE (5x would
# be 40,000 x 0.16 / 5 = 1,280) and a reserve in the funding wallet; prices hold still.
LIVE = """
seed: 1
symbols:
  BTCUSDT: {start: 65000}
  ETHUSDT: {start: 3400}
  SOLUSDT: {start: 150}
  DOGEUSDT: {start: 0.16}
  AVAXUSDT: {start: 35}
segments: [{duration: 600s}]
accounts:
  - name: hybrid
    balances: {USDT: 8500}
    reserve: {USDT: 2500}
    reserve_wallet: funding
    positions:
      - {symbol: BTCUSDT, side: long, size: 0.5, entry: 64000, leverage: 10}
      - {symbol: ETHUSDT, side: long, size: 8, leverage: 10}
      - {symbol: SOLUSDT, side: short, size: 80, leverage: 20}
      - {symbol: DOGEUSDT, side: long, size: 40000, margin_mode: isolated, leverage: 5,
         isolated_margin: 1500}
      - {symbol: AVAXUSDT, side: long, size: 200, margin_mode: isolated, leverage: 8}
"""


async def snapshot_of_live(config: Path, out: Path) -> tuple[int, str]:
    """`marginwatch snapshot` of the LIVE book's account, served by the simulator, written
    to `out` with a configuration written to `config`: (exit code, stderr)."""
    async with SimulatedVenue(parse_scenario(LIVE), speed=1) as venue:
        credentials = venue.credentials["hybrid"]
        account = {
            "name": "main", "exchange": "binanceusdm", "api_key": credentials.api_key,
            "secret": credentials.secret, "rest_url": venue.base_url, "ws_url": venue.ws_url,
        }  # fmt: skip
        write_config(config, [account])
        code, _, stderr = await run_cli(
            "snapshot", "--config", str(config), "--account", "main", "--out", str(out)
        )
    return code, stderr


async def test_snapshot_writes_the_live_book_as_a_scenario(tmp_path: Path) -> None:
    config, out = tmp_path / "c.yaml", tmp_path / "book.yaml"
    code, stderr = await snapshot_of_live(config, out)
    assert code == 0, stderr
    assert "Traceback" not in stderr
    assert f"--scenario {out} --paths flash-crash" in stderr
    snapshot = load_scenario(out)  # the scenario loader accepts it as written
    assert {s: spec.start for s, spec in snapshot.symbols.items()} == {
        "BTCUSDT": 65000, "ETHUSDT": 3400, "SOLUSDT": 150, "DOGEUSDT": 0.16, "AVAXUSDT": 35,
    }  # fmt: skip
    (book,) = snapshot.accounts
    assert book.name == "main"
    assert book.position_mode == "one-way"
    assert book.balances == {"USDT": 8500}  # the cross wallet, isolated wallets apart
    assert book.reserve == {"USDT": 2500}
    assert book.reserve_wallet == "funding"
    positions = {
        p.symbol: (p.side, p.size, p.entry, p.margin_mode, p.leverage, p.isolated_margin)
        for p in book.positions
    }
    assert positions == {
        "BTCUSDT": ("long", 0.5, 64000, "cross", 10, None),
        "ETHUSDT": ("long", 8, 3400, "cross", 10, None),
        "SOLUSDT": ("short", 80, 150, "cross", 20, None),
        "DOGEUSDT": ("long", 40000, 0.16, "isolated", 5, 1500),
        # 200 x 35 / 8 = 875: the wallet Binance opened it with, read back as is.
        "AVAXUSDT": ("long", 200, 35, "isolated", 8, 875),
    }


def test_what_the_simulator_cannot_hold_is_left_out_and_said() -> None:
    def position(symbol: str, **kw: object) -> Position:
        fields: dict[str, object] = dict(
            symbol=symbol, side=Side.LONG, margin_mode=MarginMode.CROSS, contracts=2.0,
            contract_size=1.0, entry_price=10.0, mark_price=11.0, settle="USDT", leverage=3.0,
        )  # fmt: skip
        fields.update(kw)
        return Position(**fields)  # type: ignore[arg-type]

    snapshot = AccountSnapshot(
        name="okx-main",
        exchange="okx",
        pools=(CrossPool("USDT", 1000.0),),
        positions=(
            position("SOL/USDT:USDT"),
            position("PEPE/USDT:USDT"),
            position("BTC/USD:BTC", inverse=True, settle="BTC", contract_size=100.0),
        ),
        tiers={},
    )
    warnings: list[str] = []
    document = book_document(snapshot, Extras(), warnings)
    assert list(document["symbols"]) == ["SOLUSDT"]
    assert [p["symbol"] for p in document["accounts"][0]["positions"]] == ["SOLUSDT"]
    assert document["accounts"][0]["positions"][0]["size"] == 2.0
    assert any(w.startswith("left out PEPE/USDT:USDT long 2") for w in warnings)
    assert any(w.startswith("left out BTC/USD:BTC long 200") for w in warnings)


def test_paths_are_rescaled_to_the_books_start_prices() -> None:
    crash = load_scenario("flash-crash")
    book = parse_scenario(LIVE.replace("BTCUSDT: {start: 65000}", "BTCUSDT: {start: 32500}"))
    played = with_paths(book, crash)
    assert played.seed == crash.seed and played.duration == crash.duration
    assert played.accounts == book.accounts
    # Paths are multiplicative from the start (prices.py): the same seed and segments
    # from half the start give half the price at every tick, to the 0.1 tick of BTCUSDT.
    for ours, theirs in zip(price_ticks(played), price_ticks(crash), strict=True):
        assert abs(ours.marks["BTCUSDT"] - theirs.marks["BTCUSDT"] / 2) <= 0.1
        assert ours.marks["AVAXUSDT"] == theirs.marks["AVAXUSDT"]  # same start: same path


async def test_a_drill_of_the_snapshot_plays_the_book_on_a_built_in_crash(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config, out = tmp_path / "c.yaml", tmp_path / "book.yaml"
    code, stderr = await snapshot_of_live(config, out)
    assert code == 0, stderr
    monkeypatch.setenv("COLUMNS", "200")
    code, output, stderr = await run_cli(
        "drill", "--config", str(config), "--scenario", str(out), "--paths", "flash-crash",
        "--speed", "50", timeout=120,
    )  # fmt: skip
    assert code == 0, stderr
    # The built-in crash takes AVAX (8x, 875 isolated) from 35 down about 20 %: its
    # isolated margin covers 875 / 200 = 4.375 a coin, 12.5 %, so without a defense the
    # bet is liquidated, as in flash-crash itself; the book's name is the snapshot's.
    assert "main: LIQUIDATED AVAX/USDT:USDT 200" in output
    assert "Flash crash with a gap down" in output


async def test_snapshot_of_an_okx_account_in_base_units(tmp_path: Path) -> None:
    """OKX counts contracts (BTC-USDT-SWAP 0.01 BTC, ETH-USDT-SWAP 0.1 ETH): the scenario
    holds base units. tests/servers/okx.py `hybrid_account` derives the book by hand."""
    async with LocalServer(okx.create_app(okx.hybrid_account())) as server:
        account = {"name": "okx-main", "exchange": "okx", "api_key": okx.FIXTURE_API_KEY,
                   "secret": okx.FIXTURE_SECRET, "password": okx.FIXTURE_PASSPHRASE,
                   "rest_url": server.base_url}  # fmt: skip
        config = write_config(tmp_path / "c.yaml", [account])
        out = tmp_path / "okx.yaml"
        code, _, stderr = await run_cli(
            "snapshot", "--config", str(config), "--account", "okx-main", "--out", str(out)
        )
    assert code == 0, stderr
    snapshot = load_scenario(out)
    assert {s: spec.start for s, spec in snapshot.symbols.items()} == {
        "BTCUSDT": 60_000, "ETHUSDT": 3_000,
    }  # fmt: skip
    positions = {
        p.symbol: (p.side, p.size, p.entry, p.margin_mode, p.leverage, p.isolated_margin)
        for p in snapshot.accounts[0].positions
    }
    assert positions == {
        "BTCUSDT": ("long", 0.5, 58_000, "isolated", 10, 2_900),  # 50 x 0.01 BTC
        "ETHUSDT": ("short", 2, 3_100, "cross", 5, None),  # 20 x 0.1 ETH
    }
    # OKX's multi-currency cross pool (USD) backs the ETH short: played as USDT, the
    # simulated contracts' margin asset, so the short is not left without collateral.
    assert set(snapshot.accounts[0].balances) == {"USDT"}
    header = out.read_text().split("\ndescription:")[0]
    for said in (header, stderr):
        assert "left out BTC/USD:BTC short 3000" in said  # inverse: 30 x 100 USD
        assert "reserve not read" in said
