"""Auto-deleverage against the simulated Binance USD-M venue, over loopback.

Real wires throughout: unmodified ccxt, the simulator's REST dialect and risk engine,
the SQLite journal on disk. The crash test runs the whole daemon; the others drive one
account's monitor and controller directly, so that each failure is placed exactly.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, NamedTuple

import pytest

from monitor.actions.controller import ActionController
from monitor.actions.guards import KillSwitch
from monitor.actions.journal import ActionRow, Journal, Status
from monitor.actions.policy import CLIENT_ID_PREFIX, Decision
from monitor.bus import EventBus
from monitor.config import Config
from monitor.daemon.account import AccountState
from monitor.daemon.marks import MarkBoard
from monitor.daemon.poller import AccountPoller
from monitor.daemon.service import Daemon
from monitor.events import Event, EventKind
from monitor.events.tracker import LevelTracker
from monitor.exchange.markets import SharedMarkets
from monitor.simulator.binance_usdm import Fault, SimAccount
from monitor.simulator.binance_usdm.events import LIQUIDATION
from monitor.simulator.runner import SimulatedVenue
from monitor.simulator.scenario import parse_scenario
from monitor.venues.registry import execution_for

# --- the harsh crash ---------------------------------------------------------------
# A hybrid account: a 6x cross core (BTC, ETH) and a 5x isolated DOGE bet. DOGE falls
# 24 % first (its liquidation is at -18.6 %), then BTC and ETH fall 25 % (the pool's
# is near -16 %). Left alone, everything is liquidated.
CRASH = """
seed: 11
tick_seconds: 1
symbols:
  BTCUSDT: {start: 60000}
  ETHUSDT: {start: 3000}
  DOGEUSDT:
    start: 0.2
    segments:
      - {duration: 4s, volatility: 0.002}
      - {duration: 12s, drift: -0.24, volatility: 0.01}
      - {duration: 32s, volatility: 0.003}
segments:
  - {duration: 14s, volatility: 0.002}
  - {duration: 30s, drift: -0.25, volatility: 0.008}
  - {duration: 4s}
accounts:
  - name: crash
    balances: {USDT: 20000}
    reserve: {USDT: 4000}
    positions:
      - {symbol: BTCUSDT, side: long, size: 1.0, leverage: 10}
      - {symbol: ETHUSDT, side: long, size: 20, leverage: 10}
      - {symbol: DOGEUSDT, side: long, size: 100000, margin_mode: isolated, leverage: 5,
         isolated_margin: 4000}
"""
CAPS = {
    "cooldown": 1,
    "max_notional_per_action": 30_000,
    "max_notional_per_hour": 150_000,
    "max_actions_per_hour": 40,
}
DEFENSE = {
    "mode": "auto",
    "cross": {"trigger": "warn", "target_distance": 0.2},
    "isolated": {"trigger": "warn", "target_distance": 0.15, "max_add_per_position": 3000},
    "reserve": {"from": "spot", "max_per_action": 2000, "max_per_day": 4000},
    "caps": CAPS,
}

# --- a still market and one over-leveraged cross position ---------------------------
# 0.5 BTC long at 60,000 (MM 0.4 % = 120 USDT). A 1,000 USDT wallet: ratio 0.12 and a
# distance of 2.9 % (critical); a 200 USDT wallet: ratio 0.6 (imminent). Nothing moves,
# so anything that happens is the controller's doing.
STILL = """
seed: 1
tick_seconds: 1
symbols:
  BTCUSDT: {{start: 60000}}
segments:
  - {{duration: 600s}}
accounts:
  - name: lev
    balances: {{USDT: {wallet}}}
    positions:
      - {{symbol: BTCUSDT, side: long, size: 0.5, leverage: 50}}
