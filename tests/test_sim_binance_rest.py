"""Unmodified ccxt binanceusdm against the simulated Binance USD-M REST dialect.

Expected figures are worked out here by hand from the fixture's inputs (Binance's FAQ
cross example plus one isolated SOL short), never by calling the simulator's helpers.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from itertools import pairwise

import aiohttp
import ccxt.async_support as ccxt
import pytest

from monitor.exchange.urls import rebase_urls
from monitor.simulator.binance_usdm import (
    FAQ_API_KEY,
    FAQ_SECRET,
    Fault,
    SimExchange,
    binance_faq_hybrid_account,
    build_app,
)
from monitor.simulator.http import LocalServer

BTC = "BTC/USDT:USDT"
ETH = "ETH/USDT:USDT"
SOL = "SOL/USDT:USDT"

# The fixture's inputs, restated.
WALLET = 1_535_443.01
BTC_QTY, BTC_ENTRY, BTC_MARK, BTC_RATE, BTC_CUM = 109.488, 32_481.98, 31_967.27, 0.025, 16_300.0
ETH_QTY, ETH_ENTRY, ETH_MARK, ETH_RATE, ETH_CUM = 3_683.979, 1_456.84, 1_335.18, 0.10, 135_365.0
SOL_QTY, SOL_ENTRY, SOL_MARK, SOL_RATE, SOL_CUM = 400, 142.50, 148.25, 0.02, 275.0
SOL_WALLET = 6_000.0
BTC_LEV, ETH_LEV, SOL_LEV = 20, 5, 10
TAKER = 0.0005

BTC_NOTIONAL = BTC_QTY * BTC_MARK  # 3,500,032.46 -> bracket 1M..5M
ETH_NOTIONAL = ETH_QTY * ETH_MARK  # 4,918,775.08 -> bracket 2M..5M
SOL_NOTIONAL = SOL_QTY * SOL_MARK  # 59,300 -> bracket 50k..250k
BTC_UPNL = BTC_QTY * (BTC_MARK - BTC_ENTRY)
ETH_UPNL = ETH_QTY * (ETH_MARK - ETH_ENTRY)
SOL_UPNL = -SOL_QTY * (SOL_MARK - SOL_ENTRY)
BTC_MM = BTC_NOTIONAL * BTC_RATE - BTC_CUM
ETH_MM = ETH_NOTIONAL * ETH_RATE - ETH_CUM
SOL_MM = SOL_NOTIONAL * SOL_RATE - SOL_CUM


@pytest.fixture
async def venue() -> AsyncIterator[tuple[SimExchange, LocalServer]]:
    exchange = binance_faq_hybrid_account()
    async with LocalServer(build_app(exchange)) as server:
        yield exchange, server


def client_for(
    server: LocalServer, api_key: str = FAQ_API_KEY, secret: str = FAQ_SECRET, **config: object
) -> ccxt.binanceusdm:
    client = ccxt.binanceusdm({"apiKey": api_key, "secret": secret, **config})
    client.urls["api"] = rebase_urls(client.urls["api"], server.base_url)
    client.options["fetchCurrencies"] = False
    return client


@pytest.fixture
async def client(venue: tuple[SimExchange, LocalServer]) -> AsyncIterator[ccxt.binanceusdm]:
    client = client_for(venue[1])
    try:
        yield client
    finally:
        await client.close()


async def test_load_markets_gives_limits_and_precision(client: ccxt.binanceusdm) -> None:
    markets = await client.load_markets()
    btc = markets[BTC]
    assert (btc["id"], btc["swap"], btc["linear"], btc["settle"]) == ("BTCUSDT", True, True, "USDT")
    assert btc["contractSize"] == 1
    assert btc["precision"]["amount"] == 0.001
    assert btc["precision"]["price"] == 0.1
    assert btc["limits"]["amount"] == {"min": 0.001, "max": 1000}
    assert btc["limits"]["market"] == {"min": 0.001, "max": 120}
    assert btc["limits"]["cost"]["min"] == 100
    assert {ETH, SOL} <= set(markets)


async def test_fetch_positions_of_hybrid_account(client: ccxt.binanceusdm) -> None:
    positions = {p["symbol"]: p for p in await client.fetch_positions()}
    assert set(positions) == {BTC, ETH, SOL}

    btc, eth, sol = positions[BTC], positions[ETH], positions[SOL]
    assert (btc["side"], btc["marginMode"]) == ("long", "cross")
    assert btc["contracts"] == pytest.approx(BTC_QTY)
    assert btc["entryPrice"] == pytest.approx(BTC_ENTRY)
    assert btc["markPrice"] == pytest.approx(BTC_MARK)
    assert btc["unrealizedPnl"] == pytest.approx(BTC_UPNL, abs=1e-6)
    assert btc["liquidationPrice"] == pytest.approx(26_316.89)
    assert float(btc["info"]["maintMargin"]) == pytest.approx(BTC_MM, abs=1e-6)
    assert float(btc["info"]["isolatedWallet"]) == 0
    assert float(btc["info"]["notional"]) == pytest.approx(BTC_NOTIONAL, abs=1e-6)

    assert (eth["side"], eth["marginMode"]) == ("long", "cross")
    assert eth["contracts"] == pytest.approx(ETH_QTY)
    assert eth["entryPrice"] == pytest.approx(ETH_ENTRY)
    assert eth["markPrice"] == pytest.approx(ETH_MARK)
    assert eth["liquidationPrice"] == pytest.approx(1_153.26)
    assert float(eth["info"]["maintMargin"]) == pytest.approx(ETH_MM, abs=1e-6)

    assert (sol["side"], sol["marginMode"]) == ("short", "isolated")
    assert sol["contracts"] == pytest.approx(SOL_QTY)
    assert sol["entryPrice"] == pytest.approx(SOL_ENTRY)
    assert sol["markPrice"] == pytest.approx(SOL_MARK)
    assert float(sol["info"]["positionAmt"]) == -SOL_QTY
    assert float(sol["info"]["notional"]) == pytest.approx(-SOL_NOTIONAL)
    assert float(sol["info"]["isolatedWallet"]) == SOL_WALLET
    assert float(sol["info"]["isolatedMargin"]) == pytest.approx(SOL_WALLET + SOL_UPNL)  # 3,700
    assert float(sol["info"]["maintMargin"]) == pytest.approx(SOL_MM)  # 911
    assert sol["liquidationPrice"] == pytest.approx(155.08578431)


def test_fixture_liquidation_prices_follow_binance_faq_formula() -> None:
    """The reported figures are the FAQ's: check them against its one-way formula by hand."""
    # LP = (WB - TMM1 + UPNL1 + cumB - Side x Pos x EP) / (Pos x MMR - Side x Pos)
    btc_lp = (WALLET - ETH_MM + ETH_UPNL + BTC_CUM - BTC_QTY * BTC_ENTRY) / (
        BTC_QTY * BTC_RATE - BTC_QTY
    )
    eth_lp = (WALLET - BTC_MM + BTC_UPNL + ETH_CUM - ETH_QTY * ETH_ENTRY) / (
        ETH_QTY * ETH_RATE - ETH_QTY
    )
    sol_lp = (SOL_WALLET + SOL_CUM + SOL_QTY * SOL_ENTRY) / (SOL_QTY * SOL_RATE + SOL_QTY)
    assert round(btc_lp, 2) == 26_316.89
    assert round(eth_lp, 2) == 1_153.26
    assert sol_lp == pytest.approx(155.08578431)


