"""Bybit v5 mark-price feed against a local server speaking the public `tickers` dialect.

The server serves `/v5/public/linear` and `/v5/public/inverse`, answers
`{"op":"subscribe"|"unsubscribe","args":[...]}` (refusing more than 10 topics per request
as Bybit does), `{"op":"ping"}` with its pong, and for each new topic sends a snapshot and
then deltas that carry only the fields that changed.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from typing import Any

from websockets.asyncio.server import ServerConnection

from monitor.feeds import CompositeMarkFeed, FeedStatus
from monitor.venues.bybit.feed import BybitMarkFeed, bybit_category
from monitor.venues.registry import feed_for
from tests.simclock import on_simulated_clock
from tests.test_feeds_support import FAST, Recorder, WsServer, eventually, running

BTC, ETH, BTC_INVERSE = "BTC/USDT:USDT", "ETH/USDT:USDT", "BTC/USD:BTC"


def snapshot_state(market_id: str, mark: str) -> dict[str, Any]:
    return {
        "symbol": market_id,
        "tickDirection": "PlusTick",
        "lastPrice": mark,
        "markPrice": mark,
        "indexPrice": mark,
        "fundingRate": "0.0001",
        "nextFundingTime": "1767225600000",
        "openInterest": "10",
        "volume24h": "1",
    }


class BybitPublic:
    """The dialect server. `tickers` (market id -> state) seeds snapshots (a topic without
    one is refused like Bybit does); `script` frames (market id, data) are sent once as
    deltas after the first subscription's snapshots; with `stream` set, a
    `{"symbol", "markPrice"}` delta follows every 20 ms for every subscribed topic."""

    def __init__(self, tickers: dict[str, dict], *, script=(), stream: bool = True) -> None:
        self.tickers = tickers
        self.script: list[tuple[str, dict]] = list(script)
        self.stream = stream
        self.requests: list[tuple[str, dict]] = []  # (path, request)

    async def __call__(self, ws: ServerConnection) -> None:
        assert ws.request is not None
        path = ws.request.path
        if path not in ("/v5/public/linear", "/v5/public/inverse"):
            await ws.close(1008, "bad path")
            return
        topics: set[str] = set()
        pusher = asyncio.create_task(self._push(ws, topics))
        try:
            async for raw in ws:
                request = json.loads(raw)
                self.requests.append((path, request))
                await self._answer(ws, request, topics)
        except Exception:
            pass
        finally:
            pusher.cancel()

    async def _answer(self, ws: ServerConnection, request: dict, topics: set[str]) -> None:
        op = request["op"]
        ack = {"success": True, "ret_msg": "", "conn_id": "c-1", "req_id": "", "op": op}
        if op == "ping":
            await ws.send(json.dumps({**ack, "ret_msg": "pong"}))
            return
        args = request["args"]
        if len(args) > 10:
            await ws.send(json.dumps({**ack, "success": False, "ret_msg": "args size >10"}))
            return
        unknown = [t for t in args if t.removeprefix("tickers.") not in self.tickers]
        if unknown and op == "subscribe":
            ack = {**ack, "success": False, "ret_msg": f"error:handler not found,topic:{unknown}"}
        await ws.send(json.dumps(ack))
        for topic in args:
            market_id = topic.removeprefix("tickers.")
            if op == "unsubscribe":
                topics.discard(topic)
            elif market_id in self.tickers:
                topics.add(topic)
                await self._send(ws, topic, "snapshot", self.tickers[market_id])
        if op == "subscribe":
            for market_id, data in self.script:
                await self._send(ws, f"tickers.{market_id}", "delta", {"symbol": market_id, **data})
            self.script = []

    async def _push(self, ws: ServerConnection, topics: set[str]) -> None:
        with contextlib.suppress(Exception):
            while self.stream:
                await asyncio.sleep(0.02)
                for topic in sorted(topics):
                    state = self.tickers[topic.removeprefix("tickers.")]
                    delta = {"symbol": state["symbol"], "markPrice": state["markPrice"]}
                    await self._send(ws, topic, "delta", delta)

    @staticmethod
    async def _send(ws: ServerConnection, topic: str, kind: str, data: dict) -> None:
        frame = {"topic": topic, "type": kind, "data": data, "cs": 1, "ts": int(time.time() * 1e3)}
        await ws.send(json.dumps(frame))


def linear(server: WsServer, symbols: dict[str, str], rec: Recorder) -> BybitMarkFeed:
    return BybitMarkFeed("bybit", symbols, **rec.callbacks(), ws_origin=server.origin, **FAST)


async def test_snapshot_then_deltas_are_merged_before_each_tick() -> None:
    script = [
        ("ETHUSDT", {"volume24h": "2"}),  # no snapshot for ETH yet: ignored, no tick
        ("BTCUSDT", {"fundingRate": "0.0002"}),  # mark unchanged: tick at the old mark
        ("BTCUSDT", {"markPrice": "65100.5", "lastPrice": "65101"}),
    ]
    dialect = BybitPublic(
        {"BTCUSDT": snapshot_state("BTCUSDT", "65000")}, script=script, stream=False
    )
    rec = Recorder()
    symbols = {"BTCUSDT": BTC, "ETHUSDT": ETH}
    async with WsServer(dialect) as server, running(linear(server, symbols, rec)):
        await eventually(lambda: len(rec.ticks) == 3)

    assert [(t.symbol, t.price, t.funding_rate) for t in rec.ticks] == [
        (BTC, 65_000.0, 0.0001),
        (BTC, 65_000.0, 0.0002),
        (BTC, 65_100.5, 0.0002),
    ]
    assert rec.ticks[-1].next_funding_time == 1_767_225_600.0
    assert rec.ticks[-1].event_time is not None
    assert server.paths == ["/v5/public/linear"]
    assert dialect.requests[0][1] == {
        "op": "subscribe",
        "args": ["tickers.BTCUSDT", "tickers.ETHUSDT"],
    }


async def test_more_than_ten_symbols_are_subscribed_in_batches_of_ten() -> None:
    tickers = {f"C{i}USDT": snapshot_state(f"C{i}USDT", str(100 + i)) for i in range(23)}
    symbols = {mid: f"C{i}/USDT:USDT" for i, mid in enumerate(tickers)}
    dialect = BybitPublic(tickers)
    rec = Recorder()
    async with WsServer(dialect) as server:
        feed = linear(server, symbols, rec)
        async with running(feed):
            await eventually(lambda: rec.symbols_seen() == set(symbols.values()))
            assert feed.stats.parse_errors == 0

    sizes = [len(request["args"]) for _, request in dialect.requests if request["op"] != "ping"]
    assert sizes == [10, 10, 3]


@on_simulated_clock
async def test_ping_every_interval_and_pong_is_not_a_parse_error() -> None:
    dialect = BybitPublic({"BTCUSDT": snapshot_state("BTCUSDT", "65000")})
    rec = Recorder()
    async with WsServer(dialect) as server:
        feed = linear(server, {"BTCUSDT": BTC}, rec)
        assert feed.keepalive_interval == 20.0
        feed.keepalive_interval = 0.1
        async with running(feed):
            await eventually(
                lambda: sum(r == {"op": "ping"} for _, r in dialect.requests) >= 3, timeout=1.0
            )
            assert feed.stats.parse_errors == 0
            assert feed.status is FeedStatus.LIVE


@on_simulated_clock
async def test_set_symbols_unsubscribes_and_subscribes_on_the_same_connection() -> None:
    tickers = {m: snapshot_state(m, p) for m, p in [("BTCUSDT", "65000"), ("ETHUSDT", "3200")]}
    dialect = BybitPublic(tickers)
    rec = Recorder()
    async with WsServer(dialect) as server:
        feed = linear(server, {"BTCUSDT": BTC}, rec)
        async with running(feed):
            await eventually(lambda: BTC in rec.symbols_seen())
            feed.set_symbols({"ETHUSDT": ETH})
            await eventually(lambda: ETH in rec.symbols_seen())
            await asyncio.sleep(0.1)
            count = len(rec.ticks)
            await eventually(lambda: len(rec.ticks) > count + 2)

    after = rec.ticks[count:]
    assert {t.symbol for t in after} == {ETH}  # BTC unsubscribed (and filtered)
    assert [r for _, r in dialect.requests] == [
        {"op": "subscribe", "args": ["tickers.BTCUSDT"]},
        {"op": "unsubscribe", "args": ["tickers.BTCUSDT"]},
        {"op": "subscribe", "args": ["tickers.ETHUSDT"]},
    ]
    assert server.connections == 1


async def test_linear_and_inverse_symbols_share_one_feed_on_two_endpoints() -> None:
    tickers = {m: snapshot_state(m, p) for m, p in [("BTCUSDT", "65000"), ("BTCUSD", "65010")]}
    dialect = BybitPublic(tickers)
    rec = Recorder()
    async with WsServer(dialect) as server:
        feed = feed_for(
            "bybit", symbols={"BTCUSDT": BTC}, **rec.callbacks(), ws_origin=server.origin, **FAST
        )
        assert isinstance(feed, CompositeMarkFeed)
        async with running(feed):
            await eventually(lambda: feed.status is FeedStatus.LIVE)
            assert server.paths == ["/v5/public/linear"]  # no inverse symbol, no connection
            feed.set_symbols({"BTCUSDT": BTC, "BTCUSD": BTC_INVERSE})
            await eventually(lambda: BTC_INVERSE in rec.symbols_seen())
            await eventually(lambda: feed.status is FeedStatus.LIVE)
            stats = feed.stats

    assert sorted(server.paths) == ["/v5/public/inverse", "/v5/public/linear"]
    assert rec.last(BTC_INVERSE).price == 65_010.0
    assert stats.ticks == len(rec.ticks)
    assert feed.last_message_at is not None
    assert rec.statuses[-1][0] is FeedStatus.DOWN  # stopped


@on_simulated_clock
async def test_composite_status_is_the_worst_child_with_symbols() -> None:
    """One live endpoint must not hide a silent one."""
    tickers = {"BTCUSDT": snapshot_state("BTCUSDT", "65000")}
    rec = Recorder()
    async with WsServer(BybitPublic(tickers)) as server:
        feed = feed_for(
            "bybit",
            symbols={"BTCUSDT": BTC, "BTCUSD": BTC_INVERSE},
            **rec.callbacks(),
            ws_origin=server.origin,
            **{**FAST, "stale_after": 0.3},
        )
        async with running(feed):
            # The server refuses the BTCUSD topic: the inverse connection never gets a mark.
            await eventually(lambda: feed.status is FeedStatus.STALE)
            assert BTC in rec.symbols_seen()
            assert feed.children["linear"].status is FeedStatus.LIVE
            assert rec.statuses[-1][1] == "inverse: no mark price for 0.3s"


async def test_bybit_parse_errors_are_counted_and_survived() -> None:
    async def garbage(ws: ServerConnection) -> None:
        for junk in (
            "{",
            '{"op": "weird"}',
            '{"topic": "orderbook.1.BTCUSDT", "data": {}}',
            '{"topic": "tickers.BTCUSDT", "type": "other", "data": {"symbol": "X"}}',
        ):
            await ws.send(junk)
        await BybitPublic({"BTCUSDT": snapshot_state("BTCUSDT", "1")})(ws)

    rec = Recorder()
    async with WsServer(garbage) as server:
        feed = linear(server, {"BTCUSDT": BTC}, rec)
        async with running(feed):
            await eventually(lambda: bool(rec.ticks))
            assert feed.stats.parse_errors == 4


def test_category_follows_the_settlement_coin() -> None:
    assert bybit_category("BTCUSDT", "BTC/USDT:USDT") == "linear"
    assert bybit_category("BTCPERP", "BTC/USDC:USDC") == "linear"
    assert bybit_category("BTCUSD", "BTC/USD:BTC") == "inverse"
    assert bybit_category("BTCUSDH26", "BTC/USD:BTC-260327") == "inverse"