"""
CUT = {"mode": "auto", "cross": {"max_fraction_per_action": 1.0}, "caps": {"cooldown": 600}}
"""One cut reaches the default 12 %: 1,000 + L (52,800 - 60,000) = 0.4 % x 52,800 L leaves
L = 0.1349 BTC, so 0.366 of the 0.5 are sold and the pool is OK again."""


def config_for(
    venue: SimulatedVenue, state: Path, actions: dict[str, Any] | None, **daemon: float
) -> Config:
    accounts = [
        {"name": name, "exchange": "binanceusdm", "api_key": c.api_key, "secret": c.secret,
         "rest_url": venue.base_url, "ws_url": venue.ws_url}
        for name, c in venue.credentials.items()
    ]  # fmt: skip
    document: dict[str, Any] = {
        "state_dir": str(state),
        "daemon": {"poll_interval": 2, "poll_jitter": 0, **daemon},
        "accounts": accounts,
    }
    if actions is not None:
        document["actions"] = actions
    return Config.model_validate(document)


def sim_account(venue: SimulatedVenue) -> SimAccount:
    (account,) = venue.exchange.accounts.values()
    return account


def our_orders(venue: SimulatedVenue) -> list[Any]:
    return [o for o in sim_account(venue).orders if o.client_order_id.startswith(CLIENT_ID_PREFIX)]


def posts(venue: SimulatedVenue, path: str) -> int:
    return venue.exchange.requests.count(f"POST {path}")


async def until(predicate: Callable[[], bool], timeout: float, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not met in {timeout} s")
        await asyncio.sleep(0.05)


def settled(journal: Journal, account: str, count: int = 1) -> Callable[[], bool]:
    final = {"filled", "failed", "aborted", "refused", "dry_run"}
    return lambda: sum(r.status in final for r in journal.rows(account)) >= count


async def run_crash(tmp_path: Path, actions: dict[str, Any], speed: float) -> tuple[
    SimulatedVenue, list[Event], list[ActionRow]
]:  # fmt: skip
    events: list[Event] = []
    async with SimulatedVenue(parse_scenario(CRASH), speed=speed) as venue:
        daemon = Daemon(config_for(venue, tmp_path, actions), events.append)
        await daemon.start()
        try:
            await asyncio.wait_for(venue.finished.wait(), 60)
            await asyncio.sleep(1.0)  # the last tick's action, if any, settles
        finally:
            await daemon.stop()
    path = tmp_path / "actions.sqlite3"
    if not path.exists():  # actions off: no controller, no journal
        return venue, events, []
    journal = Journal(path)
    rows = journal.rows("crash")
    journal.close()
    return venue, events, rows


async def test_harsh_crash_liquidates_when_left_alone_and_is_survived_in_auto(tmp_path):
    venue, events, rows = await run_crash(tmp_path / "off", {"mode": "off"}, speed=8)
    liquidated = {o.symbol for o in sim_account(venue).orders if o.type == LIQUIDATION}
    assert liquidated == {"DOGEUSDT", "BTCUSDT", "ETHUSDT"}
    assert not rows and not [e for e in events if e.kind is EventKind.ACTION]

    venue, events, rows = await run_crash(tmp_path / "auto", DEFENSE, speed=2)
    account = sim_account(venue)
    assert not [o for o in account.orders if o.type == LIQUIDATION], "liquidated anyway"
    assert account.cross_wallet["USDT"] > 0

    # the journal explains every request the venue received, and nothing else was sent
    statuses: set[Status] = {r.status for r in rows}
    assert statuses <= {"filled", "aborted", "refused"}, statuses
    filled = [r for r in rows if r.status == "filled"]
    orders = {o.client_order_id: o for o in our_orders(venue)}
    reduce_rows = [r for r in filled if r.kind == "reduce"]
    assert {r.client_order_id for r in reduce_rows} == set(orders)
    assert len(orders) == posts(venue, "/fapi/v1/order")
    for row in reduce_rows:
        order = orders[row.client_order_id]
        assert order.reduce_only and order.executed_qty == pytest.approx(row.quantity)
        assert row.request["params"]["reduceOnly"] is True
        assert row.ratio_after is not None or row.target.endswith("isolated")  # closed
    margin_rows = [r for r in filled if r.kind == "add_margin"]
    assert margin_rows, "the isolated bet was never given margin"
    assert len(margin_rows) == posts(venue, "/fapi/v1/positionMargin")
    transfers = [r for r in filled if r.kind == "transfer"]
    assert transfers and len(transfers) == posts(venue, "/sapi/v1/asset/transfer")
    assert sum(r.quantity for r in transfers) <= 4000 + 1e-6  # reserve.max_per_day
    assert all(r.distance_expected is not None for r in filled if r.kind != "transfer"
               and not (r.kind == "reduce" and r.target.endswith("isolated")))  # fmt: skip
    # the pool could spare nothing (it is itself short of its target): the bet's margin
    # came from the reserve, each add right after its transfer
    doge = [r for r in filled if r.target == "DOGE/USDT:USDT long isolated"]
    assert [r.kind for r in doge[:2]] == ["transfer", "add_margin"]

    # within the caps
    assert all(r.notional <= CAPS["max_notional_per_action"] + 1e-6 for r in filled)
    assert sum(r.notional for r in filled) <= CAPS["max_notional_per_hour"] + 1e-6
    assert len(filled) <= CAPS["max_actions_per_hour"]
    assert sum(r.quantity for r in margin_rows) <= 3000 + 1e-6

    reports = [e for e in events if e.kind is EventKind.ACTION and e.message.startswith("filled")]
    assert {e.target for e in reports} == {"pool USDT", "DOGE/USDT:USDT long isolated"}
    assert all(e.margin_ratio is not None or "closed" in e.message for e in reports)


# --- one account, driven directly ----------------------------------------------------


class Harness(NamedTuple):
    """One account's monitor and controller against a venue, without the daemon."""

    poller: AccountPoller
    controller: ActionController
    events: list[Event]

    def actions(self) -> list[Event]:
        return [e for e in self.events if e.kind is EventKind.ACTION]


