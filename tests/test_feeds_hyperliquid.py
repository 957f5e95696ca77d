"""Hyperliquid mark-price feed against a local server speaking the `/ws` dialect.

The server answers `{"method":"subscribe"|"unsubscribe","subscription":{...}}` with a
`subscriptionResponse`, pushes `activeAssetCtx` (whose `markPx` differs from `midPx`, so a
client reading mids would be caught) and an `allMids` broadcast it must ignore, and
answers `{"method":"ping"}` with `{"channel":"pong"}`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json

from websockets.asyncio.server import ServerConnection

from monitor.feeds import FeedStatus
from monitor.venues.hyperliquid.feed import HyperliquidMarkFeed
from monitor.venues.registry import feed_for
from tests.simclock import on_simulated_clock
from tests.test_feeds_support import FAST, Recorder, WsServer, eventually, running

BTC, ETH = "BTC/USDC:USDC", "ETH/USDC:USDC"


class HyperliquidWs:
    def __init__(self, marks: dict[str, float]) -> None:
        self.marks = marks
        self.requests: list[dict] = []

    async def __call__(self, ws: ServerConnection) -> None:
        assert ws.request is not None and ws.request.path == "/ws"
        coins: set[str] = set()
        pusher = asyncio.create_task(self._push(ws, coins))
        try:
            async for raw in ws:
                request = json.loads(raw)
                self.requests.append(request)
                await self._answer(ws, request, coins)
        except Exception:
            pass
        finally:
            pusher.cancel()

    async def _answer(self, ws: ServerConnection, request: dict, coins: set[str]) -> None:
        method = request["method"]
        if method == "ping":
            await ws.send(json.dumps({"channel": "pong"}))
            return
        subscription = request["subscription"]
        if subscription.get("type") != "activeAssetCtx":
            await ws.send(json.dumps({"channel": "error", "data": f"bad request {request}"}))
            return
        if method == "subscribe":
            coins.add(subscription["coin"])
        else:
            coins.discard(subscription["coin"])
        response = {"method": method, "subscription": subscription}
        await ws.send(json.dumps({"channel": "subscriptionResponse", "data": response}))

    async def _push(self, ws: ServerConnection, coins: set[str]) -> None:
        with contextlib.suppress(Exception):
            while True:
                await asyncio.sleep(0.02)
                mids = {coin: str(mark + 5) for coin, mark in self.marks.items()}
                await ws.send(json.dumps({"channel": "allMids", "data": {"mids": mids}}))
                for coin in sorted(coins):
                    mark = self.marks[coin]
                    ctx = {
                        "funding": "0.0000125",
                        "openInterest": "688.11",
                        "prevDayPx": "1",
                        "dayNtlVlm": "1",
                        "premium": "0.0003",
                        "oraclePx": str(mark - 1),
                        "markPx": str(mark),
                        "midPx": str(mark + 5),
                        "impactPxs": [str(mark - 2), str(mark + 2)],
                        "dayBaseVlm": "1",
                    }
                    frame = {"channel": "activeAssetCtx", "data": {"coin": coin, "ctx": ctx}}
                    await ws.send(json.dumps(frame))


def hyperliquid(server: WsServer, symbols: dict[str, str], rec: Recorder) -> HyperliquidMarkFeed:
    return HyperliquidMarkFeed(
        "hyperliquid", symbols, **rec.callbacks(), ws_origin=server.origin, **FAST
    )


async def test_marks_come_from_the_asset_context_not_the_mids() -> None:
    dialect = HyperliquidWs({"BTC": 65_000.0, "ETH": 3_200.0})
    rec = Recorder()
    async with WsServer(dialect) as server:
        # "0" is ccxt's market id for BTC (the asset index); "ETH" is a coin name.
        feed = hyperliquid(server, {"0": BTC, "ETH": ETH}, rec)
        async with running(feed):
            await eventually(lambda: rec.symbols_seen() == {BTC, ETH})
            stats = feed.stats

    assert dialect.requests[:2] == [
        {"method": "subscribe", "subscription": {"type": "activeAssetCtx", "coin": "BTC"}},
        {"method": "subscribe", "subscription": {"type": "activeAssetCtx", "coin": "ETH"}},
    ]
    tick = rec.last(BTC)
    assert (tick.exchange, tick.price, tick.funding_rate, tick.event_time) == (
        "hyperliquid",
        65_000.0,
        0.0000125,
        None,
    )
    assert stats.parse_errors > 0  # the allMids broadcast is not ours: counted, not used


@on_simulated_clock
async def test_ping_and_pong() -> None:
    dialect = HyperliquidWs({"BTC": 65_000.0})
    rec = Recorder()
    async with WsServer(dialect) as server:
        feed = hyperliquid(server, {"BTC": BTC}, rec)
        assert feed.keepalive_interval == 30.0
        feed.keepalive_interval = 0.1
        async with running(feed):
            await eventually(lambda: dialect.requests.count({"method": "ping"}) >= 2)
            assert feed.status is FeedStatus.LIVE


async def test_set_symbols_resubscribes_per_coin() -> None:
    dialect = HyperliquidWs({"BTC": 65_000.0, "ETH": 3_200.0})
    rec = Recorder()
    async with WsServer(dialect) as server:
        feed = hyperliquid(server, {"BTC": BTC}, rec)
        async with running(feed):
            await eventually(lambda: BTC in rec.symbols_seen())
            feed.set_symbols({"ETH": ETH})
            await eventually(lambda: ETH in rec.symbols_seen())

    assert [(r["method"], r["subscription"]["coin"]) for r in dialect.requests] == [
        ("subscribe", "BTC"),
        ("unsubscribe", "BTC"),
        ("subscribe", "ETH"),
    ]
    assert server.connections == 1


def test_feed_for_hyperliquid_and_unknown_frames() -> None:
    rec = Recorder()
    feed = feed_for("hyperliquid", symbols={"BTC": BTC}, **rec.callbacks())
    assert isinstance(feed, HyperliquidMarkFeed)
    assert feed._target_url() == "wss://api.hyperliquid.xyz/ws"
    assert feed._parse('{"channel": "pong"}', 0.0) == []
    assert feed._parse('{"channel": "error", "data": "x"}', 0.0) == []
