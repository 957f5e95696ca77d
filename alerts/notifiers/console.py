"""The console destination: one log line per notification.

Why it goes through the outbox like the others: the log then shows pages in the same
order and with the same ids as Telegram receives them, which is what an operator
reading the journal after an incident needs. It cannot fail, so it never retries.
"""

from __future__ import annotations

import logging

from alerts.notification import Notification
from alerts.notifiers.base import Destination, plain_text
from monitor.engine.levels import Level

__all__ = ["ConsoleDestination"]

log = logging.getLogger("marginwatch.notify")

_LEVELS = {
    Level.IMMINENT: logging.CRITICAL,
    Level.CRITICAL: logging.ERROR,
    Level.UNKNOWN: logging.WARNING,
    Level.WARN: logging.WARNING,
}
"""The log level a notification is written at; INFO for the others (OK)."""


class ConsoleDestination(Destination):
    def __init__(self) -> None:
        super().__init__("console", "console")

    async def send(self, notification: Notification) -> None:
        level = (
            logging.INFO
            if notification.kind == "resolved"
            else _LEVELS.get(notification.level, logging.INFO)
        )
        text = " | ".join(line for line in plain_text(notification).splitlines() if line.strip())
        log.log(
            level,
            "[%s %s] %s: %s",
            notification.kind,
            notification.level,
            notification.account or ", ".join(getattr(notification, "accounts", ())) or "-",
            text,
        )
