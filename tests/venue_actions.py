"""Decisions, journal rows and harnesses for the venue executors' and defenses' tests.

An executor test states one exchange request exactly (its kind, symbol, size), so the
decision is written here rather than planned by the policy; what a venue answers is
then checked against the venue's own records. The harnesses (the controller's order
for one decision, a daemon defending one account) are written once here so that each
venue's test keeps only its own book and expectations.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, NamedTuple

from monitor.actions.controller import ActionController
from monitor.actions.decision import Decision, TargetKind, decision_id
from monitor.actions.executor import Executor
from monitor.actions.guards import KillSwitch
from monitor.actions.journal import ActionRow, Journal, Outcome
from monitor.bus import EventBus
from monitor.config import Config
from monitor.daemon.account import AccountState
from monitor.daemon.marks import MarkBoard
from monitor.daemon.poller import AccountPoller
from monitor.daemon.service import Daemon
from monitor.domain import Position
from monitor.events import Event
from monitor.events.tracker import LevelTracker
from monitor.exchange.markets import SharedMarkets
from monitor.venues.registry import execution_for


def decision(
    kind: str,
    *,
    symbol: str = "",
    side: str = "long",
    margin_mode: str = "cross",
    quantity: float,
    mark: float = 0.0,
    asset: str = "USDT",
    source: str = "",
    position_side: str = "BOTH",
    account: str = "acct",
) -> Decision:
    target = f"{symbol} {side} {margin_mode}" if symbol else f"pool {asset}"
    return Decision(
        id=decision_id(account, target, kind, symbol, quantity, 1.0),  # type: ignore[arg-type]
        account=account,
        target=target,
        target_kind=TargetKind.POSITION if symbol else TargetKind.POOL,
        kind=kind,  # type: ignore[arg-type]
        symbol=symbol,
        side=side,
        position_side=position_side,
        margin_mode=margin_mode,
        asset=asset,
        position_contracts=quantity,
        contract_size=1.0,
        inverse=False,
        quantity=quantity,
        notional=quantity * (mark or 1.0),
        mark=mark,
        ratio_before=None,
        ratio_after=None,
        distance_before=None,
        distance_after=None,
        reaches_target=True,
        snapshot_at=1.0,
        source=source,
    )


def sent(journal: Journal, executor: Executor, made: Decision) -> tuple[dict[str, Any], ActionRow]:
    """Journal `made` as the controller does (planned, then sent) and return its request
    and row, ready for `executor.send` and a lookup."""
    request = executor.request(made, None)
    journal.record(made, "auto", "planned", request)
    journal.advance(made.id, "sent")
    row = journal.get(made.id)
    assert row is not None
    return request, row


async def lost_reply(
    journal: Journal, executor: Executor, made: Decision, request: dict[str, Any]
) -> ActionRow:
    """Send `made`'s journalled request once, expecting no answer (a fault the test set
    up), and journal the unknown outcome: the row a lookup or `resolve` starts from."""
    outcome = await executor.send(request)
    assert outcome.status == "unknown", outcome.detail
    journal.settle(made.id, outcome)
    row = journal.get(made.id)
    assert row is not None
    return row


async def act_on_venue(
    journal: Journal, executor: Executor, chosen: Decision, *, position: Position | None
) -> Outcome:
    """The controller's sequence for one decision (controller._act / _send): journal
    `planned`, then `sent`, send once, settle, and resolve an unknown outcome by lookup."""
    request = executor.request(chosen, position)
    assert journal.record(chosen, "auto", "planned", request)
    journal.advance(chosen.id, "sent")
    outcome = await executor.send(request)
    journal.settle(chosen.id, outcome)
    if outcome.status == "unknown":
        row = journal.get(chosen.id)
        assert row is not None
        outcome = await executor.resolve(row)
        journal.settle(chosen.id, outcome)
    return outcome


class Clock:
    """Wall time, which a test moves forward past a request's expiry."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


def filled(rows: list[ActionRow], kind: str) -> list[ActionRow]:
    """The rows of one kind that the venue carried out: what a test matches one to one
    against the venue's own records."""
    return [r for r in rows if r.kind == kind and r.status == "filled"]


@asynccontextmanager
async def defending(
    state_dir: Path,
    account: dict[str, Any],
    actions: dict[str, Any],
    *,
    emit: Callable[[Event], None],
    **daemon: float,
) -> AsyncIterator[Journal]:
    """The daemon, unmodified, defending one account (polled every second); its journal."""
    config = Config.model_validate({
        "state_dir": str(state_dir),
        "daemon": {"poll_interval": 1, "poll_jitter": 0, **daemon},
        "accounts": [account],
        "actions": actions,
    })  # fmt: skip
    service = Daemon(config, emit)
    await service.start()
    try:
        assert service.journal is not None
        yield service.journal
    finally:
        await service.stop()


class Controlled(NamedTuple):
    """One account's poller and controller against a venue server, without the daemon."""

    poller: AccountPoller
    controller: ActionController
    journal: Journal
    events: list[Event]

    def rows(self) -> list[ActionRow]:
        return self.journal.rows(self.poller.name)


@asynccontextmanager
async def controlled(
    account: dict[str, Any], state_dir: Path, actions: dict[str, Any], **daemon: Any
) -> AsyncIterator[Controlled]:
    """The account's poller and its controller, the venue's executor picked from the
    registry as the daemon picks it; polled by the test (no mark feed runs)."""
    config = Config.model_validate(
        {
            "state_dir": str(state_dir),
            "daemon": {"poll_interval": 2, "poll_jitter": 0, **daemon},
            "actions": actions,
            "accounts": [account],
        }
    )
    (settings,) = config.accounts
    events: list[Event] = []
    bus = EventBus()
    bus.subscribe(Event, events.append)
    state = AccountState(settings, settings.thresholds, MarkBoard(), LevelTracker(), bus)
    poller = AccountPoller(state, config.daemon, SharedMarkets(state_dir / "cache"), bus)
    poller.client.enableRateLimit = False  # a local server: no venue budget to respect
    journal = Journal(state_dir / "actions.sqlite3")
    controller = ActionController(
        poller, journal, KillSwitch(state_dir), bus=bus,
        execution=execution_for(settings.exchange),
    )  # fmt: skip
    controller.start()
    try:
        yield Controlled(poller, controller, journal, events)
    finally:
        await controller.stop()
        await poller.close()
        journal.close()


async def settle(
    harness: Controlled, done: Callable[[list[ActionRow]], bool], timeout: float = 20.0
) -> list[ActionRow]:
    """Poll the account until `done(rows)` holds; the rows then."""
    deadline = time.monotonic() + timeout
    while not done(harness.rows()):
        if time.monotonic() > deadline:
            details = [(r.kind, r.status, r.detail) for r in harness.rows()]
            raise AssertionError(f"not settled in {timeout} s: {details}")
        await harness.poller.poll()
        await asyncio.sleep(0.1)
    return harness.rows()