async def test_fetch_balance_totals(client: ccxt.binanceusdm) -> None:
    balance = await client.fetch_balance()
    cross_upnl = BTC_UPNL + ETH_UPNL
    all_upnl = cross_upnl + SOL_UPNL
    cross_im = BTC_NOTIONAL / BTC_LEV + ETH_NOTIONAL / ETH_LEV
    all_im = cross_im + SOL_NOTIONAL / SOL_LEV

    usdt = balance["USDT"]
    assert usdt["total"] == pytest.approx(WALLET + SOL_WALLET + all_upnl, abs=1e-6)
    assert usdt["used"] == pytest.approx(all_im, abs=1e-6)
    assert usdt["free"] == pytest.approx(WALLET + cross_upnl - cross_im, abs=1e-6)

    info = balance["info"]
    assert float(info["totalCrossWalletBalance"]) == pytest.approx(WALLET)
    assert float(info["totalCrossUnPnl"]) == pytest.approx(cross_upnl, abs=1e-6)
    assert float(info["totalWalletBalance"]) == pytest.approx(WALLET + SOL_WALLET)
    assert float(info["totalMaintMargin"]) == pytest.approx(BTC_MM + ETH_MM + SOL_MM, abs=1e-6)
    assert float(info["totalMarginBalance"]) == pytest.approx(
        WALLET + SOL_WALLET + all_upnl, abs=1e-6
    )
    (asset,) = info["assets"]
    assert float(asset["walletBalance"]) == pytest.approx(WALLET + SOL_WALLET)
    assert float(asset["crossWalletBalance"]) == pytest.approx(WALLET)
    assert {p["symbol"] for p in info["positions"]} == {"BTCUSDT", "ETHUSDT", "SOLUSDT"}


