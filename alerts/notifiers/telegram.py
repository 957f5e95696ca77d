"""Telegram delivery through python-telegram-bot's `ExtBot`, one destination per chat.

Why these choices:
- The daemon must start and keep monitoring while Telegram is unreachable, so nothing
  here calls `Bot.initialize()` (it calls getMe and raises when offline): the HTTP
  clients are created and closed by us, and the first send is the first request.
- `AIORateLimiter(max_retries=0)` keeps us under Telegram's global and per-group limits,
  but a 429 is handed back to the outbox instead of being slept on inside PTB: PTB's own
  retry pauses every request of the bot, whereas the outbox pauses only that chat.
- Text is sent as HTML with link previews off; a text over 4096 characters is split on
  line boundaries with open tags closed and reopened, so no part is refused as too long.
  If Telegram still cannot parse the HTML, the part is resent as plain text: a page
  with visible tags beats a page never delivered.
- The bot token is in every request URL. httpx logs URLs at INFO, so httpx/httpcore are
  quieted to WARNING, and every error text leaving this module has the token replaced.
"""

from __future__ import annotations

import html
import logging
import re
import warnings
from collections.abc import Sequence
from datetime import timedelta

from telegram import LinkPreviewOptions
from telegram.constants import ParseMode
from telegram.error import (
    BadRequest,
    ChatMigrated,
    Forbidden,
    InvalidToken,
    NetworkError,
    RetryAfter,
    TelegramError,
)
from telegram.ext import AIORateLimiter, ExtBot
from telegram.request import HTTPXRequest

from alerts.notification import Notification
from alerts.notifiers.base import (
    TEXT_FORMAT,
    Destination,
    PermanentFailure,
    RetryLater,
    html_to_plain,
)

__all__ = [
    "MAX_MESSAGE",
    "TOKEN_FILTER",
    "TelegramBot",
    "TelegramChatDestination",
    "protect_token",
    "split_html",
]

log = logging.getLogger(__name__)

MAX_MESSAGE = 4096
"""Telegram's limit, in UTF-16 code units of the text after entity parsing."""

QUIET_LOGGERS = ("httpx", "httpcore")
_TOKEN_PATTERN = re.compile(r"\d{5,}:[A-Za-z0-9_-]{30,}")
_TAG = re.compile(r"(<[^>]*>)")
_TAG_NAME = re.compile(r"^</?\s*([a-zA-Z][\w-]*)")


PTB_LOGGERS = ("telegram.Bot", "telegram.ext.ExtBot", "telegram.request.BaseRequest")
"""PTB loggers that can print the token: Bot.__init__ logs "Set Bot API URL: .../bot<token>"
at DEBUG. Logger filters are not inherited, so each is named; the console's own
Application logs through the same `telegram.ext.ExtBot` logger and is covered too."""


class TokenFilter(logging.Filter):
    """Mask bot tokens in records logged on the loggers it is attached to.

    Defence in depth: the daemon's handler-level `monitor.logs.RedactSecrets` covers
    every record only if it was given the token; this filter works even when it was
    not, and masks anything shaped like a bot token, not just the configured one.
    """

    def __init__(self) -> None:
        super().__init__()
        self.tokens: set[str] = set()

    def redact(self, text: str) -> str:
        for token in self.tokens:
            text = text.replace(token, "***")
        return _TOKEN_PATTERN.sub("***", text)

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = self.redact(message)
        if redacted != message:
            record.msg, record.args = redacted, None
        return True


TOKEN_FILTER = TokenFilter()


def protect_token(token: str) -> None:
    """Quiet httpx and mask `token` in PTB's and httpx's own records. Idempotent."""
    TOKEN_FILTER.tokens.add(token)
    for name in (*PTB_LOGGERS, *QUIET_LOGGERS):
        logger = logging.getLogger(name)
        if TOKEN_FILTER not in logger.filters:
            logger.addFilter(TOKEN_FILTER)
    for name in QUIET_LOGGERS:
        # httpx logs every request URL (with the token) at INFO: keep it to warnings.
        logger = logging.getLogger(name)
        if logger.getEffectiveLevel() < logging.WARNING:
            logger.setLevel(logging.WARNING)


class TelegramBot:
    """The one PTB bot shared by every chat destination (one connection pool, one limiter)."""

    def __init__(
        self,
        token: str,
        api_url: str | None = None,
        *,
        read_timeout: float = 10.0,
        connect_timeout: float = 5.0,
    ) -> None:
        protect_token(token)  # before ExtBot(): its constructor logs the URL
        self._token = token
        self._request = HTTPXRequest(
            connection_pool_size=32,
            read_timeout=read_timeout,
            write_timeout=read_timeout,
            connect_timeout=connect_timeout,
            pool_timeout=connect_timeout,
        )
        # getUpdates belongs to the console's Application, never to this bot; its request
        # object is only here because PTB insists on one.
        self._updates_request = HTTPXRequest(connection_pool_size=1)
        base_url = f"{api_url.rstrip('/')}/bot" if api_url else "https://api.telegram.org/bot"
        self.bot: ExtBot[None] = ExtBot(
            token,
            base_url=base_url,
            request=self._request,
            get_updates_request=self._updates_request,
            rate_limiter=AIORateLimiter(max_retries=0),
        )
        self._open = False

    async def ensure_open(self) -> None:
        """Open the HTTP clients without getMe (see the module docstring)."""
        if not self._open:
            await self._request.initialize()
            await self._updates_request.initialize()
            self._open = True

    async def close(self) -> None:
        if self._open:
            self._open = False
            await self._request.shutdown()
            await self._updates_request.shutdown()

    def redact(self, text: str) -> str:
        """Replace the token (and anything shaped like a bot token) with ***."""
        return _TOKEN_PATTERN.sub("***", text.replace(self._token, "***"))


