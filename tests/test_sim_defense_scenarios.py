"""The built-in defense scenarios played to the end at high speed, with actions off.

Each scenario file's header derives by hand when an unprotected book is liquidated; the
windows below are those derivations widened by a couple of ticks for the seeded noise.
"""

from __future__ import annotations

from typing import Any

import pytest

from monitor.simulator.binance_usdm import SimAccount
from monitor.simulator.build import build_exchange
from monitor.simulator.runner import SimulatedVenue
from monitor.simulator.scenario import load_scenario

SPEED = 400.0


async def play(name: str) -> tuple[SimulatedVenue, list[tuple[float, str]]]:
    """Play `name` to its end; every liquidation fill as (simulated second, symbol)."""
    liquidations: list[tuple[float, str]] = []
    async with SimulatedVenue(name, speed=SPEED) as venue:

        def on_event(_account: SimAccount, event: dict[str, Any]) -> None:
            order = event.get("o", {})
            if event["e"] == "ORDER_TRADE_UPDATE" and order["X"] == "FILLED":
                assert order["o"] == "LIQUIDATION"  # nobody else trades here
                liquidations.append((venue.elapsed, order["s"]))

        venue.exchange.listeners.append(on_event)
        await venue.finished.wait()
    assert venue.elapsed == venue.scenario.duration
    return venue, liquidations


def only_account(venue: SimulatedVenue) -> SimAccount:
    (account,) = venue.exchange.accounts.values()
    return account


def times_of(liquidations: list[tuple[float, str]], symbol: str) -> list[float]:
    return [t for t, s in liquidations if s == symbol]


@pytest.mark.parametrize(
    ("name", "reserve"),
    [
        ("slow-slide", 5_000),
        ("crash-revert", 3_000),
        ("squeeze-short-book", 8_000),
        ("hedge-gap", 6_000),
        ("flash-crash", 5_000),
    ],
)
def test_defense_scenarios_give_every_account_a_spot_reserve(name: str, reserve: float) -> None:
    scenario = load_scenario(name)
    (account,) = build_exchange(scenario).accounts.values()
    assert (account.spot, account.funding, account.can_transfer) == ({"USDT": reserve}, {}, True)
    assert 60 <= scenario.duration <= 90 and scenario.tick_seconds == 1


async def test_slow_slide_loses_the_isolated_bet_then_the_cross_pool() -> None:
    venue, liquidations = await play("slow-slide")
    # Header: AVAX at L = 31.818, reached at about 44 s; the pool at about 73-75 s.
    (avax,) = times_of(liquidations, "AVAXUSDT")
    assert 42 <= avax <= 46
    (btc,) = times_of(liquidations, "BTCUSDT")
    assert times_of(liquidations, "ETHUSDT") == [btc] and 72 <= btc <= 78
    account = only_account(venue)
    assert account.open_positions() == []
    assert account.spot == {"USDT": 5_000}  # the reserve that would have saved both


async def test_crash_revert_kills_the_isolated_bet_at_the_bottom_then_recovers() -> None:
    venue, liquidations = await play("crash-revert")
    # Header: AVAX at L = 31.853, crossed at 19.2 s, before the gap: the 20 s tick.
    assert liquidations == [(20.0, "AVAXUSDT")]
    account = only_account(venue)
    assert {p.symbol for p in account.open_positions()} == {"BTCUSDT", "ETHUSDT"}
    for symbol, spec in venue.scenario.symbols.items():
        # The recovery drifts undo the crash exactly; only the seeded noise remains.
        assert venue.exchange.mark(symbol) == pytest.approx(spec.start, rel=0.01), symbol


async def test_squeeze_liquidates_the_short_heavy_cross_pool_after_the_gap() -> None:
    venue, liquidations = await play("squeeze-short-book")
    # Header: the gap at 23 s leaves the pool alive; the climb finishes it at about 30-31 s.
    symbols = {"BTCUSDT", "SOLUSDT", "DOGEUSDT", "AVAXUSDT"}
    assert {s for _, s in liquidations} == symbols and len(liquidations) == 4
    (when,) = {t for t, _ in liquidations}
    assert 28 <= when <= 33
    assert only_account(venue).cross_wallet["USDT"] == 0


async def test_hedge_gap_liquidates_the_pool_some_ticks_after_the_gap() -> None:
    venue, liquidations = await play("hedge-gap")
    # Header: the gap at 27 s leaves the pool alive (ratio 0.36 on the drift path); the
    # pool goes at about 40-44 s, both legs at once.
    assert {s for _, s in liquidations} == {"ETHUSDT", "SOLUSDT"} and len(liquidations) == 2
    (when,) = {t for t, _ in liquidations}
    assert 38 <= when <= 45
    account = only_account(venue)
    assert (account.cross_wallet, account.spot) == ({"USDT": 0}, {"USDT": 6_000})
