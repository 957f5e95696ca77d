"""The simulator's websocket streams, read with the `websockets` client the product uses.

Mark prices only on the /market paths (the old path acknowledges and stays silent, as
Binance's does since 2026-04-23); the user data stream after a listen key; stream faults.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import ccxt.async_support as ccxt
import orjson
import pytest
import websockets
from websockets.asyncio.client import ClientConnection

from monitor.exchange.urls import rebase_urls
from monitor.simulator.binance_usdm import (
    FAQ_API_KEY,
    FAQ_SECRET,
    STREAMS_KEY,
    SimExchange,
    StreamHub,
    binance_faq_hybrid_account,
    build_app,
)
from monitor.simulator.http import LocalServer
from monitor.simulator.runner import SimulatedVenue
from monitor.simulator.scenario import Scenario, parse_scenario

TWO_SYMBOLS = """
seed: 5
symbols:
  BTCUSDT: {start: 65000}
  ETHUSDT: {start: 3400}
segments: [{duration: 400s, volatility: 0.05}]
accounts:
  - name: trader
    balances: {USDT: 1000}
"""


def long_scenario() -> Scenario:
    return parse_scenario(TWO_SYMBOLS)


async def recv_json(ws: ClientConnection, timeout: float = 2.0) -> Any:
    return orjson.loads(await asyncio.wait_for(ws.recv(), timeout))


@pytest.fixture
async def venue() -> AsyncIterator[SimulatedVenue]:
    async with SimulatedVenue(long_scenario(), speed=100) as running:
        yield running


def assert_mark_update(update: dict[str, Any], exchange: SimExchange) -> None:
    assert update["e"] == "markPriceUpdate"
    assert set(update) == {"e", "E", "s", "p", "i", "P", "r", "T"}
    assert all(isinstance(update[k], str) for k in ("p", "i", "P", "r"))
    assert isinstance(update["E"], int) and update["T"] > update["E"]
    assert float(update["p"]) > 0 and update["s"] in exchange.markets


async def test_all_market_mark_prices_under_market_path(venue: SimulatedVenue) -> None:
    async with websockets.connect(f"{venue.ws_url}/market/ws/!markPrice@arr@1s") as ws:
        first, second = await recv_json(ws), await recv_json(ws)
    for batch in (first, second):
        assert isinstance(batch, list)
        assert {u["s"] for u in batch} == {"BTCUSDT", "ETHUSDT"}
        for update in batch:
            assert_mark_update(update, venue.exchange)
    assert first[0]["p"] != second[0]["p"]  # the path moves every tick
    assert first[0]["r"] == "0.00010000"


async def test_combined_and_subscribed_streams(venue: SimulatedVenue) -> None:
    url = f"{venue.ws_url}/market/stream?streams=btcusdt@markPrice@1s/ethusdt@markPrice@1s"
    async with websockets.connect(url) as ws:
        seen = {}
        while len(seen) < 2:
            message = await recv_json(ws)
            seen[message["stream"]] = message["data"]
    assert set(seen) == {"btcusdt@markPrice@1s", "ethusdt@markPrice@1s"}
    assert seen["ethusdt@markPrice@1s"]["s"] == "ETHUSDT"
    assert_mark_update(seen["btcusdt@markPrice@1s"], venue.exchange)

    async with websockets.connect(f"{venue.ws_url}/market/ws") as ws:
        await ws.send('{"method": "SUBSCRIBE", "params": ["ethusdt@markPrice@1s"], "id": 7}')
        assert await recv_json(ws) == {"result": None, "id": 7}
        update = await recv_json(ws)
        assert update["s"] == "ETHUSDT" and "stream" not in update
        await ws.send('{"method": "LIST_SUBSCRIPTIONS", "id": 8}')
        while (reply := await recv_json(ws)).get("id") != 8:
            pass
        assert reply == {"result": ["ethusdt@markPrice@1s"], "id": 8}


async def test_marks_hold_and_keep_flowing_after_the_scenario_ends() -> None:
    short = parse_scenario(TWO_SYMBOLS.replace("400s", "3s"))
    async with SimulatedVenue(short, speed=100) as venue:
        await venue.finished.wait()
        final = venue.exchange.mark("BTCUSDT")
        async with websockets.connect(f"{venue.ws_url}/market/ws/btcusdt@markPrice@1s") as ws:
            updates = [await recv_json(ws) for _ in range(2)]
    assert [float(u["p"]) for u in updates] == [final, final]


async def test_a_held_venue_serves_its_opening_marks_until_started() -> None:
    """`hold=True`: the opening book's marks go out every tick while the clock waits
    (a monitor's feed stays live), and `start()` plays the path from its first tick."""
    async with SimulatedVenue(long_scenario(), speed=100, hold=True) as venue:
        opening = venue.exchange.mark("BTCUSDT")
        async with websockets.connect(f"{venue.ws_url}/market/ws/btcusdt@markPrice@1s") as ws:
            held = [float((await recv_json(ws))["p"]) for _ in range(3)]
            assert venue.elapsed == 0 and held == [opening] * 3
            venue.start()
            while venue.elapsed < 3:
                await asyncio.sleep(0.01)
    assert venue.exchange.mark("BTCUSDT") != opening


@pytest.mark.parametrize(
    "path", ["/ws/!markPrice@arr@1s", "/stream?streams=btcusdt@markPrice@1s", "/ws"]
)
async def test_old_path_acknowledges_but_never_sends_marks(
    venue: SimulatedVenue, path: str
) -> None:
    async with websockets.connect(venue.ws_url + path) as ws:
        await ws.send('{"method": "SUBSCRIBE", "params": ["btcusdt@markPrice@1s"], "id": 1}')
        assert await recv_json(ws) == {"result": None, "id": 1}
        start = venue.elapsed
        while venue.elapsed < start + 5:  # five ticks went out on the /market paths
            await asyncio.sleep(0.01)
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(ws.recv(), 0.1)
    assert f"WS {path}" in venue.exchange.requests


async def test_drop_all_and_refused_connections(venue: SimulatedVenue) -> None:
    hub = venue.streams
    url = f"{venue.ws_url}/market/ws/btcusdt@markPrice@1s"
    async with websockets.connect(url) as first, websockets.connect(url) as second:
        await recv_json(first)
        await recv_json(second)
        assert await hub.drop_all() == 2  # TCP cut: no closing handshake
        for ws in (first, second):
            with pytest.raises(websockets.ConnectionClosedError):
                while True:
                    await ws.recv()

    async with websockets.connect(url) as ws:
        await recv_json(ws)
        assert await hub.drop_all(graceful=True) == 1
        with pytest.raises(websockets.ConnectionClosedOK):
            while True:
                await ws.recv()
        assert ws.close_code == 1001

    hub.refuse(0.3)
    async with websockets.connect(url) as ws:  # the handshake succeeds...
        with pytest.raises(websockets.ConnectionClosed):
            await ws.recv()  # ...and the server closes at once
        assert ws.close_code == 1013
    hub.refuse(0.3, handshake=False)
    with pytest.raises(websockets.InvalidStatus) as refused:
        await websockets.connect(url)
    assert refused.value.response.status_code == 503
    await asyncio.sleep(0.35)
    async with websockets.connect(url) as ws:
        assert_mark_update(await recv_json(ws), venue.exchange)


@pytest.fixture
async def faq_venue() -> AsyncIterator[tuple[SimExchange, LocalServer, StreamHub]]:
    exchange = binance_faq_hybrid_account()
    app = build_app(exchange)
    async with LocalServer(app) as server:
        yield exchange, server, app[STREAMS_KEY]


@pytest.fixture
async def client(
    faq_venue: tuple[SimExchange, LocalServer, StreamHub],
) -> AsyncIterator[ccxt.binanceusdm]:
    client = ccxt.binanceusdm({"apiKey": FAQ_API_KEY, "secret": FAQ_SECRET})
    client.urls["api"] = rebase_urls(client.urls["api"], faq_venue[1].base_url)
    client.options["fetchCurrencies"] = False
    try:
        yield client
    finally:
        await client.close()


async def test_user_stream_reports_a_ccxt_reduce_only_order(
    faq_venue: tuple[SimExchange, LocalServer, StreamHub], client: ccxt.binanceusdm
) -> None:
    exchange, server, _ = faq_venue
    listen_key = (await client.fapiPrivatePostListenKey())["listenKey"]
    assert len(listen_key) == 64
    assert (await client.fapiPrivatePostListenKey())["listenKey"] == listen_key  # same key
    ws_url = server.base_url.replace("http://", "ws://")
    async with websockets.connect(f"{ws_url}/ws/{listen_key}") as ws:
        await client.create_order("SOL/USDT:USDT", "market", "buy", 100, None, {"reduceOnly": True})
        new, update, fill = [await recv_json(ws) for _ in range(3)]

    assert (new["e"], new["o"]["X"], new["o"]["x"]) == ("ORDER_TRADE_UPDATE", "NEW", "NEW")
    assert (fill["o"]["X"], fill["o"]["x"], fill["o"]["o"]) == ("FILLED", "TRADE", "MARKET")
    assert fill["o"]["R"] is True and fill["o"]["S"] == "BUY" and fill["o"]["z"] == "100"
    # SOL short 400 @ 142.50 at mark 148.25: 100 closed realizes 100 x -5.75
    assert float(fill["o"]["rp"]) == pytest.approx(-575.0)

    assert update["e"] == "ACCOUNT_UPDATE" and update["a"]["m"] == "ORDER"
    (balance,) = update["a"]["B"]
    (position,) = update["a"]["P"]
    account = exchange.accounts[FAQ_API_KEY]
    sol = account.position("SOLUSDT")
    assert sol is not None
    isolated_left = sol.isolated_wallet
    assert balance["a"] == "USDT"
    assert float(balance["cw"]) == pytest.approx(account.cross_wallet["USDT"])
    assert float(balance["wb"]) == pytest.approx(float(balance["cw"]) + isolated_left)
    assert (position["s"], position["pa"], position["mt"], position["ps"]) == (
        "SOLUSDT",
        "-300",
        "isolated",
        "BOTH",
    )
    assert float(position["iw"]) == pytest.approx(isolated_left)
    assert float(position["up"]) == pytest.approx(-300 * (148.25 - 142.50))


async def test_listen_key_lifecycle_and_private_path(
    faq_venue: tuple[SimExchange, LocalServer, StreamHub], client: ccxt.binanceusdm
) -> None:
    exchange, server, hub = faq_venue
    ws_url = server.base_url.replace("http://", "ws://")
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{server.base_url}/fapi/v1/listenKey") as reply:
            assert reply.status == 401 and (await reply.json())["code"] == -2014
        headers = {"X-MBX-APIKEY": "nobody"}
        async with http.post(f"{server.base_url}/fapi/v1/listenKey", headers=headers) as reply:
            assert (await reply.json())["code"] == -2015
    with pytest.raises(websockets.InvalidStatus):
        await websockets.connect(f"{ws_url}/private/ws?listenKey=unknown")

    listen_key = (await client.fapiPrivatePostListenKey())["listenKey"]
    assert (await client.fapiPrivatePutListenKey())["listenKey"] == listen_key
    async with websockets.connect(f"{ws_url}/private/ws?listenKey={listen_key}") as ws:
        assert hub.open_connections == 1
        await client.fapiPrivateDeleteListenKey()
        expired = await recv_json(ws)
        assert expired["e"] == "listenKeyExpired" and expired["listenKey"] == listen_key
        with pytest.raises(websockets.ConnectionClosedOK):
            await ws.recv()
    with pytest.raises(ccxt.ExchangeError, match="-1125"):
        await client.fapiPrivatePutListenKey()
    # a dead key on the old path is just the old market path: it connects, and stays silent
    async with websockets.connect(f"{ws_url}/ws/{listen_key}") as ws:
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(ws.recv(), 0.1)
    assert exchange.accounts[FAQ_API_KEY].listen_key is None
