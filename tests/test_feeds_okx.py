"""OKX v5 mark-price feed against a local server speaking the public `mark-price` dialect.

The server serves `/ws/v5/public`: `{"op":"subscribe"|"unsubscribe","args":[{channel,
instId}]}` answered per arg with an `event` ack (or `error` for an unknown instId), pushes
`{"arg","data":[{instType,instId,markPx,ts}]}`, and answers the text `ping` with the text
`pong` — OKX's only keepalive.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time

import pytest
from websockets.asyncio.server import ServerConnection

from monitor.feeds import FeedStatus
from monitor.venues.okx.feed import OkxMarkFeed
from monitor.venues.registry import feed_for
from tests.simclock import on_simulated_clock
from tests.test_feeds_support import FAST, Recorder, WsServer, eventually, running

BTC, BTC_INVERSE, ETH = "BTC/USDT:USDT", "BTC/USD:BTC", "ETH/USDT:USDT"


class OkxPublic:
    """The dialect server; `marks` (instId -> price) is read on every push. `pushes`: how
    many pushes per subscription (None: every `interval` for ever)."""

    def __init__(
        self, marks: dict[str, float], *, pushes: int | None = None, interval: float = 0.02
    ) -> None:
        self.marks = marks
        self.pushes = pushes
        self.interval = interval
        self.received: list[str] = []

    async def __call__(self, ws: ServerConnection) -> None:
        assert ws.request is not None
        if ws.request.path != "/ws/v5/public":
            await ws.close(1008, "bad path")
            return
        subscribed: set[str] = set()
        pusher = asyncio.create_task(self._push(ws, subscribed))
        try:
            async for raw in ws:
                assert isinstance(raw, str)
                self.received.append(raw)
                if raw == "ping":
                    await ws.send("pong")
                    continue
                request = json.loads(raw)
                for arg in request["args"]:
                    await self._answer(ws, request["op"], arg, subscribed)
        except Exception:
            pass
        finally:
            pusher.cancel()

    async def _answer(self, ws: ServerConnection, op: str, arg: dict, subscribed: set[str]):
        inst_id = arg["instId"]
        if inst_id not in self.marks:
            error = {
                "event": "error",
                "code": "60018",
                "msg": f"Wrong URL or {inst_id} doesn't exist.",
                "connId": "a4d3ae55",
            }
            await ws.send(json.dumps(error))
            return
        await ws.send(json.dumps({"event": op, "arg": arg, "connId": "a4d3ae55"}))
        if op == "subscribe":
            subscribed.add(inst_id)
        else:
            subscribed.discard(inst_id)

    async def _push(self, ws: ServerConnection, subscribed: set[str]) -> None:
        sent: dict[str, int] = {}
        with contextlib.suppress(Exception):
            while True:
                await asyncio.sleep(self.interval)
                for inst_id in sorted(subscribed):
                    if self.pushes is not None and sent.get(inst_id, 0) >= self.pushes:
                        continue
                    sent[inst_id] = sent.get(inst_id, 0) + 1
                    row = {
                        "instType": "SWAP",
                        "instId": inst_id,
                        "markPx": str(self.marks[inst_id]),
                        "ts": str(int(time.time() * 1e3)),
                    }
                    frame = {"arg": {"channel": "mark-price", "instId": inst_id}, "data": [row]}
                    await ws.send(json.dumps(frame))

    def requests(self) -> list[dict]:
        return [json.loads(raw) for raw in self.received if raw != "ping"]


def okx(server: WsServer, symbols: dict[str, str], rec: Recorder, **kw) -> OkxMarkFeed:
    return OkxMarkFeed("okx", symbols, **rec.callbacks(), ws_origin=server.origin, **{**FAST, **kw})


async def test_marks_arrive_for_linear_and_inverse_swaps_on_one_connection() -> None:
    dialect = OkxPublic({"BTC-USDT-SWAP": 65_000.1, "BTC-USD-SWAP": 65_010.2})
    rec = Recorder()
    async with WsServer(dialect) as server:
        feed = okx(server, {"BTC-USDT-SWAP": BTC, "BTC-USD-SWAP": BTC_INVERSE}, rec)
        async with running(feed):
            await eventually(lambda: rec.symbols_seen() == {BTC, BTC_INVERSE})
            assert feed.status is FeedStatus.LIVE

    assert server.paths == ["/ws/v5/public"]
    assert dialect.requests()[0] == {
        "op": "subscribe",
        "args": [
            {"channel": "mark-price", "instId": "BTC-USD-SWAP"},
            {"channel": "mark-price", "instId": "BTC-USDT-SWAP"},
        ],
    }
    tick = rec.last(BTC)
    assert (tick.exchange, tick.price, tick.funding_rate) == ("okx", 65_000.1, None)
    assert tick.event_time is not None and abs(tick.event_time - time.time()) < 5
    assert rec.last(BTC_INVERSE).price == 65_010.2
    assert feed.stats.parse_errors == 0


@on_simulated_clock
async def test_text_ping_after_idle_pong_understood_and_no_protocol_ping(caplog) -> None:
    caplog.set_level(logging.DEBUG, logger="websockets.server")
    dialect = OkxPublic({"BTC-USDT-SWAP": 65_000.0}, pushes=1)  # one mark, then quiet
    rec = Recorder()
    async with WsServer(dialect) as server:
        feed = okx(server, {"BTC-USDT-SWAP": BTC}, rec, stale_after=2.0)
        assert (feed.keepalive_interval, feed.keepalive_when_idle) == (25.0, True)
        feed.keepalive_interval = 0.1
        async with running(feed):
            await eventually(lambda: dialect.received.count("ping") >= 3, timeout=1.0)
            stats, status = feed.stats, feed.status

    assert stats.parse_errors == 0  # "pong" is not JSON, and not an error
    assert status is FeedStatus.LIVE
    server_log = [r.getMessage() for r in caplog.records if r.name == "websockets.server"]
    assert any(line.startswith("< TEXT 'ping'") for line in server_log)  # the log is live
    assert not [line for line in server_log if line.startswith("< PING")]


@on_simulated_clock
async def test_no_ping_while_marks_keep_flowing() -> None:
    dialect = OkxPublic({"BTC-USDT-SWAP": 65_000.0}, interval=0.02)
    rec = Recorder()
    async with WsServer(dialect) as server:
        feed = okx(server, {"BTC-USDT-SWAP": BTC}, rec)
        feed.keepalive_interval = 0.15
        async with running(feed):
            await asyncio.sleep(0.5)
    assert "ping" not in dialect.received
    assert len(rec.ticks) > 5


async def test_set_symbols_subscribes_and_unsubscribes_in_place() -> None:
    dialect = OkxPublic({"BTC-USDT-SWAP": 65_000.0, "ETH-USDT-SWAP": 3_200.0})
    rec = Recorder()
    async with WsServer(dialect) as server:
        feed = okx(server, {"BTC-USDT-SWAP": BTC}, rec)
        async with running(feed):
            await eventually(lambda: BTC in rec.symbols_seen())
            feed.set_symbols({"ETH-USDT-SWAP": ETH})
            await eventually(lambda: ETH in rec.symbols_seen())

    assert [(r["op"], [a["instId"] for a in r["args"]]) for r in dialect.requests()] == [
        ("subscribe", ["BTC-USDT-SWAP"]),
        ("unsubscribe", ["BTC-USDT-SWAP"]),
        ("subscribe", ["ETH-USDT-SWAP"]),
    ]
    assert server.connections == 1


async def test_error_event_for_one_instrument_does_not_disturb_the_others() -> None:
    dialect = OkxPublic({"BTC-USDT-SWAP": 65_000.0})
    rec = Recorder()
    async with WsServer(dialect) as server:
        feed = okx(server, {"BTC-USDT-SWAP": BTC, "NOPE-USDT-SWAP": "NOPE/USDT:USDT"}, rec)
        async with running(feed):
            await eventually(lambda: len(rec.ticks) >= 3)
            assert feed.stats.parse_errors == 0
            assert feed.status is FeedStatus.LIVE


@pytest.mark.parametrize(
    "junk",
    [
        "PONG",
        '{"event": "login"}',
        '{"arg": {"channel": "tickers"}, "data": []}',
        '{"arg": {"channel": "mark-price"}, "data": [{"instId": "BTC-USDT-SWAP"}]}',
    ],
)
def test_unexpected_frames_raise_parse_errors(junk: str) -> None:
    rec = Recorder()
    feed = OkxMarkFeed("okx", {"BTC-USDT-SWAP": BTC}, **rec.callbacks())
    with pytest.raises((ValueError, KeyError)):
        feed._parse(junk, received=0.0)


def test_feed_for_okx() -> None:
    rec = Recorder()
    feed = feed_for("okx", symbols={"BTC-USDT-SWAP": BTC}, **rec.callbacks(), poll_interval=5)
    assert isinstance(feed, OkxMarkFeed)
    assert feed._target_url() == "wss://ws.okx.com:8443/ws/v5/public"
