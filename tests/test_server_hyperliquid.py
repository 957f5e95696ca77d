"""Unmodified ccxt `hyperliquid` (asyncio) reads the local Hyperliquid `/info` server.

Hyperliquid accounts are monitored by wallet address alone: these tests use no API key and
no private key, and check that the hand-derived fixture agrees with Hyperliquid's
liquidation formula (margin-models.md).
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import ccxt.async_support as ccxt
import pytest

from monitor.exchange.urls import rebase_urls
from monitor.simulator.http import LocalServer
from tests.servers import hyperliquid
from tests.servers.hyperliquid import FIXTURE_ADDRESS, HlState

BTC = "BTC/USDC:USDC"
ETH = "ETH/USDC:USDC"
SOL = "SOL/USDC:USDC"
USER = {"user": FIXTURE_ADDRESS}


def make_client(base_url: str, *, minimal: bool = True, **config: str) -> ccxt.hyperliquid:
    """Read-only client: no credentials at all; swap markets only, no spot token list.

    The rate limiter is off only because the server is local.
    """
    client = ccxt.hyperliquid({"enableRateLimit": False, **config})
    client.urls["api"] = rebase_urls(client.urls["api"], base_url)
    if minimal:
        client.options["fetchMarkets"] = {"types": ["swap"]}
        client.has["fetchCurrencies"] = False
    return client


@pytest.fixture
def state() -> HlState:
    return hyperliquid.hybrid_user()


@pytest.fixture
async def server(state: HlState) -> AsyncIterator[LocalServer]:
    async with LocalServer(hyperliquid.create_app(state)) as running:
        yield running


@pytest.fixture
async def client(server: LocalServer) -> AsyncIterator[ccxt.hyperliquid]:
    exchange = make_client(server.base_url)
    try:
        yield exchange
    finally:
        await exchange.close()


def by_symbol(positions: list[dict]) -> dict[str, dict]:
    return {position["symbol"]: position for position in positions}


# --------------------------------------------------------------------------- markets


async def test_markets_load_as_linear_usdc_swaps(client, state):
    markets = await client.load_markets()

    assert set(markets) == {BTC, ETH, SOL}
    for symbol, max_leverage in ((BTC, 40), (ETH, 25), (SOL, 20)):
        market = markets[symbol]
        assert (market["swap"], market["linear"], market["inverse"]) == (True, True, False)
        assert (market["contractSize"], market["settle"]) == (1, "USDC")
        assert market["limits"]["leverage"]["max"] == max_leverage
    assert markets[BTC]["info"]["markPx"] == "60000.0"
    assert markets[BTC]["precision"]["amount"] == 0.00001  # szDecimals 5
    assert state.info_types() == ["metaAndAssetCtxs"]


async def test_default_client_settings_also_load(server, state):
    """ccxt's defaults add spot and HIP-3 queries; they are served empty."""
    exchange = make_client(server.base_url, minimal=False)
    try:
        markets = await exchange.load_markets()
    finally:
        await exchange.close()
    assert set(markets) == {BTC, ETH, SOL}
    assert sorted(state.info_types()) == [
        "metaAndAssetCtxs",
        "perpDexs",
        "spotMeta",
        "spotMetaAndAssetCtxs",
    ]


# --------------------------------------------------------------------------- positions


async def test_positions_readable_by_address_without_any_key(client, state):
    assert not client.apiKey and not client.secret and not client.privateKey

    positions = by_symbol(await client.fetch_positions(params=USER))

    btc, eth, sol = positions[BTC], positions[ETH], positions[SOL]
    assert (btc["side"], btc["contracts"], btc["marginMode"]) == ("long", 0.5, "cross")
    assert (btc["entryPrice"], btc["markPrice"], btc["notional"]) == (58_000, 60_000, 30_000)
    assert btc["unrealizedPnl"] == pytest.approx(1_000)
    assert btc["liquidationPrice"] == pytest.approx(42_207.5949, abs=1e-3)
    assert (eth["side"], eth["contracts"], eth["marginMode"]) == ("short", 4, "cross")
    assert (eth["entryPrice"], eth["markPrice"], eth["notional"]) == (3_100, 3_000, 12_000)
    assert eth["liquidationPrice"] == pytest.approx(5_153.1863, abs=1e-3)
    assert (sol["side"], sol["contracts"], sol["marginMode"]) == ("long", 20, "isolated")
    assert (sol["entryPrice"], sol["markPrice"], sol["notional"]) == (140, 150, 3_000)
    assert sol["initialMargin"] == pytest.approx(560)  # ccxt: marginUsed - uPnL
    assert sol["liquidationPrice"] == pytest.approx(114.8718, abs=1e-3)

    # Every request was a public /info query carrying the address, with no auth header.
    assert state.info_types() == ["metaAndAssetCtxs", "clearinghouseState"]
    query = state.requests[-1]
    assert query.body == {"type": "clearinghouseState", "user": FIXTURE_ADDRESS}
    assert not {"authorization", "x-api-key"} & {h.lower() for h in query.headers}


async def test_wallet_address_option_works_like_the_user_param(server):
    exchange = make_client(server.base_url, walletAddress=FIXTURE_ADDRESS)
    try:
        positions = await exchange.fetch_positions()
    finally:
        await exchange.close()
    assert {position["symbol"] for position in positions} == {BTC, ETH, SOL}


