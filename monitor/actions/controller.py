"""Auto-deleverage for one account: when to decide, and carrying a decision out.

The controller listens on the daemon's bus (monitor/bus.py) for its account: `Evaluated`
(a snapshot installed, or a tick that left a target above OK) and level events. Both
arrive on the tick path, so it only checks levels and cooldowns in memory and wakes this
account's worker. The worker is
one task, so steps never overlap and a burst of ticks coalesces into one step. A step:

    settle pending journal rows -> decide -> kill switch -> fresh data -> per target:
    dry_run: journal + "would ..." event
    confirm: ask the confirmer (none plugged in: dry run, with a warning)
    auto:    caps -> re-read the positions -> per decision: journal planned -> kill
             switch -> sent -> send -> settle; then re-read the account and report
             (and journal) the distance it reached next to the one predicted

A step only acts on a snapshot taken after this controller's last action, so it never
answers its own order's effect with a second order; a filled action is followed by
that fresh read at once, and the next action needs nothing else. When the exchange
refuses a rung (an add refused with -4050, a failed transfer), the same step plans
again without it and goes to the next rung at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import math
import sqlite3
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from collections.abc import Set as AbstractSet
from typing import Any, NamedTuple

from monitor.actions.decision import Rung, describe_plan, percent
from monitor.actions.executor import RECV_WINDOW_MS, VenueExecution, find_position
from monitor.actions.guards import Guards, KillSwitch
from monitor.actions.journal import ActionRow, Journal, Outcome
from monitor.actions.permissions import refusal
from monitor.actions.policy import Decision, Plan, at_or_above, decide, target_of
from monitor.actions.watched import AccountReader
from monitor.bus import Evaluated, EventBus, Subscription
from monitor.domain import MarginMode, Position
from monitor.engine.levels import Level
from monitor.events import Event, EventKind, TargetKind, pool_target
from monitor.exchange.clients import secret_values

log = logging.getLogger(__name__)

Confirmer = Callable[[Sequence[Decision]], Awaitable[bool]]
"""Asks a person about one target's decisions; True to go ahead. Cancelled (a no) when
`confirm_timeout` passes."""
PENDING_RETRY = 2.0
"""Seconds between lookups of requests whose outcome is still unknown."""
LIVE = ("confirm", "auto")
FRESH_READ = 1.0
"""In auto mode a snapshot read this recently (and after our last action) is the re-read
of the positions: a second read would only cost request weight and time in a crash."""
FALLTHROUGHS = 2
"""Re-plans in one step after refused rungs (balance, then reserve): then the close."""


class Result(NamedTuple):
    decision: Decision
    outcome: Outcome


class ActionController:
    """Decides and acts for one account; `start()` once, `stop()` at shutdown."""

    def __init__(
        self,
        poller: AccountReader,
        journal: Journal,
        kill_switch: KillSwitch,
        *,
        bus: EventBus,
        confirmer: Confirmer | None = None,
        recv_window_ms: int = RECV_WINDOW_MS,
        now: Callable[[], float] = time.time,
        execution: VenueExecution | None = None,
    ) -> None:
        """`execution`: the venue's executor and key-permission reader, chosen by the
        composer (`monitor.venues.registry`); None runs dry runs only."""
        self.poller = poller
        self.state = poller.state
        """The account's state: its snapshot, book, marks and levels."""
        self.bus = bus
        self.account = poller.name
        self.config = poller.account.actions
        self.journal = journal
        self.guards = Guards(self.account, self.config, journal, kill_switch, now)
        self.execution = execution
        self.executor = (
            execution.executor(
                poller.client, poller.adapter, self.config.cross,
                secret_values(poller.account), recv_window_ms=recv_window_ms,
                reserve_asset=self.config.reserve.asset if self.config.reserve else None,
                now=now,
            )
            if execution is not None
            else None
        )  # fmt: skip
        if self.executor is not None:
            self.executor.claimed = journal.transfers_since
        self.confirmer = confirmer
        self.refused: str | None = None
        """Why confirm/auto may not run (key permissions, exchange): the account then
        runs as a dry run, loudly."""
        self._verified = False
        self._now = now
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._pending = False
        self._acted_at = 0.0
        self._said: dict[tuple[str, str], str] = {}
        """(target, "note" | "refusal") -> the last one reported: each is said once,
        not on every tick."""
        self._hot: list[str] = []
        self._hot_at = -1
        self._subscriptions: list[Subscription] = []

    # --- lifecycle -------------------------------------------------------------

    def start(self) -> None:
        bus, account = self.bus, self.account
        self._subscriptions = [
            bus.subscribe(Evaluated, self.on_evaluated, account=account),
            bus.subscribe(Event, self.on_event, account=account),
        ]
        self._task = asyncio.create_task(self._run(), name=f"actions:{self.account}")

    async def stop(self) -> None:
        """Stop listening and cancel the worker; a request in flight stays `sent` and is
        reconciled at the next start."""
        for subscription in self._subscriptions:
            subscription.cancel()
        if self._task is not None:
            self._task.cancel()
            await asyncio.wait([self._task])

    def recent(self, limit: int = 10) -> list[ActionRow]:
        """This account's latest decisions, newest first (for /actions)."""
        return self.journal.recent(self.account, limit)

    def on_evaluated(self, _news: Evaluated) -> None:
        """The tick path: memory only."""
        self._consider()

    def on_event(self, event: Event) -> None:
        """A level change of this account is looked at like an evaluation (whatever
        path reported it); its other events (our own ACTION reports among them) are
        not news for the decision."""
        if event.kind is EventKind.LEVEL:
            self._consider()

    def _consider(self) -> None:
        """Wake the worker when a target is at its trigger and not cooling down."""
        if any(not self.guards.cooling(target) for target in self._at_trigger()):
            self._wake.set()

    def _at_trigger(self) -> list[str]:
        """Targets at or above their policy's trigger; they change only with the levels,
        so the list is kept until the tracker's generation for this account moves."""
        tracker = self.state.tracker
        generation = tracker.generation(self.account)
        if generation == self._hot_at:
            return self._hot
        name, book, hot = self.account, self.state.book, []
        for asset in book.pool_assets if book is not None else ():
            target = pool_target(asset)  # a member's level defends its pool too
            members = [target_of(leg.position) for leg in book.cross.get(asset, [])]  # type: ignore[union-attr]
            if any(
                at_or_above(tracker.last(name, t), self.config.cross.trigger)
                for t in (target, *members)
            ):
                hot.append(target)
        for target in self.state.isolated_targets:
            if at_or_above(tracker.last(name, target), self.config.isolated.trigger):
                hot.append(target)
        self._hot, self._hot_at = hot, generation
        return hot

    async def _run(self) -> None:
        try:
            await self._startup()
        except Exception:
            log.exception("%s: auto-deleverage startup failed; retrying in steps", self.account)
            self._pending = bool(self.journal.pending(self.account))
        failure: str | None = None
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(PENDING_RETRY if self._pending else None):
                    await self._wake.wait()
            self._wake.clear()
            try:
                await self._step()
                failure = None
            except Exception as exc:
                log.exception("%s: auto-deleverage step failed", self.account)
                if str(exc) != failure:
                    failure = str(exc)
                    self._emit("account", TargetKind.ACCOUNT, Level.CRITICAL,
                               f"auto-deleverage step failed: {exc}")  # fmt: skip

    async def _startup(self) -> None:
        """Key checks for confirm/auto, then settle what a previous run left pending."""
        if self.config.mode in LIVE:
            await self._check_key()
        if self.journal.pending(self.account):
            await self.poller.markets.ensure(self.poller.client, self.poller.markets_key)
            await self._settle_pending()

    async def _check_key(self) -> None:
        exchange = self.poller.account.exchange
        if self.execution is None:
            reason: str | None = unsupported(exchange)
        else:
            try:
                permissions = await self.execution.read_permissions(self.poller.client)
            except Exception as exc:
                log.warning("%s: could not read the API key's permissions (%s); will retry "
                            "before acting", self.account, exc)  # fmt: skip
                return
            reserve = self.config.reserve is not None
            reason = refusal(self.account, exchange, permissions, reserve)
            if reason is None and self.executor is not None and self.config.reserve:
                why = self.executor.reserve_refusal(self.config.reserve)
                reason = f"account {self.account!r}: {why}" if why else None
        self._verified = True
        if reason is not None:
            self.refused = reason
            log.error("actions refused: %s (running as dry_run)", reason)
            self._emit("account", TargetKind.ACCOUNT, Level.CRITICAL,
                       f"confirm/auto refused: {reason}; running as dry_run")  # fmt: skip

    async def _settle_pending(self) -> bool:
        """True when nothing is pending: an unsettled request blocks the whole account,
        because its effect on every figure is unknown."""
        if self.executor is None:  # nothing is ever sent without one
            return True
        still = await self.journal.reconcile(self.account, self.executor)
        self._pending = bool(still)
        for row in still:
            log.warning("%s: outcome of %s still unknown", self.account, row.description)
        return not still

    # --- one step --------------------------------------------------------------

    async def _step(self) -> None:
        if not await self._settle_pending() or self.state.book is None:
            return
        plan = self._plan()
        if not plan.decisions:
            return
        reason = self.guards.paused()
        if reason is not None:
            self._refuse(plan.decisions, reason, Level.WARN)
            return
        if self._stale(plan) or self._snapshot_at() <= self._acted_at:
            await self.poller.poll()
            plan = self._plan()
            if not plan.decisions:
                return
            stale = self._stale(plan)
            if stale is not None:
                self._refuse(plan.decisions, f"data too old to act on: {stale}", Level.CRITICAL)
                return
        mode = await self._mode()
        for _ in range(FALLTHROUGHS + 1):
            notes = {note.target: note.message for note in plan.notes}
            refused: set[str] = set()
            for target, group in itertools.groupby(plan.decisions, key=lambda d: d.target):
                if await self._carry_out(target, list(group), mode, notes.get(target)):
                    refused.add(target)
            if not refused or self.state.book is None:
                return
            plan = self._plan(also=refused)  # the next rung, at once
            plan = Plan([d for d in plan.decisions if d.target in refused], plan.notes)
            if not plan.decisions:
                return

    def _plan(self, also: AbstractSet[str] = frozenset()) -> Plan:
        """Decisions for the targets at their trigger and not cooling down (`also`:
        targets whose rung was just refused, planned again although they now cool)."""
        state = self.state
        assert state.book is not None
        levels = {
            target: level
            for target, guarded in self._targets()
            if (level := state.tracker.last(self.account, target)) is not None
            and (guarded in also or not self.guards.cooling(guarded))
        }
        plan = decide(
            self.account, state.book, state.marks, levels, self.config, self.guards.budget()
        )
        acted_on = {d.target for d in plan.decisions}
        self._forget_said(acted_on | {n.target for n in plan.notes})
        for note in plan.notes:  # a note on a target acted upon goes into that report
            if note.target not in acted_on:
                self._say(note.target, "note", note.target_kind, note.level, note.message)
        return plan

    def _targets(self) -> Iterable[tuple[str, str]]:
        """(target, the target whose cooldown and refusals govern it): a cross member's
        level is its pool's business."""
        book = self.state.book
        assert book is not None
        for asset, legs in book.cross.items():
            pool = pool_target(asset)
            yield pool, pool
            yield from ((target_of(leg.position), pool) for leg in legs)
        for leg in book.isolated:
            target = target_of(leg.position)
            yield target, target

    def _snapshot_at(self) -> float:
        snapshot = self.state.snapshot
        return snapshot.fetched_at if snapshot is not None else 0.0

    def _stale(self, plan: Plan) -> str | None:
        book = self.state.book
        assert book is not None
        symbols: set[str] = set()
        for decision in plan.decisions:
            if decision.target_kind is TargetKind.POOL:
                symbols |= {leg.symbol for leg in book.cross.get(decision.asset, [])}
            if decision.symbol:  # a transfer into the pool has none of its own
                symbols.add(decision.symbol)
        return self.guards.stale(self.state.snapshot, self.state.marks.observed_at, symbols)

    async def _mode(self) -> str:
        """The mode this step runs in: confirm/auto fall back to a dry run when the key
        is refused, unverifiable, or no confirmer is plugged in."""
        mode = self.config.mode
        if mode not in LIVE:
            return mode
        if not self._verified:
            await self._check_key()
        if self.refused is not None:
            return "dry_run"
        if not self._verified:
            self._say("account", "refusal", TargetKind.ACCOUNT, Level.CRITICAL,
                      "the API key's permissions could not be verified: not acting")  # fmt: skip
            return "dry_run"
        if mode == "confirm" and self.confirmer is None:
            self._say("account", "refusal", TargetKind.ACCOUNT, Level.WARN,
                      "confirm mode without a confirmer: running as dry_run")  # fmt: skip
            return "dry_run"
        return mode

    # --- carrying out ----------------------------------------------------------

    async def _carry_out(
        self, target: str, decisions: list[Decision], mode: str, note: str | None
    ) -> bool:
        """One target's decisions, in order; one that does not fill stops the rest,
        since each later one was sized on the book after it. True when the exchange
        refused a rung (see `Guards.refuse`) and the target should be planned again."""
        first = decisions[0]
        self._said.pop((target, "refusal"), None)
        if mode == "dry_run":
            try:
                for decision in decisions:
                    self.journal.record(decision, mode, "dry_run", self._preview(decision))
            except (sqlite3.Error, OSError) as exc:
                # Nothing is sent in a dry run: an unwritable journal must not silence it.
                log.error("%s: could not journal the dry run for %s: %s", self.account, target, exc)
                note = f"{note}; " if note else ""
                note += f"not journaled: {exc}"
            self.guards.acted(target)
            text = describe_plan(decisions) + (f" ({note})" if note else "")
            self._emit(target, first.target_kind, Level.WARN, f"dry run, would {text}", first)
            return False
        over = self.guards.over_caps(decisions)
        if over is not None:
            self._refuse(decisions, over, Level.CRITICAL)
            return False
        if mode == "confirm" and not await self._confirmed(target, decisions):
            return False
        results = await self._act(decisions, mode)
        if not results:
            return False
        refused = False
        for result in results:
            if result.outcome.status == "failed" and result.decision.kind != "reduce":
                for rung in self._rungs(result.decision, results):
                    self.guards.refuse(target, rung)
                refused = True
        if not refused and any(r.outcome.status != "filled" for r in results):
            # a refused rung is skipped for a cooldown instead: the target itself is not
            # cooled, or the close (the last rung) could not follow in time
            self.guards.acted(target)
        if any(r.outcome.status in ("filled", "unknown") for r in results):
            self._acted_at = self._now()
            if not refused:  # a refused rung falls through at once: the read comes after
                await self.poller.poll()
        self._report(target, decisions, results, note)
        return refused

    @staticmethod
    def _rungs(decision: Decision, results: list[Result]) -> tuple[Rung, ...]:
        """What a refused transfer or add rules out. An add refused although a transfer
        just brought its money in rules out both: the balance cannot fund it either, and
        another transfer would only move money for nothing."""
        if decision.kind == "transfer":
            return ("reserve",)
        funded = any(
            r.decision.kind == "transfer" and r.outcome.status == "filled" for r in results
        )
        return ("balance", "reserve") if funded else ("balance",)

    async def _act(self, decisions: list[Decision], mode: str) -> list[Result]:
        """Re-read, journal, send and settle each decision in turn (see the module doc)."""
        snapshot = self.state.snapshot
        fresh = (
            snapshot is not None
            and mode == "auto"
            and self._now() - snapshot.fetched_at <= FRESH_READ
            and snapshot.fetched_at > self._acted_at
        )
        try:
            checked = await self.guards.reread(
                self.poller.adapter, self.poller.client, decisions, self._steps(),
                snapshot.positions if fresh and snapshot is not None else None,
            )  # fmt: skip
        except Exception as exc:
            checked = [(None, f"could not re-read the position: {exc}")] * len(decisions)
        results: list[Result] = []
        assert self.executor is not None  # confirm/auto are refused without one
        for decision, (position, changed) in zip(decisions, checked, strict=True):
            request = self.executor.request(decision, position or self._position(decision))
            if not self.journal.record(decision, mode, "planned", request):
                log.warning("%s: decision %s was already taken", self.account, decision.id)
                break
            outcome = await self._send(decision, request, changed)
            results.append(Result(decision, outcome))
            if outcome.status != "filled":
                break
        return results

    async def _send(
        self, decision: Decision, request: dict[str, Any], changed: str | None
    ) -> Outcome:
        """The last checks, then `sent` is committed, then the request leaves."""
        paused = self.guards.paused()
        if changed is not None or paused is not None:
            outcome = Outcome("aborted" if changed else "refused", f"not sent: {changed or paused}")
            self.journal.settle(decision.id, outcome)
            return outcome
        assert self.executor is not None
        self.journal.advance(decision.id, "sent")
        outcome = await self.executor.send(request)
        self.journal.settle(decision.id, outcome)
        if outcome.status == "unknown":
            row = self.journal.get(decision.id)
            assert row is not None
            outcome = await self.executor.resolve(row)
            if outcome.status == "unknown":
                self._pending = True
            else:
                self.journal.settle(decision.id, outcome)
        return outcome

    async def _confirmed(self, target: str, decisions: list[Decision]) -> bool:
        """Ask once for the target's decisions; no answer in time is a no."""
        assert self.confirmer is not None
        try:
            async with asyncio.timeout(self.config.confirm_timeout):
                yes = await self.confirmer(decisions)
        except TimeoutError:
            yes, why = False, f"not confirmed within {self.config.confirm_timeout:g} s"
        else:
            why = "declined"
        if not yes:
            for decision in decisions:
                self.journal.record(decision, "confirm", "refused", self._preview(decision), why)
            self.guards.acted(target)
            text = "; ".join(d.describe() for d in decisions)
            self._emit(target, decisions[0].target_kind, Level.WARN, f"{why}: {text}", decisions[0])
        return yes

    def _position(self, decision: Decision) -> Position | None:
        """The decision's position as the latest snapshot has it; None for a transfer,
        and for a position gone since the plan (closed or liquidated meanwhile: a read
        can land between plan and act). The re-read's verdict then aborts the step, and
        the request is still built, so that the journal says what was not sent."""
        snapshot = self.state.snapshot
        if decision.kind == "transfer" or snapshot is None:
            return None
        return find_position(snapshot.positions, decision.symbol, decision.position_side)

    def _preview(self, decision: Decision) -> dict[str, Any]:
        """The request that would be sent, for rows that send nothing (on a venue
        without an executor: what would be asked of it)."""
        if self.executor is None:
            return {"kind": decision.kind, "symbol": decision.symbol, "side": decision.order_side,
                    "amount": decision.quantity, "asset": decision.asset}  # fmt: skip
        return self.executor.request(decision, self._position(decision))

    def _steps(self) -> dict[str, float]:
        snapshot = self.state.snapshot
        markets = snapshot.markets if snapshot else {}
        return {s: m.amount_step for s, m in markets.items() if m.amount_step}

    # --- reporting -------------------------------------------------------------

    def _refuse(self, decisions: list[Decision], reason: str, level: Level) -> None:
        """Journal and report a refusal once per target and reason, not on every tick."""
        for target, group in itertools.groupby(decisions, key=lambda d: d.target):
            items = list(group)
            if self._said.get((target, "refusal")) == reason:
                continue
            for decision in items:
                self.journal.record(
                    decision, self.config.mode, "refused", self._preview(decision), reason
                )
            text = "; ".join(d.describe() for d in items)
            self._emit(target, items[0].target_kind, level, f"refused ({reason}): {text}")
            self._said[(target, "refusal")] = reason

    def _say(self, target: str, channel: str, kind: TargetKind, level: Level, message: str) -> None:
        """Report `message` unless it is the last thing said on this channel."""
        if self._said.get((target, channel)) == message:
            return
        self._said[(target, channel)] = message
        log.warning("%s: %s: %s", self.account, target, message)
        self._emit(target, kind, level, message)

    def _forget_said(self, current: set[str]) -> None:
        """Targets no longer in need: what was said about them may be said again."""
        self._said = {
            key: said
            for key, said in self._said.items()
            if key[0] in current or key[0] == "account"
        }

    def _report(
        self, target: str, decisions: list[Decision], results: list[Result], note: str | None
    ) -> None:
        """The outcome and the target's figures as re-read, the measured distance next to
        the predicted one: critical when a request did not fill, warn when all filled
        but the market has moved on past what they brought (the next step follows)."""
        first = decisions[0]
        lines = [f"{r.outcome.status}: {r.decision.describe()}: {r.outcome.detail}"
                 for r in results]  # fmt: skip
        if len(results) < len(decisions):
            lines.append(f"{len(decisions) - len(results)} further step(s) not attempted")
        if note:
            lines.append(note)
        if self._snapshot_at() > self._acted_at:
            ratio, distance, liquidation, mark, figures = self._figures(first)
        else:  # not re-read: it failed, or a refused rung falls through first
            ratio = distance = liquidation = mark = None
            figures = "not re-read (the read failed, or a refused rung falls through first)"
        for result in results:
            if result.outcome.status == "filled":
                self.journal.observed(result.decision.id, ratio, liquidation, distance)
        policy = self.config.cross if first.target_kind is TargetKind.POOL else self.config.isolated
        failed = any(r.outcome.status != "filled" for r in results) or len(results) < len(decisions)
        closed = figures == "position closed"
        reached = closed or (
            distance is not None
            and distance >= policy.target_distance
            and (
                policy.target_ratio is None or (ratio is not None and ratio <= policy.target_ratio)
            )
        )
        level = Level.CRITICAL if failed else Level.OK if reached else Level.WARN
        message = "; ".join(lines) + (
            f"; now {figures}, distance {percent(distance)} measured "
            f"(target {percent(policy.target_distance)})"
        )
        self.bus.publish(
            Event(
                EventKind.ACTION, self.account, target, first.target_kind, level,
                margin_ratio=ratio, liquidation_distance=distance,
                liquidation_price=liquidation, mark_price=mark,
                margin_mode=first.margin_mode, message=message,
            )
        )  # fmt: skip

    def _figures(
        self, decision: Decision
    ) -> tuple[float | None, float | None, float | None, float | None, str]:
        """(ratio, distance, liquidation price, mark, text) of the target after acting."""
        state = self.state
        if decision.target_kind is TargetKind.POOL:
            pool = state.latest_pools.get(decision.asset)
            member = next(
                (
                    r
                    for r in state.latest_positions.values()
                    if r.position.symbol == decision.symbol
                    and r.position.margin_mode is MarginMode.CROSS
                ),
                None,
            )
            liquidation = member.liquidation_price if member else None
            mark = member.mark_price if member else None
            if pool is None:
                return None, None, liquidation, mark, f"pool {decision.asset} not re-read"
            text = f"pool {decision.asset} ratio {_num(pool.margin_ratio)}, " + (
                f"{decision.symbol} liquidation {_num(liquidation)}"
            )
            # the nearest threat, as planned: every mark together, or one symbol alone
            distances = [pool.liquidation_distance] + [
                r.liquidation_distance
                for r in state.latest_positions.values()
                if r.position.margin_mode is MarginMode.CROSS
            ]
            known = [d for d in distances if d is not None]
            return pool.margin_ratio, min(known, default=None), liquidation, mark, text
        risk = state.latest_positions.get(decision.target)
        if risk is None:
            return None, None, None, None, "position closed"
        text = f"ratio {_num(risk.margin_ratio)}, liquidation {_num(risk.liquidation_price)}"
        return (risk.margin_ratio, risk.liquidation_distance, risk.liquidation_price,
                risk.mark_price, text)  # fmt: skip

    def _emit(
        self,
        target: str,
        kind: TargetKind,
        level: Level,
        message: str,
        decision: Decision | None = None,
    ) -> None:
        extra: dict[str, Any] = {}
        if decision is not None:
            extra = {
                "margin_ratio": decision.ratio_before,
                "mark_price": decision.mark,
                "margin_mode": decision.margin_mode,
            }
        self.bus.publish(
            Event(EventKind.ACTION, self.account, target, kind, level, message=message, **extra)
        )


def unsupported(exchange_id: str) -> str:
    """Why an exchange without an executor cannot be acted on."""
    return (
        f"automatic actions are not implemented for {exchange_id}; "
        "set actions.mode to dry_run for this account"
    )


def _num(value: float | None) -> str:
    if value is None:
        return "unknown"
    return f"{value:,.4g}" if math.isfinite(value) else "∞"


__all__ = ["ActionController", "Confirmer"]
