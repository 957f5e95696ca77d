"""A local Telegram Bot API server speaking enough of the Bot API for unmodified PTB 22.

Why it exists: marginwatch pages a trader through python-telegram-bot, and the tests must
never reach api.telegram.org. The most honest test is PTB itself (its own request
encoding, JSON parsing and error mapping) talking to a server that answers the way
Telegram does: same paths (`/bot<token>/<method>`, GET or POST), same envelope
`{"ok": true, "result": ...}` / `{"ok": false, "error_code": N, "description": "..."}`,
the same HTTP statuses (PTB maps errors from the status: 401/404 -> InvalidToken,
400 -> BadRequest, 403 -> Forbidden, 429 + `parameters.retry_after` -> RetryAfter,
502 -> NetworkError).

Point PTB at it with `Bot(token, base_url=f"{base_url}/bot")` (or
`ApplicationBuilder().token(T).base_url(f"{base_url}/bot")`).

Served methods: getMe, sendMessage, sendPhoto (multipart upload), sendChatAction,
getUpdates (offset / limit / timeout long-poll), answerCallbackQuery, editMessageText,
editMessageReplyMarkup, deleteMessage, setMyCommands, getMyCommands, deleteMyCommands,
deleteWebhook, getWebhookInfo, close, logOut. Anything else answers 404 like Telegram.

Fault injection (mutate `BotApiState` between or during calls):
    outage = True           every request answers 502 Bad Gateway (outage_mode="502", what
                            Telegram's nginx front answers) or has its connection dropped
                            without a response (outage_mode="drop" -> httpx RemoteProtocolError)
    flood[chat_id] = N      the next send/edit to that chat answers 429 retry_after=N, once
    fail[chat_id] = (code, description)   every send/edit to that chat fails permanently,
                            e.g. (403, "Forbidden: bot was blocked by the user")
    latency = s             every answer is delayed (to catch senders that block each other)

Telegram behaviours modelled because senders trip over them: HTML parse_mode is checked
(unknown or unbalanced tags -> 400 "can't parse entities"), text over 4096 characters
after entity parsing -> 400 "message is too long", editing with identical content -> 400
"message is not modified", unknown message -> 400 "message to edit not found".

Not verified against the live Bot API: the exact wording of the HTML parse errors (only
the "Bad Request: can't parse entities" prefix is stable) and the UTF-16 length rule is
applied to the plain text, which is how Telegram documents it.
"""

from __future__ import annotations

import asyncio
import contextlib
import html
import itertools
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import Any, Literal

import orjson
from aiohttp import web

from monitor.simulator.http import LocalServer

__all__ = [
    "FIXTURE_TOKEN",
    "BotApiError",
    "BotApiState",
    "RecordedCall",
    "create_app",
    "telegram_server",
]

FIXTURE_TOKEN = "123456789:AAFixtureTokenForTheLocalBotApi_000"
BOT_USER_ID = 123456789
MAX_TEXT_LENGTH = 4096
MAX_CAPTION_LENGTH = 1024

# Parameters Telegram expects as JSON-serialized objects inside form fields.
_JSON_PARAMS = frozenset(
    {
        "reply_markup",
        "allowed_updates",
        "commands",
        "scope",
        "entities",
        "caption_entities",
        "link_preview_options",
        "reply_parameters",
    }
)
_INT_PARAMS = frozenset(
    {"message_id", "offset", "limit", "timeout", "user_id", "cache_time", "message_thread_id"}
)
_BOOL_PARAMS = frozenset(
    {"disable_notification", "protect_content", "show_alert", "drop_pending_updates"}
)
_ALLOWED_TAGS = frozenset(
    {
        "b",
        "strong",
        "i",
        "em",
        "u",
        "ins",
        "s",
        "strike",
        "del",
        "span",
        "tg-spoiler",
        "a",
        "code",
        "pre",
        "blockquote",
        "tg-emoji",
    }
)


class BotApiError(Exception):
    """An error answer: HTTP status = error_code, as Telegram does."""

    def __init__(self, code: int, description: str, parameters: dict[str, Any] | None = None):
        super().__init__(description)
        self.code = code
        self.description = description
        self.parameters = parameters


