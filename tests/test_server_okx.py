"""Unmodified ccxt `okx` (asyncio) reads the local OKX v5 server.

The point is to prove the test server speaks OKX closely enough that ccxt's own parsing,
signing and error mapping work against it, and that the hand-derived fixture figures agree
with the formulas of margin-models.md.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import ccxt.async_support as ccxt
import pytest

from monitor.simulator.http import LocalServer
from tests.servers import okx
from tests.servers.okx import (
    BTC_USD,
    BTC_USDT,
    OkxState,
    make_client,
)

BTC_LINEAR = "BTC/USDT:USDT"
ETH_LINEAR = "ETH/USDT:USDT"
BTC_INVERSE = "BTC/USD:BTC"


@pytest.fixture
def state() -> OkxState:
    return okx.hybrid_account()


@pytest.fixture
async def server(state: OkxState) -> AsyncIterator[LocalServer]:
    async with LocalServer(okx.create_app(state)) as running:
        yield running


@pytest.fixture
async def client(server: LocalServer) -> AsyncIterator[ccxt.okx]:
    exchange = make_client(server.base_url)
    try:
        yield exchange
    finally:
        await exchange.close()


def by_symbol(positions: list[dict]) -> dict[str, dict]:
    return {position["symbol"]: position for position in positions}


# --------------------------------------------------------------------------- markets


async def test_markets_load_with_contract_sizes_and_direction(client, state):
    markets = await client.load_markets()

    assert set(markets) == {BTC_LINEAR, ETH_LINEAR, BTC_INVERSE}
    btc, eth, inverse = markets[BTC_LINEAR], markets[ETH_LINEAR], markets[BTC_INVERSE]
    assert (btc["id"], btc["contractSize"], btc["linear"], btc["inverse"]) == (
        BTC_USDT,
        0.01,
        True,
        False,
    )
    assert (eth["contractSize"], eth["linear"], eth["settle"]) == (0.1, True, "USDT")
    assert (inverse["id"], inverse["contractSize"], inverse["inverse"]) == (BTC_USD, 100, True)
    assert inverse["settle"] == "BTC"
    assert btc["info"]["instFamily"] == "BTC-USDT"
    # One public call, no signed /asset/currencies, no other instrument types.
    assert state.paths_called() == ["/api/v5/public/instruments"]
    assert state.requests[0].query == {"instType": "SWAP"}


async def test_default_fetch_markets_types_still_load(server, state):
    """Other instTypes answer an empty list, so ccxt's default type list does not break."""
    exchange = make_client(server.base_url, minimal=False)
    exchange.has["fetchCurrencies"] = False
    try:
        markets = await exchange.load_markets()
    finally:
        await exchange.close()
    assert set(markets) == {BTC_LINEAR, ETH_LINEAR, BTC_INVERSE}
    inst_types = sorted(r.query["instType"] for r in state.requests)
    assert inst_types == ["FUTURES", "OPTION", "OPTION", "SPOT", "SWAP"]


async def test_currencies_endpoint_is_not_served(server):
    """Documents why `has['fetchCurrencies'] = False` is part of the client settings."""
    exchange = make_client(server.base_url, minimal=False)
    try:
        with pytest.raises(ccxt.ExchangeError, match="asset/currencies"):
            await exchange.load_markets()
    finally:
        await exchange.close()


# --------------------------------------------------------------------------- positions


async def test_positions_parse_side_size_mode_and_prices(client, state):
    positions = by_symbol(await client.fetch_positions())

    btc = positions[BTC_LINEAR]
    assert (btc["side"], btc["contracts"], btc["marginMode"]) == ("long", 50, "isolated")
    assert (btc["entryPrice"], btc["markPrice"]) == (58_000, 60_000)
    assert btc["notional"] == pytest.approx(30_000)  # ctVal 0.01 x 50 x 60,000
    assert btc["unrealizedPnl"] == pytest.approx(1_000)
    assert btc["maintenanceMargin"] == pytest.approx(120)
    assert btc["liquidationPrice"] == pytest.approx(52_435.9618, abs=1e-3)
    assert btc["leverage"] == 10

    eth = positions[ETH_LINEAR]
    assert (eth["side"], eth["contracts"], eth["marginMode"]) == ("short", 20, "cross")
    assert (eth["entryPrice"], eth["markPrice"]) == (3_100, 3_000)
    assert eth["notional"] == pytest.approx(6_000)
    assert eth["initialMargin"] == pytest.approx(1_200)

    inverse = positions[BTC_INVERSE]
    assert (inverse["side"], inverse["contracts"], inverse["marginMode"]) == (
        "short",
        30,
        "isolated",
    )
    assert inverse["entryPrice"] == 62_000
    # ccxt reports inverse notional in coin: 100 USD x 30 / 60,000
    assert inverse["notional"] == pytest.approx(0.05)
    assert inverse["maintenanceMargin"] == pytest.approx(0.00025)
    assert inverse["liquidationPrice"] == pytest.approx(65_018.2777, abs=1e-3)


