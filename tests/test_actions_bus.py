"""The auto-deleverage controller is driven by the daemon's bus, not by a callback slot:
news about its own account (an evaluation, a level change) wakes it; nothing else does,
and once stopped it hears nothing.

The account is the units' book (tests/test_actions_units.py): its isolated DOGE bet has
200 USDT of equity (1,200 of margin, 1,000 lost) against 125 of maintenance margin on
10,000 of notional, so the mark is about (200 - 125) / 10,000 = 0.75 % from liquidation:
inside the default imminent distance of 1 %, past the default isolated trigger (warn). A
dry run has something to say about it whenever it is asked to look.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace
from pathlib import Path
from typing import NamedTuple

import pytest

from monitor.actions.controller import ActionController
from monitor.actions.guards import KillSwitch
from monitor.actions.journal import Journal
from monitor.bus import Evaluated, EventBus, Message, SymbolsChanged
from monitor.config import Config
from monitor.daemon.account import AccountState
from monitor.daemon.marks import MarkBoard
from monitor.daemon.poller import AccountPoller
from monitor.events import Event, EventKind, TargetKind
from monitor.events.tracker import LevelTracker
from monitor.exchange.markets import SharedMarkets
from tests.test_actions_units import DOGE, book


class Wired(NamedTuple):
    bus: EventBus
    controller: ActionController
    events: list[Event]

    def actions(self) -> list[Event]:
        return [e for e in self.events if e.kind is EventKind.ACTION]


@asynccontextmanager
async def wired(tmp_path: Path) -> AsyncIterator[Wired]:
    """Account "u" in dry run, its snapshot installed before the controller listens (the
    install's own `Evaluated` goes unheard), the controller started and idle."""
    config = Config.model_validate(
        {"state_dir": str(tmp_path), "accounts": [
            {"name": "u", "exchange": "binanceusdm", "rest_url": "http://127.0.0.1:9",
             "actions": {"mode": "dry_run"}}]}
    )  # fmt: skip
    account = config.accounts[0]
    bus, events = EventBus(), []
    bus.subscribe(Event, events.append)
    state = AccountState(account, account.thresholds, MarkBoard(), LevelTracker(), bus)
    poller = AccountPoller(state, config.daemon, SharedMarkets(tmp_path / "cache"), bus)
    state.install(replace(book(8000).snapshot, fetched_at=time.time()))
    assert state.tracker.last("u", DOGE) == "imminent"  # the premise, as derived above
    journal = Journal(tmp_path / "actions.sqlite3")
    controller = ActionController(poller, journal, KillSwitch(tmp_path), bus=bus)
    controller.start()
    try:
        await idle()
        yield Wired(bus, controller, events)
    finally:
        await controller.stop()
        await poller.close()
        journal.close()


async def idle() -> None:
    """Let the worker run whatever it was woken for (it reads nothing: fresh data)."""
    for _ in range(50):
        await asyncio.sleep(0)


NEWS: dict[str, Message] = {
    "evaluated": Evaluated("u"),
    "level change": Event(EventKind.LEVEL, "u", DOGE, TargetKind.POSITION, "warn", "ok"),
}


@pytest.mark.parametrize("news", NEWS.values(), ids=NEWS.keys())
async def test_news_of_its_account_wakes_the_controller(tmp_path: Path, news: Message) -> None:
    async with wired(tmp_path) as w:
        assert w.actions() == []  # started, but told nothing: no step
        w.bus.publish(news)
        await idle()
        actions = w.actions()
        assert DOGE in {a.target for a in actions}  # (its pool may be at its trigger too)
        assert all(a.message.startswith("dry run, would ") for a in actions)


async def test_other_news_leaves_the_controller_asleep(tmp_path: Path) -> None:
    async with wired(tmp_path) as w:
        for news in (
            Evaluated("someone else"),
            Event(EventKind.LEVEL, "someone else", DOGE, TargetKind.POSITION, "warn"),
            Event(EventKind.ACTION, "u", DOGE, TargetKind.POSITION, "warn", message="ours"),
            SymbolsChanged("u"),
        ):
            w.bus.publish(news)
        await idle()
        assert [e.message for e in w.actions()] == ["ours"]


async def test_a_stopped_controller_hears_nothing(tmp_path: Path) -> None:
    async with wired(tmp_path) as w:
        await w.controller.stop()
        w.bus.publish(Evaluated("u"))
        await idle()
        assert w.actions() == []
