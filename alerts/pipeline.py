"""The alert pipeline: rules → inhibit → silence → group → render → deliver.

`emit` is the daemon's sink: it only records the event (a dict update), so the tick
path never waits on alerting. `tick(now)` does the rest: reconcile with what the daemon
sees now, ask the rules who is due, hold the muted, gather per account, and hand each
flushed group to `deliver` as one `Notification`. `run()` calls `tick` on a short timer
and whenever an event arrives.

State survives a restart through `export_state` / `restore_state`: what is firing and
what the user last heard, so the restarted daemon's fresh LevelTracker (which reports
every non-ok target again) does not page everything anew, and silences hold.

Exactly once across crashes: each item of a page has an identity taken from what it says
(`said_identity`), the page's id is made of them, and the identities said are kept for
`SAID_KEEP`. An item already said is dropped from a page, so an event re-emitted after a
restart, or an alert restored from an older save, is never paged again under another id.
The state is handed to `deliver` marked as sent, so the outbox commits it with the page
in one transaction (see `alerts.plugin`); if delivery refuses, the marks are undone.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from alerts.defense import Defense, advice_policy, isolated_defense, pool_defense
from alerts.group import Grouper
from alerts.inhibit import blind_feeds, inhibited, inhibited_accounts
from alerts.messages import GONE, Item, danger, render_alert, render_summary, worst_level
from alerts.notification import Kind, Notification, notification_id
from alerts.rules import (
    Alert,
    AlertKey,
    Reason,
    Rule,
    Rules,
    said_identity,
    unsaid_spike,
)
from alerts.silence import Silences
from alerts.view import Figures, StateView
from monitor.config import Config
from monitor.engine.levels import Level
from monitor.events import Event, EventKind
from monitor.formatting import level_reason

log = logging.getLogger(__name__)

TICK = 0.5
"""Seconds between timer checks: well under `group_wait` and every `for`/repeat."""
REANNOUNCE_DELAY = 30.0
"""After a restore, critical alerts are re-announced this much later: time for the first
poll and the feeds, so the re-announcement carries fresh figures and whatever resolved
meanwhile is said as resolved instead."""
STATE_VERSION = 1
SAID_KEEP = 2 * 86400.0
"""How long an identity said is remembered: longer than any outage a restart follows."""
UNMUTED = (Rule.LIQUIDATION, Rule.CLOSED)


class AlertPipeline:
    """Compose the stages; `deliver` receives every notification (and must not block)."""

    def __init__(
        self,
        config_getter: Callable[[], Config],
        state_view: StateView,
        clock: Callable[[], float],
        deliver: Callable[[Notification], None],
        reannounce_delay: float = REANNOUNCE_DELAY,
    ) -> None:
        self._config = config_getter
        self._view = state_view
        self._clock = clock
        self._deliver = deliver
        self._reannounce_delay = reannounce_delay
        self.rules = Rules()
        self.silences = Silences(clock)
        """The console's handle: `add`, `remove`, `active`."""
        self._grouper = Grouper()
        self._said: dict[str, float] = {}
        """Identity of every item said (see `said_identity`) -> when."""
        self._summary: tuple[str, float] | None = None
        self._wake = asyncio.Event()

    # --- the daemon's side ---------------------------------------------------------

    def emit(self, event: Event) -> None:
        self.rules.observe(event, self._clock())
        self._wake.set()

    async def run(self) -> None:
        """Drive the timers until cancelled; a failing tick is logged, never fatal."""
        while True:
            self._wake.clear()
            try:
                self.tick(self._clock())
            except Exception:
                log.exception("alert pipeline tick failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), TICK)

    # --- timers --------------------------------------------------------------------

    def tick(self, now: float) -> None:
        config = self._config()
        self._reconcile(now)
        muted = self._muted()
        for key, _ in self.rules.due(now, config.alerts, muted):
            self._grouper.add(key.account, key, now)
        for account, keys in self._grouper.ready(now, config.alerts.group_wait):
            self._flush(account, keys, now, config, muted)
        self._daily_summary(now, config)

    def _reconcile(self, now: float) -> None:
        """Align alerts with what the daemon sees: targets that closed without an event,
        levels a restore could not know, blind sources a reload's new daemon never
        reports recovered."""
        levels: dict[str, dict[str, Level] | None] = {}
        for alert in self.rules:
            account, target, rule = alert.key
            if rule is Rule.PRICE and account is not None:
                if account not in levels:
                    levels[account] = self._view.levels(account)
                known = levels[account]
                if known is None:
                    continue  # not read since (re)start: nothing to compare yet
                level = known.get(target)
                if level is None:
                    self.rules.observe(_gone(alert.event, now), now)
                elif level is not alert.level:
                    self.rules.observe(replace(alert.event, level=level, time=now), now)
            elif (
                rule is Rule.BLIND
                and alert.level is not Level.OK
                and self._view.sees(account, target)
            ):
                recovered = replace(
                    alert.event, kind=EventKind.RECOVERED, level=Level.OK, message="sees again"
                )
                self.rules.observe(recovered, now)

    def _muted(self) -> Callable[[Alert], bool]:
        """Silenced or inhibited. A probable liquidation is never muted: it is the one
        message the user must get even while they asked for quiet; nor is a position
        marginwatch itself closed: money moved on the user's behalf."""
        accounts = inhibited_accounts(blind_feeds(self.rules), self._view.feed_accounts())
        silences = self.silences.active()

        def muted(alert: Alert) -> bool:
            if alert.key.rule in UNMUTED:
                return False
            account, target = alert.key.account, alert.key.target
            return inhibited(alert, accounts) or any(s.matches(account, target) for s in silences)

        return muted

    # --- one message per group ---------------------------------------------------------

    def _flush(
        self,
        account: str | None,
        keys: list[AlertKey],
        now: float,
        config: Config,
        muted: Callable[[Alert], bool],
    ) -> None:
        """Re-read each alert now: what was overtaken or cancelled in the window is said
        as it is now, or not at all."""
        defenses: dict[str, Defense | None] = {}
        items: list[tuple[Item, str]] = []
        for key in keys:
            reason = self.rules.evaluate(key, now, config.alerts)
            alert = self.rules.get(key)
            if reason is None or alert is None or muted(alert):
                continue
            item = self._item(alert, reason, config, defenses)
            identity = said_identity(alert, reason)
            if identity in self._said:
                log.info("not paging %s %s again: already said", key.target, reason)
                self._mark_sent(item, now)
            else:
                items.append((item, identity))
        if not items:
            return
        said = [item for item, _ in sorted(items, key=lambda pair: danger(pair[0]), reverse=True)]
        identities = tuple(identity for _, identity in items)
        feeds = self._view.feed_accounts()
        if account is not None:
            accounts: tuple[str, ...] = (account,)
        else:
            accounts = tuple(sorted({a for i in said for a in feeds.get(i.key.target, ())}))
        text = render_alert(account, said, feeds)
        backup = self.rules.backup(i.key for i in said)
        for item in said:
            self._mark_sent(item, now)
        self._said.update(dict.fromkeys(identities, now))
        sent = self._send(
            account, accounts, worst_level(said), text, now,
            kind=_kind(said), identities=identities,
            items=tuple((i.key.target, i.key.rule.value, i.level, i.previous or "") for i in said),
        )  # fmt: skip
        if not sent:
            self.rules.revert(backup)
            for identity in identities:
                del self._said[identity]

    def _mark_sent(self, item: Item, now: float) -> None:
        f = item.figures
        self.rules.sent(item.key, item.reason, now, f.margin_ratio, f.distance)

    def _item(
        self, alert: Alert, reason: Reason, config: Config, defenses: dict[str, Defense | None]
    ) -> Item:
        account, target, rule = alert.key
        figures = None
        if rule is Rule.PRICE and account is not None:
            figures = self._view.figures(account, target)
        figures = figures or Figures.from_event(alert.event)
        defense = None
        if rule is Rule.PRICE and account is not None and reason is not Reason.RESOLVED:
            defense = self._defense(account, target, figures, config, defenses)
        peak = alert.peak if unsaid_spike(alert) else None
        why = _why(alert, figures, config) if rule is Rule.PRICE and account else ""
        return Item(
            alert.key, reason, alert.level, alert.announced, figures, alert.sent_ratio,
            alert.sent_distance, alert.event.message, defense, peak, why,
        )  # fmt: skip

    def _defense(
        self,
        account: str,
        target: str,
        figures: Figures,
        config: Config,
        cache: dict[str, Defense | None],
    ) -> Defense | None:
        """Sized once per pool per message: forty positions of one pool share one plan."""
        book = self._view.book(account)
        if book is None:
            return None
        try:
            actions = config.account(account).actions
        except KeyError:
            return None
        policy = advice_policy(actions, config.alerts)
        marks = self._view.marks(account)
        if figures.pool is None:
            return isolated_defense(book, target, policy, marks)
        if figures.pool not in cache:
            cache[figures.pool] = pool_defense(book, figures.pool, policy, marks)
        return cache[figures.pool]

    def _send(
        self,
        account: str | None,
        accounts: tuple[str, ...],
        level: Level,
        text: str,
        now: float,
        *,
        kind: Kind,
        identities: tuple[str, ...],
        items: tuple[tuple[str, str, Level, Level | Literal[""]], ...] = (),
    ) -> bool:
        """Hand one notification over; False (and logged) when delivery refused it, so
        the alerts stay due and are tried again."""
        notification = Notification(
            notification_id(kind, identities), account, accounts, level, text, now, kind,
            tuple(item[0] for item in items), items,
        )  # fmt: skip
        try:
            self._deliver(notification)
        except Exception:
            log.exception("delivery refused notification %s", notification.id)
            return False
        return True

    # --- daily summary ---------------------------------------------------------------

    def _daily_summary(self, now: float, config: Config) -> None:
        """One summary per account at `alerts.daily_summary` (UTC); a summary missed while
        the daemon was down is skipped, not sent late."""
        at = config.alerts.daily_summary
        if at is None:
            self._summary = None
            return
        if self._summary is None or self._summary[0] != at:
            self._summary = (at, next_daily(now, at))
            return
        if now < self._summary[1]:
            return
        moment = self._summary[1]
        self._summary = (at, next_daily(now, at))
        silences = self.silences.active()
        for account in self._view.accounts():
            levels = (self._view.levels(account) or {}).values()
            level = max(levels, default=Level.OK)
            own = [s for s in silences if s.account in (account, "*")]
            text = render_summary(self._view, account, at, own)
            identity = f"summary\x1f{account}\x1f{moment!r}"
            self._send(
                account, (account,), level, text, now,
                kind="summary", identities=(identity,),
            )  # fmt: skip

    # --- persistence -------------------------------------------------------------------

    def export_state(self) -> dict[str, Any]:
        """JSON-safe: firing and pending alerts, what was said, silences."""
        cutoff = self._clock() - SAID_KEEP
        self._said = {identity: at for identity, at in self._said.items() if at >= cutoff}
        return {
            "version": STATE_VERSION,
            "alerts": [alert.to_json() for alert in self.rules],
            "said": self._said,
            "silences": self.silences.export(),
        }

    def restore_state(self, state: dict[str, Any], now: float) -> None:
        """Take over a previous run's state; its critical alerts are re-announced once."""
        if state.get("version") != STATE_VERSION:
            raise ValueError(f"unknown alert state version {state.get('version')!r}")
        self._said.update(state.get("said", {}))  # absent from a state saved before it
        alerts = [Alert.from_json(doc) for doc in state["alerts"]]
        self.rules.restore(alerts, now + self._reannounce_delay)
        self.silences.restore(state["silences"])


def _gone(event: Event, now: float) -> Event:
    """A target that closed between two reads: resolved, with no figures left to show."""
    return replace(
        event, level=Level.OK, message=GONE, margin_ratio=None, liquidation_distance=None,
        liquidation_price=None, time=now,
    )  # fmt: skip


def _kind(items: list[Item]) -> Kind:
    reasons = {item.reason for item in items}
    if reasons == {Reason.RESOLVED}:
        return "resolved"
    if reasons <= {Reason.REANNOUNCE, Reason.RESOLVED}:
        return "reannounce"
    return "alert"


def next_daily(now: float, at: str) -> float:
    """The first `HH:MM` UTC strictly after `now`, in epoch seconds."""
    hour, minute = (int(part) for part in at.split(":"))
    today = datetime.fromtimestamp(now, UTC).replace(
        hour=hour, minute=minute, second=0, microsecond=0
    )
    moment = today if today.timestamp() > now else today + timedelta(days=1)
    return moment.timestamp()


def _why(alert: Alert, figures: Figures, config: Config) -> str:
    """The threshold the target's figures are past (monitor/formatting.level_reason),
    with the account's own thresholds for its margin mode."""
    try:
        thresholds = config.account(alert.key.account or "").thresholds
    except KeyError:
        return ""
    limits = thresholds.isolated if figures.margin_mode == "isolated" else thresholds.cross
    return level_reason(alert.level, figures.margin_ratio, figures.distance, limits)