class TelegramChatDestination(Destination):
    """One chat: its own ordered queue in the outbox, so a 429 here stalls only here."""

    def __init__(
        self, bot: TelegramBot, chat_id: int, accounts: Sequence[str] | None = None
    ) -> None:
        super().__init__(f"telegram:{chat_id}", f"telegram chat {chat_id}", accounts)
        self.telegram = bot
        self.chat_id = chat_id
        self._parts_sent: dict[str, int] = {}
        """notification id -> parts already delivered, so a retry after part 2 of 3
        failed resumes at part 2 instead of repeating part 1 (in memory: a restart
        repeats them, which the outbox documents as its at-least-once window)."""

    def redact(self, text: str) -> str:
        return self.telegram.redact(text)

    async def close(self) -> None:
        await self.telegram.close()

    async def send(self, notification: Notification) -> None:
        await self.telegram.ensure_open()
        text = notification.text if TEXT_FORMAT == "html" else html.escape(notification.text)
        parts = split_html(text)
        done = self._parts_sent.get(notification.id, 0)
        for index in range(done, len(parts)):
            await self._send_part(parts[index])
            self._parts_sent[notification.id] = index + 1
        self._parts_sent.pop(notification.id, None)

    async def _send_part(self, text: str) -> None:
        try:
            try:
                await self._send_message(text, ParseMode.HTML)
            except BadRequest as exc:
                if "parse entities" not in str(exc).lower():
                    raise
                log.warning(
                    "%s: Telegram could not parse the HTML (%s); sending as plain text",
                    self.label,
                    self.redact(str(exc)),
                )
                await self._send_message(html_to_plain(text), None)
        except RetryAfter as exc:
            raise RetryLater(f"flood control: {self.redact(str(exc))}", _seconds(exc)) from None
        except (BadRequest, Forbidden) as exc:
            raise PermanentFailure(self._describe(exc)) from None
        except ChatMigrated as exc:
            raise PermanentFailure(
                f"chat {self.chat_id} became supergroup {exc.new_chat_id}: update chat_id "
                "in the configuration"
            ) from None
        except InvalidToken as exc:
            # Not permanent: a token fixed in the configuration should still get the page
            # out before it expires. Logged as an error by the outbox on every attempt.
            raise RetryLater(f"bot token rejected: {self._describe(exc)}") from None
        except NetworkError as exc:  # includes TimedOut and 5xx / connection failures
            raise RetryLater(self._describe(exc)) from None
        except TelegramError as exc:
            raise RetryLater(self._describe(exc)) from None

    async def _send_message(self, text: str, parse_mode: str | None) -> None:
        await self.telegram.bot.send_message(
            self.chat_id,
            text,
            parse_mode=parse_mode,
            link_preview_options=LinkPreviewOptions(is_disabled=True),
        )

    def _describe(self, exc: BaseException) -> str:
        cause = exc.__cause__
        detail = f"{type(exc).__name__}: {exc}"
        if cause is not None and str(cause) and str(cause) not in str(exc):
            detail += f" ({type(cause).__name__}: {cause})"
        return self.redact(detail)


def _seconds(exc: RetryAfter) -> float:
    """RetryAfter.retry_after is int or timedelta depending on PTB_TIMEDELTA; read either."""
    value = getattr(exc, "_retry_after", None)
    if isinstance(value, timedelta):
        return value.total_seconds()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        value = exc.retry_after
    return value.total_seconds() if isinstance(value, timedelta) else float(value)


# -- splitting ---------------------------------------------------------------------------


def _units(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def _prefix_within(text: str, units: int) -> str:
    """The longest prefix of `text` of at most `units` UTF-16 code units."""
    total = 0
    for index, char in enumerate(text):
        total += 2 if ord(char) > 0xFFFF else 1
        if total > units:
            return text[:index]
    return text


def split_html(text: str, limit: int = MAX_MESSAGE) -> list[str]:
    """Split Telegram HTML into parts whose visible text fits `limit`, tags kept balanced.

    Cuts at the last newline that fits, else the last space, else mid-word. Tags open
    at a cut are closed at the end of the part and reopened at the start of the next,
    so each part parses on its own.
    """
    if _units(html_to_plain(text)) <= limit:
        return [text]
    parts: list[str] = []
    current: list[str] = []
    length = 0
    stack: list[tuple[str, str]] = []  # (name, opening tag as written)

    def flush() -> None:
        nonlocal length
        if length:
            closing = "".join(f"</{name}>" for name, _ in reversed(stack))
            parts.append("".join(current) + closing)
        current[:] = [opening for _, opening in stack]
        length = 0

    for token in _TAG.split(text):
        if not token:
            continue
        if token.startswith("<"):
            match = _TAG_NAME.match(token)
            name = match.group(1).lower() if match else ""
            if token.startswith("</"):
                if stack and stack[-1][0] == name:
                    stack.pop()
            elif name and not token.endswith("/>"):
                stack.append((name, token))
            current.append(token)
            continue
        plain = html.unescape(token)
        while plain:
            room = limit - length
            if _units(plain) <= room:
                current.append(html.escape(plain, quote=False))
                length += _units(plain)
                break
            piece = _prefix_within(plain, room)
            cut = piece.rfind("\n") + 1 or piece.rfind(" ") + 1
            if cut == 0 and length:
                flush()  # no natural break here: start a fresh part instead of cutting
                continue
            cut = cut or len(piece)
            current.append(html.escape(plain[:cut], quote=False))
            length += _units(plain[:cut])
            plain = plain[cut:]
            flush()
    flush()
    return parts