async def test_position_raw_info_fields_are_intact(client):
    positions = by_symbol(await client.fetch_positions())

    btc = positions[BTC_LINEAR]["info"]
    assert btc["instId"] == BTC_USDT and btc["instType"] == "SWAP"
    assert (btc["mgnMode"], btc["posSide"], btc["pos"]) == ("isolated", "net", "50")
    assert (btc["margin"], btc["imr"], btc["ccy"]) == ("2900", "", "USDT")
    assert btc["mmr"] == "120" and btc["notionalUsd"] == "30000"
    assert float(btc["mgnRatio"]) == pytest.approx(3_900 / 135)

    eth = positions[ETH_LINEAR]["info"]
    assert (eth["pos"], eth["margin"], eth["imr"]) == ("-20", "", "1200")
    assert float(eth["mgnRatio"]) == pytest.approx(7_750 / 33)

    inverse = positions[BTC_INVERSE]["info"]
    assert (inverse["pos"], inverse["ccy"], inverse["margin"]) == ("-30", "BTC", "0.0025")
    assert inverse["notionalUsd"] == "3000"  # face value in USD
    for row in (btc, eth, inverse):
        assert all(isinstance(value, str) for key, value in row.items() if key != "closeOrderAlgo")


async def test_fixture_figures_follow_okx_formulas(client, state):
    """The stored OKX figures agree with margin-models.md, using the served tiers and fees."""
    await client.load_markets()
    fee = (await client.fetch_trading_fee(BTC_LINEAR))["taker"]
    tiers = {
        symbol: (await client.fetch_market_leverage_tiers(symbol))[0]["maintenanceMarginRate"]
        for symbol in (BTC_LINEAR, ETH_LINEAR, BTC_INVERSE)
    }
    positions = by_symbol(await client.fetch_positions())

    btc = positions[BTC_LINEAR]
    base = 0.01 * 50 * 60_000
    assert btc["maintenanceMargin"] == pytest.approx(base * tiers[BTC_LINEAR])
    equity = float(btc["info"]["margin"]) + btc["unrealizedPnl"]
    ratio = equity / (base * tiers[BTC_LINEAR] + base * fee)
    assert float(btc["info"]["mgnRatio"]) == pytest.approx(ratio)

    inverse = positions[BTC_INVERSE]
    coin_base = 100 * 30 / 60_000
    assert inverse["maintenanceMargin"] == pytest.approx(coin_base * tiers[BTC_INVERSE])
    equity = float(inverse["info"]["margin"]) + inverse["unrealizedPnl"]
    ratio = equity / (coin_base * (tiers[BTC_INVERSE] + fee))
    assert float(inverse["info"]["mgnRatio"]) == pytest.approx(ratio)
    assert inverse["unrealizedPnl"] == pytest.approx(3_000 * (1 / 60_000 - 1 / 62_000))

    eth = positions[ETH_LINEAR]
    eth_base = 0.1 * 20 * 3_000
    assert eth["maintenanceMargin"] == pytest.approx(eth_base * tiers[ETH_LINEAR])
    balance = (await client.fetch_balance())["info"]["data"][0]
    account_ratio = float(balance["adjEq"]) / (float(balance["mmr"]) + eth_base * fee)
    assert float(balance["mgnRatio"]) == pytest.approx(account_ratio)


async def test_empty_liquidation_price_means_unknown(client, state):
    state.account.positions[1].liq_px = None  # OKX sends "" for cross positions at times

    positions = by_symbol(await client.fetch_positions())

    assert positions[ETH_LINEAR]["info"]["liqPx"] == ""
    assert positions[ETH_LINEAR]["liquidationPrice"] is None


async def test_mark_move_reaches_mark_and_notional(client, state):
    state.mark_prices[BTC_USDT] = 55_000.0

    positions = by_symbol(await client.fetch_positions([BTC_LINEAR]))

    assert list(positions) == [BTC_LINEAR]
    assert positions[BTC_LINEAR]["markPrice"] == 55_000
    assert positions[BTC_LINEAR]["notional"] == pytest.approx(0.01 * 50 * 55_000)
    assert state.requests[-1].query == {"instId": BTC_USDT}
    mark = await client.fetch_mark_price(BTC_LINEAR)
    assert mark["markPrice"] == 55_000


# --------------------------------------------------------------------------- account


