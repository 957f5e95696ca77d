"""The ccxt fallback feeds: REST polling through unmodified ccxt against the local OKX and
Bybit dialect servers (tests/servers), ccxt.pro `watch_mark_prices` against the local OKX
websocket dialect, and failure handling with a stub client."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import ccxt.async_support as ccxt_async
import ccxt.pro as ccxt_pro
import pytest

from monitor.exchange.urls import rebase_urls
from monitor.feeds import FeedStatus
from monitor.simulator.http import LocalServer
from monitor.venues.generic.feed import PollingMarkFeed, WatchMarkFeed
from monitor.venues.registry import feed_for
from tests.servers import bybit as bybit_server
from tests.servers import okx as okx_server
from tests.test_feeds_okx import OkxPublic
from tests.test_feeds_support import FAST, Recorder, WsServer, eventually, running

BTC, ETH, BTC_INVERSE = "BTC/USDT:USDT", "ETH/USDT:USDT", "BTC/USD:BTC"


@pytest.fixture
async def okx_rest() -> AsyncIterator[tuple[LocalServer, okx_server.OkxState]]:
    state = okx_server.hybrid_account()
    async with LocalServer(okx_server.create_app(state)) as server:
        yield server, state


def okx_client(factory: Any, base_url: str) -> Any:
    """Public endpoints only: no key, swap markets, no currency list."""
    client = factory({"enableRateLimit": False})
    client.urls["api"] = rebase_urls(client.urls["api"], base_url)
    client.options["defaultType"] = "swap"
    client.options["fetchMarkets"] = {"types": ["swap"]}
    client.has["fetchCurrencies"] = False
    return client


async def test_polling_okx_mark_prices_through_unmodified_ccxt(okx_rest) -> None:
    server, state = okx_rest
    client = okx_client(ccxt_async.okx, server.base_url)
    rec = Recorder()
    symbols = {"BTC-USDT-SWAP": BTC, "BTC-USD-SWAP": BTC_INVERSE}
    try:
        feed = feed_for(
            "okx_rest",
            symbols=symbols,
            **rec.callbacks(),
            client=client,
            poll_interval=0.05,
            ws_origin="ws://ignored",
            **FAST,
        )
        assert isinstance(feed, PollingMarkFeed)
        async with running(feed):
            await eventually(lambda: rec.symbols_seen() == {BTC, BTC_INVERSE})
            state.mark_prices[okx_server.BTC_USDT] = 61_234.5
            await eventually(lambda: rec.last(BTC).price == 61_234.5)
            assert feed.status is FeedStatus.LIVE
    finally:
        await client.close()

    assert ETH not in rec.symbols_seen()  # OKX answers every swap; filtered to the set
    assert rec.last(BTC_INVERSE).price == 60_000.0
    assert rec.last(BTC).event_time is not None
    assert "/api/v5/public/mark-price" in state.paths_called()


async def test_polling_falls_back_to_tickers_mark_price_on_bybit() -> None:
    state = bybit_server.hybrid_unified_account()
    async with LocalServer(bybit_server.create_app(state)) as server:
        client = bybit_server.make_client(server.base_url)
        assert not client.has.get("fetchMarkPrices")
        rec = Recorder()
        feed = PollingMarkFeed(
            "bybit",
            {"BTCUSDT": BTC, "ETHUSDT": ETH},
            **rec.callbacks(),
            client=client,
            poll_interval=0.05,
            **FAST,
        )
        try:
            async with running(feed):
                await eventually(lambda: rec.symbols_seen() == {BTC, ETH}, timeout=3.0)
        finally:
            await client.close()
    assert rec.last(BTC).price == 65_000.0 and rec.last(ETH).price == 3_200.0


async def test_watch_mark_prices_through_ccxt_pro_on_the_local_okx_dialect(okx_rest) -> None:
    rest, _state = okx_rest
    dialect = OkxPublic({"BTC-USDT-SWAP": 65_000.5, "ETH-USDT-SWAP": 3_200.5})
    async with WsServer(dialect) as ws_server:
        client = okx_client(ccxt_pro.okx, rest.base_url)
        client.urls["api"]["ws"] = rebase_urls(client.urls["api"]["ws"], ws_server.origin)
        rec = Recorder()
        feed = feed_for(
            "okx_pro",
            fallback="watch",
            symbols={"BTC-USDT-SWAP": BTC},
            **rec.callbacks(),
            client=client,
            **FAST,
        )
        assert isinstance(feed, WatchMarkFeed)
        try:
            async with running(feed):
                await eventually(lambda: len(rec.ticks) >= 3, timeout=3.0)
        finally:
            await client.close()
    assert rec.symbols_seen() == {BTC}
    assert rec.last(BTC).price == 65_000.5
    assert ws_server.paths == ["/ws/v5/public"]


class StubClient:
    """A ccxt look-alike whose answers the test scripts: a value, an exception, or a hang."""

    def __init__(self, *answers: Any) -> None:
        self.has = {"fetchMarkPrices": True}
        self.answers = list(answers)
        self.calls: list[float] = []

    async def fetch_mark_prices(self, symbols: list[str]) -> dict:
        self.calls.append(asyncio.get_running_loop().time())
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        await asyncio.sleep(0.01)  # like a watch waiting for the next push
        if answer == "hang":
            await asyncio.sleep(3600)
        if isinstance(answer, Exception):
            raise answer
        return answer

    watch_mark_prices = fetch_mark_prices

    async def close_ws_clients(self) -> None:
        self.closed = True


def stub_feed(client: StubClient, rec: Recorder, **kw: Any) -> PollingMarkFeed:
    options = {**FAST, "poll_interval": 0.02, **kw}
    return PollingMarkFeed("stub", {"BTCUSDT": BTC}, **rec.callbacks(), client=client, **options)


async def test_errors_report_down_and_back_off_then_recover() -> None:
    good = {BTC: {"symbol": BTC, "markPrice": 1.5, "timestamp": 1_700_000_000_000}}
    client = StubClient(*[ccxt_async.NetworkError("boom")] * 4, good)
    rec = Recorder()
    feed = stub_feed(client, rec, min_reconnect_delay=0.05, max_reconnect_delay=1.0)
    async with running(feed):
        await eventually(lambda: bool(rec.ticks))
    gaps = [b - a for a, b in zip(client.calls, client.calls[1:], strict=False)][:4]
    assert gaps[0] >= 0.04 and gaps[3] > 2.5 * gaps[0]  # growing backoff between failures
    assert rec.status_sequence[:3] == [FeedStatus.CONNECTING, FeedStatus.DOWN, FeedStatus.LIVE]
    assert "NetworkError: boom" in rec.statuses[1][1]
    assert rec.ticks[0].event_time == 1_700_000_000.0
    assert feed.stats.reconnects == 4


async def test_a_hanging_call_is_stale_not_stuck() -> None:
    good = {BTC: {"symbol": BTC, "markPrice": 2.0, "timestamp": None}}
    client = StubClient("hang", good)
    rec = Recorder()
    feed = WatchMarkFeed(
        "stub",
        {"BTCUSDT": BTC},
        **rec.callbacks(),
        client=client,
        stale_after=0.2,
        min_reconnect_delay=0.05,
        max_reconnect_delay=0.1,
    )
    async with running(feed):
        await eventually(lambda: bool(rec.ticks))
    assert rec.status_sequence[:3] == [FeedStatus.CONNECTING, FeedStatus.STALE, FeedStatus.LIVE]
    assert client.closed  # the wedged ccxt.pro connection was dropped
    assert rec.ticks[0].event_time is None


async def test_answers_without_marks_go_stale_and_bad_rows_are_parse_errors() -> None:
    client = StubClient({BTC: {"symbol": BTC, "markPrice": "n/a"}, "X/Y": {"markPrice": 1}})
    rec = Recorder()
    feed = stub_feed(client, rec, stale_after=0.2)
    async with running(feed):
        await eventually(lambda: feed.status is FeedStatus.STALE)
        assert feed.stats.parse_errors >= 1
        assert rec.ticks == []


def test_fallback_needs_a_client() -> None:
    rec = Recorder()
    with pytest.raises(ValueError, match="client="):
        feed_for("kraken", symbols={}, **rec.callbacks())
    with pytest.raises(ValueError, match="fallback"):
        feed_for("kraken", symbols={}, **rec.callbacks(), client=object(), fallback="carrier")