@dataclass
class RecordedCall:
    """One request as the server saw it (never the token); status 502 also for "drop"."""

    method: str
    params: dict[str, Any]
    time: float
    status: int = 200


@dataclass(repr=False)
class BotApiState:
    """Everything the server knows; tests read and mutate it directly."""

    token: str = FIXTURE_TOKEN
    username: str = "marginwatch_test_bot"
    clock: Callable[[], float] = time.time
    outage: bool = False
    outage_mode: Literal["502", "drop"] = "502"
    flood: dict[int, int] = field(default_factory=dict)
    fail: dict[int, tuple[int, str]] = field(default_factory=dict)
    latency: float = 0.0
    sent: list[dict[str, Any]] = field(default_factory=list)
    """Every delivered sendMessage/sendPhoto: method, chat_id, text (as sent, HTML), plain,
    parse_mode, reply_markup, time, message_id (+ caption, photo_size for photos)."""
    edits: list[dict[str, Any]] = field(default_factory=list)
    deleted: list[tuple[int, int]] = field(default_factory=list)
    answered_callbacks: list[dict[str, Any]] = field(default_factory=list)
    chat_actions: list[tuple[int, str]] = field(default_factory=list)
    commands: list[dict[str, Any]] = field(default_factory=list)
    requests: list[RecordedCall] = field(default_factory=list)
    updates: list[dict[str, Any]] = field(default_factory=list)
    """Pending updates (not yet confirmed by a getUpdates offset)."""
    messages: dict[tuple[int, int], dict[str, Any]] = field(default_factory=dict)
    """Current content of every message in every chat, keyed by (chat_id, message_id)."""
    _next_update_id: itertools.count = field(default_factory=lambda: itertools.count(1))
    _next_message_id: dict[int, int] = field(default_factory=dict)
    _next_callback_id: itertools.count = field(default_factory=lambda: itertools.count(1))
    _new_update: asyncio.Event | None = None
    _closing: bool = False

    def __repr__(self) -> str:  # short: pytest prints it on every failure
        return (
            f"BotApiState(sent={len(self.sent)}, requests={len(self.requests)}, "
            f"pending_updates={len(self.updates)}, outage={self.outage}, flood={self.flood})"
        )

    # -- injecting updates -------------------------------------------------------------

    def push_message(self, chat_id: int, user_id: int, text: str) -> dict[str, Any]:
        """Inject a message from a user; '/cmd' texts carry a bot_command entity like Telegram."""
        message = {
            "message_id": self._message_id(chat_id),
            "from": _user(user_id),
            "chat": _chat(chat_id, user_id),
            "date": int(self.clock()),
            "text": text,
        }
        if text.startswith("/"):
            command = text.split()[0]
            message["entities"] = [
                {"type": "bot_command", "offset": 0, "length": _utf16_len(command)}
            ]
        self.messages[(chat_id, message["message_id"])] = message
        return self._push_update({"message": message})

    def push_callback(
        self, chat_id: int, user_id: int, data: str, message_id: int
    ) -> dict[str, Any]:
        """Inject a button press on one of the bot's messages (callback_query update)."""
        message = self.messages.get((chat_id, message_id)) or {
            "message_id": message_id,
            "from": self._bot_user(),
            "chat": _chat(chat_id, user_id),
            "date": int(self.clock()),
            "text": "",
        }
        query = {
            "id": str(next(self._next_callback_id)),
            "from": _user(user_id),
            "chat_instance": str(chat_id),
            "message": message,
            "data": data,
        }
        return self._push_update({"callback_query": query})

    def texts(self, chat_id: int | None = None) -> list[str]:
        """The texts (or captions) delivered, in order, optionally to one chat."""
        return [
            m.get("text") or m.get("caption") or ""
            for m in self.sent
            if chat_id is None or m["chat_id"] == chat_id
        ]

    def calls(self, method: str) -> list[RecordedCall]:
        return [r for r in self.requests if r.method == method]

    # -- internals ---------------------------------------------------------------------

    def _push_update(self, payload: dict[str, Any]) -> dict[str, Any]:
        update = {"update_id": next(self._next_update_id), **payload}
        self.updates.append(update)
        if self._new_update is not None:
            self._new_update.set()
        return update

    def _message_id(self, chat_id: int) -> int:
        value = self._next_message_id.get(chat_id, 1)
        self._next_message_id[chat_id] = value + 1
        return value

    def _bot_user(self) -> dict[str, Any]:
        return {
            "id": BOT_USER_ID,
            "is_bot": True,
            "first_name": "marginwatch",
            "username": self.username,
        }

    def _wake_pollers(self) -> None:
        if self._new_update is not None:
            self._new_update.set()


