"""Unmodified ccxt `bybit` (asyncio) against the local Bybit v5 server.

These tests pin two things at once: that the server speaks the dialect closely enough for
ccxt's request building, signing and parsing, and what ccxt 4.5.90 actually does with a
unified account (which endpoints it calls, which fields it leaves to `info`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import ROUND_DOWN, Decimal
from typing import Any

import aiohttp
import ccxt
import pytest

from monitor.simulator.http import LocalServer
from tests.servers.bybit import (
    TEST_KEY,
    TEST_SECRET,
    ApiKey,
    BybitState,
    RiskTier,
    create_app,
    hybrid_unified_account,
    make_client,
)

BTC = "BTC/USDT:USDT"
ETH = "ETH/USDT:USDT"
SOL = "SOL/USDT:USDT"
BTC_INVERSE = "BTC/USD:BTC"


@pytest.fixture
def state() -> BybitState:
    return hybrid_unified_account()


@pytest.fixture
async def server(state: BybitState) -> AsyncIterator[LocalServer]:
    async with LocalServer(create_app(state)) as srv:
        yield srv


@pytest.fixture
async def client(server: LocalServer) -> AsyncIterator[Any]:
    exchange = make_client(server.base_url)
    try:
        yield exchange
    finally:
        await exchange.close()


async def test_markets_load_linear_and_inverse_only(client: Any, state: BybitState) -> None:
    markets = await client.load_markets()

    assert set(markets) == {BTC, ETH, SOL, BTC_INVERSE}
    btc = markets[BTC]
    assert (btc["id"], btc["type"], btc["linear"], btc["settle"]) == (
        "BTCUSDT",
        "swap",
        True,
        "USDT",
    )
    assert btc["contractSize"] == 1
    assert btc["precision"]["amount"] == 0.001
    inverse = markets[BTC_INVERSE]
    assert inverse["inverse"] is True and inverse["settle"] == "BTC"
    # ccxt takes an inverse contract's size (in USD) from lotSizeFilter.minOrderQty.
    assert inverse["contractSize"] == 1
    # With these client settings load_markets touches nothing but instruments-info
    # (no /v5/asset/coin/query-info, no spot/option categories).
    assert state.called() == [("GET", "/v5/market/instruments-info")] * 4
    categories = sorted((r.params["category"], r.params.get("status", "")) for r in state.requests)
    assert categories == [
        ("inverse", ""),
        ("inverse", "PreLaunch"),
        ("linear", ""),
        ("linear", "PreLaunch"),
    ]


async def test_fetch_positions_returns_all_three(client: Any, state: BybitState) -> None:
    positions = {p["symbol"]: p for p in await client.fetch_positions()}

    assert set(positions) == {BTC, ETH, SOL}
    expected = {
        BTC: ("long", 0.5, 62000, 65000, "cross"),
        ETH: ("short", 10, 3000, 3200, "cross"),
        SOL: ("long", 1000, 140, 150, "isolated"),
    }
    for symbol, (side, contracts, entry, mark, mode) in expected.items():
        p = positions[symbol]
        assert p["side"] == side
        assert p["contracts"] == contracts
        assert p["entryPrice"] == entry
        assert p["markPrice"] == mark
        # ccxt 4.5.90 leaves marginMode None for bybit ("tradeMode was deprecated"):
        # the mode has to be read from the raw tradeMode.
        assert p["marginMode"] is None
        assert {0: "cross", 1: "isolated"}[p["info"]["tradeMode"]] == mode

    by_symbol = {s.symbol: s for s in state.account.positions}
    for symbol, p in positions.items():
        raw = by_symbol[p["info"]["symbol"]]
        assert p["info"]["positionIM"] == raw.position_im
        assert p["info"]["positionMM"] == raw.position_mm
        assert p["info"]["liqPrice"] == raw.liq_price
        assert p["info"]["positionBalance"] == raw.position_balance
        assert p["info"]["bustPrice"] == raw.bust_price, symbol

    # Unified cross: Bybit sends liqPrice "", which ccxt turns into None (unknown, not safe).
    assert positions[BTC]["liquidationPrice"] is None
    assert positions[ETH]["liquidationPrice"] is None
    assert positions[SOL]["liquidationPrice"] == 112
    assert positions[SOL]["info"]["positionBalance"] == "29241.6"
    assert state.called()[-1] == ("GET", "/v5/position/list")
    assert state.requests[-1].params == {"category": "linear", "settleCoin": "USDT", "limit": "200"}


async def test_fetch_positions_follows_the_cursor(client: Any, state: BybitState) -> None:
    positions = await client.fetch_positions(None, {"paginate": True, "limit": 2})

    assert sorted(p["symbol"] for p in positions) == [BTC, ETH, SOL]
    pages = [r.params for r in state.requests if r.path == "/v5/position/list"]
    assert len(pages) == 2
    assert "cursor" not in pages[0] and pages[1]["cursor"]


async def test_position_by_symbol_without_position_is_empty(client: Any) -> None:
    positions = await client.fetch_positions([BTC_INVERSE])

    assert len(positions) == 1
    assert positions[0]["contracts"] == 0 and positions[0]["side"] is None


async def test_fetch_balance_exposes_raw_unified_totals(client: Any, state: BybitState) -> None:
    balance = await client.fetch_balance()
    await client.fetch_balance()

    totals = balance["info"]["result"]["list"][0]
    assert totals["accountType"] == "UNIFIED"
    assert totals["accountMMRate"] == "0.0175"
    assert totals["totalMaintenanceMargin"] == "355.17"
    assert totals["totalMarginBalance"] == "20258.4"
    assert totals["totalInitialMargin"] == "4882.67"
    assert totals["totalAvailableBalance"] == "15375.73"
    assert totals["totalEquity"] == "59500"
    assert balance["USDT"]["total"] == 50000
    # ccxt's free = walletBalance - totalPositionIM (availableToWithdraw is "" on UTA 2.0):
    # not Bybit's totalAvailableBalance, and blind to unrealised PnL.
    assert balance["USDT"]["free"] == pytest.approx(15875.73)
    # The UTA detection runs once per client (two concurrent calls, either order), before
    # the first wallet-balance call.
    called = state.called()
    assert called[:4] == [("GET", "/v5/market/instruments-info")] * 4
    assert sorted(called[4:6]) == [("GET", "/v5/account/info"), ("GET", "/v5/user/query-api")]
    assert called[6:] == [("GET", "/v5/account/wallet-balance")] * 2
    assert state.requests[-1].params == {"accountType": "UNIFIED"}


async def test_leverage_tiers_load(client: Any, state: BybitState) -> None:
    tiers = await client.fetch_leverage_tiers()

    # Without symbols ccxt asks for the linear category only.
    assert set(tiers) == {BTC, ETH, SOL}
    sol = tiers[SOL]
    assert [t["tier"] for t in sol] == [1, 2, 3]
    assert sol[1]["minNotional"] == 100000 and sol[1]["maxNotional"] == 200000
    assert sol[1]["maintenanceMarginRate"] == 0.015
    assert sol[1]["info"]["mmDeduction"] == "500"
    assert sol[0]["info"]["mmDeduction"] == ""

    market_tiers = await client.fetch_market_leverage_tiers(BTC_INVERSE)
    assert [t["maxNotional"] for t in market_tiers] == [150, 300]
    assert market_tiers[0]["currency"] == "BTC"
    assert state.requests[-1].params == {"symbol": "BTCUSD", "category": "inverse"}


async def test_leverage_tiers_paginate_by_cursor(client: Any, state: BybitState) -> None:
    state.risk_limit_page_size = 3

    tiers = await client.fetch_leverage_tiers()

    assert {s: len(t) for s, t in tiers.items()} == {BTC: 4, ETH: 3, SOL: 3}
    pages = [r for r in state.requests if r.path == "/v5/market/risk-limit"]
    assert len(pages) == 4


async def test_fee_rate_loads(client: Any, state: BybitState) -> None:
    fee = await client.fetch_trading_fee(BTC)

    assert (fee["taker"], fee["maker"]) == (0.00055, 0.0002)
    assert state.requests[-1].params == {"symbol": "BTCUSDT", "category": "linear"}
    fees = await client.fetch_trading_fees({"category": "linear"})
    assert set(fees) == {BTC, ETH, SOL}
    # ccxt's fetch_trading_fees sends no category of its own.
    with pytest.raises(ccxt.BadRequest):
        await client.fetch_trading_fees()


async def test_mark_price_comes_from_the_ticker(client: Any, state: BybitState) -> None:
    ticker = await client.fetch_ticker(ETH)
    assert ticker["markPrice"] == 3200
    assert ticker["indexPrice"] == 3200.41

    state.tickers["ETHUSDT"].mark_price = "3100.5"
    tickers = await client.fetch_tickers([ETH, BTC])
    assert tickers[ETH]["markPrice"] == 3100.5
    with pytest.raises(ccxt.NotSupported):
        await client.fetch_mark_price(ETH)


async def test_wrong_secret_raises_authentication_error(server: LocalServer) -> None:
    exchange = make_client(server.base_url, TEST_KEY, "not-the-secret")
    try:
        with pytest.raises(ccxt.AuthenticationError, match="error sign"):
            await exchange.fetch_balance()
    finally:
        await exchange.close()


async def test_unknown_key_raises_authentication_error(server: LocalServer) -> None:
    exchange = make_client(server.base_url, "no-such-key", TEST_SECRET)
    try:
        with pytest.raises(ccxt.AuthenticationError, match="10003"):
            await exchange.fetch_positions()
    finally:
        await exchange.close()


async def test_stale_timestamp_raises_invalid_nonce(client: Any) -> None:
    client.options["timeDifference"] = 60_000  # ccxt signs with a timestamp 60 s old

    with pytest.raises(ccxt.InvalidNonce):
        await client.fetch_positions()


async def test_unknown_endpoint_is_404_not_empty_200(server: LocalServer) -> None:
    async with aiohttp.ClientSession() as session:
        for method, path in [
            ("GET", "/v5/asset/coin/query-info"),
            ("GET", "/v5/order/create"),  # known path, wrong method
            ("GET", "/nope"),
        ]:
            async with session.request(method, server.base_url + path) as response:
                assert response.status == 404, path


async def test_reduce_only_order_is_recorded(client: Any, state: BybitState) -> None:
    order = await client.create_order(BTC, "market", "sell", 0.2, None, {"reduceOnly": True})

    assert order["id"] == state.orders[0].order_id
    recorded = state.orders[0]
    assert recorded.symbol == "BTCUSDT" and recorded.side == "Sell"
    assert recorded.order_type == "Market" and recorded.qty == "0.2"
    assert recorded.reduce_only is True and recorded.category == "linear"
    # Reduce-only in the position's own direction cannot reduce anything.
    with pytest.raises(ccxt.InvalidOrder):
        await client.create_order(ETH, "market", "sell", 1, None, {"reduceOnly": True})
    assert len(state.orders) == 1


async def test_add_margin_to_isolated_position(client: Any, state: BybitState) -> None:
    response = await client.privatePostV5PositionAddMargin(
        {"category": "linear", "symbol": "SOLUSDT", "margin": "985", "positionIdx": 0}
    )

    result = response["result"]
    # 985 extra margin on 1,000 SOL (tier rate 0.015, MM at the mark) moves liquidation
    # 985 / (1,000 x 0.985) = 1 lower.
    assert result["positionBalance"] == "30226.6"
    assert result["liqPrice"] == "111"
    assert result["bustPrice"] == ""
    assert state.margin_adjustments[0].margin == "985"
    with pytest.raises(ccxt.BadRequest, match="cross_margin"):
        await client.privatePostV5PositionAddMargin(
            {"category": "linear", "symbol": "BTCUSDT", "margin": "500", "positionIdx": 0}
        )


async def test_read_only_key_cannot_trade(server: LocalServer, state: BybitState) -> None:
    state.api_keys["ro"] = ApiKey("ro", "ro-secret", read_only=True)
    exchange = make_client(server.base_url, "ro", "ro-secret")
    try:
        assert len(await exchange.fetch_positions()) == 3
        with pytest.raises(ccxt.PermissionDenied):
            await exchange.create_order(BTC, "market", "sell", 0.1, None, {"reduceOnly": True})
    finally:
        await exchange.close()
    assert state.orders == []


# ---------------------------------------------------------------------------------------
# The fixture's exchange-computed figures, re-derived here by hand from its own tiers,
# fee rates and prices (deliberately not through monitor.engine).
# ---------------------------------------------------------------------------------------


def _tier(tiers: list[RiskTier], value: Decimal) -> RiskTier:
    return next(t for t in tiers if value <= Decimal(t.risk_limit_value))


def _d(text: str) -> Decimal:
    return Decimal(text or "0")


def test_fixture_figures_are_self_consistent(state: BybitState) -> None:
    # Bybit's rules since 2 Sep 2025: MM (and cross IM) by the mark value and its tier,
    # isolated IM and the fee to close at entry.
    taker = Decimal(state.fee_rates["BTCUSDT"].taker)
    cross_mm = cross_im = cross_upnl = isolated_margin = Decimal(0)
    for p in state.account.positions:
        size, entry, lev = Decimal(p.size), Decimal(p.avg_price), Decimal(p.leverage)
        mark = Decimal(p.mark_price)
        sign = 1 if p.side == "Buy" else -1
        assert Decimal(p.position_value) == size * entry
        value = size * mark
        tier = _tier(state.risk_limits[p.symbol], value)
        assert p.risk_id == tier.id and p.risk_limit_value == tier.risk_limit_value
        fee = size * entry * (1 - sign / lev) * taker
        mm = value * Decimal(tier.maintenance_margin) - _d(tier.mm_deduction) + fee
        assert Decimal(p.position_mm) == mm, p.symbol
        upnl = sign * (mark - entry) * size
        assert Decimal(p.unrealised_pnl) == upnl
        assert p.bust_price == ""
        if p.trade_mode == 0:
            assert p.liq_price == ""
            im = value / lev + fee
            assert Decimal(p.position_im) == im, p.symbol
            cross_mm, cross_im, cross_upnl = cross_mm + mm, cross_im + im, cross_upnl + upnl
        else:
            assert Decimal(p.position_im) == size * entry / lev + fee
            margin = Decimal(p.position_balance)
            isolated_margin += margin
            # Liquidation where position margin + uPnL = MM, MM at the liquidation price.
            liq = Decimal(p.liq_price)
            at_liq = _tier(state.risk_limits[p.symbol], size * liq)
            mm_at_liq = size * liq * Decimal(at_liq.maintenance_margin)
            mm_at_liq += fee - _d(at_liq.mm_deduction)
            assert margin + sign * (liq - entry) * size == mm_at_liq

    acct = state.account
    wallet = Decimal(acct.total_wallet_balance)
    margin_balance = wallet - isolated_margin + cross_upnl
    assert Decimal(acct.total_margin_balance) == margin_balance
    assert Decimal(acct.total_maintenance_margin) == cross_mm
    assert Decimal(acct.total_initial_margin) == cross_im
    assert Decimal(acct.total_available_balance) == margin_balance - cross_im
    four = Decimal("0.0001")
    assert Decimal(acct.account_mm_rate) == (cross_mm / margin_balance).quantize(four, ROUND_DOWN)
    assert Decimal(acct.account_im_rate) == (cross_im / margin_balance).quantize(four, ROUND_DOWN)
    total_upnl = sum(Decimal(p.unrealised_pnl) for p in acct.positions)
    assert Decimal(acct.total_perp_upl) == total_upnl
    assert Decimal(acct.total_equity) == wallet + total_upnl