@asynccontextmanager
async def harness(
    venue: SimulatedVenue,
    state: Path,
    actions: dict[str, Any],
    journal: Journal | None = None,
    confirmer: Callable[[Sequence[Decision]], Any] | None = None,
    **daemon: float,
) -> AsyncIterator[Harness]:
    config = config_for(venue, state, actions, **daemon)
    account = config.accounts[0]
    events: list[Event] = []
    bus = EventBus()
    bus.subscribe(Event, events.append)
    watched = AccountState(account, account.thresholds, MarkBoard(), LevelTracker(), bus)
    poller = AccountPoller(watched, config.daemon, SharedMarkets(state / "cache"), bus)
    own_journal = journal is None
    journal = journal or Journal(state / "actions.sqlite3")
    controller = ActionController(
        poller, journal, KillSwitch(state), bus=bus, confirmer=confirmer, recv_window_ms=1000,
        execution=execution_for(account.exchange),
    )  # fmt: skip
    controller.start()
    try:
        yield Harness(poller, controller, events)
    finally:
        await controller.stop()
        await poller.close()
        if own_journal:
            journal.close()


async def test_a_timed_out_order_that_filled_is_found_not_sent_again(tmp_path):
    async with SimulatedVenue(parse_scenario(STILL.format(wallet=1000)), speed=1) as venue:
        venue.exchange.faults["/fapi/v1/order"] = Fault.answer_late(2.5, times=1)
        async with harness(venue, tmp_path, CUT, request_timeout=1.0) as h:
            await h.poller.poll()
            await until(settled(h.controller.journal, "lev"), 15, "a settled decision")
            (row,) = h.controller.journal.rows("lev")
    assert row.status == "filled", row.detail
    assert len(our_orders(venue)) == 1 and posts(venue, "/fapi/v1/order") == 1
    assert our_orders(venue)[0].client_order_id == row.client_order_id
    assert "GET /fapi/v1/order" in venue.exchange.requests  # looked up, not resent
    assert sim_account(venue).positions[0].amount == pytest.approx(0.5 - row.quantity)


class Killed(BaseException):
    """Stands in for SIGKILL: nothing after it runs, not even `except Exception`."""


class CrashingJournal(Journal):
    """Dies right after `sent` is committed (before the request leaves), or right
    before a fill is written (the order exists, the journal does not know)."""

    def __init__(self, path: Path, crash_at: Status) -> None:
        super().__init__(path)
        self.crash_at = crash_at

    def advance(self, decision_id: str, status: Status, *args: Any, **kwargs: Any) -> None:
        if status == self.crash_at == "filled":
            raise Killed
        super().advance(decision_id, status, *args, **kwargs)
        if status == self.crash_at:
            raise Killed


