"""The simulator's `/fapi/v1/klines`, in Binance's reply shape, from its price history.

Rows are Binance's twelve fields (docs, "Kline/Candlestick Data"): open time, open,
high, low, close (strings), volume, close time, quote volume, trade count, taker buy
base and quote volumes, ignore. Expected candles are worked out by hand from the
seeded prices below; prices carry BTCUSDT's tick (0.1): one decimal.
"""

from __future__ import annotations

import aiohttp
import ccxt.async_support as ccxt

from monitor.exchange.urls import rebase_urls
from monitor.simulator.binance_usdm import binance_faq_hybrid_account, build_app
from monitor.simulator.http import LocalServer

DAY = 1_760_054_400_000  # 2025-10-10 00:00 UTC
MINUTE = 60_000


def seeded():  # type: ignore[no-untyped-def]
    exchange = binance_faq_hybrid_account()
    # minute 0: 100, 1: 104, 2: 98, 4: 101 | nothing in 5..9 | minute 12: 99, 13: 103
    points = [(0, 100.0), (1, 104.0), (2, 98.0), (4, 101.0), (12, 99.0), (13, 103.0)]
    exchange.price_history["BTCUSDT"] = [(DAY + m * MINUTE, p) for m, p in points]
    return exchange


async def test_klines_reply_shape_gaps_and_window():
    exchange = seeded()
    async with LocalServer(build_app(exchange)) as server, aiohttp.ClientSession() as http:
        url = f"{server.base_url}/fapi/v1/klines"
        query = {"symbol": "BTCUSDT", "interval": "5m"}
        async with http.get(url, params=query) as reply:
            rows = await reply.json()
        # 00:00-00:05 O 100 H 104 L 98 C 101; 00:05 nothing: flat at 101; 00:10 O 99 H 103 C 103
        assert rows == [
            [DAY, "100.0", "104.0", "98.0", "101.0", "0", DAY + 5 * MINUTE - 1,
             "0", 0, "0", "0", "0"],
            [DAY + 5 * MINUTE, "101.0", "101.0", "101.0", "101.0", "0",
             DAY + 10 * MINUTE - 1, "0", 0, "0", "0", "0"],
            [DAY + 10 * MINUTE, "99.0", "103.0", "99.0", "103.0", "0",
             DAY + 15 * MINUTE - 1, "0", 0, "0", "0", "0"],
        ]  # fmt: skip
        async with http.get(url, params={**query, "startTime": DAY + 1, "limit": 1}) as reply:
            assert [r[0] for r in await reply.json()] == [DAY + 5 * MINUTE]
        async with http.get(url, params={**query, "limit": 1}) as reply:
            assert [r[0] for r in await reply.json()] == [DAY + 10 * MINUTE]  # the latest
        async with http.get(url, params={**query, "interval": "7m"}) as reply:
            assert (reply.status, await reply.json()) == (
                400, {"code": -1120, "msg": "Invalid interval."}
            )  # fmt: skip
        async with http.get(url, params={"interval": "5m"}) as reply:
            assert (await reply.json())["code"] == -1102
        async with http.get(url, params={**query, "symbol": "NOPEUSDT"}) as reply:
            assert (await reply.json())["code"] == -1121


async def test_ccxt_fetch_ohlcv_unmodified():
    async with LocalServer(build_app(seeded())) as server:
        client = ccxt.binanceusdm({})
        client.urls["api"] = rebase_urls(client.urls["api"], server.base_url)
        client.options["fetchCurrencies"] = False
        try:
            rows = await client.fetch_ohlcv("BTC/USDT:USDT", "5m", since=DAY, limit=3)
        finally:
            await client.close()
    assert rows[0] == [DAY, 100.0, 104.0, 98.0, 101.0, 0.0]
    assert [r[0] for r in rows] == [DAY, DAY + 5 * MINUTE, DAY + 10 * MINUTE]
