"""What the outbox needs from a destination, and the two ways a delivery can fail.

Why destinations and not notifiers: the outbox keeps one ordered queue and one worker
per destination (one Telegram chat, one webhook URL, the console), so a chat that is
flood-limited or a webhook that is down never holds back a page to anybody else. A
notifier (the Telegram bot, say) is shared by several destinations.

A destination's `send` either returns (delivered), or raises `RetryLater` (transient:
the outbox backs off, or waits exactly `after` seconds when the far end said so), or
`PermanentFailure` (retrying cannot help: the row is closed and the failure logged).
Any other exception is treated as transient, since losing a page to a bug in error
mapping would be worse than retrying it.
"""

from __future__ import annotations

import html
import re
from abc import ABC, abstractmethod
from collections.abc import Iterable
from dataclasses import asdict, fields
from typing import Any, Literal

from alerts.notification import Notification
from monitor.engine.levels import Level

__all__ = [
    "TEXT_FORMAT",
    "DeliveryError",
    "Destination",
    "PermanentFailure",
    "RetryLater",
    "html_to_plain",
    "notification_from_payload",
    "notification_payload",
    "plain_text",
    "routed_accounts",
]

TEXT_FORMAT: Literal["plain", "html"] = "plain"
"""What `Notification.text` holds. alerts/notification.py documents plain text (no markup
to escape); the Telegram notifier escapes it and sends HTML, so either way the text is
shown exactly. Flip to "html" if the pipeline starts writing Telegram HTML."""

_TAG = re.compile(r"<[^>]*>")


class DeliveryError(Exception):
    """A delivery attempt that did not deliver. Messages must carry no secret."""


class RetryLater(DeliveryError):
    """Transient: try again, after `after` seconds if the far end said how long."""

    def __init__(self, reason: str, after: float | None = None) -> None:
        super().__init__(reason)
        self.after = after


class PermanentFailure(DeliveryError):
    """Retrying the same request cannot succeed (chat gone, bot blocked, 4xx)."""


class Destination(ABC):
    """One ordered delivery queue's far end."""

    key: str
    """Stable across restarts and config reorderings: rows in the outbox are keyed by it."""
    label: str
    """For logs: says where without revealing a secret (no token, no webhook path)."""

    def __init__(self, key: str, label: str, accounts: Iterable[str] | None = None) -> None:
        self.key = key
        self.label = label
        self.accounts = None if accounts is None else frozenset(accounts)

    def wants(self, notification: Notification) -> bool:
        """Whether this destination hears about the notification's accounts.

        A notification naming no account at all (the daemon itself, say) goes everywhere:
        nobody should miss that their monitor is blind.
        """
        if self.accounts is None:
            return True
        concerned = routed_accounts(notification)
        return not concerned or bool(concerned & self.accounts)

    @abstractmethod
    async def send(self, notification: Notification) -> None:
        """Deliver once, or raise RetryLater / PermanentFailure."""

    async def close(self) -> None:  # noqa: B027 - optional hook, most need nothing
        """Release connections; the outbox calls it once on stop."""

    def redact(self, text: str) -> str:
        """Remove this destination's secrets from an error text before it is logged/stored."""
        return text


def routed_accounts(notification: Notification) -> frozenset[str]:
    accounts = set(getattr(notification, "accounts", ()) or ())
    if notification.account:
        accounts.add(notification.account)
    return frozenset(accounts)


def html_to_plain(text: str) -> str:
    """Telegram HTML -> the text a reader sees (tags dropped, entities decoded)."""
    return html.unescape(_TAG.sub("", text))


def plain_text(notification: Notification) -> str:
    """The notification's text without markup, whatever TEXT_FORMAT is."""
    return notification.text if TEXT_FORMAT == "plain" else html_to_plain(notification.text)


def notification_payload(notification: Notification) -> dict[str, Any]:
    """The JSON document stored in the outbox row."""
    return asdict(notification)


def notification_from_payload(payload: dict[str, Any]) -> Notification:
    """Rebuild a Notification from a stored row, tolerating fields added or removed since."""
    values: dict[str, Any] = {}
    for spec in fields(Notification):
        if spec.name in payload:
            value = payload[spec.name]
            if spec.name == "items":  # a tuple of tuples, stored as lists of lists
                value = tuple(
                    (target, rule, Level(level), Level(heard) if heard else "")
                    for target, rule, level, heard in value
                )
            elif spec.name == "level":
                value = Level(value)
            values[spec.name] = tuple(value) if isinstance(value, list) else value
        elif spec.name == "accounts":
            values["accounts"] = (payload["account"],) if payload.get("account") else ()
    return Notification(**values)
