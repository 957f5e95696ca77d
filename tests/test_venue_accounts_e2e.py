"""Several accounts of one venue in one config, each read right, cold and warm markets cache.

Three Hyperliquid addresses and two OKX accounts share one server per venue, so their
clients share one markets table (monitor/exchange/markets.py): the first account's client
loads it, the others receive it, and a second run restores it from the disk cache. Before
the fix every Hyperliquid account after the first failed with `bad_reply:
'hip3TokensByName'` (ccxt's helper options were not carried over). Both `status` (its own
clients and markets table, as in its own process) and the daemon are run against the
loopback servers, cold and then warm, and every account's figures are checked against hand
derivations from the fixtures' inputs.

Hyperliquid (tests/servers/hyperliquid.py `hybrid_user`, marks BTC 60,000, ETH 3,000,
SOL 150; cross BTC long 0.5 @ 58,000, cross ETH short 4 @ 3,100, isolated SOL long 20 @ 140
with 560 posted):
  A: cash 8,000: cross wallet 8,000, uPnL 1,000 + 400, accountValue 9,400; MM 375 + 240.
  B: the same positions with 1,000 less cash: totalRawUsd -9,600, wallet 7,000,
     accountValue 8,400, MM 615.
  C: the SOL position alone: MM 3,000 / 40 = 75 against marginUsed 760 (560 + 200).
OKX (tests/servers/okx.py): the hybrid multi-currency account (acctLv 3) and, under its
own key, the same positions in single-currency mode (acctLv 2).
  hybrid: unified USD pool, adjEq 7,750 less the ETH short's uPnL 200 = wallet 7,550.
  single: USDT cross pool, eq 11,200 - isoEq 3,900 - uPnL 200 = wallet 7,100.
"""

from __future__ import annotations

import asyncio
import copy
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import ccxt.async_support as ccxt
import pytest

from monitor.config import Config
from monitor.daemon.service import Daemon
from monitor.exchange.markets import SharedMarkets
from monitor.exchange.urls import rebase_urls
from monitor.simulator.http import LocalServer
from monitor.simulator.runner import SimulatedVenue
from monitor.venues.registry import adapter_for
from tests.e2e import by_symbol, status_json, write_config
from tests.ports import refused_port
from tests.servers import hyperliquid, okx

HL_A = hyperliquid.FIXTURE_ADDRESS
HL_B = "0x2222222222222222222222222222222222222222"
HL_C = "0x3333333333333333333333333333333333333333"
SECOND_KEY = okx.OkxApiKey("okx-second-key", "okx-second-secret", "okx-second-pass")
BTC, SOL = "BTC/USDC:USDC", "SOL/USDC:USDC"


def hyperliquid_state() -> hyperliquid.HlState:
    state = hyperliquid.hybrid_user(HL_A)
    first = state.users[HL_A]
    second = copy.deepcopy(first)
    second.address, second.cross_raw_usd = HL_B, -9_600.0
    state.add_user(second)
    third = copy.deepcopy(first)
    third.address, third.cross_raw_usd = HL_C, 8_000.0
    third.positions = [p for p in third.positions if p.coin == "SOL"]
    third.cross_maintenance_margin_used = 0.0
    state.add_user(third)
    return state


def okx_state() -> okx.OkxState:
    state = okx.hybrid_account()
    single = okx.single_currency_account().account
    single.uid, single.api_keys = "44705892343619585", [SECOND_KEY]
    state.other_accounts.append(single)
    return state


def accounts(hl_url: str, okx_url: str) -> list[dict]:
    """REST on the loopback servers; the mark streams (which these servers do not serve)
    on a loopback port that refuses, never the exchanges' own hosts."""
    ws_url = f"ws://127.0.0.1:{refused_port()}"
    hl = [
        {"name": name, "exchange": "hyperliquid", "wallet_address": address, "rest_url": hl_url,
         "ws_url": ws_url}
        for name, address in (("hl-a", HL_A), ("hl-b", HL_B), ("hl-c", HL_C))
    ]  # fmt: skip
    first = {"name": "okx-hybrid", "exchange": "okx", "api_key": okx.FIXTURE_API_KEY,
             "secret": okx.FIXTURE_SECRET, "password": okx.FIXTURE_PASSPHRASE,
             "rest_url": okx_url, "ws_url": ws_url}  # fmt: skip
    second = {"name": "okx-single", "exchange": "okx", "api_key": SECOND_KEY.api_key,
              "secret": SECOND_KEY.secret, "password": SECOND_KEY.passphrase,
              "rest_url": okx_url, "ws_url": ws_url}  # fmt: skip
    return [*hl, first, second]