async def test_balance_loads_with_raw_fields(client):
    balance = await client.fetch_balance()

    assert balance["USDT"]["total"] == pytest.approx(11_200)
    assert balance["USDT"]["free"] == pytest.approx(6_100)
    assert balance["BTC"]["total"] == pytest.approx(0.01 + 3_000 * (1 / 60_000 - 1 / 62_000))
    raw = balance["info"]["data"][0]
    assert {"totalEq", "adjEq", "isoEq", "imr", "mmr", "mgnRatio", "details"} <= set(raw)
    assert (raw["adjEq"], raw["mmr"], raw["imr"]) == ("7750", "30", "1200")
    usdt = next(detail for detail in raw["details"] if detail["ccy"] == "USDT")
    assert (usdt["eq"], usdt["cashBal"], usdt["isoEq"], usdt["frozenBal"]) == (
        "11200",
        "10000",
        "3900",
        "2900",
    )
    assert (usdt["availEq"], usdt["upl"]) == ("6100", "1200")


async def test_leverage_tiers_load(client, state):
    await client.load_markets()

    linear = await client.fetch_market_leverage_tiers(BTC_LINEAR)
    inverse = await client.fetch_market_leverage_tiers(BTC_INVERSE, {"marginMode": "isolated"})

    assert [tier["tier"] for tier in linear] == [1, 2, 3]
    assert linear[0]["maintenanceMarginRate"] == 0.004
    assert (linear[0]["minNotional"], linear[0]["maxNotional"]) == (0, 2_000)  # contracts
    assert linear[1]["maxLeverage"] == 80
    assert linear[0]["info"]["imr"] == "0.01"
    assert inverse[1]["maintenanceMarginRate"] == 0.01
    queries = [r.query for r in state.requests if r.path == "/api/v5/public/position-tiers"]
    assert queries == [
        {"instType": "SWAP", "tdMode": "cross", "instFamily": "BTC-USDT"},
        {"instType": "SWAP", "tdMode": "isolated", "instFamily": "BTC-USD"},
    ]


async def test_position_tiers_require_inst_family(client):
    with pytest.raises(ccxt.BadRequest, match="50014"):
        await client.public_get_public_position_tiers({"instType": "SWAP", "tdMode": "cross"})


async def test_trading_fee_loads(client, state):
    await client.load_markets()

    fee = await client.fetch_trading_fee(ETH_LINEAR)

    assert (fee["taker"], fee["maker"]) == (0.0005, 0.0002)
    assert fee["info"]["takerU"] == "-0.0005"  # OKX's sign: negative = charged
    assert state.requests[-1].query == {"instType": "SWAP", "uly": "ETH-USDT"}


async def test_key_permissions_are_readable(server, state):
    state.account.api_keys[0].perm = "read_only,trade,withdraw"
    exchange = make_client(server.base_url)
    try:
        accounts = await exchange.fetch_accounts()
        config = (await exchange.private_get_account_config())["data"][0]
    finally:
        await exchange.close()
    assert accounts[0]["type"] == "3"
    assert config["perm"] == "read_only,trade,withdraw"
    assert config["posMode"] == "net_mode"


# --------------------------------------------------------------------------- auth


@pytest.mark.parametrize(
    ("override", "code"),
    [
        ({"password": "wrong-passphrase"}, "50105"),
        ({"secret": "wrong-secret"}, "50113"),
        ({"api_key": "unknown-key"}, "50111"),
    ],
)
async def test_bad_credentials_raise_authentication_error(server, override, code):
    exchange = make_client(server.base_url, **override)
    try:
        await exchange.load_markets()  # public: works with any credentials
        with pytest.raises(ccxt.AuthenticationError, match=code):
            await exchange.fetch_positions()
        with pytest.raises(ccxt.AuthenticationError, match=code):
            await exchange.fetch_balance()
    finally:
        await exchange.close()


async def test_stale_timestamp_is_rejected(server):
    exchange = make_client(server.base_url)
    exchange.options["timeDifference"] = 120_000  # clock 2 minutes behind OKX's
    try:
        with pytest.raises(ccxt.InvalidNonce, match="50102"):
            await exchange.fetch_balance()
    finally:
        await exchange.close()


async def test_unsigned_private_call_and_unknown_path(server):
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{server.base_url}/api/v5/account/balance") as response:
            assert response.status == 401
            assert (await response.json())["code"] == "50103"
        async with session.get(f"{server.base_url}/api/v5/account/nope") as response:
            assert response.status == 404
            assert (await response.json())["code"] != "0"
        async with session.get(f"{server.base_url}/api/v5/public/time") as response:
            body = await response.json()
            assert body["code"] == "0" and body["data"][0]["ts"].isdigit()


def test_signature_matches_okx_documented_shape():
    """base64(HMAC-SHA256(secret, ts + METHOD + path?query + body)), as in ccxt's sign()."""
    import base64
    import hashlib
    import hmac

    ts = "2020-12-08T09:08:57.715Z"
    path = "/api/v5/account/balance?ccy=BTC"
    expected = base64.b64encode(
        hmac.new(b"s", f"{ts}GET{path}".encode(), hashlib.sha256).digest()
    ).decode()
    assert okx.expected_signature("s", ts, "GET", path, "") == expected