def _user(user_id: int) -> dict[str, Any]:
    return {"id": user_id, "is_bot": False, "first_name": f"user{user_id}"}


def _chat(chat_id: int, user_id: int | None = None) -> dict[str, Any]:
    if chat_id > 0:
        return {"id": chat_id, "type": "private", "first_name": f"user{user_id or chat_id}"}
    kind = "supergroup" if str(chat_id).startswith("-100") else "group"
    return {"id": chat_id, "type": kind, "title": f"chat{chat_id}"}


def _utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


class _HtmlChecker(HTMLParser):
    """Telegram's HTML subset: known tags only, properly nested; yields the plain text."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.plain: list[str] = []
        self.error: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in _ALLOWED_TAGS:
            self.error = self.error or f'Unsupported start tag "{tag}"'
        self.stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if not self.stack or self.stack[-1] != tag:
            self.error = self.error or f'Unmatched end tag "{tag}"'
            return
        self.stack.pop()

    def handle_data(self, data: str) -> None:
        self.plain.append(data)


def _plain_text(text: str, parse_mode: str | None) -> str:
    """The text after entity parsing, or BotApiError 400 like Telegram's parser."""
    if parse_mode is None:
        return text
    if parse_mode.upper() != "HTML":
        return text  # Markdown modes are not modelled; counted as-is.
    checker = _HtmlChecker()
    checker.feed(text)
    checker.close()
    if checker.error is None and checker.stack:
        checker.error = f'Can\'t find end tag corresponding to start tag "{checker.stack[-1]}"'
    if checker.error is not None:
        raise BotApiError(400, f"Bad Request: can't parse entities: {checker.error}")
    return html.unescape("".join(checker.plain))


# -- request parsing -------------------------------------------------------------------


async def _read_params(request: web.Request) -> tuple[dict[str, Any], dict[str, bytes]]:
    """Parameters from the query string, a form (urlencoded or multipart) or a JSON body."""
    raw: dict[str, Any] = dict(request.query)
    files: dict[str, bytes] = {}
    if request.method == "POST" and request.can_read_body:
        if request.content_type == "application/json":
            body = await request.read()
            raw.update(orjson.loads(body) if body else {})
        else:
            form = await request.post()
            for key, value in form.items():
                if isinstance(value, web.FileField):
                    files[key] = value.file.read()
                else:
                    raw[key] = value
    return {k: _coerce(k, v) for k, v in raw.items()}, files


def _coerce(key: str, value: Any) -> Any:
    if not isinstance(value, str):
        return value
    if key in _JSON_PARAMS:
        try:
            return orjson.loads(value)
        except orjson.JSONDecodeError as exc:
            raise BotApiError(400, f"Bad Request: can't parse {key} JSON object") from exc
    if key in _INT_PARAMS or key == "chat_id":
        try:
            return int(value)
        except ValueError:
            if key == "chat_id":
                return value  # "@channelname"
            raise BotApiError(400, f"Bad Request: invalid {key}") from None
    if key in _BOOL_PARAMS:
        return value.lower() in ("true", "1")
    return value


def _require(params: dict[str, Any], key: str) -> Any:
    if params.get(key) in (None, ""):
        raise BotApiError(400, f"Bad Request: {key} is empty")
    return params[key]


# -- methods ---------------------------------------------------------------------------

Handler = Callable[[BotApiState, dict[str, Any], dict[str, bytes]], Any]


