"""Our own orders are never a liquidation (monitor/daemon/ownfills.py).

The rules first, on hand-made journal rows and stream fills; then over loopback against
the simulator, with the real daemon, its journal, Binance's user stream and the alert
pipeline the user would be paged through: our reduce-only close of a critical isolated
position is said as "closed by marginwatch", and a liquidation while we act is still
paged as one.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from alerts.drill import PageCounter, page_counter
from monitor.actions.decision import Decision
from monitor.actions.journal import Outcome
from monitor.daemon.host import DaemonView
from monitor.daemon.ownfills import OwnFills
from monitor.daemon.service import Daemon
from monitor.domain import MarginMode, Position, Side
from monitor.events import Event, EventKind, TargetKind
from monitor.simulator.binance_usdm.events import LIQUIDATION
from monitor.simulator.runner import SimulatedVenue
from monitor.simulator.scenario import parse_scenario
from tests.test_actions_sim import config_for, sim_account, until

DOGE = Position("DOGE/USDT:USDT", Side.LONG, MarginMode.ISOLATED, 100_000, 1, 0.2, 0.2, "USDT")
READ = 1_000.0
"""When the read that last showed DOGE open began."""


@dataclass
class Row:
    """The journal columns the rule reads (monitor/actions/journal.py's ActionRow)."""

    client_order_id: str | None
    quantity: float
    status: str = "filled"
    updated_at: float = READ + 1
    symbol: str = "DOGE/USDT:USDT"
    request: dict[str, Any] = field(default_factory=lambda: {"position_side": "BOTH"})
    result: dict[str, Any] | None = None


def fills(*rows: Row) -> OwnFills:
    own = OwnFills(now=lambda: READ + 2)
    own.rows = lambda: rows
    return own


# --- the rule ----------------------------------------------------------------------------


def test_our_fills_since_the_last_read_that_cover_the_position_are_a_closure():
    closure = fills(Row("mw-a", 60_000), Row("mw-b", 40_000)).closure(DOGE, READ)
    assert closure is not None and closure.client_ids == ("mw-a", "mw-b")
    assert "closed by marginwatch at critical" in closure.describe(DOGE, "critical")


def test_a_partial_close_does_not_explain_a_vanished_position():
    assert fills(Row("mw-a", 50_000)).closure(DOGE, READ) is None
    # the exchange's reply said only half filled, whatever was asked
    assert fills(Row("mw-a", 100_000, result={"filled": 50_000})).closure(DOGE, READ) is None


def test_an_order_settled_before_the_last_read_is_already_in_it():
    """A cut of the whole remaining size that filled before the read that still showed
    the position open cannot be what closed it: that read saw its effect."""
    earlier = Row("mw-a", 100_000, updated_at=READ - 1)
    assert fills(earlier).closure(DOGE, READ) is None


def test_only_our_orders_that_may_have_traded_on_that_leg_count():
    assert fills(Row("autoclose-1", 100_000)).closure(DOGE, READ) is None
    assert fills(Row(None, 100_000)).closure(DOGE, READ) is None
    for status in ("failed", "aborted", "refused", "dry_run", "planned"):
        assert fills(Row("mw-a", 100_000, status=status)).closure(DOGE, READ) is None
    assert fills(Row("mw-a", 100_000, symbol="BTC/USDT:USDT")).closure(DOGE, READ) is None
    hedge = Row("mw-a", 100_000, request={"position_side": "SHORT"})
    assert fills(hedge).closure(DOGE, READ) is None


def test_an_order_not_confirmed_filled_is_no_closure():
    """A close still `sent` (or `unknown`) in the journal, with no fill heard, proves
    nothing: in the Bybit crash-revert drill such a close was refused with 110017 because
    the exchange had already liquidated the position, and it was once reported as
    "closed by marginwatch". The position must be paged as a probable liquidation."""
    for status in ("sent", "unknown"):
        assert fills(Row("mw-a", 100_000, status=status)).closure(DOGE, READ) is None
    # the same order confirmed by the stream is ours
    heard = fills(Row("mw-a", 100_000, status="sent"))
    heard.heard("mw-a", "DOGE/USDT:USDT", "BOTH", 100_000)
    assert heard.closure(DOGE, READ) is not None
    # and confirmed by the journal
    assert fills(Row("mw-a", 100_000, status="filled")).closure(DOGE, READ) is not None


def test_the_stream_alone_is_a_witness_and_its_quantity_wins():
    own = fills()
    own.heard("mw-a", "DOGE/USDT:USDT", "BOTH", 100_000)
    assert own.closure(DOGE, READ) is not None
    assert own.closure(DOGE, READ + 5) is None  # heard before that read: already in it
    journaled = fills(Row("mw-a", 100_000, status="sent"))
    journaled.heard("mw-a", "DOGE/USDT:USDT", "BOTH", 30_000)  # the stream: 30,000 so far
    assert journaled.closure(DOGE, READ) is None


# --- over loopback -----------------------------------------------------------------------

# DOGE, isolated at 20x: 100,000 from 0.2 (20,000 notional) on 700 of margin. By hand:
# with a 0.5 % maintenance rate, the liquidation price is (20,000 - 700) / (100,000 x
# 0.995) = 0.19397, 3.0 % below the mark: critical (isolated critical at 5 %, imminent
# at 1 %). STILL holds the price; FALL drops it 20 % from 6 s on, through that price.
DOGE_BET = """
seed: 5
tick_seconds: 0.5
symbols:
  DOGEUSDT:
    start: 0.2
    segments:
      - {{duration: 6s}}
      - {{duration: 4s, drift: {drift}}}
      - {{duration: 30s}}
accounts:
  - name: bet
    balances: {{USDT: 1000}}
    positions:
      - {{symbol: DOGEUSDT, side: long, size: 100000, margin_mode: isolated, leverage: 20,
         isolated_margin: 700}}
"""


@dataclass
class Watched:
    venue: SimulatedVenue
    daemon: Daemon
    events: list[Event]
    pages: PageCounter

    def kinds(self, kind: EventKind) -> list[Event]:
        return [e for e in self.events if e.kind is kind]

    async def texts(self) -> list[str]:
        await self.pages.stop(time.time() + 60)  # past every group_wait
        return [n.text for n in self.pages.sent]  # type: ignore[attr-defined]


@asynccontextmanager
async def watched(tmp_path: Path, drift: float) -> AsyncIterator[Watched]:
    """The daemon in dry_run (a journal, a controller that sends nothing) over the bet,
    with the alert pipeline counting pages."""
    events: list[Event] = []
    scenario = parse_scenario(DOGE_BET.format(drift=drift))
    async with SimulatedVenue(scenario, speed=1) as venue:
        config = config_for(venue, tmp_path, {"mode": "dry_run"})
        daemon = Daemon(config, events.append)
        pages = page_counter(DaemonView(lambda: daemon, lambda: config), time.time)
        daemon.bus.subscribe(Event, pages.emit)
        pages.start()
        await daemon.start()
        try:
            yield Watched(venue, daemon, events, pages)
        finally:
            await daemon.stop()


async def close_ourselves(daemon: Daemon, quantity: float, tag: str) -> Outcome:
    """What the controller does for one reduce-only order: journal, send, settle."""
    (controller,) = daemon.controllers.values()
    monitor = controller.state
    (position,) = monitor.snapshot.positions
    decision = Decision(
        id=f"test-{tag}", account="bet", target="DOGE/USDT:USDT long isolated",
        target_kind=TargetKind.POSITION, kind="reduce", symbol=position.symbol, side="long",
        position_side="BOTH", margin_mode="isolated", asset="USDT",
        position_contracts=position.contracts, contract_size=1.0, inverse=False,
        quantity=quantity, notional=quantity * 0.2,
        mark=position.mark_price, ratio_before=0.5, ratio_after=None, distance_before=0.03,
        distance_after=None, reaches_target=True, snapshot_at=monitor.snapshot.fetched_at,
        closes=quantity == position.contracts,
    )  # fmt: skip
    executor = controller.executor
    assert executor is not None
    request = executor.request(decision, position)
    assert request["params"]["reduceOnly"] is True
    assert daemon.journal.record(decision, "auto", "planned", request)
    daemon.journal.advance(decision.id, "sent")
    outcome = await executor.send(request)
    daemon.journal.settle(decision.id, outcome)
    return outcome


async def test_our_close_of_a_critical_position_is_no_liquidation(tmp_path):
    async with watched(tmp_path, drift=0.0) as run:
        await until(lambda: run.kinds(EventKind.LEVEL), 10, "DOGE's level")
        assert run.kinds(EventKind.LEVEL)[0].level == "critical"
        assert (await close_ourselves(run.daemon, 100_000, "full")).status == "filled"
        await until(lambda: run.kinds(EventKind.CLOSED_BY_US), 10, "the close reported")
        await asyncio.sleep(2.5)  # the scheduled polls and the stream's refresh too
        texts = await run.texts()
    (closed,) = run.kinds(EventKind.CLOSED_BY_US)
    assert closed.target == "DOGE/USDT:USDT long isolated"
    assert "closed by marginwatch at critical" in closed.message
    assert not run.kinds(EventKind.PROBABLE_LIQUIDATION)
    assert not [o for o in sim_account(run.venue).orders if o.type == LIQUIDATION]
    assert any("CLOSED BY MARGINWATCH · DOGE/USDT:USDT long" in t for t in texts), texts
    assert not any("LIQUIDATION" in t for t in texts), texts


async def test_a_liquidation_while_we_act_is_still_paged(tmp_path):
    async with watched(tmp_path, drift=-0.2) as run:
        await until(lambda: run.kinds(EventKind.LEVEL), 10, "DOGE's level")
        assert (await close_ourselves(run.daemon, 50_000, "half")).status == "filled"
        liquidated = lambda: [o for o in sim_account(run.venue).orders if o.type == LIQUIDATION]  # noqa: E731
        await until(liquidated, 15, "the exchange's liquidation")
        await until(lambda: run.kinds(EventKind.PROBABLE_LIQUIDATION), 10, "the report")
        await asyncio.sleep(2.5)
        texts = await run.texts()
    (report,) = run.kinds(EventKind.PROBABLE_LIQUIDATION)
    assert report.target == "DOGE/USDT:USDT long isolated"
    assert not run.kinds(EventKind.CLOSED_BY_US)
    assert any("PROBABLE LIQUIDATION · DOGE/USDT:USDT long isolated" in t for t in texts)
