"""`marginwatch telegram setup|test`: from a BotFather token to a delivered page.

Why both: a trader's first question is "what is my chat id?", and the second is "will
a page actually reach my phone?". `setup` answers the first from the bot's own
getUpdates (the chats and users that wrote to it, printed as YAML to paste) after
checking the token with getMe. `test` answers the second through the same path a real
page takes: the durable outbox (alerts/outbox.py), its retries and its error mapping,
to every configured chat, and reports per chat what happened.

`setup` reads updates without confirming them (no offset), so nothing is taken from
the daemon's console; while `marginwatch run` polls the same bot, Telegram refuses a
second reader (409), and `setup` says so.
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import sys
import tempfile
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from telegram import Update, User
from telegram.error import Conflict, InvalidToken, NetworkError, TelegramError

from alerts.notification import Notification
from alerts.notifiers.telegram import TelegramBot, TelegramChatDestination
from alerts.outbox import Outbox
from alerts.store import Store
from monitor.cli_args import EXIT_CONFIG
from monitor.config import Config, ConfigError, load_config
from monitor.config.loader import load_telegram_access
from monitor.config.schema import TelegramConfig
from monitor.engine.levels import Level
from monitor.logs import configure_logging

EXIT_FAILED = 1
EXIT_UNAVAILABLE = 69
"""EX_UNAVAILABLE: Telegram (or the configured Bot API server) could not be reached."""


# -- setup -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Sender:
    """A chat or a user seen in the bot's updates."""

    id: int
    kind: str
    """private, group, supergroup, channel, or user."""
    name: str


@dataclass(frozen=True, slots=True)
class Discovery:
    bot: User
    chats: list[Sender]
    users: list[Sender]


def cmd_setup(args: argparse.Namespace) -> int:
    try:
        access = load_telegram_access(args.config)
    except ConfigError as exc:
        print(f"marginwatch: invalid configuration {args.config}:\n{exc}", file=sys.stderr)
        return EXIT_CONFIG
    configure_logging("WARNING", secrets=[access.bot_token.reveal()])
    bot = TelegramBot(access.bot_token.reveal(), access.api_url)
    try:
        found = asyncio.run(discover(bot))
    except SetupError as exc:
        print(f"marginwatch: {exc}", file=sys.stderr)
        return exc.exit_code
    sys.stdout.write(describe(found, args.config))
    return 0


class SetupError(Exception):
    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code


async def discover(bot: TelegramBot) -> Discovery:
    """getMe, then the pending updates (read, not confirmed)."""
    await bot.ensure_open()
    try:
        me = await bot.bot.get_me()
        updates = await bot.bot.get_updates(timeout=0, allowed_updates=Update.ALL_TYPES)
    except InvalidToken as exc:
        raise SetupError(
            f"the bot token was refused ({bot.redact(str(exc))}): copy it again from "
            "@BotFather (/mybots, API Token) into bot_token_file or bot_token",
            EXIT_CONFIG,
        ) from None
    except Conflict:
        raise SetupError(
            "another process is reading this bot's updates (a running `marginwatch run` "
            "with commands: true, or a webhook): stop it and run setup again",
            EXIT_FAILED,
        ) from None
    except NetworkError as exc:
        raise SetupError(
            f"cannot reach the Bot API: {bot.redact(str(exc))}", EXIT_UNAVAILABLE
        ) from None
    except TelegramError as exc:
        raise SetupError(f"Telegram refused: {bot.redact(str(exc))}", EXIT_FAILED) from None
    finally:
        await bot.close()
    chats, users = senders(updates)
    return Discovery(me, chats, users)


def senders(updates: Iterable[Update]) -> tuple[list[Sender], list[Sender]]:
    """Distinct chats and human users, in the order they first wrote."""
    chats: dict[int, Sender] = {}
    users: dict[int, Sender] = {}
    for update in updates:
        chat, user = update.effective_chat, update.effective_user
        if chat is not None and chat.id not in chats:
            name = chat.title or chat.full_name or chat.username or ""
            chats[chat.id] = Sender(chat.id, chat.type, name)
        if user is not None and not user.is_bot and user.id not in users:
            handle = f" @{user.username}" if user.username else ""
            users[user.id] = Sender(user.id, "user", f"{user.full_name}{handle}")
    return list(chats.values()), list(users.values())


