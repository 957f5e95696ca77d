"""Per (account, target) alert state, fed by the daemon's events: pending, firing, resolved.

The daemon's LevelTracker already applies hysteresis, so a LEVEL event is a real change;
what is left here is *when to speak*. A level must hold its `for` duration before it is
announced (a drop back in the meantime cancels it), a firing alert is repeated at its
level's interval (shorter as the level rises), and a return to ok is announced as
resolved. Lowering a firing level is said at once: it was true all along.

Blindness is an alert of its own at critical weight, because a monitor that cannot see
must never read like a calm market; an unknown level is announced as unknown, never as
ok. Errors, probable liquidations and positions closed by marginwatch itself are
one-shot: said once, never repeated.

Pure: every method takes `now`; nothing here sleeps, sends or reads a clock.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any, NamedTuple

from monitor.config.schema import AlertsConfig
from monitor.engine.levels import Level
from monitor.events import Event, EventKind

BLIND_LEVEL = Level.CRITICAL


class Rule(StrEnum):
    PRICE = "price"
    """Our thresholds on a pool's or position's margin ratio and distance."""
    BLIND = "blind"
    ERROR = "error"
    LIQUIDATION = "liquidation"
    CLOSED = "closed"
    """A position our own orders closed: news of money moved, never a liquidation."""


ONE_SHOT = frozenset({Rule.ERROR, Rule.LIQUIDATION, Rule.CLOSED})
CLOSED_LEVEL = Level.WARN
"""A close by marginwatch is said promptly but is not an emergency: it is the defense
having worked."""


class Reason(StrEnum):
    ALERT = "alert"
    """A level was entered: new, higher or lower."""
    REPEAT = "repeat"
    RESOLVED = "resolved"
    ONCE = "once"
    REANNOUNCE = "reannounce"
    """Still firing after a restart: said once more, marked as such."""


class AlertKey(NamedTuple):
    account: str | None
    target: str
    rule: Rule


@dataclass(slots=True)
class Alert:
    key: AlertKey
    level: Level
    """The level now (for a pending alert, the one waiting out its `for`)."""
    since: float
    """When `level` was entered."""
    event: Event
    """The latest event: its message and figures when the target is gone."""
    announced: Level | None = None
    """The level the user last heard; None while nothing was said."""
    sent_at: float | None = None
    sent_ratio: float | None = None
    sent_distance: float | None = None
    reannounce_at: float | None = None
    peak: Level | None = None
    """The worst level since the user was last told: a spike into critical or imminent
    that recovered before the message went out is still said."""

    def to_json(self) -> dict[str, Any]:
        doc = {name: getattr(self, name) for name in _PERSISTED}
        return {**doc, "key": list(self.key), "event": self.event.to_json()}

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> Alert:
        """An alert `to_json` wrote: its levels are loaded from their wire names."""
        account, target, rule = doc["key"]
        return cls(
            AlertKey(account, target, Rule(rule)),
            event=Event.from_json(doc["event"]),
            **{n: _loaded(n, doc.get(n)) for n in _PERSISTED},
        )


_PERSISTED = ("level", "since", "announced", "sent_at", "sent_ratio", "sent_distance", "peak")
"""What survives a restart; `reannounce_at` is decided anew by the restore."""
_LEVELS = frozenset({"level", "announced", "peak"})


def _loaded(name: str, value: Any) -> Any:
    return Level(value) if name in _LEVELS and value is not None else value


def unsaid_spike(alert: Alert) -> bool:
    """The alert reached critical or worse since the user last heard, and fell back
    before a message said so: a near-liquidation the user must still hear about."""
    peak = alert.peak or Level.OK
    return peak >= Level.CRITICAL and peak > max(alert.level, alert.announced or Level.OK)


def said_identity(alert: Alert, reason: Reason) -> str:
    """What one item of a page says, as a stable string: the page's identity is built
    from these, so the same thing decided again after a restart (a restored alert, a
    re-emitted event) is recognised as already said instead of paged under a new id.

    A one-shot is the event itself: the exchange's order id when the exchange named one
    (the liquidation order), else the daemon's time of the event. A level change is the
    transition and when the new level was entered; a repeat or re-announcement is the
    level and when it was last said; a resolution is what it resolved and when.
    """
    account, target, rule = alert.key
    key = f"{rule}\x1f{account or ''}\x1f{target}"
    match reason:
        case Reason.ONCE:
            return f"{key}\x1fonce\x1f{alert.event.order_id or repr(alert.event.time)}"
        case Reason.REPEAT | Reason.REANNOUNCE:
            return f"{key}\x1f{reason}\x1f{alert.level}\x1f{alert.sent_at!r}"
        case Reason.RESOLVED:
            return f"{key}\x1fresolved\x1f{alert.announced}\x1f{alert.since!r}"
        case _:
            return f"{key}\x1falert\x1f{alert.announced}>{alert.level}\x1f{alert.since!r}"


def _timer_level(level: Level) -> Level:
    """Which `for`/`repeat` entry a level uses: unknown figures are timed like a warning."""
    return Level.WARN if level is Level.UNKNOWN else level


class Rules:
    """Every alert's state. `observe` records events; `due` says who needs a message."""

    def __init__(self) -> None:
        self._alerts: dict[AlertKey, Alert] = {}

    def __iter__(self) -> Iterator[Alert]:
        """Over a copy: callers observe and evaluate (adding, dropping) while iterating."""
        return iter(list(self._alerts.values()))

    def get(self, key: AlertKey) -> Alert | None:
        return self._alerts.get(key)

    def observe(self, event: Event, now: float) -> None:
        """Record one daemon event. Cheap: the daemon calls this on its tick path."""
        account, target = event.account, event.target
        match event.kind:
            case EventKind.LEVEL:
                self._set(
                    AlertKey(account, target, Rule.PRICE), event.level or Level.UNKNOWN, event, now
                )
            case EventKind.BLIND:
                self._set(AlertKey(account, target, Rule.BLIND), BLIND_LEVEL, event, now)
            case EventKind.RECOVERED:
                self._set(AlertKey(account, target, Rule.BLIND), Level.OK, event, now)
            case EventKind.PROBABLE_LIQUIDATION:
                # The position is gone: its price alert ends without a "resolved".
                self._alerts.pop(AlertKey(account, target, Rule.PRICE), None)
                key = AlertKey(account, target, Rule.LIQUIDATION)
                self._alerts[key] = Alert(key, event.level or Level.CRITICAL, now, event)
            case EventKind.CLOSED_BY_US:
                # The position is gone, by our hand: this message replaces its price alert.
                self._alerts.pop(AlertKey(account, target, Rule.PRICE), None)
                key = AlertKey(account, target, Rule.CLOSED)
                self._alerts[key] = Alert(key, CLOSED_LEVEL, now, event)
            case EventKind.ERROR:
                key = AlertKey(account, target, Rule.ERROR)
                self._alerts[key] = Alert(key, Level.WARN, now, event)
            case EventKind.CONFIG:
                pass  # the operator's own action, answered in the log

    def _set(self, key: AlertKey, level: Level, event: Event, now: float) -> None:
        alert = self._alerts.get(key)
        if alert is None:
            if level is not Level.OK:  # a recovery nobody was told about needs no message
                self._alerts[key] = Alert(key, level, now, event, peak=level)
            return
        if alert.level is not level:
            alert.level, alert.since = level, now
        if level > (alert.peak or Level.OK):
            alert.peak = level
        alert.event = event

    def due(
        self, now: float, config: AlertsConfig, muted: Callable[[Alert], bool]
    ) -> list[tuple[AlertKey, Reason]]:
        """Alerts that need a message now. A muted one (silenced, inhibited) is held, not
        marked: whatever its state is when the mute lifts is then said."""
        due = []
        for alert in self:
            reason = self.evaluate(alert.key, now, config)
            if reason is not None and not muted(alert):
                due.append((alert.key, reason))
        return due

    def evaluate(self, key: AlertKey, now: float, config: AlertsConfig) -> Reason | None:
        """What `key` needs said now, if anything. Drops alerts that ended unannounced
        (a pending level that dropped back) or whose resolution is not to be said."""
        alert = self._alerts.get(key)
        if alert is None:
            return None
        if key.rule in ONE_SHOT:
            return Reason.ONCE
        if alert.level is Level.OK:
            if unsaid_spike(alert):
                return Reason.RESOLVED  # said even with `resolved: false`: it was danger
            if alert.announced is None or not config.resolved:
                del self._alerts[key]
                return None
            return Reason.RESOLVED
        if alert.level is not alert.announced:
            rising = alert.level > (alert.announced or Level.OK)
            hold = getattr(config.for_, _timer_level(alert.level))
            return Reason.ALERT if not rising or now - alert.since >= hold else None
        if alert.reannounce_at is not None:
            return Reason.REANNOUNCE if now >= alert.reannounce_at else None
        assert alert.sent_at is not None
        interval = getattr(config.repeat, _timer_level(alert.level))
        return Reason.REPEAT if now - alert.sent_at >= interval else None

    def sent(
        self,
        key: AlertKey,
        reason: Reason,
        now: float,
        ratio: float | None = None,
        distance: float | None = None,
    ) -> None:
        """The message for `key` went out: remember what the user now knows."""
        alert = self._alerts[key]
        if reason in (Reason.ONCE, Reason.RESOLVED):
            del self._alerts[key]
            return
        alert.announced = alert.level
        alert.peak = alert.level
        alert.sent_at = now
        alert.sent_ratio, alert.sent_distance = ratio, distance
        alert.reannounce_at = None

    def backup(self, keys: Iterable[AlertKey]) -> dict[AlertKey, Alert | None]:
        """Copies of these alerts as they are, for `revert` if what follows fails."""
        return {key: replace(a) if (a := self._alerts.get(key)) else None for key in keys}

    def revert(self, backup: dict[AlertKey, Alert | None]) -> None:
        for key, alert in backup.items():
            if alert is None:
                self._alerts.pop(key, None)
            else:
                self._alerts[key] = alert

    def restore(self, alerts: list[Alert], reannounce_at: float) -> None:
        """Take over persisted alerts; those firing at critical or worse are said once
        more at `reannounce_at` (a restart must not leave the user wondering)."""
        for alert in alerts:
            if alert.announced is not None and alert.announced >= Level.CRITICAL:
                alert.reannounce_at = reannounce_at
            self._alerts[alert.key] = alert