def _check_chat(state: BotApiState, chat_id: Any) -> int:
    if not isinstance(chat_id, int):
        raise BotApiError(400, "Bad Request: chat not found")
    if chat_id in state.fail:
        code, description = state.fail[chat_id]
        raise BotApiError(code, description)
    if chat_id in state.flood:
        seconds = state.flood.pop(chat_id)
        raise BotApiError(
            429, f"Too Many Requests: retry after {seconds}", {"retry_after": seconds}
        )
    return chat_id


def _store_message(
    state: BotApiState,
    method: str,
    chat_id: int,
    params: dict[str, Any],
    content: dict[str, Any],
    record: dict[str, Any],
) -> dict[str, Any]:
    """Keep the Message Telegram would return (`content`: text/caption/photo) and log it."""
    message_id = state._message_id(chat_id)
    now = state.clock()
    message: dict[str, Any] = {
        "message_id": message_id,
        "from": state._bot_user(),
        "chat": _chat(chat_id),
        "date": int(now),
        **content,
    }
    if params.get("reply_markup"):
        _set_markup(message, params["reply_markup"])
    state.messages[(chat_id, message_id)] = message
    state.sent.append(
        {
            "method": method,
            "chat_id": chat_id,
            "message_id": message_id,
            "text": params.get("text"),
            "parse_mode": params.get("parse_mode"),
            "reply_markup": params.get("reply_markup"),
            "time": now,
            **record,
        }
    )
    return message


def _get_me(state: BotApiState, params: dict[str, Any], files: dict[str, bytes]) -> Any:
    return {
        **state._bot_user(),
        "can_join_groups": True,
        "can_read_all_group_messages": False,
        "supports_inline_queries": False,
    }


def _send_message(state: BotApiState, params: dict[str, Any], files: dict[str, bytes]) -> Any:
    chat_id = _check_chat(state, _require(params, "chat_id"))
    text = params.get("text") or ""
    if not text.strip():
        raise BotApiError(400, "Bad Request: message text is empty")
    plain = _plain_text(text, params.get("parse_mode"))
    if _utf16_len(plain) > MAX_TEXT_LENGTH:
        raise BotApiError(400, "Bad Request: message is too long")
    return _store_message(state, "sendMessage", chat_id, params, {"text": plain}, {"plain": plain})


def _send_photo(state: BotApiState, params: dict[str, Any], files: dict[str, bytes]) -> Any:
    chat_id = _check_chat(state, _require(params, "chat_id"))
    photo = params.get("photo")
    if isinstance(photo, str) and photo.startswith("attach://"):
        content_bytes = files.get(photo.removeprefix("attach://"))
    else:
        content_bytes = files.get("photo")
    if content_bytes is None:
        if not photo:
            raise BotApiError(400, "Bad Request: there is no photo in the request")
        raise BotApiError(400, "Bad Request: wrong remote file identifier specified")
    caption = params.get("caption")
    plain = _plain_text(caption, params.get("parse_mode")) if caption else None
    if plain is not None and _utf16_len(plain) > MAX_CAPTION_LENGTH:
        raise BotApiError(400, "Bad Request: message caption is too long")
    file_id = f"photo-{chat_id}-{len(state.sent) + 1}"
    sizes = [
        {
            "file_id": file_id,
            "file_unique_id": file_id,
            "width": 800,
            "height": 600,
            "file_size": len(content_bytes),
        }
    ]
    content: dict[str, Any] = {"photo": sizes}
    record: dict[str, Any] = {"text": caption, "plain": plain, "photo_size": len(content_bytes)}
    record["photo_bytes"] = content_bytes
    if caption:
        content["caption"] = plain
    return _store_message(state, "sendPhoto", chat_id, params, content, record)


def _send_chat_action(state: BotApiState, params: dict[str, Any], files: dict[str, bytes]) -> Any:
    chat_id = _check_chat(state, _require(params, "chat_id"))
    state.chat_actions.append((chat_id, _require(params, "action")))
    return True


def _find_message(state: BotApiState, params: dict[str, Any], verb: str) -> dict[str, Any]:
    chat_id = _check_chat(state, _require(params, "chat_id"))
    message = state.messages.get((chat_id, _require(params, "message_id")))
    if message is None:
        raise BotApiError(400, f"Bad Request: message to {verb} not found")
    return message


