"""Each rung of the defense ladder against the simulated Binance, over loopback.

Unmodified ccxt against the simulator's REST dialect (its max-addable rule, its universal
transfer, its liquidation engine); the SQLite journal on disk. One account's monitor and
controller are driven directly (tests/test_actions_sim.py's harness), on short scenarios
written here, so each rung is seen alone.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from monitor.actions.journal import ActionRow
from monitor.simulator.binance_usdm import Fault
from monitor.simulator.binance_usdm.events import LIQUIDATION
from monitor.simulator.runner import SimulatedVenue
from monitor.simulator.scenario import parse_scenario
from tests.test_actions_sim import harness, our_orders, posts, sim_account, until

# An isolated AVAX long, 200 @ 35 at 10x (margin 700), nothing else. Notional 7,000 is in
# the second ALT bracket (1.5 %, cum 25): 700 + 200 (L - 35) = 200 L x 1.5 % - 25 gives
# L = 6,275 / 197 = 31.853, 8.99 % away: warn (isolated warn is 10 %), the default
# trigger. The default target is 15 %: at 35 x 0.85 = 29.75 the notional is 5,950 (MM
# 5,950 x 1.5 % - 25 = 64.25) and the PnL -1,050, so 64.25 + 1,050 - 700 = 414.25 more
# margin puts the liquidation exactly 15 % away.
ISOLATED = """
seed: 3
tick_seconds: 1
symbols:
  AVAXUSDT:
    start: 35
    segments: [{{duration: {calm}s}}, {{duration: 40s, drift: {drift}}}]
segments: [{{duration: {total}s}}]
accounts:
  - name: bet
    balances: {{USDT: {wallet}}}
    reserve: {{USDT: 3000}}
    positions:
      - {{symbol: AVAXUSDT, side: long, size: 200, margin_mode: isolated, leverage: 10,
          isolated_margin: {margin}}}
