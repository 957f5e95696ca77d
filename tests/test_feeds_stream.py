"""The connection loop every dedicated feed shares (monitor/feeds/stream.py).

Driven through the Binance USD-M feed, whose subscription lives in the URL, against
hostile local servers: one that accepts and closes at once, one that stays silent, one
that sends garbage, none at all.
"""

from __future__ import annotations

import asyncio
import contextlib
import json

import pytest
from websockets.asyncio.server import ServerConnection

from monitor.feeds import FeedStatus
from monitor.venues.binance.feed import BinanceUsdmMarkFeed
from tests.simclock import on_simulated_clock
from tests.test_feeds_binance import update
from tests.test_feeds_support import FAST, LOOPBACK, Recorder, WsServer, eventually, running

BTC = "BTC/USDT:USDT"


def feed(origin: str, rec: Recorder, **kw) -> BinanceUsdmMarkFeed:
    options = {**FAST, **kw}
    return BinanceUsdmMarkFeed(
        "binanceusdm", {"BTCUSDT": BTC}, **rec.callbacks(), ws_origin=origin, **options
    )


def mark_frame(price: float) -> str:
    return json.dumps({"stream": "btcusdt@markPrice@1s", "data": update("BTCUSDT", price)})


async def stream_marks(ws: ServerConnection, price: float = 65_000.0, every: float = 0.02):
    with contextlib.suppress(Exception):
        while True:
            await ws.send(mark_frame(price))
            await asyncio.sleep(every)


@on_simulated_clock
async def test_accept_and_close_at_once_is_bounded_by_a_growing_backoff() -> None:
    """websockets' own reconnect loop made hundreds of attempts a second against this."""

    async def slam(ws: ServerConnection) -> None:
        return  # handshake done, close at once

    rec = Recorder()
    async with WsServer(slam) as server:
        f = feed(server.origin, rec, min_reconnect_delay=0.1, max_reconnect_delay=10.0)
        async with running(f):
            await asyncio.sleep(2.0)
            attempts = server.connections
            stats = f.stats

    # Delays 0.1, 0.2, 0.4, 0.8 (±20 %) -> 5 attempts in 2 s; a reset-on-handshake
    # backoff would allow ~20 at the 0.1 s minimum, a missing minimum hundreds.
    assert 3 <= attempts <= 6, attempts
    gaps = [b - a for a, b in zip(server.connected_at, server.connected_at[1:], strict=False)]
    assert all(gap >= 0.08 for gap in gaps)
    assert gaps[-1] > 2.5 * gaps[0]  # growing, not flat
    assert stats.reconnects == attempts - 1
    assert rec.ticks == []
    assert rec.statuses[1][0] is FeedStatus.DOWN
    assert "closed by server" in rec.statuses[1][1]


@on_simulated_clock
async def test_refused_connections_back_off_too() -> None:
    async with WsServer(stream_marks) as server:
        origin = server.origin  # the port is closed after the block
    rec = Recorder()
    f = feed(origin, rec, min_reconnect_delay=0.1, max_reconnect_delay=10.0)
    async with running(f):
        await asyncio.sleep(1.0)
        reconnects = f.stats.reconnects
    assert 2 <= reconnects <= 4
    assert rec.statuses[1][0] is FeedStatus.DOWN and "connect failed" in rec.statuses[1][1]


@on_simulated_clock
async def test_backoff_resets_only_after_a_connection_delivered_marks() -> None:
    async def one_mark_then_close(ws: ServerConnection) -> None:
        await ws.send(mark_frame(1.0))

    rec = Recorder()
    async with WsServer(one_mark_then_close) as server:
        f = feed(server.origin, rec, min_reconnect_delay=0.1, max_reconnect_delay=10.0)
        async with running(f):
            await eventually(lambda: server.connections >= 5, timeout=3.0)

    gaps = [b - a for a, b in zip(server.connected_at, server.connected_at[1:], strict=False)]
    assert all(0.08 <= gap < 0.3 for gap in gaps), gaps  # flat at the minimum, never 0


@on_simulated_clock
async def test_silent_server_goes_stale_reconnects_and_recovers_when_marks_flow() -> None:
    connections = 0

    async def silent_first(ws: ServerConnection) -> None:
        nonlocal connections
        connections += 1
        if connections == 1:
            await ws.wait_closed()  # accepts, then never says a word
        else:
            await stream_marks(ws)

    rec = Recorder()
    async with WsServer(silent_first) as server:
        f = feed(server.origin, rec, stale_after=0.3)
        async with running(f):
            await eventually(lambda: bool(rec.ticks))
            statuses = list(rec.statuses)

    assert [s for s, _ in statuses] == [FeedStatus.CONNECTING, FeedStatus.STALE, FeedStatus.LIVE]
    assert statuses[1][1] == "no mark price for 0.3s"
    assert server.connections == 2


@on_simulated_clock
async def test_marks_stopping_mid_connection_is_stale_then_live_again() -> None:
    connections = 0

    async def then_silence(ws: ServerConnection) -> None:
        nonlocal connections
        connections += 1
        if connections == 1:
            await ws.send(mark_frame(1.0))
            await ws.wait_closed()
        else:
            await stream_marks(ws, price=2.0)

    rec = Recorder()
    async with WsServer(then_silence) as server:
        f = feed(server.origin, rec, stale_after=0.3)
        async with running(f):
            await eventually(lambda: rec.ticks and rec.ticks[-1].price == 2.0)
            statuses = rec.status_sequence
            last = f.last_message_at

    assert statuses == [FeedStatus.CONNECTING, FeedStatus.LIVE, FeedStatus.STALE, FeedStatus.LIVE]
    assert last == rec.ticks[-1].received


