"""The one record the alert pipeline hands to delivery: what to say, to whom, how bad.

Frozen and plain so the outbox can persist it as it is. `id` is deterministic (account,
kind, level, targets and the pipeline's sequence number), so a notification produced
again after a crash dedups against the one already queued instead of paging twice.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Literal

Kind = Literal["alert", "resolved", "summary", "reannounce"]


@dataclass(frozen=True, slots=True)
class Notification:
    id: str
    account: str | None
    """The account it is about; None for one that concerns several (a blind feed)."""
    accounts: tuple[str, ...]
    """Every account it concerns, for routing to the chats that follow them."""
    level: str
    """The worst level in it: ok, warn, unknown, critical or imminent."""
    text: str
    """Plain text, ready for Telegram without a parse mode (no markup to escape)."""
    created: float
    """Epoch seconds."""
    kind: Kind
    targets: tuple[str, ...]


def notification_id(
    account: str | None, kind: str, level: str, targets: tuple[str, ...], sequence: int
) -> str:
    material = "\x1f".join((account or "", kind, level, *targets, str(sequence)))
    return hashlib.sha256(material.encode()).hexdigest()[:20]