"""
NEEDED = 414.25
RESERVE = {"from": "spot", "max_per_action": 2000, "max_per_day": 5000}
AVAX = "AVAX/USDT:USDT long isolated"


def still(wallet: float, margin: float = 700) -> Any:
    text = ISOLATED.format(calm=600, drift=0, total=640, wallet=wallet, margin=margin)
    return parse_scenario(text)


def sliding(margin: float) -> Any:
    """AVAX falls 15 % over 40 s after 2 s of calm: about 0.4 % a tick, far less than
    the 3 % close buffer."""
    return parse_scenario(ISOLATED.format(calm=2, drift=-0.15, total=42, wallet=0, margin=margin))


def rows_of(h: Any) -> list[ActionRow]:
    return h.controller.journal.rows(h.poller.name)


def done(h: Any, *kinds: str) -> Any:
    """These requests filled, and the fresh read after them is reported (and journaled)."""
    return lambda: (
        [r.kind for r in rows_of(h) if r.status == "filled"] == list(kinds)
        and any(e.message.startswith("filled") for e in h.actions())
    )


async def polling(h: Any, predicate: Any, timeout: float, what: str) -> None:
    """Poll the account (the harness runs no mark feed) until `predicate` holds."""

    async def loop() -> None:
        while not predicate():
            await h.poller.poll()
            await asyncio.sleep(0.2)

    try:
        await asyncio.wait_for(loop(), timeout)
    except TimeoutError:
        raise AssertionError(f"{what} not met in {timeout} s") from None


async def test_margin_comes_from_the_futures_wallet_when_it_can_spare_it(tmp_path):
    venue = SimulatedVenue(still(wallet=5000), speed=1)
    async with venue, harness(venue, tmp_path, {"mode": "auto"}) as h:
        await h.poller.poll()
        await until(done(h, "add_margin"), 10, "the add")
        (row,) = rows_of(h)
    position = sim_account(venue).positions[0]
    assert row.quantity == pytest.approx(NEEDED)
    assert position.isolated_wallet == pytest.approx(700 + NEEDED)
    assert row.distance_expected == pytest.approx(0.15, abs=1e-6)
    assert row.distance_after == pytest.approx(0.15, abs=1e-3)  # measured, still market
    assert posts(venue, "/sapi/v1/asset/transfer") == 0


async def test_an_empty_futures_wallet_is_topped_up_from_the_reserve_then_added(tmp_path):
    # 100 free in futures: 314.25 comes from spot, and all 414.25 goes into the position
    async with SimulatedVenue(still(wallet=100), speed=1) as venue:
        actions = {"mode": "auto", "reserve": RESERVE}
        async with harness(venue, tmp_path, actions) as h:
            await h.poller.poll()
            await until(done(h, "transfer", "add_margin"), 10, "transfer, then add")
            transfer, add = rows_of(h)
    account = sim_account(venue)
    assert transfer.quantity == pytest.approx(NEEDED - 100)
    assert account.spot["USDT"] == pytest.approx(3000 - (NEEDED - 100))
    assert add.quantity == pytest.approx(NEEDED)
    assert account.positions[0].isolated_wallet == pytest.approx(700 + NEEDED)
    assert transfer.result and int(transfer.result["id"]) == account.transfers[0].tran_id


async def test_a_rejected_add_is_sized_again_on_a_fresh_read_then_falls_through(tmp_path):
    async with SimulatedVenue(still(wallet=5000), speed=1) as venue:
        venue.exchange.faults["/fapi/v1/positionMargin"] = Fault(
            status=400, body={"code": -4050, "msg": "Cross balance insufficient."}, times=2
        )
        actions = {"mode": "auto", "reserve": RESERVE, "caps": {"cooldown": 600}}
        async with harness(venue, tmp_path, actions) as h:
            await h.poller.poll()
            await until(done(h, "transfer", "add_margin"), 10, "the next rung")
            rows = rows_of(h)
    # all in the same step, although the cooldown is long: the refused add once more on
    # the read taken after the refusal (a fast market had moved the balance it was sized
    # on), then, refused again, the reserve's rung
    assert [(r.kind, r.status) for r in rows] == [
        ("add_margin", "failed"), ("add_margin", "failed"), ("transfer", "filled"),
        ("add_margin", "filled"),
    ]  # fmt: skip
    assert "-4050" in rows[0].detail and "-4050" in rows[1].detail
    assert rows[3].created_at - rows[0].created_at < 5
    assert sim_account(venue).positions[0].isolated_wallet == pytest.approx(700 + NEEDED)


@pytest.mark.parametrize(
    ("policy", "margin"),
    [({"max_add_per_position": 100}, 600), ({"defense": "contain"}, 700)],
    ids=["no-money", "contain"],
)
async def test_closed_by_us_before_the_exchange_would_liquidate(tmp_path, policy, margin):
    # No money in futures and no reserve configured: margin 600 (L = 6,375 / 197 =
    # 32.36, 7.5 % away) has no rung to add from, and contain never adds. Either way
    # the close comes once the distance is under 2 x 3 % (CLOSE_AHEAD x close_before),
    # before the exchange liquidates.
    venue = SimulatedVenue(sliding(margin), speed=4)
    async with venue, harness(venue, tmp_path, {"mode": "auto", "isolated": policy}) as h:
        await h.poller.poll()
        await polling(h, lambda: bool(our_orders(venue)), 30, "our close")
        await asyncio.sleep(0.5)
        rows = rows_of(h)
    account = sim_account(venue)
    (order,) = our_orders(venue)
    assert order.reduce_only and order.executed_qty == 200
    assert not [o for o in account.orders if o.type == LIQUIDATION]
    assert not account.positions or account.positions[0].amount == 0
    close = next(r for r in rows if r.kind == "reduce")
    assert close.status == "filled" and close.distance_before < 0.06
    assert posts(venue, "/fapi/v1/positionMargin") == 0


async def test_the_budget_per_position_is_spent_then_the_close_follows(tmp_path):
    # 1,000 free in futures, but only 100 may go into this bet: margin 600 -> 700
    # (L 31.853), then the slide takes it under 3 % and it is closed, never liquidated
    async with SimulatedVenue(
        parse_scenario(ISOLATED.format(calm=2, drift=-0.15, total=42, wallet=1000, margin=600)),
        speed=4,
    ) as venue:
        actions = {"mode": "auto", "isolated": {"max_add_per_position": 100}}
        async with harness(venue, tmp_path, actions) as h:
            await h.poller.poll()
            await polling(h, lambda: bool(our_orders(venue)), 30, "our close")
            rows = [r for r in rows_of(h) if r.status == "filled"]
    assert [r.kind for r in rows] == ["add_margin", "reduce"]
    assert rows[0].quantity == pytest.approx(100)
    account = sim_account(venue)
    assert not [o for o in account.orders if o.type == LIQUIDATION]


# --- cross -------------------------------------------------------------------------
# BTC long 1 @ 60,000 and a SOL short 100 @ 140 (mark 150: a 1,000 loss), wallet 4,500:
# margin balance 3,500 against MM 240 + (15,000 x 1.5 % - 25 = 200) = 440.
# - all marks falling together: (3,500 - 440) / 45,000 of net long exposure, about
#   6.8 % (critical: the cross threshold is 8 %);
# - BTC alone falling: (3,500 - 440) / 60,000, about 5.1 %: the nearest threat.
# Cutting the SOL short removes the hedge: the common fall then meets 60,000 of
# exposure, (3,500 - 240) / 60,000 = 5.4 % < 6.8 %: the planner must never do it.
CROSS = """
seed: 5
tick_seconds: 1
symbols:
  BTCUSDT: {start: 60000}
  SOLUSDT: {start: 150}
