"""Binance's SIGNED endpoint security, checked the way Binance checks it.

The signature is HMAC-SHA256(secret, totalParams) in hex, where totalParams is the raw
query string concatenated with the raw request body, minus the `signature` parameter.
ccxt puts everything in the query for GET/DELETE and in a form-encoded body for POST/PUT,
so both places are read. Raw (still percent-encoded) text is signed, so nothing may be
decoded before the check.
"""

from __future__ import annotations

import hashlib
import hmac
from urllib.parse import parse_qsl

from monitor.simulator.binance_usdm import errors
from monitor.simulator.binance_usdm.state import SimAccount, SimExchange

DEFAULT_RECV_WINDOW_MS = 5000
MAX_RECV_WINDOW_MS = 60000
MAX_AHEAD_MS = 1000


def parse_params(raw_query: str, raw_body: str) -> dict[str, str]:
    """Query and form body merged into one dict, as Binance reads them."""
    params = dict(parse_qsl(raw_query, keep_blank_values=True))
    params.update(parse_qsl(raw_body, keep_blank_values=True))
    return params


def split_signature(raw: str) -> tuple[str, str | None]:
    """`raw` without its `signature=` parameter, and that parameter's value."""
    kept: list[str] = []
    signature: str | None = None
    for part in raw.split("&") if raw else []:
        if part.startswith("signature="):
            signature = part.removeprefix("signature=")
        else:
            kept.append(part)
    return "&".join(kept), signature


def sign(secret: str, payload: str) -> str:
    return hmac.new(secret.encode(), payload.encode(), hashlib.sha256).hexdigest()


def _int_param(params: dict[str, str], name: str) -> int | None:
    value = params.get(name)
    if value is None or value == "":
        return None
    try:
        return int(value)
    except ValueError:
        return None


def api_key_account(exchange: SimExchange, api_key: str | None) -> SimAccount:
    """The account of an API-key-only request (user data stream endpoints)."""
    if not api_key:
        raise errors.api_key_format_invalid()
    account = exchange.account(api_key)
    if account is None:
        raise errors.invalid_api_key()
    return account


def authenticate(
    exchange: SimExchange, api_key: str | None, raw_query: str, raw_body: str
) -> SimAccount:
    """The account a SIGNED request belongs to, or the BinanceApiError Binance would send."""
    account = api_key_account(exchange, api_key)
    params = parse_params(raw_query, raw_body)
    timestamp = _int_param(params, "timestamp")
    if timestamp is None:
        raise errors.mandatory_param("timestamp")
    query_rest, query_signature = split_signature(raw_query)
    body_rest, body_signature = split_signature(raw_body)
    signature = query_signature or body_signature
    if not signature:
        raise errors.mandatory_param("signature")
    recv_window = DEFAULT_RECV_WINDOW_MS
    if "recvWindow" in params:
        parsed = _int_param(params, "recvWindow")
        if parsed is None or not 0 < parsed <= MAX_RECV_WINDOW_MS:
            raise errors.invalid_param("recvWindow")
        recv_window = parsed
    now = exchange.clock_ms()
    if timestamp > now + MAX_AHEAD_MS:
        raise errors.timestamp_ahead()
    if now - timestamp > recv_window:
        raise errors.timestamp_outside_window()
    expected = sign(account.secret, query_rest + body_rest)
    if not hmac.compare_digest(expected, signature.lower()):
        raise errors.bad_signature()
    return account
