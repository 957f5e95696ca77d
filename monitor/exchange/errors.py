"""Typed exchange failures, so callers can treat an auth error unlike a timeout.

ccxt raises a deep class hierarchy; the daemon needs five kinds. Messages are scrubbed
of query strings (signatures) and of any secret value before they are kept.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from enum import StrEnum

import aiohttp
import ccxt


class ErrorKind(StrEnum):
    AUTH = "auth"
    RATE_LIMIT = "rate_limit"
    NETWORK = "network"
    EXCHANGE_DOWN = "exchange_down"
    BAD_REPLY = "bad_reply"


class ExchangeError(Exception):
    """An exchange call failed; `kind` says how, `retry_after` when the exchange said."""

    def __init__(self, kind: ErrorKind, message: str, retry_after: float | None = None) -> None:
        super().__init__(f"{kind.value}: {message}")
        self.kind = kind
        self.message = message
        self.retry_after = retry_after


# Order matters: subclasses before their parents (RateLimitExceeded is a NetworkError).
_KINDS: tuple[tuple[type[BaseException], ErrorKind], ...] = (
    (ccxt.AuthenticationError, ErrorKind.AUTH),
    (ccxt.PermissionDenied, ErrorKind.AUTH),
    (ccxt.AccountSuspended, ErrorKind.AUTH),
    (ccxt.RateLimitExceeded, ErrorKind.RATE_LIMIT),
    (ccxt.DDoSProtection, ErrorKind.RATE_LIMIT),
    (ccxt.OnMaintenance, ErrorKind.EXCHANGE_DOWN),
    (ccxt.ExchangeNotAvailable, ErrorKind.EXCHANGE_DOWN),
    (ccxt.RequestTimeout, ErrorKind.NETWORK),
    (ccxt.NetworkError, ErrorKind.NETWORK),
    (ccxt.BadResponse, ErrorKind.BAD_REPLY),
    (ccxt.ExchangeError, ErrorKind.BAD_REPLY),
)

_QUERY = re.compile(r"\?[^\s\"']*")


def scrub(message: str, secrets: Iterable[str] = ()) -> str:
    """Drop URL query strings (they carry signatures) and any known secret value."""
    message = _QUERY.sub("?…", message)
    for secret in secrets:
        if secret:
            message = message.replace(secret, "***")
    return message[:500]


def classify(exc: BaseException, secrets: Iterable[str] = ()) -> ExchangeError:
    """Map any exception raised while talking to an exchange onto an ExchangeError.

    ccxt reports a refused, reset or cut connection as ExchangeNotAvailable or a plain
    ExchangeError: the aiohttp error it chains says what really happened, and that is
    the network, not the exchange.
    """
    if isinstance(exc, ExchangeError):
        message = scrub(exc.message, secrets)
        return ExchangeError(exc.kind, message, exc.retry_after)
    connection = _connection_failure(exc)
    if connection is not None:
        return ExchangeError(ErrorKind.NETWORK, scrub(connection, secrets))
    kind = next((k for cls, k in _KINDS if isinstance(exc, cls)), None)
    if kind is None:  # not ccxt's: a socket error, or a reply we could not parse
        network = isinstance(exc, TimeoutError | OSError)
        kind = ErrorKind.NETWORK if network else ErrorKind.BAD_REPLY
    text = scrub(str(exc) or type(exc).__name__, secrets)
    return ExchangeError(kind, text)


def _connection_failure(exc: BaseException) -> str | None:
    """A readable account of a request that timed out or a connection that failed under
    ccxt, else None."""
    if isinstance(exc, ccxt.RequestTimeout):  # its own text is only the request line
        return f"no reply within the request timeout: {exc}"
    cause = exc.__cause__
    if not isinstance(exc, ccxt.BaseError) or cause is None:
        return None
    if isinstance(cause, aiohttp.ClientPayloadError):
        what = "connection closed mid-reply"
    elif isinstance(cause, aiohttp.ServerDisconnectedError):
        what = "connection closed by the server before a reply"
    elif isinstance(cause, aiohttp.ClientConnectorError):
        what = "cannot connect"
    elif isinstance(cause, aiohttp.ClientOSError):
        what = "connection reset"
    elif isinstance(cause, aiohttp.ClientConnectionError):
        what = "connection failed"
    else:
        return None
    return f"{what} ({type(cause).__name__}): {exc}"
