"""The user data stream against the simulated venue: pushes refresh an account at once.

Every test polls only once a minute, so anything that reaches the daemon within a second
or two came through the stream. Orders are placed, and listen keys closed, by a separate
unmodified ccxt client, as the account's owner would from another program.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from pathlib import Path

import ccxt.async_support as ccxt

from monitor.config import Config
from monitor.daemon.liquidations import LiquidationLedger
from monitor.daemon.poller import AccountPoller
from monitor.daemon.service import Daemon
from monitor.events import Event, EventKind
from monitor.exchange.urls import rebase_urls
from monitor.feeds import FeedStatus
from monitor.simulator.binance_usdm.events import margin_call
from monitor.simulator.runner import SimulatedVenue
from monitor.venues.binance.userstream import BinanceUserStream
from tests.test_daemon_e2e import config_for
from tests.test_feeds_support import eventually

SLOW_POLLS = {"poll_interval": 60, "account_stale_after": 600}
BTC = "BTC/USDT:USDT"
AVAX_TARGET = "AVAX/USDT:USDT long isolated"


@contextlib.asynccontextmanager
async def watched(
    state: Path, events: list[Event] | None = None, scenario: str = "calm", speed: float = 1
) -> AsyncIterator[tuple[SimulatedVenue, AccountPoller, BinanceUserStream]]:
    """A venue and a daemon watching its one account, once the user stream is live and
    the reads that going live causes are done."""
    async with SimulatedVenue(scenario, speed=speed) as venue:
        emit = events.append if events is not None else lambda _event: None
        daemon = Daemon(config_for(venue, state, **SLOW_POLLS), emit)
        await daemon.start()
        try:
            (monitor,), (stream,) = daemon.pollers.values(), daemon.user_streams
            await eventually(lambda: monitor.state.snapshot is not None, 10)
            await eventually(lambda: stream.status is FeedStatus.LIVE, 10)
            await settled(monitor)
            yield venue, monitor, stream
        finally:
            await daemon.stop()


async def settled(monitor: AccountPoller) -> None:
    await asyncio.sleep(0.3)  # longer than the refresh settle time
    async with monitor.reading():  # any read in flight has finished
        pass


@contextlib.asynccontextmanager
async def owner_client(venue: SimulatedVenue) -> AsyncIterator[ccxt.binanceusdm]:
    (credentials,) = venue.credentials.values()
    client = ccxt.binanceusdm({"apiKey": credentials.api_key, "secret": credentials.secret})
    client.urls["api"] = rebase_urls(client.urls["api"], venue.base_url)
    client.options["fetchCurrencies"] = False
    try:
        yield client
    finally:
        await client.close()


def btc_contracts(monitor: AccountPoller) -> float | None:
    assert monitor.state.snapshot is not None
    return next((p.contracts for p in monitor.state.snapshot.positions if p.symbol == BTC), None)


async def assert_order_refreshes_at_once(
    venue: SimulatedVenue, monitor: AccountPoller, amount: float = 0.1
) -> float:
    """Close `amount` BTC of the long; the account shows it within 2 s. Returns the delay."""
    before = btc_contracts(monitor)
    assert before is not None
    async with owner_client(venue) as client:
        started = time.monotonic()
        await client.create_order(BTC, "market", "sell", amount, None, {"reduceOnly": True})
        await eventually(lambda: btc_contracts(monitor) == before - amount, 2.0)
    return time.monotonic() - started


async def test_reduce_only_order_updates_the_account_from_the_stream_without_a_read(tmp_path):
    async with watched(tmp_path) as (venue, monitor, stream):
        refreshes, applied = stream.refreshes, stream.updates_applied
        requests = len(venue.exchange.requests)
        delay = await assert_order_refreshes_at_once(venue, monitor)
        await settled(monitor)
        ours = venue.exchange.requests[requests:]
    assert delay < 2.0
    # the fill's ACCOUNT_UPDATE carries the new amount: applied, no REST read at all
    assert stream.refreshes == refreshes and stream.updates_applied == applied + 1
    assert [r for r in ours if "positionRisk" in r or "account" in r] == []


async def test_liquidation_is_reported_once_and_first_by_the_stream(tmp_path):
    events: list[Event] = []
    async with watched(tmp_path, events, "flash-crash", speed=8) as (venue, monitor, _):
        await asyncio.wait_for(venue.finished.wait(), 30)
        await eventually(lambda: any(e.target == AVAX_TARGET for e in liquidations(events)), 5)
        await settled(monitor)  # the refresh the liquidation caused has reconciled
        assert monitor.state.snapshot is not None
        assert AVAX_TARGET.split()[0] not in {p.symbol for p in monitor.state.snapshot.positions}

    (reported,) = liquidations(events)
    assert reported.target == AVAX_TARGET and reported.margin_mode == "isolated"
    assert reported.message.startswith("liquidation order reported by the exchange: sell 200")
    # It was critical before it went, so the reconciliation would have reported it too.
    before = [e for e in events if e.target == AVAX_TARGET and e.kind is EventKind.LEVEL]
    assert before and before[-1].level in ("critical", "imminent")


def liquidations(events: list[Event]) -> list[Event]:
    return [e for e in events if e.kind is EventKind.PROBABLE_LIQUIDATION]


async def test_margin_call_is_logged_and_rereads_the_account(tmp_path, caplog):
    async with watched(tmp_path) as (venue, monitor, stream):
        refreshes = stream.refreshes
        (account,) = venue.exchange.accounts.values()
        avax = next(p for p in account.positions if p.symbol == "AVAXUSDT")
        venue.exchange.publish(account, margin_call(venue.exchange, account, [avax], False))
        await eventually(lambda: stream.refreshes > refreshes, 3)
        await settled(monitor)
    assert stream.refreshes == refreshes + 1
    assert "margin call from the exchange: AVAXUSDT ISOLATED" in caplog.text


async def test_dropped_user_stream_reconnects_and_rereads_the_account(tmp_path):
    async with watched(tmp_path) as (venue, monitor, stream):
        refreshes = stream.refreshes
        venue.streams.refuse(1.5)  # the first attempts are accepted and closed at once
        await venue.streams.drop_all()
        await eventually(lambda: stream.status is not FeedStatus.LIVE, 2)
        await eventually(lambda: stream.status is FeedStatus.LIVE, 15)
        assert stream.stats.reconnects >= 2
        # what happened while it was down was not pushed: it is read on reconnecting
        await eventually(lambda: stream.refreshes > refreshes, 2)
        await settled(monitor)
        await assert_order_refreshes_at_once(venue, monitor)


async def test_expired_listen_key_is_replaced(tmp_path):
    async with watched(tmp_path) as (venue, monitor, stream):
        (account,) = venue.exchange.accounts.values()
        old_key = account.listen_key
        async with owner_client(venue) as client:
            await client.fapiPrivateDeleteListenKey()  # publishes listenKeyExpired
        await eventually(lambda: account.listen_key not in (None, old_key), 10)
        await eventually(lambda: stream.status is FeedStatus.LIVE, 10)
        await settled(monitor)
        await assert_order_refreshes_at_once(venue, monitor)


async def test_accounts_without_keys_have_no_user_stream(tmp_path):
    async with SimulatedVenue("calm", speed=1) as venue:
        config = config_for(venue, tmp_path).model_dump(mode="json")
        for account in config["accounts"]:
            account["api_key"] = account["secret"] = None
        daemon = Daemon(Config.model_validate(config), lambda _event: None)
        assert daemon.user_streams == []
        await daemon.stop()


def test_ledger_reports_each_disappearance_once_whoever_sees_it_first():
    ledger = LiquidationLedger()
    # the stream first; a poll that raced it still shows the position; then it is gone
    assert ledger.claim("T")
    ledger.observe({"T"})
    assert not ledger.claim("T")  # the reconciliation of the poll that sees it gone
    ledger.observe(set())
    # reopened: a new position, whose liquidation is news again, now seen by a poll first
    ledger.observe({"T"})
    assert ledger.claim("T")
    ledger.observe(set())
    assert not ledger.claim("T")  # the stream's late order update
