"""Replies checked as they arrive, so a broken one is named for what it is.

ccxt hands a reply it cannot parse back as a string, and the first `.get` on it fails with
"'str' object has no attribute 'get'": true, and useless at 3 a.m. A 5xx whose body is in
the exchange's error format is typed by that body's code (often a plain ExchangeError, so
`bad_reply`) although the status already says the exchange is down. `checked_client_class`
puts two of ccxt's documented hooks in front of an exchange class: one sees the status and
the raw body before parsing, the other sees a body that does not parse.
"""

from __future__ import annotations

import re
from functools import cache
from typing import Any

from monitor.exchange.errors import ErrorKind, ExchangeError, scrub

_TITLE = re.compile(r"<title[^>]*>\s*([^<]{1,80})", re.IGNORECASE)


def reply_problem(status: int, reason: str, body: str) -> ExchangeError | None:
    """What is wrong with a reply judged by its status and first bytes, else None.

    Only what the status or the shape proves: 4xx replies stay with ccxt, which reads the
    exchange's own error codes from them (429 and 418 are rate limits, 401 is auth).
    """
    if status >= 500:
        detail = f" ({_html_summary(body)})" if _is_html(body) else ""
        return ExchangeError(ErrorKind.EXCHANGE_DOWN, f"HTTP {status} {reason}".rstrip() + detail)
    if 200 <= status < 300 and _is_html(body):
        return ExchangeError(
            ErrorKind.BAD_REPLY, f"exchange sent HTML with status {status} ({_html_summary(body)})"
        )
    return None


def json_problem(body: str, error: ValueError) -> ExchangeError:
    """A body that looked like JSON (it starts with `{` or `[`) but does not parse."""
    size = len(body.encode())
    position: int | None = getattr(error, "pos", None)  # json's and orjson's errors have it
    if position is not None and position >= len(body.rstrip()):  # it ran out, mid-document
        return ExchangeError(
            ErrorKind.BAD_REPLY, f"truncated JSON: the reply ends mid-document ({size} bytes)"
        )
    where = f" at byte {position}" if position is not None else ""
    return ExchangeError(ErrorKind.BAD_REPLY, f"malformed JSON{where} ({size} bytes)")


def _is_html(body: str) -> bool:
    return body.lstrip()[:1] == "<"


def _html_summary(body: str) -> str:
    title = _TITLE.search(body[:4096])
    return f"page title {scrub(title.group(1).strip())!r}" if title else "an HTML page"


class CheckedReplies:
    """Mixin in front of a ccxt exchange class; raises ExchangeError for broken replies.

    Raised inside ccxt's `fetch`, so nothing else of ccxt sees the reply; its own error
    handling still runs for every reply these checks let through.
    """

    def on_rest_response(
        self,
        code: Any,
        reason: Any,
        url: str,
        method: str,
        response_headers: Any,
        response_body: str,
        request_headers: Any,
        request_body: Any,
    ) -> str:
        body: str = super().on_rest_response(  # type: ignore[misc]
            code, reason, url, method, response_headers, response_body, request_headers,
            request_body,
        )  # fmt: skip
        problem = reply_problem(int(code), str(reason or ""), body)
        if problem is not None:
            raise problem
        return body

    def on_json_response(self, body: str) -> Any:
        try:
            return super().on_json_response(body)  # type: ignore[misc]
        except ValueError as exc:
            raise json_problem(body, exc) from None


@cache
def checked_client_class(factory: type, mixins: tuple[type, ...] = ()) -> type:
    """`factory` (a ccxt exchange class) with CheckedReplies and a venue's own `mixins`
    in front; one per combination."""
    return type(factory.__name__, (CheckedReplies, *mixins, factory), {})