async def test_fetch_leverage_tiers_returns_continuous_brackets(
    client: ccxt.binanceusdm,
) -> None:
    tiers = await client.fetch_leverage_tiers([BTC, ETH])
    btc = {t["minNotional"]: t for t in tiers[BTC]}
    assert btc[1_000_000]["maxNotional"] == 5_000_000
    assert btc[1_000_000]["maintenanceMarginRate"] == BTC_RATE
    assert btc[1_000_000]["info"]["cum"] == BTC_CUM
    assert btc[1_000_000]["maxLeverage"] == 20
    eth = {t["minNotional"]: t for t in tiers[ETH]}
    assert eth[2_000_000]["maintenanceMarginRate"] == ETH_RATE
    assert eth[2_000_000]["info"]["cum"] == ETH_CUM

    for table in (tiers[BTC], tiers[ETH]):
        assert table[0]["minNotional"] == 0 and table[0]["info"]["cum"] == 0
        for previous, tier in pairwise(table):
            assert tier["minNotional"] == previous["maxNotional"]
            jump = tier["minNotional"] * (
                tier["maintenanceMarginRate"] - previous["maintenanceMarginRate"]
            )
            assert tier["info"]["cum"] == pytest.approx(previous["info"]["cum"] + jump)


async def test_wrong_secret_unknown_key_and_clock_skew(
    venue: tuple[SimExchange, LocalServer],
) -> None:
    exchange, server = venue
    for key, secret in ((FAQ_API_KEY, "not-the-secret"), ("no-such-key", FAQ_SECRET)):
        client = client_for(server, key, secret)
        try:
            with pytest.raises(ccxt.AuthenticationError):
                await client.fetch_positions()
        finally:
            await client.close()

    client = client_for(server)
    wall_clock = exchange.clock_ms
    exchange.clock_ms = lambda: wall_clock() + 60_000  # the server runs a minute ahead
    try:
        with pytest.raises(ccxt.InvalidNonce, match="-1021"):
            await client.fetch_balance()
    finally:
        await client.close()


async def test_unknown_path_and_method_get_binance_404(
    venue: tuple[SimExchange, LocalServer],
) -> None:
    _, server = venue
    async with aiohttp.ClientSession() as session:
        for method, path in (("GET", "/fapi/v1/noSuchThing"), ("DELETE", "/fapi/v1/ping")):
            async with session.request(method, server.base_url + path) as response:
                assert response.status == 404
                assert response.content_type == "application/json"
                assert await response.json() == {
                    "code": -5000,
                    "msg": f"Path {path}, Method {method} is invalid",
                }


async def test_reduce_only_market_order_realizes_pnl(
    venue: tuple[SimExchange, LocalServer], client: ccxt.binanceusdm
) -> None:
    exchange, _ = venue
    order = await client.create_order(
        BTC, "market", "sell", 50, params={"reduceOnly": True, "clientOrderId": "close-btc-1"}
    )
    assert (order["status"], order["filled"], order["average"]) == ("closed", 50, BTC_MARK)

    realized = 50 * (BTC_MARK - BTC_ENTRY)  # -25,735.50
    fee = 50 * BTC_MARK * TAKER  # 799.18
    balance = await client.fetch_balance()
    assert float(balance["info"]["totalCrossWalletBalance"]) == pytest.approx(
        WALLET + realized - fee, abs=1e-6
    )
    positions = {p["symbol"]: p for p in await client.fetch_positions()}
    assert positions[BTC]["contracts"] == pytest.approx(BTC_QTY - 50)
    assert positions[BTC]["entryPrice"] == pytest.approx(BTC_ENTRY)

    again = await client.fetch_order(order["id"], BTC, params={"clientOrderId": "close-btc-1"})
    assert (again["id"], again["filled"], again["reduceOnly"]) == (order["id"], 50, True)
    assert len(exchange.accounts[FAQ_API_KEY].orders) == 1