@pytest.mark.parametrize(("crash_at", "first_row"), [("sent", "failed"), ("filled", "filled")])
async def test_a_crash_between_journal_and_exchange_is_reconciled_without_duplicate(
    tmp_path, crash_at, first_row
):
    async with SimulatedVenue(parse_scenario(STILL.format(wallet=1000)), speed=1) as venue:
        crashing = CrashingJournal(tmp_path / "actions.sqlite3", crash_at)
        async with harness(venue, tmp_path, CUT, journal=crashing) as h:
            await h.poller.poll()
            task = h.controller._task
            assert task is not None
            await until(task.done, 10, "the crash")
            assert isinstance(task.exception(), Killed)
        crashing.close()
        assert len(our_orders(venue)) == (1 if crash_at == "filled" else 0)

        # the restarted daemon; a failed attempt starts a cooldown too (a rejected order
        # is not retried on every tick), so a short one here lets it act again
        restarted = {**CUT, "caps": {"cooldown": 1}}
        async with harness(venue, tmp_path, restarted) as h:
            journal = h.controller.journal
            await until(lambda: not journal.pending("lev"), 15, "reconciliation")
            await h.poller.poll()  # it may act again, on fresh data only
            await until(lambda: len(our_orders(venue)) == 1, 15, "one order")
            await asyncio.sleep(1.0)  # and nothing more follows
            rows = journal.rows("lev")
    assert len(our_orders(venue)) == 1
    assert rows[0].status == first_row, rows[0].detail
    assert [r.status for r in rows[1:]] == ([] if crash_at == "filled" else ["filled"])
    assert {r.client_order_id for r in rows if r.status == "filled"} == {
        o.client_order_id for o in our_orders(venue)
    }


async def test_a_position_changed_before_acting_aborts_and_sends_nothing(tmp_path):
    async with SimulatedVenue(parse_scenario(STILL.format(wallet=1000)), speed=1) as venue:

        async def manual_trade_meanwhile(decisions: Sequence[Decision]) -> bool:
            sim_account(venue).positions[0].amount = 0.4  # the user closed 0.1 by hand
            return True

        actions = {**CUT, "mode": "confirm"}
        async with harness(venue, tmp_path, actions, confirmer=manual_trade_meanwhile) as h:
            await h.poller.poll()
            await until(settled(h.controller.journal, "lev"), 10, "a settled decision")
            (row,) = h.controller.journal.rows("lev")
    assert row.status == "aborted"
    assert "size changed from 0.5 to 0.4" in row.detail
    assert posts(venue, "/fapi/v1/order") == 0
    assert sim_account(venue).positions[0].amount == 0.4


async def test_a_position_gone_between_plan_and_act_aborts_the_step_cleanly(tmp_path):
    """Closed (or liquidated) while the decision waited, and a newer read already in the
    account's state: the step ends as `aborted` in the journal, nothing is sent, and the
    controller lives on (it once died here on an assertion)."""
    async with SimulatedVenue(parse_scenario(STILL.format(wallet=1000)), speed=1) as venue:
        polled: list[AccountPoller] = []

        async def closed_meanwhile(decisions: Sequence[Decision]) -> bool:
            sim_account(venue).positions[0].amount = 0.0  # closed by hand
            await polled[0].poll()  # and read again before the step acts
            return True

        actions = {**CUT, "mode": "confirm"}
        async with harness(venue, tmp_path, actions, confirmer=closed_meanwhile) as h:
            polled.append(h.poller)
            await h.poller.poll()
            await until(settled(h.controller.journal, "lev"), 10, "a settled decision")
            (row,) = h.controller.journal.rows("lev")
            task = h.controller._task
            assert task is not None and not task.done()
    assert row.status == "aborted"
    assert "the position is gone" in row.detail
    assert posts(venue, "/fapi/v1/order") == 0


