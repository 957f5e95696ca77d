"""The one record the alert pipeline hands to delivery: what to say, to whom, how bad.

Frozen and plain so the outbox can persist it as it is. `id` is derived from what the
notification says (the identities of its items: account, target, kind, the exchange's
order id or the level transition, see `alerts.rules.said_identity`), so a notification
produced again after a crash dedups against the one already queued instead of paging
twice, whatever else happened in between.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from monitor.engine.levels import Level

Kind = Literal["alert", "resolved", "summary", "reannounce"]


@dataclass(frozen=True, slots=True)
class Notification:
    id: str
    account: str | None
    """The account it is about; None for one that concerns several (a blind feed)."""
    accounts: tuple[str, ...]
    """Every account it concerns, for routing to the chats that follow them."""
    level: Level
    """The worst level in it."""
    text: str
    """Plain text, ready for Telegram without a parse mode (no markup to escape)."""
    created: float
    """Epoch seconds."""
    kind: Kind
    targets: tuple[str, ...]
    items: tuple[tuple[str, str, Level, Level | Literal[""]], ...] = ()
    """Per item, in the text's order: (target, rule, level now, level the user heard before
    or "", as it has always been stored). For destinations that keep one alert per target
    (Alertmanager); empty on a notification that is not about targets (a summary, the
    storage failure)."""


def notification_id(kind: str, identities: Iterable[str]) -> str:
    material = "\x1e".join((kind, *sorted(identities)))
    return hashlib.sha256(material.encode()).hexdigest()[:20]
