"""The Telegram console: a PTB Application living inside the daemon's asyncio loop.

Monitoring must never wait on Telegram. `start()` returns at once; a background task
connects (PTB's `initialize()` calls getMe, which fails while the Bot API is
unreachable) and retries with exponential backoff until it answers. Once polling runs,
PTB's updater rides out later outages by itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable

from telegram import Bot, BotCommand, BotCommandScopeChat, Update
from telegram.error import TelegramError
from telegram.ext import (
    AIORateLimiter,
    Application,
    ApplicationBuilder,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    TypeHandler,
)

from alerts.console.commands import COMMANDS, Commands
from alerts.console.confirm import Confirmations
from alerts.console.gate import Gate
from alerts.console.ports import HistorySource, SilenceBook
from alerts.notifiers.telegram import protect_token
from monitor.aio import cancel_and_wait
from monitor.config.schema import TelegramConfig
from monitor.daemon.plugins import PluginHost

log = logging.getLogger(__name__)

POLL_TIMEOUT = 30
"""getUpdates long-poll seconds (an integer in the Bot API): one idle request per 30 s,
and a command is still seen at once."""


class Console:
    """Serves the allow-listed chats' commands; `refused` counts turned-away updates."""

    def __init__(
        self,
        host: PluginHost,
        silences: SilenceBook,
        store: HistorySource,
        *,
        confirm_ttl: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
        retry: tuple[float, float] = (1.0, 60.0),
    ) -> None:
        self.host = host
        self.retry = retry
        self.confirmations = Confirmations(confirm_ttl, clock)
        self.commands = Commands(host, silences, store, self.confirmations)
        self.connect_failures = 0
        """Failed connection attempts since start (getMe or polling setup)."""
        self.serving = asyncio.Event()
        self._config = host.config.notifiers.telegram
        self.gate = Gate(*_allow_list(self._config))
        self._app: Application | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def refused(self) -> int:
        return self.gate.refused

    @property
    def bot(self) -> Bot | None:
        """The connected bot, or None while the console is not serving."""
        return self._app.bot if self._app is not None and self.serving.is_set() else None

    # --- lifecycle -----------------------------------------------------------------

    async def start(self) -> None:
        """Never blocks: connecting happens in the background."""
        if self._config is None or not self._config.commands:
            log.info("telegram console off (no telegram notifier, or commands: false)")
            return
        self._app = self._build(self._config)
        self._task = asyncio.create_task(self._serve(self._app), name="telegram-console")

    async def stop(self) -> None:
        if self._task is not None:
            await cancel_and_wait(self._task)
            self._task = None
        if self._app is not None:
            await _close(self._app)
            self._app = None
        self.serving.clear()

    async def reloaded(self) -> None:
        """A reload may change the token, the chats or the users: rebuild only then."""
        config = self.host.config.notifiers.telegram
        if config == self._config:
            return
        await self.stop()
        self._config = config
        self.gate.chats, self.gate.users = _allow_list(config)  # the count carries on
        await self.start()

    # --- internals -----------------------------------------------------------------

    def _build(self, config: TelegramConfig) -> Application:
        token = config.bot_token.reveal()
        protect_token(token)  # before the builder: PTB logs the URL, token included
        builder = ApplicationBuilder().token(token)
        if config.api_url is not None:
            builder = builder.base_url(f"{config.api_url}/bot")
            builder = builder.base_file_url(f"{config.api_url}/file/bot")
        app = builder.rate_limiter(AIORateLimiter()).build()
        app.add_handler(TypeHandler(Update, self.gate), group=-1)
        allowed = self.gate.filter()
        for name in COMMANDS:
            app.add_handler(CommandHandler(name, getattr(self.commands, name), allowed))
        app.add_handler(CallbackQueryHandler(self.commands.button))
        app.add_error_handler(_failed)
        return app

    async def _serve(self, app: Application) -> None:
        delay, ceiling = self.retry
        while True:
            try:
                await self._open(app)
                break
            except Exception as exc:  # whatever it is, retrying beats giving up the console
                self.connect_failures += 1
                with contextlib.suppress(Exception):  # tidying a half-open app is best effort
                    await _close(app)
                # the class only: PTB's InvalidToken message quotes the token
                log.warning(
                    "telegram console: Bot API unreachable (%s); retry in %.1f s",
                    type(exc).__name__, delay,
                )  # fmt: skip
                await asyncio.sleep(delay)
                delay = min(ceiling, delay * 2)
        self.serving.set()
        log.info("telegram console serving %d chat(s)", len(self.gate.chats))
        await self._advertise(app)

    async def _open(self, app: Application) -> None:
        await app.initialize()
        await app.start()
        assert app.updater is not None  # ApplicationBuilder always makes one
        # Commands typed while the console was away are dropped: answers to a backlog
        # arrive out of context, and a stale /silence is better re-sent than replayed.
        await app.updater.start_polling(
            timeout=POLL_TIMEOUT,
            allowed_updates=[Update.MESSAGE, Update.CALLBACK_QUERY],
            drop_pending_updates=True,
            error_callback=_polling_failed,
        )

    async def _advertise(self, app: Application) -> None:
        """The command menu, only in allow-listed chats; cosmetic, so failure is logged."""
        menu = [BotCommand(name, about) for name, about in COMMANDS.items()]
        for chat_id in sorted(self.gate.chats):
            try:
                await app.bot.set_my_commands(menu, scope=BotCommandScopeChat(chat_id))
            except TelegramError as exc:
                log.info("telegram console: command menu for chat %s not set (%s)", chat_id, exc)


def _allow_list(config: TelegramConfig | None) -> tuple[frozenset[int], frozenset[int]]:
    """(chat ids, user ids) served; nothing without a telegram section."""
    if config is None:
        return frozenset(), frozenset()
    return frozenset(c.chat_id for c in config.chats), frozenset(config.allowed_users)


async def _close(app: Application) -> None:
    """Undo whatever part of `_open` happened; safe to call in any state."""
    if app.updater is not None and app.updater.running:
        await app.updater.stop()
    if app.running:
        await app.stop()
    await app.shutdown()
    await app.bot.shutdown()  # a failed initialize() leaves the HTTP clients open


def _polling_failed(exc: TelegramError) -> None:
    log.warning("telegram console: polling failed (%s); PTB retries", type(exc).__name__)


async def _failed(update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
    log.error("telegram console: a command failed", exc_info=context.error)
    if isinstance(update, Update) and update.effective_message is not None:
        with contextlib.suppress(TelegramError):
            await update.effective_message.reply_text("⚠️ that failed; the daemon log says why")