@pytest.mark.parametrize("switch", ["config", "file", "runtime"])
async def test_the_kill_switch_stops_everything(tmp_path, switch):
    actions = {**CUT, "paused": switch == "config"}
    if switch == "file":
        (tmp_path / "PAUSE").touch()
    venue = SimulatedVenue(parse_scenario(STILL.format(wallet=1000)), speed=1)
    async with venue, harness(venue, tmp_path, actions) as h:
        kill_switch = h.controller.guards.kill_switch
        if switch == "runtime":
            kill_switch.pause("/pause by a test")
        await h.poller.poll()
        await until(settled(h.controller.journal, "lev"), 10, "a refusal")
        await h.poller.poll()  # still refused, and said only once
        await asyncio.sleep(0.5)
        (row,) = h.controller.journal.rows("lev")
        assert row.status == "refused"
        assert posts(venue, "/fapi/v1/order") == 0
        refusals = [e for e in h.actions() if e.message.startswith("refused")]
        assert len(refusals) == 1 and refusals[0].level == "warn"
        if switch == "runtime":  # lifting it lets the defense through
            kill_switch.resume()
            await h.poller.poll()
            await until(lambda: len(our_orders(venue)) == 1, 10, "the order")
    expected = {"config": "actions.paused", "file": "PAUSE", "runtime": "/pause by a test"}
    assert expected[switch] in row.detail


async def test_dry_run_is_the_default_and_only_says_what_it_would_do(tmp_path):
    events: list[Event] = []
    async with SimulatedVenue(parse_scenario(STILL.format(wallet=200)), speed=1) as venue:
        daemon = Daemon(config_for(venue, tmp_path, None), events.append)
        assert daemon.controllers["lev"].config.mode == "dry_run"
        await daemon.start()
        try:
            await until(lambda: any(e.kind is EventKind.ACTION for e in events), 15, "an event")
            await asyncio.sleep(1.0)
        finally:
            await daemon.stop()
    (event,) = [e for e in events if e.kind is EventKind.ACTION]  # cooldown: said once
    assert event.message.startswith("dry run, would reduce BTC long by")
    assert event.target == "pool USDT"
    assert posts(venue, "/fapi/v1/order") == 0 and posts(venue, "/fapi/v1/positionMargin") == 0
    journal = Journal(tmp_path / "actions.sqlite3")
    assert [r.status for r in journal.rows("lev")] == ["dry_run"]
    journal.close()


@pytest.mark.parametrize(
    ("flag", "value", "says"),
    [("can_withdraw", True, "can WITHDRAW funds"), ("can_trade", False, "cannot trade")],
)
async def test_a_key_that_can_withdraw_or_not_trade_is_refused_at_startup(
    tmp_path, flag, value, says
):
    events: list[Event] = []
    async with SimulatedVenue(parse_scenario(STILL.format(wallet=1000)), speed=1) as venue:
        setattr(sim_account(venue), flag, value)
        daemon = Daemon(config_for(venue, tmp_path, CUT), events.append)
        await daemon.start()
        try:
            await until(lambda: any(e.kind is EventKind.ACTION for e in events), 10, "refusal")
            await until(lambda: len([e for e in events if e.kind is EventKind.ACTION]) > 1, 10)
        finally:
            await daemon.stop()
    refusal, *later = [e for e in events if e.kind is EventKind.ACTION]
    assert refusal.level == "critical" and refusal.target == "account"
    assert "account 'lev'" in refusal.message and says in refusal.message
    assert "dry_run" in refusal.message
    assert later[0].message.startswith("dry run, would")  # it still says what it would do
    assert posts(venue, "/fapi/v1/order") == 0


async def test_drill_plays_the_policy_and_no_policy_side_by_side(tmp_path):
    from rich.console import Console

    from monitor.drill import Request, drill

    scenario = parse_scenario(STILL.format(wallet=1000).replace("600s", "6s"))
    config = Config.model_validate(
        {
            "state_dir": str(tmp_path / "never-used"),
            "daemon": {"poll_interval": 1, "poll_jitter": 0},
            "actions": CUT,
            "accounts": [{"name": "real", "exchange": "binanceusdm", "api_key": "k",
                          "secret": "s"}],
        }
    )  # fmt: skip
    console = Console(record=True, width=240)
    assert await drill(config, Request([("still", scenario)], 4.0), console=console) == 0
    out = console.export_text()
    assert "│ auto │" in out and "│ off  │" in out
    assert "[action ok] filled: reduce BTC long" in out
    assert "our orders: 1" in out and "our orders: 0" in out
    assert "lev    auto avoided 0 of 0 liquidation(s)" in out
    assert not (tmp_path / "never-used").exists()  # the user's state is never touched