def describe(found: Discovery, config: str) -> str:
    """What to paste, or what to do first."""
    lines = [f"Token OK: the bot is @{found.bot.username} (id {found.bot.id})."]
    if not found.chats:
        lines += [
            "",
            "Nobody has written to the bot yet (or the messages are older than 24 h).",
            f"Open https://t.me/{found.bot.username}, send it /start (in a group: add the",
            "bot, then send /start@" + f"{found.bot.username}), and run this again.",
        ]
        return "\n".join(lines) + "\n"
    lines += ["", "Chats that wrote to the bot:"]
    lines += [f"  {c.id:>15}  {c.kind:<10}  {c.name}" for c in found.chats]
    lines += ["", "Users (allowed_users may run /silence, /pause, ...):"]
    lines += [f"  {u.id:>15}  {u.name}" for u in found.users]
    snippet = {
        "chats": [{"chat_id": c.id, "accounts": None} for c in found.chats],
        "allowed_users": [u.id for u in found.users],
    }
    text = yaml.safe_dump(snippet, sort_keys=False, default_flow_style=None)
    lines += [
        "",
        "Paste under notifiers.telegram, next to bot_token_file (drop whom you do not",
        "want paged; `accounts: null` means every account):",
        "",
    ]
    lines += ["    " + line for line in text.splitlines()]
    lines += ["", f"Then: marginwatch telegram test --config {config}"]
    return "\n".join(lines) + "\n"


# -- test ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Delivery:
    chat_id: int
    outcome: str
    """delivered, refused, or pending."""
    detail: str


def cmd_test(args: argparse.Namespace) -> int:
    try:
        config = load_config(args.config)
    except ConfigError as exc:
        print(f"marginwatch: invalid configuration {args.config}:\n{exc}", file=sys.stderr)
        return EXIT_CONFIG
    if config.notifiers.telegram is None:
        print(
            "marginwatch: notifiers.telegram is not configured; see config.example.yaml and "
            "`marginwatch telegram setup`",
            file=sys.stderr,
        )
        return EXIT_CONFIG
    configure_logging("WARNING", secrets=[config.notifiers.telegram.bot_token.reveal()])
    results = asyncio.run(send_test_page(config, config.notifiers.telegram, args.timeout))
    for result in results:
        print(f"telegram chat {result.chat_id}: {result.outcome}{result.detail}")
    return 0 if all(r.outcome == "delivered" for r in results) else EXIT_FAILED


def test_text(config: Config) -> str:
    host = socket.gethostname()
    accounts = ", ".join(a.name for a in config.accounts)
    sent = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())
    return (
        f"marginwatch test page from {host}, sent {sent}.\n"
        f"Pages for these accounts come here: {accounts} (unless the chat's `accounts` "
        f"narrows them). Nothing is wrong; no reply is needed."
    )


async def send_test_page(
    config: Config, telegram: TelegramConfig, timeout: float
) -> list[Delivery]:
    """One test notification through a real Outbox to every configured chat."""
    bot = TelegramBot(telegram.bot_token.reveal(), telegram.api_url)
    destinations = [TelegramChatDestination(bot, chat.chat_id) for chat in telegram.chats]
    with tempfile.TemporaryDirectory(prefix="marginwatch-telegram-test-") as state:
        store = Store.open(Path(state))
        outbox = Outbox(store, destinations, expire_after=timeout + 60.0, backoff_cap=5.0)
        notification = Notification(
            id=f"test-{uuid.uuid4().hex[:12]}",
            account=None,
            accounts=(),
            level=Level.OK,
            text=test_text(config),
            created=time.time(),
            kind="summary",
            targets=(),
        )
        outbox.enqueue(notification)
        await outbox.start()
        try:
            await outbox.drain(timeout)
        finally:
            await outbox.stop()
            rows = {row.destination: row for row in store.outbox_all()}
            store.close()
    return [_delivery(d.chat_id, rows.get(d.key)) for d in destinations]


def _delivery(chat_id: int, row: Any) -> Delivery:
    if row is None:
        return Delivery(chat_id, "pending", " (never queued)")
    if row.delivered_at is not None:
        attempts = f" after {row.attempts} attempts" if row.attempts > 1 else ""
        return Delivery(chat_id, "delivered", attempts)
    if row.failed_at is not None:
        return Delivery(chat_id, "refused", f": {row.last_error}")
    last = f", last error: {row.last_error}" if row.last_error else ""
    return Delivery(chat_id, "pending", f" ({row.attempts} attempts{last})")
