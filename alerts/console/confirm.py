"""Two-step confirmation for commands that change alerting.

A silence typed by mistake hides a liquidation warning, so `/silence` and `/unsilence`
only act when their button is pressed. The button's callback data is a random nonce
(never the action itself: Telegram clients can send arbitrary callback data), it is good
once, only for the person who asked, in the chat where they asked, and only for `ttl`
seconds: an old button scrolled back to, or a replayed callback, is refused.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

from telegram import InlineKeyboardButton, InlineKeyboardMarkup

CONFIRM = "y"
CANCEL = "n"


class Outcome(StrEnum):
    DONE = "done"
    CANCELLED = "cancelled"
    EXPIRED = "expired"
    UNKNOWN = "unknown"
    """Never issued, already used, or issued before a restart."""
    NOT_YOURS = "not yours"


@dataclass(frozen=True, slots=True)
class Pending:
    action: Callable[[], str]
    """Applies the change; returns the text that replaces the question."""
    chat_id: int
    user_id: int | None
    """Who may answer; None: anyone the allow-list lets in (an approval of an action)."""
    expires: float
    on_cancel: Callable[[], None] | None = None


class Confirmations:
    """Pending actions by nonce."""

    def __init__(self, ttl: float = 60.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl = ttl
        self.clock = clock
        self._pending: dict[str, Pending] = {}

    def ask(
        self,
        chat_id: int,
        user_id: int | None,
        action: Callable[[], str],
        on_cancel: Callable[[], None] | None = None,
    ) -> InlineKeyboardMarkup:
        """Register `action`; returns the Confirm/Cancel keyboard to send with the question."""
        now = self.clock()
        self._pending = {k: p for k, p in self._pending.items() if p.expires > now}
        nonce = secrets.token_urlsafe(12)  # 16 characters: data stays far under 64 bytes
        self._pending[nonce] = Pending(action, chat_id, user_id, now + self.ttl, on_cancel)
        buttons = [
            InlineKeyboardButton("Confirm", callback_data=f"{CONFIRM}:{nonce}"),
            InlineKeyboardButton("Cancel", callback_data=f"{CANCEL}:{nonce}"),
        ]
        return InlineKeyboardMarkup([buttons])

    def resolve(self, data: str, chat_id: int, user_id: int) -> tuple[Outcome, str | None]:
        """Act on a pressed button: (outcome, the action's reply text when it ran)."""
        choice, _, nonce = data.partition(":")
        pending = self._pending.get(nonce)
        if pending is None or choice not in (CONFIRM, CANCEL) or pending.chat_id != chat_id:
            return Outcome.UNKNOWN, None
        if pending.user_id is not None and pending.user_id != user_id:
            return Outcome.NOT_YOURS, None
        del self._pending[nonce]  # good once, whatever happens next
        if self.clock() >= pending.expires:
            return Outcome.EXPIRED, None
        if choice == CANCEL:
            if pending.on_cancel is not None:
                pending.on_cancel()
            return Outcome.CANCELLED, None
        return Outcome.DONE, pending.action()
