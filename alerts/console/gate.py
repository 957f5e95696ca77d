"""Who the console serves: allow-listed users in allow-listed chats, nobody else.

The bot's username is public, so anyone can message it; the console can change alerting
(silences), so every update passes this gate first. It runs as a `TypeHandler` in group
-1 because callback queries (the confirmation buttons) carry no filters of their own;
the command handlers also carry `filter()` so that a gate misconfiguration alone does
not open them.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from telegram import Update
from telegram.ext import ApplicationHandlerStop, ContextTypes, filters

log = logging.getLogger(__name__)


class Gate:
    """Allow-list check; `refused` counts every update turned away (for metrics)."""

    def __init__(self, chats: Iterable[int], users: Iterable[int]) -> None:
        self.chats = frozenset(chats)
        self.users = frozenset(users)
        self.refused = 0

    def allows(self, update: Update) -> bool:
        chat, user = update.effective_chat, update.effective_user
        if chat is None or user is None:
            return False
        return chat.id in self.chats and user.id in self.users

    def filter(self) -> filters.BaseFilter:
        """The same rule as a handler filter; empty lists match nobody (PTB's default)."""
        return filters.Chat(chat_id=self.chats) & filters.User(user_id=self.users)

    async def __call__(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        if self.allows(update):
            return
        self.refused += 1
        chat, user = update.effective_chat, update.effective_user
        # ids and the update's kind only: a stranger's text is not ours to keep in logs
        log.warning(
            "telegram: refused an update (%s) from chat %s, user %s",
            _kind(update), chat.id if chat else "?", user.id if user else "?",
        )  # fmt: skip
        raise ApplicationHandlerStop


def _kind(update: Update) -> str:
    if update.callback_query is not None:
        return "button"
    if update.effective_message is not None:
        return "message"
    return "other"
