"""Binance USD-M / COIN-M mark-price feeds against a local server speaking the stream dialect.

The server routes like Binance since 2026-04-23: on USD-M, mark prices flow only under
`/market/...`; the old path accepts the connection and acknowledges SUBSCRIBE requests but
never sends a mark. COIN-M is unrouted (`/stream`, `/ws`). Frames are Binance's own:
`markPriceUpdate` objects with string numbers, wrapped as `{"stream","data"}` on the
combined endpoint, a bare list on `!markPrice@arr@1s`, and a list per pair on COIN-M's
`<pair>@markPrice@1s`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from urllib.parse import parse_qs, urlsplit

from websockets.asyncio.server import ServerConnection

from monitor.feeds import FeedStatus
from monitor.venues.binance.feed import MANY_STREAMS, BinanceCoinmMarkFeed, BinanceUsdmMarkFeed
from monitor.venues.registry import feed_for
from tests.simclock import on_simulated_clock
from tests.test_feeds_support import FAST, Recorder, WsServer, eventually, running

BTC, ETH = "BTC/USDT:USDT", "ETH/USDT:USDT"
NEXT_FUNDING_MS = 1_767_225_600_000


def update(market_id: str, mark: float, funding: str = "0.00010000", next_ms: int = 0) -> dict:
    return {
        "e": "markPriceUpdate",
        "E": int(time.time() * 1000),
        "s": market_id,
        "p": f"{mark:.8f}",
        "i": f"{mark - 1:.8f}",
        "P": f"{mark:.8f}",
        "r": funding,
        "T": next_ms or NEXT_FUNDING_MS,
    }


class BinanceStreams:
    """The dialect server: `marks` (market id -> price) is read on every push."""

    def __init__(self, marks: dict[str, float], *, routed: bool = True, interval: float = 0.02):
        self.marks = marks
        self.routed = routed  # USD-M: mark prices only under /market
        self.interval = interval
        self.subscribe_requests: list[dict] = []

    async def __call__(self, ws: ServerConnection) -> None:
        assert ws.request is not None
        url = urlsplit(ws.request.path)
        path = url.path
        if self.routed:
            if not path.startswith("/market/"):
                await self._acknowledge_only(ws)
                return
            path = path.removeprefix("/market")
        if path == "/ws/!markPrice@arr@1s":
            frames = self._all_market
        elif path == "/stream":
            streams = parse_qs(url.query)["streams"][0].split("/")
            frames = lambda: self._combined(streams)  # noqa: E731
        else:
            await ws.close(1008, "unknown path")
            return
        with contextlib.suppress(Exception):
            while True:
                for frame in frames():
                    await ws.send(json.dumps(frame))
                await asyncio.sleep(self.interval)

    def _all_market(self) -> list:
        return [[update(mid, mark) for mid, mark in self.marks.items()]]

    def _combined(self, streams: list[str]) -> list:
        frames = []
        for stream in streams:
            name, channel = stream.split("@", 1)
            assert channel == "markPrice@1s", stream
            exact = [mid for mid in self.marks if mid.lower() == name]
            if exact:  # <symbol>@markPrice@1s
                frames.append({"stream": stream, "data": update(exact[0], self.marks[exact[0]])})
            else:  # COIN-M <pair>@markPrice@1s: every contract of the pair, as a list
                pair = [update(m, p) for m, p in self.marks.items() if m.lower().startswith(name)]
                frames.append({"stream": stream, "data": pair})
        return frames

    async def _acknowledge_only(self, ws: ServerConnection) -> None:
        """The old, unrouted USD-M path: connects, acks subscriptions, sends no marks."""
        with contextlib.suppress(Exception):
            async for raw in ws:
                request = json.loads(raw)
                self.subscribe_requests.append(request)
                await ws.send(json.dumps({"result": None, "id": request.get("id")}))


def usdm(server: WsServer, symbols: dict[str, str], rec: Recorder, **kw) -> BinanceUsdmMarkFeed:
    options = {**FAST, **kw}
    return BinanceUsdmMarkFeed(
        "binanceusdm", symbols, **rec.callbacks(), ws_origin=server.origin, **options
    )


async def test_usdm_marks_arrive_on_the_market_route_with_unified_symbols() -> None:
    rec = Recorder()
    dialect = BinanceStreams({"BTCUSDT": 65_000.5, "ETHUSDT": 3_200.25, "SOLUSDT": 150.0})
    async with WsServer(dialect) as server:
        feed = usdm(server, {"BTCUSDT": BTC, "ETHUSDT": ETH}, rec)
        async with running(feed):
            await eventually(lambda: rec.symbols_seen() == {BTC, ETH})

    assert server.paths[0] == "/market/stream?streams=btcusdt@markPrice@1s/ethusdt@markPrice@1s"
    btc = rec.last(BTC)
    assert (btc.exchange, btc.price, btc.funding_rate) == ("binanceusdm", 65_000.5, 0.0001)
    assert btc.next_funding_time == NEXT_FUNDING_MS / 1000
    assert btc.event_time is not None and abs(btc.event_time - time.time()) < 5
    assert btc.received <= time.monotonic()
    assert rec.last(ETH).price == 3_200.25
    assert rec.status_sequence[:2] == [FeedStatus.CONNECTING, FeedStatus.LIVE]
    assert feed.stats.parse_errors == 0 and feed.stats.ticks == len(rec.ticks)


@on_simulated_clock
async def test_usdm_old_unrouted_path_gets_no_marks_so_the_client_must_use_market() -> None:
    """The pitfall itself: a client on the pre-2026 path connects fine and stays silent."""

    class OldPathFeed(BinanceUsdmMarkFeed):
        prefix = ""

    rec = Recorder()
    dialect = BinanceStreams({"BTCUSDT": 65_000.0})
    async with WsServer(dialect) as server:
        feed = OldPathFeed(
            "binanceusdm",
            {"BTCUSDT": BTC},
            **rec.callbacks(),
            ws_origin=server.origin,
            stale_after=0.3,
            min_reconnect_delay=0.05,
            max_reconnect_delay=0.1,
        )
        async with running(feed):
            await eventually(lambda: FeedStatus.STALE in rec.status_sequence)

    assert server.paths[0] == "/stream?streams=btcusdt@markPrice@1s"
    assert rec.ticks == []
    assert FeedStatus.LIVE not in rec.status_sequence


async def test_many_usdm_symbols_use_the_all_market_array_filtered_to_the_set() -> None:
    rec = Recorder()
    marks = {f"C{i}USDT": 100.0 + i for i in range(MANY_STREAMS + 5)}
    symbols = {mid: f"C{i}/USDT:USDT" for i, mid in enumerate(marks) if i < MANY_STREAMS + 1}
    async with WsServer(BinanceStreams(marks)) as server:
        feed = usdm(server, symbols, rec)
        async with running(feed):
            await eventually(lambda: len(rec.frames) >= 2)
            feed.set_symbols({**symbols, "C53USDT": "C53/USDT:USDT"})  # still "many"
            await eventually(lambda: "C53/USDT:USDT" in rec.symbols_seen())

    assert server.paths == ["/market/ws/!markPrice@arr@1s"]  # no reconnect for the new one
    assert len(rec.frames[0]) == MANY_STREAMS + 1  # one @arr frame -> one callback
    assert "C54/USDT:USDT" not in rec.symbols_seen()
    assert rec.last("C3/USDT:USDT").price == 103.0


async def test_set_symbols_reconnects_with_the_new_streams_without_reporting_down() -> None:
    rec = Recorder()
    async with WsServer(BinanceStreams({"BTCUSDT": 65_000.0, "ETHUSDT": 3_200.0})) as server:
        feed = usdm(server, {"BTCUSDT": BTC}, rec)
        async with running(feed):
            await eventually(lambda: BTC in rec.symbols_seen())
            feed.set_symbols({"BTCUSDT": BTC, "ETHUSDT": ETH})
            await eventually(lambda: ETH in rec.symbols_seen())
            statuses = rec.status_sequence

    assert server.paths == [
        "/market/stream?streams=btcusdt@markPrice@1s",
        "/market/stream?streams=btcusdt@markPrice@1s/ethusdt@markPrice@1s",
    ]
    assert statuses == [FeedStatus.CONNECTING, FeedStatus.LIVE]
    assert feed.stats.reconnects == 1


@on_simulated_clock
async def test_connection_is_replaced_before_the_24h_limit() -> None:
    rec = Recorder()
    async with WsServer(BinanceStreams({"BTCUSDT": 65_000.0})) as server:
        feed = usdm(server, {"BTCUSDT": BTC}, rec)
        assert feed.max_connection_age is not None and feed.max_connection_age > 23 * 3600
        feed.max_connection_age = 0.2
        async with running(feed):
            await eventually(lambda: server.connections >= 3)
            statuses = rec.status_sequence

    assert statuses == [FeedStatus.CONNECTING, FeedStatus.LIVE]  # planned: never DOWN
    assert rec.statuses[-1] == (FeedStatus.DOWN, "stopped")  # cancelled by the test


@on_simulated_clock
async def test_binance_keepalive_is_the_server_ping_answered_by_the_client() -> None:
    pong_latencies: list[float] = []

    async def pinging(ws: ServerConnection) -> None:
        await ws.send(json.dumps({"stream": "btcusdt@markPrice@1s", "data": update("BTCUSDT", 1)}))
        waiter = await ws.ping()
        pong_latencies.append(await asyncio.wait_for(waiter, 1.0))
        await ws.wait_closed()

    rec = Recorder()
    async with WsServer(pinging) as server, running(usdm(server, {"BTCUSDT": BTC}, rec)):
        await eventually(lambda: bool(pong_latencies))


async def test_coinm_uses_the_unrouted_host_path_and_pair_streams_when_many() -> None:
    marks = {"BTCUSD_PERP": 65_010.0, "BTCUSD_260327": 66_000.0, "ETHUSD_PERP": 3_201.0}
    rec = Recorder()
    async with WsServer(BinanceStreams(marks, routed=False)) as server:
        feed = BinanceCoinmMarkFeed(
            "binancecoinm",
            {"BTCUSD_PERP": "BTC/USD:BTC"},
            **rec.callbacks(),
            ws_origin=server.origin,
            **FAST,
        )
        async with running(feed):
            await eventually(lambda: "BTC/USD:BTC" in rec.symbols_seen())
    tick = rec.last("BTC/USD:BTC")
    assert server.paths == ["/stream?streams=btcusd_perp@markPrice@1s"]
    assert tick.price == 65_010.0

    many = {f"P{i}USD_PERP": f"P{i}/USD:P{i}" for i in range(MANY_STREAMS)}
    many["BTCUSD_260327"] = "BTC/USD:BTC-260327"
    feed = BinanceCoinmMarkFeed("binancecoinm", many, **rec.callbacks())
    url = feed._stream_url()
    assert url.startswith("wss://dstream.binance.com/stream?streams=btcusd@markPrice@1s/")
    assert url.count("@markPrice@1s") == MANY_STREAMS + 1


async def test_pair_stream_list_is_filtered_and_delivery_funding_is_none() -> None:
    rec = Recorder()
    feed = BinanceCoinmMarkFeed(
        "binancecoinm", {"BTCUSD_260327": "BTC/USD:BTC-260327"}, **rec.callbacks()
    )
    delivery = update("BTCUSD_260327", 66_000.0, funding="")
    delivery["T"] = 0
    frame = {"stream": "btcusd@markPrice@1s", "data": [update("BTCUSD_PERP", 1.0), delivery]}
    ticks = feed._parse(json.dumps(frame), received=1.0)
    assert [(t.symbol, t.price, t.funding_rate, t.next_funding_time) for t in ticks] == [
        ("BTC/USD:BTC-260327", 66_000.0, None, None)
    ]


def test_feed_for_picks_the_dedicated_binance_clients() -> None:
    rec = Recorder()
    usd = feed_for("binanceusdm", symbols={"BTCUSDT": BTC}, **rec.callbacks(), client=object())
    coin = feed_for("binancecoinm", symbols={"BTCUSD_PERP": "BTC/USD:BTC"}, **rec.callbacks())
    assert isinstance(usd, BinanceUsdmMarkFeed) and isinstance(coin, BinanceCoinmMarkFeed)
    assert usd._stream_url().startswith("wss://fstream.binance.com/market/stream?streams=")