def _edit_message_text(state: BotApiState, params: dict[str, Any], files: dict[str, bytes]) -> Any:
    message = _find_message(state, params, "edit")
    text = _require(params, "text")
    plain = _plain_text(text, params.get("parse_mode"))
    if _utf16_len(plain) > MAX_TEXT_LENGTH:
        raise BotApiError(400, "Bad Request: message is too long")
    markup = params.get("reply_markup")
    if message.get("text") == plain and message.get("reply_markup") == markup:
        raise BotApiError(
            400,
            "Bad Request: message is not modified: specified new message content and reply "
            "markup are exactly the same as a current content and reply markup of the message",
        )
    message["text"] = plain
    _set_markup(message, markup)
    message["edit_date"] = int(state.clock())
    state.edits.append(
        {
            "method": "editMessageText",
            "chat_id": message["chat"]["id"],
            "message_id": message["message_id"],
            "text": text,
            "plain": plain,
            "reply_markup": markup,
            "time": state.clock(),
        }
    )
    return message


def _edit_message_reply_markup(
    state: BotApiState, params: dict[str, Any], files: dict[str, bytes]
) -> Any:
    message = _find_message(state, params, "edit")
    markup = params.get("reply_markup")
    if message.get("reply_markup") == markup or (not markup and "reply_markup" not in message):
        raise BotApiError(
            400,
            "Bad Request: message is not modified: specified new message content and reply "
            "markup are exactly the same as a current content and reply markup of the message",
        )
    _set_markup(message, markup)
    message["edit_date"] = int(state.clock())
    state.edits.append(
        {
            "method": "editMessageReplyMarkup",
            "chat_id": message["chat"]["id"],
            "message_id": message["message_id"],
            "reply_markup": markup,
            "time": state.clock(),
        }
    )
    return message


def _set_markup(message: dict[str, Any], markup: Any) -> None:
    if markup and markup.get("inline_keyboard"):
        message["reply_markup"] = markup
    else:
        message.pop("reply_markup", None)


def _delete_message(state: BotApiState, params: dict[str, Any], files: dict[str, bytes]) -> Any:
    message = _find_message(state, params, "delete")
    key = (message["chat"]["id"], message["message_id"])
    del state.messages[key]
    state.deleted.append(key)
    return True


def _answer_callback_query(
    state: BotApiState, params: dict[str, Any], files: dict[str, bytes]
) -> Any:
    state.answered_callbacks.append(
        {
            "callback_query_id": _require(params, "callback_query_id"),
            "text": params.get("text"),
            "show_alert": params.get("show_alert", False),
        }
    )
    return True


def _set_my_commands(state: BotApiState, params: dict[str, Any], files: dict[str, bytes]) -> Any:
    commands = _require(params, "commands")
    state.commands = list(commands)
    return True


def _get_my_commands(state: BotApiState, params: dict[str, Any], files: dict[str, bytes]) -> Any:
    return state.commands


def _delete_my_commands(state: BotApiState, params: dict[str, Any], files: dict[str, bytes]) -> Any:
    state.commands = []
    return True


def _delete_webhook(state: BotApiState, params: dict[str, Any], files: dict[str, bytes]) -> Any:
    if params.get("drop_pending_updates"):
        state.updates.clear()
    return True


def _get_webhook_info(state: BotApiState, params: dict[str, Any], files: dict[str, bytes]) -> Any:
    return {"url": "", "has_custom_certificate": False, "pending_update_count": len(state.updates)}


def _ok(state: BotApiState, params: dict[str, Any], files: dict[str, bytes]) -> Any:
    return True


_METHODS: dict[str, Handler] = {
    "getme": _get_me,
    "sendmessage": _send_message,
    "sendphoto": _send_photo,
    "sendchataction": _send_chat_action,
    "answercallbackquery": _answer_callback_query,
    "editmessagetext": _edit_message_text,
    "editmessagereplymarkup": _edit_message_reply_markup,
    "deletemessage": _delete_message,
    "setmycommands": _set_my_commands,
    "getmycommands": _get_my_commands,
    "deletemycommands": _delete_my_commands,
    "deletewebhook": _delete_webhook,
    "getwebhookinfo": _get_webhook_info,
    "close": _ok,
    "logout": _ok,
}