segments: [{duration: 600s}]
accounts:
  - name: book
    balances: {USDT: 4500}
    reserve: {USDT: 20000}
    positions:
      - {symbol: BTCUSDT, side: long, size: 1.0, leverage: 20}
      - {symbol: SOLUSDT, side: short, size: 100, leverage: 20, entry: 140}
"""


@pytest.mark.parametrize("order", ["effect", "smallest_losers", "mm_contribution"])
async def test_cross_cuts_leave_the_hedge_alone(tmp_path, order):
    async with SimulatedVenue(parse_scenario(CROSS), speed=1) as venue:
        actions = {"mode": "auto", "cross": {"order": order}}
        async with harness(venue, tmp_path, actions) as h:
            await h.poller.poll()
            await until(lambda: bool(our_orders(venue)), 10, "a cut")
            await asyncio.sleep(0.5)
            rows = [r for r in rows_of(h) if r.status == "filled"]
            pool = h.poller.state.latest_pools["USDT"]
    sol = next(p for p in sim_account(venue).positions if p.symbol == "SOLUSDT")
    assert sol.amount == -100  # the hedge untouched
    assert {o.symbol for o in our_orders(venue)} == {"BTCUSDT"}
    assert all(r.symbol == "BTC/USDT:USDT" for r in rows)
    assert pool.liquidation_distance is not None and pool.liquidation_distance >= 0.12 - 1e-3


async def test_cross_collateral_comes_from_the_reserve_before_any_cut(tmp_path):
    async with SimulatedVenue(parse_scenario(CROSS), speed=1) as venue:
        actions = {"mode": "auto", "reserve": {**RESERVE, "max_per_action": 10_000}}
        async with harness(venue, tmp_path, actions) as h:
            await h.poller.poll()
            await until(done(h, "transfer"), 10, "the transfer")
            await asyncio.sleep(0.5)
            (row,) = rows_of(h)
    # Every threat at 12 %: BTC alone at 52,800 (second bracket: 0.5 %, cum 50, MM 214)
    # needs MM 214 + SOL's 200 against a
    # PnL of -7,200 - 1,000: a wallet of 8,614, i.e. 4,114.00 more (the common fall
    # needs less: the short gains 1,800 of it back).
    assert row.quantity == pytest.approx(4_114.00)
    assert our_orders(venue) == []
    assert sim_account(venue).cross_wallet["USDT"] == pytest.approx(4500 + 4_114.00)
    assert row.distance_after == pytest.approx(0.12, abs=1e-3)


async def test_a_transfer_whose_reply_is_lost_is_found_in_the_history_not_resent(tmp_path):
    async with SimulatedVenue(still(wallet=100), speed=1) as venue:
        venue.exchange.faults["/sapi/v1/asset/transfer"] = Fault.answer_late(2.5, times=1)
        actions = {"mode": "auto", "reserve": RESERVE}
        async with harness(venue, tmp_path, actions, request_timeout=1.0) as h:
            await h.poller.poll()
            await until(done(h, "transfer", "add_margin"), 20, "transfer, then add")
            transfer, add = rows_of(h)
    account = sim_account(venue)
    assert posts(venue, "/sapi/v1/asset/transfer") == 1  # looked up, never sent twice
    assert "GET /sapi/v1/asset/transfer" in venue.exchange.requests
    assert "history" in transfer.detail
    assert (
        len(account.transfers) == 1 and int(transfer.result["id"]) == account.transfers[0].tran_id
    )
    assert account.spot["USDT"] == pytest.approx(3000 - (NEEDED - 100))
    assert add.quantity == pytest.approx(NEEDED)


async def test_a_reserve_with_a_key_that_cannot_transfer_is_refused_at_startup(tmp_path):
    scenario = parse_scenario(
        ISOLATED.format(calm=600, drift=0, total=640, wallet=100, margin=700).replace(
            "reserve: {USDT: 3000}", "reserve: {USDT: 3000}\n    can_transfer: false"
        )
    )
    async with SimulatedVenue(scenario, speed=1) as venue:
        actions = {"mode": "auto", "reserve": RESERVE}
        async with harness(venue, tmp_path, actions) as h:
            await h.poller.poll()
            await until(lambda: len(h.actions()) >= 2, 10, "the refusal, then a dry run")
            refusal, *later = h.actions()
    assert refusal.target == "account" and refusal.level == "critical"
    assert "actions.reserve" in refusal.message and "cannot transfer" in refusal.message
    assert later[0].message.startswith("dry run, would transfer")
    assert posts(venue, "/sapi/v1/asset/transfer") == 0
