"""Isolated positions on the simulator: partial closes and the most margin that can be added.

Every expected figure is derived by hand in the comments from the inputs below and the
altcoin bracket table (1 % up to 5,000 notional, then 1.5 % with maintenance amount 25)
and BTC's first bracket (0.4 % up to 50,000).
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import ccxt.async_support as ccxt
import pytest

from monitor.exchange.urls import rebase_urls
from monitor.simulator.binance_usdm import (
    SimAccount,
    SimExchange,
    SimPosition,
    SymbolSettings,
    build_app,
    usdm_markets,
)
from monitor.simulator.http import LocalServer
from monitor.simulator.risk import RiskEngine

KEY, SECRET = "sim-isolated-key", "sim-isolated-secret"
AVAX, BTC = "AVAX/USDT:USDT", "BTC/USDT:USDT"
CROSS_WALLET = 1_000.0
AVAX_QTY, AVAX_ENTRY, AVAX_WALLET, AVAX_MARK = 200, 35.0, 875.0, 31.5
BTC_QTY, BTC_ENTRY = 0.1, 50_000.0
TAKER = 0.0005


def exchange_at(btc_mark: float) -> SimExchange:
    """Cross BTC long 0.1 @ 50,000 (10x) and an isolated AVAX long 200 @ 35 (wallet 875)."""
    markets = usdm_markets(extended=True)
    exchange = SimExchange(
        markets={s: markets[s] for s in ("BTCUSDT", "AVAXUSDT")},
        mark_prices={"BTCUSDT": btc_mark, "AVAXUSDT": AVAX_MARK},
    )
    exchange.add_account(
        SimAccount(
            api_key=KEY,
            secret=SECRET,
            cross_wallet={"USDT": CROSS_WALLET},
            positions=[
                SimPosition("BTCUSDT", BTC_QTY, BTC_ENTRY, leverage=10),
                SimPosition(
                    "AVAXUSDT",
                    AVAX_QTY,
                    AVAX_ENTRY,
                    margin_type="isolated",
                    isolated_wallet=AVAX_WALLET,
                    leverage=8,
                ),
            ],
            symbol_settings={
                "BTCUSDT": SymbolSettings(10, "cross"),
                "AVAXUSDT": SymbolSettings(8, "isolated"),
            },
        )
    )
    return exchange


async def serve(exchange: SimExchange) -> AsyncIterator[ccxt.binanceusdm]:
    async with LocalServer(build_app(exchange)) as server:
        client = ccxt.binanceusdm({"apiKey": KEY, "secret": SECRET})
        client.urls["api"] = rebase_urls(client.urls["api"], server.base_url)
        client.options["fetchCurrencies"] = False
        try:
            yield client
        finally:
            await client.close()


def reported_liquidation_price(exchange: SimExchange) -> float:
    RiskEngine(exchange).check()
    avax = exchange.accounts[KEY].position("AVAXUSDT")
    assert avax is not None and avax.reported_liquidation_price is not None
    return avax.reported_liquidation_price


async def test_partial_close_of_an_isolated_position_keeps_its_liquidation_price() -> None:
    exchange = exchange_at(60_000.0)
    # Before: 875 + 200 (L - 35) = 200 L x 1.5 % - 25 (6,193 notional at L: second bracket)
    # -> 197 L = 6,100 -> L = 30.96447.
    assert reported_liquidation_price(exchange) == pytest.approx(6_100 / 197, abs=1e-6)
    async for client in serve(exchange):
        order = await client.create_order(AVAX, "market", "sell", 100, None, {"reduceOnly": True})
        assert (order["filled"], order["average"]) == (100, AVAX_MARK)
        positions = {p["symbol"]: p for p in await client.fetch_positions()}
        balance = await client.fetch_balance()

    # The closed half leaves with its own half of the wallet (437.50), its own PnL
    # 100 x (31.5 - 35) = -350 and its fee 100 x 31.5 x 0.05 % = 1.575: the cross wallet
    # receives 437.50 - 350 - 1.575 = 85.925. The remaining half keeps 437.50.
    avax = positions[AVAX]
    assert avax["contracts"] == 100
    assert float(avax["info"]["isolatedWallet"]) == pytest.approx(437.5)
    assert float(avax["info"]["isolatedMargin"]) == pytest.approx(437.5 - 350)
    assert float(balance["info"]["totalCrossWalletBalance"]) == pytest.approx(CROSS_WALLET + 85.925)
    # After: 437.5 + 100 (L - 35) = 100 L x 1 % (3,093 notional at L: first bracket)
    # -> 99 L = 3,062.5 -> L = 30.93434: 0.03 further away (the lower bracket), not closer.
    assert reported_liquidation_price(exchange) == pytest.approx(3_062.5 / 99, abs=1e-6)


async def test_closing_the_rest_returns_the_whole_isolated_wallet() -> None:
    exchange = exchange_at(60_000.0)
    async for client in serve(exchange):
        await client.create_order(AVAX, "market", "sell", 100, None, {"reduceOnly": True})
        await client.create_order(AVAX, "market", "sell", 100, None, {"reduceOnly": True})
    # Twice 437.50 - 350 - 1.575: the whole 875 wallet back, less 700 PnL and 3.15 fees.
    account = exchange.accounts[KEY]
    assert account.position("AVAXUSDT") is None
    assert account.cross_wallet["USDT"] == pytest.approx(CROSS_WALLET + 875 - 700 - 3.15)


@pytest.mark.parametrize(
    ("btc_mark", "max_addable"),
    [
        # BTC in profit: uPnL 0.1 x 10,000 = 1,000, IM 6,000 / 10 = 600, MM 6,000 x 0.4 % = 24.
        # Available 1,000 + 1,000 - 600 = 1,400, but the cross wallet less cross MM is
        # 1,000 - 24 = 976: unrealized profit cannot be moved into an isolated wallet.
        (60_000.0, 976.0),
        # BTC at a loss: uPnL -500, IM 450, MM 18. Available 1,000 - 500 - 450 = 50 is the
        # smaller of the two (1,000 - 18 = 982).
        (45_000.0, 50.0),
    ],
)
async def test_max_addable_margin_follows_binance_rule(btc_mark: float, max_addable: float) -> None:
    exchange = exchange_at(btc_mark)
    async for client in serve(exchange):
        # ccxt rounds a margin amount to the symbol's quantity step (AVAX: 1), so one step
        # over the limit is 1 USDT over it.
        with pytest.raises(ccxt.InsufficientFunds, match="-4050"):
            await client.add_margin(AVAX, max_addable + 1)
        result = await client.add_margin(AVAX, max_addable)
        assert (result["type"], result["amount"]) == ("add", max_addable)
    account = exchange.accounts[KEY]
    avax = account.position("AVAXUSDT")
    assert avax is not None and avax.isolated_wallet == pytest.approx(AVAX_WALLET + max_addable)
    assert account.cross_wallet["USDT"] == pytest.approx(CROSS_WALLET - max_addable)