async def test_position_raw_info_fields_are_intact(client):
    positions = by_symbol(await client.fetch_positions(params=USER))

    btc = positions[BTC]["info"]
    assert btc["type"] == "oneWay"
    raw = btc["position"]
    assert (raw["coin"], raw["szi"], raw["entryPx"]) == ("BTC", "0.5", "58000.0")
    assert raw["leverage"] == {"type": "cross", "value": 10}
    assert (raw["positionValue"], raw["unrealizedPnl"], raw["marginUsed"]) == (
        "30000.0",
        "1000.0",
        "3000.0",
    )
    assert raw["maxLeverage"] == 40
    assert set(raw["cumFunding"]) == {"allTime", "sinceOpen", "sinceChange"}
    assert float(raw["returnOnEquity"]) == pytest.approx(1_000 / (0.5 * 58_000 / 10))

    sol = positions[SOL]["info"]["position"]
    assert sol["leverage"] == {"type": "isolated", "value": 5, "rawUsd": "-2240.0"}
    assert sol["marginUsed"] == "760.0"
    assert positions[ETH]["info"]["position"]["szi"] == "-4.0"


async def test_fixture_liquidation_prices_follow_hyperliquid_formula(client, state):
    """liq = mark - side x margin_available / |szi| / (1 - l x side), l = 1 / (2 maxLev)."""
    await client.load_markets()
    positions = by_symbol(await client.fetch_positions(params=USER))
    balance = (await client.fetch_balance(params=USER))["info"]
    cross_available = float(balance["crossMarginSummary"]["accountValue"]) - float(
        balance["crossMaintenanceMarginUsed"]
    )
    for symbol, position in positions.items():
        raw = position["info"]["position"]
        rate = 1 / (2 * client.markets[symbol]["limits"]["leverage"]["max"])
        side = 1 if position["side"] == "long" else -1
        if position["marginMode"] == "cross":
            available = cross_available
        else:
            available = float(raw["marginUsed"]) - float(raw["positionValue"]) * rate
        mark = position["markPrice"]
        expected = mark - side * available / position["contracts"] / (1 - rate * side)
        assert position["liquidationPrice"] == pytest.approx(expected), symbol

    cross_mm = sum(
        p["notional"] / (2 * client.markets[s]["limits"]["leverage"]["max"])
        for s, p in positions.items()
        if p["marginMode"] == "cross"
    )
    assert float(balance["crossMaintenanceMarginUsed"]) == pytest.approx(cross_mm)


async def test_mark_move_reaches_position_value_and_pnl(client, state):
    state.contexts["BTC"].mark_px = 50_000.0

    positions = by_symbol(await client.fetch_positions([BTC], params=USER))

    assert list(positions) == [BTC]
    btc = positions[BTC]
    assert (btc["markPrice"], btc["notional"]) == (50_000, 25_000)
    assert btc["unrealizedPnl"] == pytest.approx(0.5 * (50_000 - 58_000))
    assert btc["info"]["position"]["positionValue"] == "25000.0"
    balance = (await client.fetch_balance(params=USER))["info"]
    # accountValue = totalRawUsd + sum(szi x mark): -8,600 + 0.5 x 50,000 - 4 x 3,000
    assert balance["crossMarginSummary"]["accountValue"] == "4400.0"


async def test_unknown_address_has_no_positions(client):
    other = "0x2222222222222222222222222222222222222222"
    assert await client.fetch_positions(params={"user": other}) == []


# --------------------------------------------------------------------------- balance


async def test_balance_loads_with_raw_fields(client, state):
    balance = await client.fetch_balance(params=USER)

    assert balance["USDC"]["total"] == pytest.approx(10_160)  # marginSummary, incl. isolated
    assert balance["USDC"]["used"] == pytest.approx(6_160)
    raw = balance["info"]
    assert raw["crossMarginSummary"] == {
        "accountValue": "9400.0",
        "totalNtlPos": "42000.0",
        "totalRawUsd": "-8600.0",
        "totalMarginUsed": "5400.0",
    }
    assert raw["marginSummary"] == {
        "accountValue": "10160.0",
        "totalNtlPos": "45000.0",
        "totalRawUsd": "-10840.0",
        "totalMarginUsed": "6160.0",
    }
    assert (raw["crossMaintenanceMarginUsed"], raw["withdrawable"]) == ("615.0", "4000.0")
    assert len(raw["assetPositions"]) == 3
    # ccxt asks which ledger (perp or unified spot) to read before reading it.
    assert state.info_types()[-2:] == ["userAbstraction", "clearinghouseState"]


async def test_unified_account_balance_reads_the_spot_ledger(client, state):
    user = state.users[FIXTURE_ADDRESS]
    user.abstraction = "unifiedAccount"
    user.spot_balances = {"USDC": 1_234.5}

    balance = await client.fetch_balance(params=USER)

    assert balance["USDC"]["total"] == pytest.approx(1_234.5)
    assert state.info_types()[-1] == "spotClearinghouseState"


# --------------------------------------------------------------------------- errors


async def test_unknown_info_type_is_a_422(client):
    with pytest.raises(ccxt.ExchangeError, match="422"):
        await client.public_post_info({"type": "noSuchQuery"})


async def test_invalid_address_is_a_422(client):
    with pytest.raises(ccxt.ExchangeError, match="422"):
        await client.public_post_info({"type": "clearinghouseState", "user": "nobody"})


async def test_unknown_path_method_and_bad_json(server):
    async with aiohttp.ClientSession() as session:
        async with session.post(f"{server.base_url}/nope", json={"type": "meta"}) as response:
            assert response.status == 404
        async with session.post(f"{server.base_url}/exchange", json={}) as response:
            assert response.status == 422  # no action: Hyperliquid's deserialize error
        async with session.get(f"{server.base_url}/info") as response:
            assert response.status == 405
        async with session.post(f"{server.base_url}/info", data=b"{not json") as response:
            assert response.status == 400
        async with session.post(f"{server.base_url}/info", json={"type": "meta"}) as response:
            body = await response.json()
            assert [asset["name"] for asset in body["universe"]] == ["BTC", "ETH", "SOL"]
