"""Metrics as Prometheus scrapes them: over HTTP on loopback, in the text exposition format."""

from __future__ import annotations

import math
import urllib.request
from collections.abc import Iterator

import ccxt
import pytest
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

from monitor.domain import MarginMode, Position, Side
from monitor.engine.levels import Level
from monitor.engine.results import AccountRisk, PoolRisk, PositionRisk
from monitor.exchange.errors import ErrorKind
from monitor.ops.metrics import Metrics, MetricsServer, is_loopback


@pytest.fixture
def metrics() -> Metrics:
    return Metrics()


@pytest.fixture
def server(metrics: Metrics) -> Iterator[MetricsServer]:
    with metrics.start_http(0) as running:
        yield running


def scrape(server: MetricsServer) -> str:
    url = f"http://127.0.0.1:{server.port}/metrics"
    with urllib.request.urlopen(url, timeout=5) as response:
        assert response.status == 200
        return response.read().decode()


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(text: str, name: str, **labels: str) -> float | None:
    return samples(text).get((name, frozenset(labels.items())))


def position(symbol: str, side: Side, mode: MarginMode) -> Position:
    return Position(
        symbol=symbol,
        side=side,
        margin_mode=mode,
        contracts=1.0,
        contract_size=1.0,
        entry_price=100.0,
        mark_price=100.0,
        settle="USDT",
    )


def risk(name: str, pools: list[PoolRisk], positions: list[PositionRisk]) -> AccountRisk:
    return AccountRisk(name, "binanceusdm", "binance", True, tuple(pools), tuple(positions))


def pool_risk(asset: str, ratio: float | None, distance: float | None) -> PoolRisk:
    return PoolRisk(asset, 1000.0, 0.0, 1000.0, 10.0, ratio, -distance if distance else None,
                    distance, None)  # fmt: skip


def position_risk(p: Position, ratio: float | None, distance: float | None) -> PositionRisk:
    return PositionRisk(p, 100.0, 100.0, 0.0, 1.0, ratio, 80.0, distance)


def test_scrape_shows_every_metric(metrics: Metrics, server: MetricsServer) -> None:
    metrics.observe_pool("binance-main", "USDT", 0.42, 0.18)
    metrics.observe_position("binance-main", "BTC/USDT:USDT", "long", "isolated", 0.61, 0.07)
    metrics.feed_message("binanceusdm", 1_700_000_000.5)
    metrics.feed_status("binanceusdm", "live")
    metrics.rest_call("binance-main", "binanceusdm", "fetch_positions")
    metrics.rest_call("binance-main", "binanceusdm", "fetch_positions")
    metrics.rest_error("binance-main", "binanceusdm", "fetch_positions", TimeoutError("x"))
    metrics.event("margin_ratio", Level.CRITICAL)
    metrics.tick(0.003)
    metrics.tick()

    text = scrape(server)
    pool = {"account": "binance-main", "asset": "USDT"}
    leg = {"account": "binance-main", "symbol": "BTC/USDT:USDT", "side": "long",
           "margin_mode": "isolated"}  # fmt: skip
    assert value(text, "marginwatch_pool_margin_ratio", **pool) == 0.42
    assert value(text, "marginwatch_pool_liquidation_distance", **pool) == 0.18
    assert value(text, "marginwatch_position_margin_ratio", **leg) == 0.61
    assert value(text, "marginwatch_position_liquidation_distance", **leg) == 0.07
    assert (
        value(text, "marginwatch_feed_last_message_timestamp_seconds", exchange="binanceusdm")
        == 1_700_000_000.5
    )
    assert value(text, "marginwatch_feed_state", exchange="binanceusdm", state="live") == 1.0
    assert value(text, "marginwatch_feed_state", exchange="binanceusdm", state="stale") == 0.0
    rest = {"account": "binance-main", "exchange": "binanceusdm", "call": "fetch_positions"}
    assert value(text, "marginwatch_rest_calls_total", **rest) == 2.0
    assert value(text, "marginwatch_rest_errors_total", **rest, kind="network") == 1.0
    assert value(text, "marginwatch_events_total", kind="margin_ratio", level="critical") == 1.0
    assert value(text, "marginwatch_ticks_total") == 2.0
    assert value(text, "marginwatch_tick_to_evaluation_seconds_count") == 1.0
    assert value(text, "marginwatch_tick_to_evaluation_seconds_bucket", le="0.005") == 1.0
    assert value(text, "marginwatch_tick_to_evaluation_seconds_bucket", le="0.0025") == 0.0


def test_feed_state_moves(metrics: Metrics, server: MetricsServer) -> None:
    metrics.feed_status("okx", "live")
    metrics.feed_status("okx", "resyncing")  # a state the list doesn't know yet is kept
    text = scrape(server)
    assert value(text, "marginwatch_feed_state", exchange="okx", state="live") == 0.0
    assert value(text, "marginwatch_feed_state", exchange="okx", state="resyncing") == 1.0


def test_unknown_figures_are_nan_never_zero(metrics: Metrics, server: MetricsServer) -> None:
    metrics.observe_pool("acct", "USDT", None, None)
    metrics.observe_pool("acct", "BTC", math.inf, None)  # no equity left: the worst reading
    text = scrape(server)
    assert math.isnan(value(text, "marginwatch_pool_margin_ratio", account="acct", asset="USDT"))
    assert math.isnan(
        value(text, "marginwatch_pool_liquidation_distance", account="acct", asset="USDT")
    )
    assert value(text, "marginwatch_pool_margin_ratio", account="acct", asset="BTC") == math.inf
    assert 'marginwatch_pool_margin_ratio{account="acct",asset="USDT"} NaN' in text
    assert 'marginwatch_pool_margin_ratio{account="acct",asset="BTC"} +Inf' in text