async def _get_updates(state: BotApiState, params: dict[str, Any]) -> list[dict[str, Any]]:
    """Long-poll like Telegram: confirm below `offset`, wait up to `timeout` for news."""
    offset = params.get("offset")
    if offset:
        state.updates[:] = [u for u in state.updates if u["update_id"] >= offset]
    limit = min(max(params.get("limit") or 100, 1), 100)
    timeout = max(params.get("timeout") or 0, 0)
    deadline = asyncio.get_running_loop().time() + timeout
    while not state.updates and not state._closing and not state.outage:
        remaining = deadline - asyncio.get_running_loop().time()
        if remaining <= 0:
            break
        assert state._new_update is not None
        state._new_update.clear()
        # Short waits so a test that flips `outage` mid-poll is noticed promptly.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(state._new_update.wait(), min(remaining, 0.05))
    if state.outage:
        raise _Outage
    return state.updates[:limit]


class _Outage(Exception):
    """The outage began while a long poll was waiting."""


# -- app -------------------------------------------------------------------------------


def _answer(code: int, description: str, parameters: dict[str, Any] | None = None) -> web.Response:
    body: dict[str, Any] = {"ok": False, "error_code": code, "description": description}
    if parameters:
        body["parameters"] = parameters
    return web.Response(status=code, body=orjson.dumps(body), content_type="application/json")


def _bad_gateway() -> web.Response:
    body = (
        "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
        "<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx/1.18.0</center>\r\n"
        "</body>\r\n</html>\r\n"
    )
    return web.Response(status=502, text=body, content_type="text/html")


def create_app(state: BotApiState) -> web.Application:
    """The aiohttp application serving `state` at /bot<token>/<method>."""

    async def outage_answer(request: web.Request) -> web.StreamResponse:
        if state.outage_mode == "drop" and request.transport is not None:
            request.transport.abort()
            raise web.HTTPBadGateway  # never written: the connection is already gone
        return _bad_gateway()

    async def handle(request: web.Request) -> web.StreamResponse:
        if state._new_update is None:
            state._new_update = asyncio.Event()
        token = request.match_info["token"]
        method = request.match_info["method"]
        call = RecordedCall(method=method, params={}, time=state.clock())
        state.requests.append(call)
        if state.outage:
            call.status = 502
            return await outage_answer(request)
        if state.latency:
            await asyncio.sleep(state.latency)
        if token != state.token:
            call.status = 401
            return _answer(401, "Unauthorized")
        try:
            params, files = await _read_params(request)
            call.params = params
            key = method.lower()
            if key == "getupdates":
                result: Any = await _get_updates(state, params)
            elif key in _METHODS:
                result = _METHODS[key](state, params, files)
            else:
                call.status = 404
                return _answer(404, "Not Found")
        except _Outage:
            call.status = 502
            return await outage_answer(request)
        except BotApiError as exc:
            call.status = exc.code
            return _answer(exc.code, exc.description, exc.parameters)
        return web.Response(
            body=orjson.dumps({"ok": True, "result": result}), content_type="application/json"
        )

    async def not_found(request: web.Request) -> web.StreamResponse:
        return _answer(404, "Not Found")

    app = web.Application(client_max_size=50 * 1024 * 1024)
    app.router.add_route("*", "/bot{token}/{method}", handle)
    app.router.add_route("*", "/{tail:.*}", not_found)
    return app


@asynccontextmanager
async def telegram_server(
    state: BotApiState | None = None, **state_kwargs: Any
) -> AsyncIterator[tuple[BotApiState, str]]:
    """Serve a Bot API on loopback; yields (state, base_url). Give PTB f"{base_url}/bot".

    On exit pending long polls are released first, so shutdown never waits out a
    getUpdates timeout.
    """
    state = state if state is not None else BotApiState(**state_kwargs)
    state._new_update = asyncio.Event()
    state._closing = False
    server = LocalServer(create_app(state))
    await server.start()
    try:
        yield state, server.base_url
    finally:
        state._closing = True
        state._wake_pollers()
        await server.stop()
