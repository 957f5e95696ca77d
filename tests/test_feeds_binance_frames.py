"""Binance mark-price frames, parsed: each message form the feed meets, written by hand.

Items follow Binance's published `markPriceUpdate` examples: USD-M (BTCUSDT, mark
"11794.15000000", E 1562305380000, funding "0.00038167", next funding 1562306400000) and
COIN-M's delivery contract (BTCUSD_201225, funding "" and next funding 0). The all-market
array (`!markPrice@arr@1s`) is a bare list of them; the combined endpoint wraps one in
`{"stream","data"}`. The array takes a typed fast path and everything else the generic
one: the last test checks that both give the same outcome on any array.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from monitor.feeds.base import MarkTick, UnexpectedMessage
from monitor.venues.binance.feed import BinanceCoinmMarkFeed, BinanceUsdmMarkFeed
from tests.test_feeds_support import FAST, Recorder, WsServer, eventually, running

BTC, ETH = "BTC/USDT:USDT", "ETH/USDT:USDT"
RECEIVED = 12.5

#: Binance's USD-M example, verbatim.
BTC_ITEM = {
    "e": "markPriceUpdate",
    "E": 1562305380000,
    "s": "BTCUSDT",
    "p": "11794.15000000",
    "i": "11784.62659091",
    "P": "11784.25641265",
    "r": "0.00038167",
    "T": 1562306400000,
}
BTC_TICK = MarkTick("binanceusdm", BTC, 11794.15, 1562305380.0, RECEIVED, 0.00038167, 1562306400.0)
#: The same shape for two more markets: ETH held, XRP not.
ETH_ITEM = {**BTC_ITEM, "s": "ETHUSDT", "p": "3200.25000000", "r": "-0.00001000"}
ETH_TICK = MarkTick("binanceusdm", ETH, 3200.25, 1562305380.0, RECEIVED, -0.00001, 1562306400.0)
XRP_ITEM = {**BTC_ITEM, "s": "XRPUSDT", "p": "0.50000000"}


def usdm(rec: Recorder | None = None, **kw: Any) -> BinanceUsdmMarkFeed:
    callbacks = (rec or Recorder()).callbacks()
    return BinanceUsdmMarkFeed("binanceusdm", {"BTCUSDT": BTC, "ETHUSDT": ETH}, **callbacks, **kw)


def parse(frame: object) -> list[MarkTick]:
    return usdm()._parse(json.dumps(frame), RECEIVED)


def test_all_market_array_yields_the_held_markets_in_order_as_text_or_bytes() -> None:
    frame = json.dumps([XRP_ITEM, BTC_ITEM, ETH_ITEM])
    feed = usdm()
    assert feed._parse(frame, RECEIVED) == [BTC_TICK, ETH_TICK]
    assert feed._parse(frame.encode(), RECEIVED) == [BTC_TICK, ETH_TICK]
    assert parse([]) == []
    assert parse([XRP_ITEM]) == []


def test_funding_fields_are_optional_and_empty_on_a_delivery_contract() -> None:
    bare = {key: BTC_ITEM[key] for key in ("e", "E", "s", "p")}
    assert parse([bare]) == [BTC_TICK._replace(funding_rate=None, next_funding_time=None)]
    nulls = {**BTC_ITEM, "r": None, "T": None}
    assert parse([nulls]) == [BTC_TICK._replace(funding_rate=None, next_funding_time=None)]

    # COIN-M's published delivery example: "r": "" and "T": 0 mean "none".
    delivery = {
        "e": "markPriceUpdate",
        "E": 1596095725000,
        "s": "BTCUSD_201225",
        "p": "10934.62615417",
        "P": "10962.17178236",
        "i": "10933.62615417",
        "r": "",
        "T": 0,
    }
    feed = BinanceCoinmMarkFeed(
        "binancecoinm", {"BTCUSD_201225": "BTC/USD:BTC-201225"}, **Recorder().callbacks()
    )
    assert feed._parse(json.dumps([delivery]), RECEIVED) == [
        MarkTick("binancecoinm", "BTC/USD:BTC-201225", 10934.62615417, 1596095725.0, RECEIVED)
    ]


def test_an_unheld_markets_odd_fields_do_not_cost_the_held_marks() -> None:
    odd = [
        {**XRP_ITEM, "p": 0.5},  # a number, not a string
        {key: value for key, value in XRP_ITEM.items() if key != "E"},
        {**XRP_ITEM, "s": "DOGEUSDT", "p": "?", "r": 1, "T": "soon"},
        {**XRP_ITEM, "s": "ADAUSDT", "E": 1562305380000.0},
    ]
    assert parse([*odd, BTC_ITEM]) == [BTC_TICK]


def test_a_held_market_with_numbers_as_numbers_reads_as_before() -> None:
    numeric = {**BTC_ITEM, "p": 11794.15, "r": 0.00038167, "T": "1562306400000"}
    assert parse([numeric]) == [BTC_TICK]


def test_another_event_in_the_array_is_an_unexpected_message() -> None:
    trade = {"e": "aggTrade", "E": 1562305380000, "s": "XRPUSDT", "p": "0.5"}
    with pytest.raises(UnexpectedMessage, match="aggTrade"):
        parse([BTC_ITEM, trade])


def test_a_held_markets_unreadable_price_fails_the_frame() -> None:
    with pytest.raises(ValueError):
        parse([{**BTC_ITEM, "p": "?"}])
    with pytest.raises(TypeError):  # not a list of objects
        parse([1, 2])
    with pytest.raises(ValueError):  # orjson's JSONDecodeError
        usdm()._parse("[{", RECEIVED)


def test_wrapper_answers_errors_and_single_objects(caplog: pytest.LogCaptureFixture) -> None:
    assert parse({"stream": "btcusdt@markPrice@1s", "data": BTC_ITEM}) == [BTC_TICK]
    assert parse({"stream": "btcusdt@markPrice@1s", "data": [XRP_ITEM, ETH_ITEM]}) == [ETH_TICK]
    assert parse(BTC_ITEM) == [BTC_TICK]  # a single stream on /ws: the bare object
    assert parse({"result": None, "id": 1}) == []  # answer to a SUBSCRIBE request
    with caplog.at_level(logging.WARNING, logger="monitor.venues.binance.feed"):
        assert parse({"error": {"code": 2, "msg": "Invalid request"}, "id": 1}) == []
    assert "Invalid request" in caplog.text
    with pytest.raises(UnexpectedMessage):
        parse({"stream": "btcusdt@aggTrade", "data": {"e": "aggTrade"}})


async def test_the_array_feed_reads_bytes_counts_bad_frames_and_reads_on() -> None:
    async def array_stream(ws: Any) -> None:
        await ws.send(json.dumps([BTC_ITEM, {"e": "aggTrade"}]))
        await ws.send(json.dumps([1, 2]))
        await ws.send(json.dumps([XRP_ITEM, BTC_ITEM]).encode())  # a binary frame
        await ws.send(json.dumps([ETH_ITEM]))
        await ws.wait_closed()

    class Recording(BinanceUsdmMarkFeed):
        def _parse(self, raw: str | bytes, received: float) -> list[MarkTick]:
            kinds.append(type(raw))
            return super()._parse(raw, received)

    kinds: list[type] = []
    rec = Recorder()
    many = {f"C{i}USDT": f"C{i}/USDT:USDT" for i in range(60)}
    async with WsServer(array_stream) as server:
        feed = Recording(
            "binanceusdm",
            many | {"BTCUSDT": BTC, "ETHUSDT": ETH},
            **rec.callbacks(),
            ws_origin=server.origin,
            **FAST,
        )
        async with running(feed):
            await eventually(lambda: len(rec.frames) == 2)
            stats = feed.stats

    assert server.paths == ["/market/ws/!markPrice@arr@1s"]
    assert kinds == [bytes] * 4  # text frames too: not decoded to str on the way
    assert [(t.symbol, t.price) for t in rec.ticks] == [(BTC, 11794.15), (ETH, 3200.25)]
    assert (stats.messages, stats.parse_errors, stats.ticks) == (4, 2, 2)


# ---------------------------------------------------------------- both paths agree

_ODD = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from(["", "0", "1.5", "?", "0.00038167", "1562306400000", "nan", "1_0"]),
    st.lists(st.integers(), max_size=2),
)
_GOOD = st.fixed_dictionaries(
    {
        "e": st.just("markPriceUpdate"),
        "E": st.integers(min_value=0, max_value=2**64),
        "s": st.sampled_from(["BTCUSDT", "ETHUSDT", "XRPUSDT"]),
        "p": st.sampled_from(["11794.15000000", "3200.25", "1e3", "0"]),
    },
    optional={"i": st.just("11784.62659091"), "r": st.just("0.00038167"), "T": st.just(0)},
)
#: Any field missing or odd, in an item of any market.
_ANY = st.fixed_dictionaries(
    {},
    optional={
        key: st.one_of(_ODD, st.sampled_from(["markPriceUpdate", "BTCUSDT", "ETHUSDT"]))
        for key in ("e", "E", "s", "p", "i", "r", "T")
    },
)


def _outcome(parse: Any, frame: str) -> object:
    try:
        return parse(frame, RECEIVED)
    except Exception as exc:
        return type(exc), str(exc)


@given(st.lists(st.one_of(_GOOD, _GOOD, _ANY), max_size=4))
def test_the_typed_path_and_the_generic_path_agree_on_any_array(items: list[dict]) -> None:
    feed = usdm()
    frame = json.dumps(items)
    assert _outcome(feed._parse, frame) == _outcome(feed._parse_any, frame)