def test_failed_refresh_turns_last_figures_into_nan(metrics: Metrics) -> None:
    metrics.observe_pool("acct", "USDT", 0.3, 0.2)
    metrics.observe_position("acct", "ETH/USDT:USDT", "short", "cross", 0.3, 0.2)
    metrics.account_unknown("acct")
    values = [
        s.value
        for family in metrics.registry.collect()
        if family.name.startswith(("marginwatch_pool", "marginwatch_position"))
        for s in family.samples
    ]
    assert len(values) == 4
    assert all(math.isnan(v) for v in values)


def test_observe_account_drops_closed_positions(metrics: Metrics, server: MetricsServer) -> None:
    btc = position("BTC/USDT:USDT", Side.LONG, MarginMode.CROSS)
    eth = position("ETH/USDT:USDT", Side.SHORT, MarginMode.ISOLATED)
    metrics.observe_account(
        risk("acct", [pool_risk("USDT", 0.2, 0.3)],
             [position_risk(btc, 0.2, 0.3), position_risk(eth, 0.9, 0.01)]),
        at=1_700_000_000.0,
    )  # fmt: skip
    text = scrape(server)
    eth_leg = {"account": "acct", "symbol": "ETH/USDT:USDT", "side": "short",
               "margin_mode": "isolated"}  # fmt: skip
    assert value(text, "marginwatch_position_margin_ratio", **eth_leg) == 0.9
    assert (
        value(text, "marginwatch_account_last_evaluation_timestamp_seconds", account="acct")
        == 1_700_000_000.0
    )

    # ETH closed, and the pool's figure became unknown.
    metrics.observe_account(
        risk("acct", [pool_risk("USDT", None, None)], [position_risk(btc, 0.25, 0.28)])
    )
    text = scrape(server)
    assert value(text, "marginwatch_position_margin_ratio", **eth_leg) is None
    assert "ETH/USDT:USDT" not in text
    btc_leg = {**eth_leg, "symbol": "BTC/USDT:USDT", "side": "long", "margin_mode": "cross"}
    assert value(text, "marginwatch_position_margin_ratio", **btc_leg) == 0.25
    assert math.isnan(value(text, "marginwatch_pool_margin_ratio", account="acct", asset="USDT"))


def test_forget_account_drops_only_that_account(metrics: Metrics, server: MetricsServer) -> None:
    for account in ("gone", "kept"):
        metrics.observe_pool(account, "USDT", 0.5, 0.1)
        metrics.observe_position(account, "BTC/USDT:USDT", "long", "cross", 0.5, 0.1)
        metrics.rest_call(account, "bybit", "fetch_balance")
        metrics.rest_error(account, "bybit", "fetch_balance", ErrorKind.RATE_LIMIT)
        metrics.observe_account(risk(account, [pool_risk("USDT", 0.5, 0.1)], []))
    metrics.forget_account("gone")
    metrics.forget_account("never-seen")  # harmless
    text = scrape(server)
    assert 'account="gone"' not in text
    assert value(text, "marginwatch_pool_margin_ratio", account="kept", asset="USDT") == 0.5
    kept_rest = {"account": "kept", "exchange": "bybit", "call": "fetch_balance"}
    assert value(text, "marginwatch_rest_calls_total", **kept_rest) == 1.0


def test_error_labels_carry_the_typed_kind_not_the_message(
    metrics: Metrics, server: MetricsServer
) -> None:
    leaky = RuntimeError("GET https://api.example/fapi?signature=deadbeef&apiKey=SECRETKEY")
    metrics.rest_error("acct", "binanceusdm", "fetch_positions", leaky)
    metrics.rest_error("acct", "binanceusdm", "fetch_positions", ccxt.RateLimitExceeded("429"))
    metrics.rest_error("acct", "binanceusdm", "fetch_positions", ccxt.ExchangeNotAvailable("x"))
    text = scrape(server)
    kinds = {"bad_reply", "rate_limit", "exchange_down"}
    assert {k for k in kinds if f'kind="{k}"' in text} == kinds
    assert "RuntimeError" not in text and "RateLimitExceeded" not in text
    assert "SECRETKEY" not in text and "signature" not in text


def test_own_registry_not_the_global_one() -> None:
    first, second = Metrics(), Metrics()  # would raise "Duplicated timeseries" if shared
    first.tick()
    assert first.registry is not REGISTRY
    assert second.registry.get_sample_value("marginwatch_ticks_total") == 0.0
    assert REGISTRY.get_sample_value("marginwatch_ticks_total") is None


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "", "192.0.2.10", "127.0.0.1.nip.io", "my-host"])
def test_non_loopback_host_refused(metrics: Metrics, host: str) -> None:
    with pytest.raises(ValueError, match="not a loopback address"):
        metrics.start_http(0, host)


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2", "::1", "localhost"])
def test_loopback_hosts_accepted(host: str) -> None:
    assert is_loopback(host)


def test_ipv6_loopback_serves(metrics: Metrics) -> None:
    try:
        running = metrics.start_http(0, "::1")
    except OSError as exc:
        pytest.skip(f"no IPv6 loopback here: {exc}")
    metrics.tick()
    with running, urllib.request.urlopen(f"http://[::1]:{running.port}/metrics", timeout=5) as r:
        assert "marginwatch_ticks_total 1.0" in r.read().decode()