def check_figures(pools: dict[str, dict[str, dict]], positions: dict[str, dict[str, dict]]):
    """Per account name: pools by asset and positions by symbol, as plain dicts."""
    a, b = pools["hl-a"]["USDC"], pools["hl-b"]["USDC"]
    assert (a["wallet_balance"], a["maintenance_margin"]) == pytest.approx((8_000, 615))
    assert a["margin_ratio"] == pytest.approx(615 / 9_400)
    assert (b["wallet_balance"], b["maintenance_margin"]) == pytest.approx((7_000, 615))
    assert b["margin_ratio"] == pytest.approx(615 / 8_400)
    assert set(positions["hl-a"]) == set(positions["hl-b"]) == {BTC, "ETH/USDC:USDC", SOL}
    assert set(positions["hl-c"]) == {SOL}
    sol = positions["hl-c"][SOL]
    assert (sol["isolated_margin"], sol["maintenance_margin"]) == pytest.approx((560, 75))
    assert sol["margin_ratio"] == pytest.approx(75 / 760)

    unified = pools["okx-hybrid"]["USD"]
    assert unified["wallet_balance"] == pytest.approx(7_550)
    usdt = pools["okx-single"]["USDT"]
    assert usdt["wallet_balance"] == pytest.approx(7_100)
    assert set(pools["okx-single"]) == {"USDT"} and set(pools["okx-hybrid"]) == {"USD"}
    for name in ("okx-hybrid", "okx-single"):
        assert len(positions[name]) == 3


def requests_of_markets(hl: hyperliquid.HlState, ox: okx.OkxState) -> tuple[int, int]:
    """How many market-list loads each venue served so far."""
    hl_loads = hl.info_types().count("metaAndAssetCtxs")
    okx_loads = ox.paths_called().count("/api/v5/public/instruments")
    return hl_loads, okx_loads


@asynccontextmanager
async def venues() -> AsyncIterator[tuple[hyperliquid.HlState, okx.OkxState, Path, Path]]:
    hl, ox = hyperliquid_state(), okx_state()
    async with (
        LocalServer(hyperliquid.create_app(hl)) as hl_server,
        LocalServer(okx.create_app(ox)) as okx_server,
    ):
        yield hl, ox, hl_server.base_url, okx_server.base_url


async def test_status_reads_every_account_cold_then_warm(tmp_path):
    async with venues() as (hl, ox, hl_url, okx_url):
        config = write_config(tmp_path / "config.yaml", accounts(hl_url, okx_url))
        for run in ("cold", "warm"):
            before = requests_of_markets(hl, ox)
            _code, doc, err = await status_json(config)
            results = {a["name"]: a for a in doc["accounts"]}
            assert {n: a["error"] for n, a in results.items()} == dict.fromkeys(results), err
            check_figures(
                {n: {p["asset"]: p for p in a["pools"]} for n, a in results.items()},
                {n: by_symbol(a) for n, a in results.items()},
            )
            loads = tuple(x - y for x, y in zip(requests_of_markets(hl, ox), before, strict=True))
            # cold: one load per venue, shared by its accounts; warm: none (disk cache)
            assert loads == ((1, 1) if run == "cold" else (0, 0)), run


async def test_daemon_reads_every_account_cold_then_warm(tmp_path):
    async with venues() as (hl, ox, hl_url, okx_url):
        config = Config.model_validate(
            {"state_dir": str(tmp_path / "state"), "accounts": accounts(hl_url, okx_url)}
        )
        for run in ("cold", "warm"):
            before = requests_of_markets(hl, ox)
            daemon = Daemon(config, lambda _event: None)
            await daemon.start()
            try:
                async with asyncio.timeout(20):
                    while not all(m.snapshot is not None for m in daemon.monitors):
                        await asyncio.sleep(0.05)
                errors = {p.name: p.last_error for p in daemon.pollers.values()}
                assert errors == dict.fromkeys(errors), run
                risks = {m.name: m.current() for m in daemon.monitors}
            finally:
                await daemon.stop()
            check_figures(
                {n: {p.asset: p._asdict() for p in r.pools} for n, r in risks.items() if r},
                {
                    n: {p.position.symbol: _position_dict(p) for p in r.positions}
                    for n, r in risks.items()
                    if r
                },
            )
            loads = tuple(x - y for x, y in zip(requests_of_markets(hl, ox), before, strict=True))
            assert loads == ((1, 1) if run == "cold" else (0, 0)), run


def _position_dict(risk) -> dict:
    figures = risk._asdict()
    figures["isolated_margin"] = risk.position.isolated_margin
    return figures


async def test_what_load_markets_puts_in_options_reaches_every_client_of_the_table(tmp_path):
    """Generic, not a Hyperliquid special case: Binance's load leaves its margin pair
    lists in `options`; a client sharing the table and one restored from disk get them."""
    key = "binanceusdm-sim"
    async with SimulatedVenue("calm") as venue:

        def client() -> ccxt.binanceusdm:
            made = ccxt.binanceusdm({})
            made.urls["api"] = rebase_urls(made.urls["api"], venue.base_url)
            adapter_for("binanceusdm").configure(made)
            return made

        loaded, sharing, restored = client(), client(), client()
        try:
            shared = SharedMarkets(tmp_path)
            await shared.ensure(loaded, key)  # loads, writes the disk cache
            await shared.ensure(sharing, key)  # shares in memory
            await SharedMarkets(tmp_path).ensure(restored, key)  # another process: disk
            added = shared._tables[key].options
            assert {"crossMarginPairsData", "isolatedMarginPairsData"} <= set(added)
            for name in added:
                assert sharing.options[name] == loaded.options[name] == restored.options[name]
            assert sharing.markets is loaded.markets  # shared, not copied
            assert restored.markets.keys() == loaded.markets.keys()
            assert venue.exchange.requests.count("GET /fapi/v1/exchangeInfo") == 1
        finally:
            for made in (loaded, sharing, restored):
                await made.close()