async def test_reduce_only_that_would_flip_or_increase_is_rejected(
    client: ccxt.binanceusdm,
) -> None:
    # Over loopback ccxt applies only its common error map: -2022 arrives as ExchangeError.
    with pytest.raises(ccxt.ExchangeError, match="-2022"):
        await client.create_order(BTC, "market", "sell", 110, params={"reduceOnly": True})
    with pytest.raises(ccxt.ExchangeError, match="-2022"):
        await client.create_order(BTC, "market", "buy", 1, params={"reduceOnly": True})
    balance = await client.fetch_balance()
    assert float(balance["info"]["totalCrossWalletBalance"]) == pytest.approx(WALLET)
    positions = {p["symbol"]: p for p in await client.fetch_positions()}
    assert positions[BTC]["contracts"] == pytest.approx(BTC_QTY)


async def test_add_margin_moves_cross_wallet_to_isolated_wallet(
    venue: tuple[SimExchange, LocalServer], client: ccxt.binanceusdm
) -> None:
    exchange, _ = venue
    # FAQ account: cross margin balance is below cross initial margin, so nothing is free.
    available = WALLET + BTC_UPNL + ETH_UPNL - BTC_NOTIONAL / BTC_LEV - ETH_NOTIONAL / ETH_LEV
    assert available < 0
    with pytest.raises(ccxt.InsufficientFunds, match="-4050"):
        await client.add_margin(SOL, 500)

    deposit = 200_000.0
    exchange.accounts[FAQ_API_KEY].cross_wallet["USDT"] += deposit  # a transfer into futures
    result = await client.add_margin(SOL, 500)
    assert (result["type"], result["amount"], result["status"]) == ("add", 500, "ok")

    positions = {p["symbol"]: p for p in await client.fetch_positions()}
    assert float(positions[SOL]["info"]["isolatedWallet"]) == SOL_WALLET + 500
    info = (await client.fetch_balance())["info"]
    assert float(info["totalCrossWalletBalance"]) == pytest.approx(WALLET + deposit - 500)
    assert float(info["totalWalletBalance"]) == pytest.approx(WALLET + deposit + SOL_WALLET)


async def test_leverage_and_margin_type_rules(client: ccxt.binanceusdm) -> None:
    await client.set_leverage(10, BTC)
    assert (await client.fetch_margin_mode(BTC))["info"]["leverage"] == 10
    with pytest.raises(ccxt.ExchangeError, match="-2027"):  # 50x caps notional at 1M
        await client.set_leverage(50, BTC)
    with pytest.raises(ccxt.OperationRejected, match="-4048"):
        await client.set_margin_mode("isolated", BTC)
    assert (await client.fetch_position_mode())["hedged"] is False


async def test_read_only_key_cannot_trade(
    venue: tuple[SimExchange, LocalServer], client: ccxt.binanceusdm
) -> None:
    exchange, _ = venue
    exchange.accounts[FAQ_API_KEY].can_trade = False
    restrictions = await client.sapi_get_account_apirestrictions()
    assert (restrictions["enableReading"], restrictions["enableFutures"]) == (True, False)
    assert restrictions["enableWithdrawals"] is False
    with pytest.raises(ccxt.AuthenticationError, match="-2015"):
        await client.create_order(BTC, "market", "sell", 1, params={"reduceOnly": True})


async def test_fault_injection_rate_limit_server_error_and_timeout(
    venue: tuple[SimExchange, LocalServer],
) -> None:
    exchange, server = venue
    path = "/fapi/v1/premiumIndex"
    exchange.faults[path] = Fault.rate_limited(retry_after_s=3, times=1)
    async with (
        aiohttp.ClientSession() as session,
        session.get(server.base_url + path) as response,
    ):
        assert (response.status, response.headers["Retry-After"]) == (429, "3")
        assert (await response.json())["code"] == -1003
    assert path not in exchange.faults

    client = client_for(server, timeout=300)
    try:
        await client.load_markets()
        exchange.faults[path] = Fault.server_error(times=1)
        with pytest.raises(ccxt.OperationFailed, match="-1001"):  # ccxt's retryable family
            await client.fetch_mark_price(BTC)
        exchange.faults[path] = Fault.hang(1.0, times=1)
        with pytest.raises(ccxt.RequestTimeout):
            await client.fetch_mark_price(BTC)
        assert (await client.fetch_mark_price(BTC))["markPrice"] == BTC_MARK
    finally:
        await client.close()
