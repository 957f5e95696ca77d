"""The daemon: accounts on a schedule, one mark-price feed per exchange, a watchdog.

Wiring only: each part (account polling, feeds, level tracking, sinks) has its own module.
APScheduler drives the REST work (never overlapping, misfires coalesced; an account that
failed is read again at the next poll, and at once when its venue's stream recovers); feeds push
marks; every frame evaluates every target of the group's accounts exactly, at once
(daemon/evaluation.py). What happens is published on the bus (monitor/bus.py), which the
runner may own across reloads: the daemon subscribes what it wires (feeds following
symbols, the controllers) and unsubscribes all of it when it stops.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from monitor.actions.controller import ActionController, Confirmer
from monitor.actions.guards import KillSwitch
from monitor.actions.journal import Journal
from monitor.bus import Evaluated, EventBus, M, Subscription, SymbolsChanged
from monitor.config import AccountConfig, Config
from monitor.daemon.account import AccountState
from monitor.daemon.cadence import RestCadence
from monitor.daemon.evaluation import GroupEvaluation
from monitor.daemon.marks import MarkBoard
from monitor.daemon.poller import AccountPoller
from monitor.engine.levels import Level
from monitor.events import Event, EventKind, TargetKind
from monitor.events.tracker import LevelTracker
from monitor.exchange.budget import Budgets
from monitor.exchange.markets import SharedMarkets
from monitor.feeds import FeedStatus, MarkFeed, MarkTick
from monitor.venues.binance.userstream import BinanceUserStream
from monitor.venues.registry import execution_for, feed_for, user_stream_for, venue_for

log = logging.getLogger(__name__)

WATCHDOG_PERIOD = 1.0


@dataclass(slots=True)
class ExchangeGroup:
    """Accounts on one exchange endpoint: they share a market table, marks and a feed."""

    exchange: str
    ws_origin: str | None
    marks: MarkBoard
    evaluation: GroupEvaluation
    """Every target of these accounts, evaluated on every mark frame."""
    monitors: list[AccountState] = field(default_factory=list)
    feed: MarkFeed | None = None
    task: asyncio.Task[None] | None = None
    blind: bool = False

    @property
    def target(self) -> str:
        return f"feed {self.exchange}"


def _group_key(account: AccountConfig) -> tuple[str, str | None, str | None, bool]:
    return account.exchange, account.rest_url, account.ws_url, account.sandbox


class Daemon:
    """Runs until `stop()`; publishes on `bus` (its own unless given one), `emit` (when
    given) receives every event, `on_tick_done` every tick's (receipt time, targets looked
    at: those of the accounts visited) for latency measurement and metrics.

    `monitors` are the accounts' states (what ticks evaluate), `pollers` their REST reads
    by account name."""

    def __init__(
        self,
        config: Config,
        emit: Callable[[Event], None] | None = None,
        *,
        tracker: LevelTracker | None = None,
        on_tick_done: Callable[[float, int], None] | None = None,
        kill_switch: KillSwitch | None = None,
        bus: EventBus | None = None,
        confirmer: Confirmer | None = None,
    ) -> None:
        self.config = config
        self.bus = bus or EventBus()
        self._subscriptions: list[Subscription] = []
        """Everything this daemon subscribed: cancelled at `stop()`, so that a reload's
        next daemon on the same bus is the only one wired."""
        if emit is not None:
            self._subscribe(Event, emit)
        self.tracker = tracker or LevelTracker()
        self.on_tick_done = on_tick_done
        self.markets = SharedMarkets(
            config.state_dir / "cache", max_age=config.daemon.markets_refresh
        )
        self.groups: dict[tuple[str, str | None, str | None, bool], ExchangeGroup] = {}
        self.pollers: dict[str, AccountPoller] = {}
        group_of: dict[str, ExchangeGroup] = {}
        for account in config.accounts:
            group = self.groups.get(key := _group_key(account))
            if group is None:
                marks = MarkBoard()
                evaluation = GroupEvaluation(marks, self.tracker, self.bus.publish_all)
                group = self.groups[key] = ExchangeGroup(
                    account.exchange, account.ws_url, marks, evaluation
                )
            state = AccountState(
                account, config.thresholds_for(account.name), group.marks, self.tracker,
                self.bus,
            )  # fmt: skip
            state.frame_figures = group.evaluation.risk
            self.pollers[account.name] = AccountPoller(state, config.daemon, self.markets, self.bus)
            group_of[account.name] = group
            group.monitors.append(state)
            group.evaluation.add(state)
        self.monitors = [m for g in self.groups.values() for m in g.monitors]
        self._subscribe(SymbolsChanged, lambda news: self._resubscribe(group_of[news.account]))
        self.first_evaluation = asyncio.Event()
        self._first = self._subscribe(Evaluated, self._first_evaluated)
        # --- user data streams (monitor/venues/<venue>/userstream.py): push-triggered refreshes
        # for the accounts that have one; the others are polled only.
        self.user_streams: list[BinanceUserStream] = [
            s
            for p in self.pollers.values()
            if (s := user_stream_for(p, p.account.ws_url)) is not None
        ]
        # --- REST cadence (monitor/daemon/cadence.py): every read within its host's
        # request budget; accounts kept current by their stream only reconcile.
        self.budgets = Budgets(config.daemon.request_budget)
        streams = {s.poller.name: s for s in self.user_streams}
        self.cadences: dict[str, RestCadence] = {
            p.name: RestCadence(
                p,
                self.budgets.for_account(
                    p.account.exchange,
                    p.account.rest_url,
                    venue_for(p.account.exchange).request_limit,
                ),
                config.daemon.reconcile_interval,
                streams.get(p.name),
            )
            for p in self.pollers.values()
        }
        self._user_stream_tasks: list[asyncio.Task[None]] = []
        # --- auto-deleverage (monitor/actions): a controller per account not `off`; the
        # kill switch is shared (pass one in to keep a runtime pause across reloads).
        self.kill_switch = kill_switch or KillSwitch(config.state_dir)
        acting = [p for p in self.pollers.values() if p.account.actions.mode != "off"]
        self.journal: Journal | None = None
        self.controllers: dict[str, ActionController] = {}
        if acting:
            self.journal = Journal(config.state_dir / "actions.sqlite3")
            self.controllers = {
                p.name: ActionController(
                    p,
                    self.journal,
                    self.kill_switch,
                    bus=self.bus,
                    confirmer=confirmer,
                    execution=execution_for(p.account.exchange),
                )
                for p in acting
            }
            for poller in acting:  # our fills are told apart from liquidations by these rows
                poller.state.own_fills.rows = lambda name=poller.name: self._journal_rows(name)
        self.scheduler = AsyncIOScheduler()
        self._watchdog: asyncio.Task[None] | None = None
        self._blind_accounts: set[str] = set()
        self._stopping = False

    def _subscribe(self, kind: type[M], handler: Callable[[M], None]) -> Subscription:
        subscription = self.bus.subscribe(kind, handler)
        self._subscriptions.append(subscription)
        return subscription

    def answer_confirmations(self, confirmer: Confirmer | None) -> None:
        """Who a `confirm` controller asks before acting (the alerts plugin's Telegram
        bridge); without one, confirm mode runs as a dry run, loudly."""
        for controller in self.controllers.values():
            controller.confirmer = confirmer

    def _journal_rows(self, account: str) -> list[Any]:
        return self.journal.rows(account) if self.journal is not None else []

    # --- lifecycle -------------------------------------------------------------

    async def start(self) -> None:
        settings = self.config.daemon
        now = datetime.now().astimezone()
        for i, poller in enumerate(self.pollers.values()):
            # The job only starts a read (start_scheduled returns at once), so it never
            # overlaps itself while a read waits out a timeout; a run delayed by a busy
            # loop still runs (no grace limit), coalesced into one: nothing to warn about.
            self.scheduler.add_job(
                self.cadences[poller.name].start_scheduled, "interval",
                seconds=settings.poll_interval,
                jitter=settings.poll_jitter, id=f"poll:{poller.name}",
                max_instances=1, coalesce=True, misfire_grace_time=None,
                next_run_time=now + timedelta(milliseconds=50 * i),
            )  # fmt: skip
            self.scheduler.add_job(
                poller.expire_tiers, "interval", seconds=settings.tiers_refresh,
                id=f"tiers:{poller.name}", coalesce=True,
            )  # fmt: skip
        for key, group in self.groups.items():
            first = self.pollers[group.monitors[0].name]
            self.scheduler.add_job(
                first.reload_markets, "interval", seconds=settings.markets_refresh,
                id=f"markets:{key}", coalesce=True, max_instances=1,
            )  # fmt: skip
        self.scheduler.start()
        self._watchdog = asyncio.create_task(self._watch(), name="watchdog")
        self._user_stream_tasks = [
            asyncio.create_task(s.run(), name=s.exchange_id) for s in self.user_streams
        ]
        for controller in self.controllers.values():
            controller.start()

    async def stop(self) -> None:
        self._stopping = True  # feeds closing now are not a blind market
        for subscription in self._subscriptions:
            subscription.cancel()
        if self.scheduler.running:
            # A job the scheduler has submitted but the loop has not yet run (a busy loop)
            # would be cancelled by shutdown and logged as an error with a traceback on
            # every such restart: pause, let the submitted jobs run (each only starts a
            # read, which the cadences cancel below), then shut down.
            self.scheduler.pause()
            await asyncio.sleep(0)
            self.scheduler.shutdown(wait=False)
        tasks = [t for t in (self._watchdog, *(g.task for g in self.groups.values())) if t]
        tasks += self._user_stream_tasks
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await asyncio.gather(*(c.stop() for c in self.controllers.values()))
        await asyncio.gather(*(c.stop() for c in self.cadences.values()), return_exceptions=True)
        await asyncio.gather(*(p.close() for p in self.pollers.values()), return_exceptions=True)
        if self.journal is not None:
            self.journal.close()

    # --- feeds -----------------------------------------------------------------

    def _symbol_ids(self, group: ExchangeGroup) -> dict[str, str]:
        """Exchange market id -> unified symbol, for every symbol any account holds."""
        ids: dict[str, str] = {}
        for monitor in group.monitors:
            client = self.pollers[monitor.name].client
            for symbol in monitor.symbols():
                try:
                    ids[client.market(symbol)["id"]] = symbol
                except Exception:
                    continue
        return ids

    def _resubscribe(self, group: ExchangeGroup) -> None:
        symbols = self._symbol_ids(group)
        if group.feed is None:
            if not symbols:
                return
            group.feed = feed_for(
                group.exchange,
                symbols=symbols,
                on_ticks=lambda ticks, g=group: self._on_ticks(g, ticks),
                on_status=lambda status, reason, g=group: self._on_feed_status(g, status, reason),
                ws_origin=group.ws_origin,
                stale_after=self.config.daemon.feed_stale_after,
                client=self.pollers[group.monitors[0].name].client,
            )
            group.task = asyncio.create_task(group.feed.run(), name=group.target)
        else:
            group.feed.set_symbols(symbols)

    def _on_ticks(self, group: ExchangeGroup, ticks: list[MarkTick]) -> None:
        """The hot path: record marks, evaluate every target, emit level changes, and
        tell the actions controller of every account with a target above OK."""
        moved = group.marks.update_all(ticks, time.time())
        if not moved:
            return
        with self.bus.burst:  # the frame's events written out together, before the news
            outcome = group.evaluation.evaluate(moved)
        if self.bus.listens(Evaluated):  # one batch: up to an account each in a crash
            self.bus.publish_all([monitor.evaluated_news for monitor in outcome.alarmed])
        if self.on_tick_done is not None:
            self.on_tick_done(min(t.received for t in ticks), outcome.targets)

    def _on_feed_status(self, group: ExchangeGroup, status: FeedStatus, reason: str) -> None:
        if self._stopping:
            return
        log.debug("%s: %s (%s)", group.target, status.value, reason)  # the feed logs it
        if status in (FeedStatus.STALE, FeedStatus.DOWN) and not group.blind:
            group.blind = True
            self.bus.publish(
                Event(
                    EventKind.BLIND,
                    None,
                    group.target,
                    TargetKind.FEED,
                    level=Level.UNKNOWN,
                    message=f"mark prices {status.value}: {reason}",
                )
            )
        elif status is FeedStatus.LIVE and group.blind:
            group.blind = False
            for monitor in group.monitors:  # the venue is back: so are its REST reads
                self.pollers[monitor.name].venue_back()
            self.bus.publish(
                Event(
                    EventKind.RECOVERED,
                    None,
                    group.target,
                    TargetKind.FEED,
                    level=Level.OK,
                    message="mark prices flowing again",
                )
            )

    # --- staleness -------------------------------------------------------------

    def _first_evaluated(self, _news: Evaluated) -> None:
        """Set `first_evaluation` (READY for systemd) the moment any account is evaluated,
        not on the staleness watch's next round, up to a second later."""
        self.first_evaluation.set()
        self._first.cancel()  # once is enough

    async def _watch(self) -> None:
        """Accounts not read successfully for too long are blind, and say so once."""
        limit = self.config.daemon.account_stale_after
        started = time.monotonic()
        while True:
            await asyncio.sleep(WATCHDOG_PERIOD)
            now = time.monotonic()
            for monitor in self.pollers.values():
                age = now - (monitor.last_ok if monitor.last_ok is not None else started)
                blind = age > limit
                if blind and monitor.name not in self._blind_accounts:
                    self._blind_accounts.add(monitor.name)
                    reason = str(monitor.last_error) if monitor.last_error else "no reply"
                    if (host := self.cadences[monitor.name].waiting_for) is not None:
                        reason += f"; its read waits for the request budget of {host}"
                    self.bus.publish(
                        Event(
                            EventKind.BLIND,
                            monitor.name,
                            "account",
                            TargetKind.ACCOUNT,
                            level=Level.UNKNOWN,
                            message=f"no successful read for {age:.0f} s: {reason}",
                        )
                    )
                elif not blind and monitor.name in self._blind_accounts:
                    self._blind_accounts.discard(monitor.name)
                    self.bus.publish(
                        Event(
                            EventKind.RECOVERED,
                            monitor.name,
                            "account",
                            TargetKind.ACCOUNT,
                            level=Level.OK,
                            message="account read again",
                        )
                    )

    def healthy(self) -> bool:
        """Watchdog-worthy: no blind account and no blind feed."""
        return not self._blind_accounts and not any(g.blind for g in self.groups.values())

    def summary(self) -> str:
        """One line for systemd's STATUS= and the demo's header."""
        worst = max((level for _, level in self.tracker.items()), default=Level.OK)
        feeds = sum(1 for g in self.groups.values() if g.feed and not g.blind)
        blind = len(self._blind_accounts) + sum(1 for g in self.groups.values() if g.blind)
        accounts = len(self.pollers)
        return (
            f"{accounts} account{'s' if accounts != 1 else ''}, "
            f"{feeds}/{len(self.groups)} feeds live, worst level {worst}"
            + (f", {blind} BLIND" if blind else "")
        )
