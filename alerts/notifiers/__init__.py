"""Delivery destinations built from `config.notifiers`."""

from __future__ import annotations

from collections.abc import Mapping

from alerts.notifiers.alertmanager import AlertmanagerDestination
from alerts.notifiers.base import Destination, PermanentFailure, RetryLater
from alerts.notifiers.console import ConsoleDestination
from alerts.notifiers.telegram import TelegramBot, TelegramChatDestination
from alerts.notifiers.webhook import WebhookDestination
from monitor.config.schema import NotifiersConfig

__all__ = [
    "AlertmanagerDestination",
    "ConsoleDestination",
    "Destination",
    "PermanentFailure",
    "RetryLater",
    "TelegramBot",
    "TelegramChatDestination",
    "WebhookDestination",
    "build_destinations",
]


def build_destinations(
    config: NotifiersConfig, exchanges: Mapping[str, str] | None = None
) -> list[Destination]:
    """Every destination the configuration names; constructing them does no I/O.

    `exchanges` (account name -> exchange id) labels Alertmanager's alerts.

    All chats share one `TelegramBot` (one connection pool and one rate limiter, as
    Telegram's limits are per bot).
    """
    destinations: list[Destination] = []
    if config.console:
        destinations.append(ConsoleDestination())
    if config.telegram is not None:
        bot = TelegramBot(config.telegram.bot_token.reveal(), config.telegram.api_url)
        destinations.extend(
            TelegramChatDestination(bot, chat.chat_id, chat.accounts)
            for chat in config.telegram.chats
        )
    for webhook in config.webhooks:
        destinations.append(WebhookDestination(webhook.url, webhook.accounts))
    if (am := config.alertmanager) is not None:
        destinations.extend(
            AlertmanagerDestination(
                url,
                am.accounts,
                instance=am.instance,
                replica=am.replica,
                labels=am.labels,
                hold=am.hold,
                exchanges=exchanges,
            )
            for url in am.url
        )
    return destinations
