"""`confirm` mode: an action waits for a Telegram button before anything is sent.

The question goes to every chat that sees the account; the first allowed user to press
Confirm decides. No answer within `actions.confirm_timeout`, a Cancel, or a console that
is not connected all mean the same thing: no action. Silence never places an order.
"""

from __future__ import annotations

import asyncio
import html
import logging
from collections.abc import Sequence
from typing import Protocol

from telegram import Bot

from alerts.console.confirm import Confirmations
from monitor.actions.policy import Decision
from monitor.daemon.plugins import DaemonState

log = logging.getLogger(__name__)


class ConnectedBot(Protocol):
    @property
    def bot(self) -> Bot | None:
        """The connected bot, or None while Telegram is not reachable."""
        ...


class Approvals:
    """The controller's `confirmer`: ask, wait, answer True only on an explicit yes."""

    def __init__(
        self, daemon: DaemonState, console: ConnectedBot, confirmations: Confirmations
    ) -> None:
        self.daemon = daemon
        self.console = console
        self.confirmations = confirmations

    def _chats(self, account: str) -> list[int]:
        telegram = self.daemon.config.notifiers.telegram
        if telegram is None:
            return []
        return [c.chat_id for c in telegram.chats if c.accounts is None or account in c.accounts]

    async def __call__(self, decisions: Sequence[Decision]) -> bool:
        bot = self.console.bot
        account = decisions[0].account
        chats = self._chats(account)
        if bot is None or not chats:
            log.warning("%s: confirmation needed but Telegram is not connected: no action", account)
            return False
        answer: asyncio.Future[bool] = asyncio.get_running_loop().create_future()

        def approve() -> str:
            if not answer.done():
                answer.set_result(True)
            return "✅ approved: sending now"

        def refuse() -> None:
            if not answer.done():
                answer.set_result(False)

        question = "\n".join(
            [f"🛡 <b>{html.escape(account)}</b>: auto-deleverage asks to act:"]
            + [f"• {html.escape(d.describe())}" for d in decisions]
        )
        timeout = self.daemon.config.account(account).actions.confirm_timeout
        for chat in chats:
            markup = self.confirmations.ask(chat, None, approve, refuse)
            try:
                await bot.send_message(chat, question, parse_mode="HTML", reply_markup=markup)
            except Exception as exc:
                log.warning("%s: could not ask chat %s: %s", account, chat, type(exc).__name__)
        try:
            return await asyncio.wait_for(answer, timeout)
        except TimeoutError:
            log.warning("%s: no confirmation within %.0f s: no action", account, timeout)
            return False