@on_simulated_clock
async def test_parse_errors_are_counted_and_survived() -> None:
    async def garbage_then_marks(ws: ServerConnection) -> None:
        for junk in (
            "not json",
            "[1, 2]",
            json.dumps({"stream": "x", "data": {"e": "markPriceUpdate", "s": "BTCUSDT"}}),
            json.dumps({"stream": "x", "data": {"e": "aggTrade"}}),
            json.dumps({"stream": "x", "data": {**json.loads(mark_frame(1))["data"], "p": "?"}}),
            b"\x00\x01",
        ):
            await ws.send(junk)
        await ws.send(json.dumps({"result": None, "id": 1}))  # a plain ack: not an error
        await stream_marks(ws)

    rec = Recorder()
    async with WsServer(garbage_then_marks) as server:
        f = feed(server.origin, rec)
        async with running(f):
            await eventually(lambda: len(rec.ticks) >= 2)
            stats, status = f.stats, f.status

    assert stats.parse_errors == 6
    assert status is FeedStatus.LIVE
    assert server.connections == 1
    assert stats.messages >= 9


@on_simulated_clock
async def test_failing_callbacks_do_not_stop_the_feed() -> None:
    calls = []

    def bad_ticks(ticks):
        calls.append(ticks)
        raise RuntimeError("downstream bug")

    def bad_status(status, reason):
        raise RuntimeError("downstream bug")

    async with WsServer(stream_marks) as server:
        f = BinanceUsdmMarkFeed(
            "binanceusdm", {"BTCUSDT": BTC}, bad_ticks, bad_status, ws_origin=server.origin, **FAST
        )
        async with running(f):
            await eventually(lambda: len(calls) >= 3)
            assert f.status is FeedStatus.LIVE
    assert server.connections == 1


@on_simulated_clock
async def test_no_symbols_means_no_connection_until_some_are_set() -> None:
    rec = Recorder()
    async with WsServer(stream_marks) as server:
        f = BinanceUsdmMarkFeed(
            "binanceusdm", {}, **rec.callbacks(), ws_origin=server.origin, **FAST
        )
        async with running(f):
            await asyncio.sleep(0.2)
            assert server.connections == 0
            assert f.status is FeedStatus.CONNECTING
            f.set_symbols({"BTCUSDT": BTC})
            await eventually(lambda: bool(rec.ticks))
            f.set_symbols({})
            await eventually(lambda: rec.statuses[-1][1] == "no symbols to watch")
            await asyncio.sleep(0.1)
            assert server.connections == 1


@on_simulated_clock
async def test_cancelling_run_closes_the_connection_and_reports_stopped() -> None:
    closed = asyncio.Event()

    async def watch_close(ws: ServerConnection) -> None:
        await ws.send(mark_frame(1.0))
        await ws.wait_closed()
        closed.set()

    rec = Recorder()
    async with WsServer(watch_close) as server:
        async with running(feed(server.origin, rec)):
            await eventually(lambda: bool(rec.ticks))
        await asyncio.wait_for(closed.wait(), 1.0)
    assert rec.statuses[-1] == (FeedStatus.DOWN, "stopped")


def test_constructor_rejects_timers_that_would_spin() -> None:
    rec = Recorder()
    with pytest.raises(ValueError, match="min_reconnect_delay"):
        BinanceUsdmMarkFeed("binanceusdm", {}, **rec.callbacks(), min_reconnect_delay=0)
    with pytest.raises(ValueError, match="stale_after"):
        BinanceUsdmMarkFeed("binanceusdm", {}, **rec.callbacks(), stale_after=0)
    with pytest.raises(ValueError, match="max_reconnect_delay"):
        BinanceUsdmMarkFeed("binanceusdm", {}, **rec.callbacks(), max_reconnect_delay=0.5)


def test_ws_origin_swaps_scheme_host_and_port_only() -> None:
    rec = Recorder()
    f = BinanceUsdmMarkFeed(
        "binanceusdm", {"BTCUSDT": BTC}, **rec.callbacks(), ws_origin=f"ws://{LOOPBACK}:9"
    )
    assert f._target_url() == f"ws://{LOOPBACK}:9/market/stream?streams=btcusdt@markPrice@1s"


@on_simulated_clock
async def test_a_dialect_bug_costs_a_reconnect_not_the_feed() -> None:
    class Buggy(BinanceUsdmMarkFeed):
        calls = 0

        async def _subscribe(self, ws, market_ids) -> None:
            Buggy.calls += 1
            if Buggy.calls == 1:
                raise RuntimeError("bug")

    rec = Recorder()
    async with WsServer(stream_marks) as server:
        f = Buggy(
            "binanceusdm", {"BTCUSDT": BTC}, **rec.callbacks(), ws_origin=server.origin, **FAST
        )
        async with running(f) as task:
            await eventually(lambda: bool(rec.ticks))
            assert not task.done()
    assert rec.statuses[1] == (FeedStatus.DOWN, "internal error: RuntimeError: bug")
    assert server.connections == 2
