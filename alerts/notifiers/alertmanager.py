"""Prometheus Alertmanager: one alert per target, so an HA pair of replicas pages once.

Why Alertmanager: two marginwatch replicas (on two machines) both see the same crash and
both send; Alertmanager deduplicates alerts with identical labels (and its own cluster
deduplicates notifications between its peers), then routes, groups, silences and pages
the way the rest of the operator's stack does.

So the labels must be identical on both replicas and stable over an alert's life:
alertname (by rule: MarginLevel, MonitorBlind, ExchangeError, ProbableLiquidation,
MarginwatchStorage), account, target, level, severity (warning or critical), exchange,
instance (configured, the same on both replicas) and any extra configured labels. The
replica's own name is an annotation: as a label it would make the two replicas' alerts
two alerts. Annotations: summary (one line), description (the page's whole text).

One alert per (target, level), the way a Prometheus rule per severity works: a target
going from warn to critical sends the critical alert firing and the warn alert resolved;
a resolution sends the level last heard resolved (endsAt = now). A firing alert's endsAt
is `hold` ahead, longer than the slowest repeat, so it stays firing while said again and
resolves by itself only if marginwatch stops saying it (the heartbeat covers a dead
daemon). API: POST {url}/api/v2/alerts with a JSON list, 200 on success; a 400 is the
document refused (permanent), 5xx and connection errors retry (see `webhook`).
"""

from __future__ import annotations

import socket
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from alerts.notification import Notification
from alerts.notifiers.base import plain_text
from alerts.notifiers.webhook import WebhookDestination
from monitor.engine.levels import Level

__all__ = ["AlertmanagerDestination", "alertmanager_alerts"]

ALERTNAMES = {
    "price": "MarginLevel",
    "blind": "MonitorBlind",
    "error": "ExchangeError",
    "liquidation": "ProbableLiquidation",
}
SEVERITY = {
    Level.WARN: "warning",
    Level.UNKNOWN: "warning",
    Level.CRITICAL: "critical",
    Level.IMMINENT: "critical",
}
"""Alertmanager's severity label per level; OK has none (it resolves)."""
STORAGE_ALERTNAME = "MarginwatchStorage"


class AlertmanagerDestination(WebhookDestination):
    kind = "alertmanager"

    def __init__(
        self,
        url: str,
        accounts: Sequence[str] | None = None,
        *,
        instance: str = "marginwatch",
        replica: str | None = None,
        labels: Mapping[str, str] | None = None,
        hold: float = 5 * 3600.0,
        exchanges: Mapping[str, str] | None = None,
        timeout: float = 10.0,
    ) -> None:
        super().__init__(url.rstrip("/") + "/api/v2/alerts", accounts, timeout=timeout)
        self.instance = instance
        self.replica = replica or socket.gethostname()
        self.labels = dict(labels or {})
        self.hold = hold
        self.exchanges = dict(exchanges or {})

    def wants(self, notification: Notification) -> bool:
        """A summary is a report, not an alert: it has nothing to fire or resolve."""
        return notification.kind != "summary" and super().wants(notification)

    def document(self, notification: Notification) -> object:
        return alertmanager_alerts(
            notification, instance=self.instance, replica=self.replica, labels=self.labels,
            hold=self.hold, exchanges=self.exchanges,
        )  # fmt: skip


def alertmanager_alerts(
    notification: Notification,
    *,
    instance: str,
    replica: str,
    labels: Mapping[str, str],
    hold: float,
    exchanges: Mapping[str, str],
) -> list[dict[str, Any]]:
    """The postable alerts (Alertmanager API v2) for one notification."""
    account = notification.account or ""
    said = _timestamp(notification.created)
    description = plain_text(notification)
    items = notification.items or tuple(
        (target, "storage", notification.level, "") for target in notification.targets
    )
    alerts = []
    for target, rule, level, previous in items:
        common = {
            **labels,
            "alertname": ALERTNAMES.get(rule, STORAGE_ALERTNAME),
            "account": account,
            "target": target,
            "exchange": exchanges.get(account, ""),
            "instance": instance,
        }
        annotations = {"description": description, "replica": replica}
        if previous and previous is not level and previous is not Level.OK:
            alerts.append(_alert(common, previous, annotations, said, said, resolved=True))
        if level in SEVERITY:
            ends = _timestamp(notification.created + hold)
            alerts.append(_alert(common, level, annotations, said, ends, resolved=False))
    return alerts


def _alert(
    common: dict[str, str],
    level: Level,
    annotations: dict[str, str],
    starts: str,
    ends: str,
    *,
    resolved: bool,
) -> dict[str, Any]:
    labels = {**common, "level": level, "severity": SEVERITY.get(level, "warning")}
    what = f"{level.upper()} resolved" if resolved else level.upper()
    account = f"{labels['account']} " if labels["account"] else ""
    summary = f"{account}{labels['target']}: {what}"
    labels = {key: value for key, value in labels.items() if value}  # "" = no such label
    return {
        "labels": labels,
        "annotations": {"summary": summary, **annotations},
        "startsAt": starts,
        "endsAt": ends,
    }


def _timestamp(epoch: float) -> str:
    return (
        datetime.fromtimestamp(epoch, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    )
