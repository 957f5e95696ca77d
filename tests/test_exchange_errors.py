"""Typed exchange errors: what each broken reply is called, and by which kind.

The replies are served by a real aiohttp server on loopback and read by unmodified ccxt
through `create_client`, so the checks run where they run in production: inside ccxt's
fetch, before any adapter sees the reply.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import aiohttp
import ccxt
import orjson
import pytest
from aiohttp import web

from monitor.config import AccountConfig
from monitor.exchange.clients import create_client
from monitor.exchange.errors import ErrorKind, ExchangeError, classify
from monitor.exchange.replies import json_problem, reply_problem
from monitor.simulator.http import LocalServer
from tests.ports import refused_port

REPLIES: dict[str, tuple[int, str, str]] = {
    "html": (200, "text/html", "<html><head><title>Down for maintenance</title></head></html>"),
    "truncated": (200, "application/json", '{"serverTime": 1700000000000, "extra": [1, 2'),
    "malformed": (200, "application/json", '{"serverTime" 1700000000000}'),
    "500": (500, "application/json", '{"code": -1000, "msg": "An unknown error occurred."}'),
    "503-html": (503, "text/html", "<html><title>503 Service Unavailable</title></html>"),
    "429": (429, "application/json", '{"code": -1003, "msg": "Too many requests."}'),
}


@pytest.fixture
async def server() -> AsyncIterator[LocalServer]:
    async def reply(request: web.Request) -> web.Response:
        status, content_type, body = REPLIES[request.headers["X-Test-Reply"]]
        return web.Response(status=status, text=body, content_type=content_type)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", reply)
    async with LocalServer(app) as running:
        yield running


async def fetch_time(server: LocalServer, reply: str) -> ExchangeError:
    account = AccountConfig(name="a", exchange="binanceusdm", rest_url=server.base_url)
    client = create_client(account)
    client.headers = {"X-Test-Reply": reply}
    try:
        await client.fapiPublicGetTime()
    except Exception as exc:
        return classify(exc)
    finally:
        await client.close()
    raise AssertionError(f"{reply}: no error")


@pytest.mark.parametrize(
    ("reply", "kind", "message"),
    [
        ("html", ErrorKind.BAD_REPLY,
         "exchange sent HTML with status 200 (page title 'Down for maintenance')"),
        # '{"serverTime": ' 15 + 13 digits + ', ' 2 + '"extra": ' 9 + '[1, 2' 5 = 44 bytes
        ("truncated", ErrorKind.BAD_REPLY,
         "truncated JSON: the reply ends mid-document (44 bytes)"),
        # '{"serverTime"' is bytes 0-12, a space, then byte 14, '1', where ':' must be
        ("malformed", ErrorKind.BAD_REPLY, "malformed JSON at byte 14 (28 bytes)"),
        ("500", ErrorKind.EXCHANGE_DOWN, "HTTP 500 Internal Server Error"),
        ("503-html", ErrorKind.EXCHANGE_DOWN,
         "HTTP 503 Service Unavailable (page title '503 Service Unavailable')"),
    ],
)  # fmt: skip
async def test_broken_replies_are_named_for_what_they_are(
    server: LocalServer, reply: str, kind: ErrorKind, message: str
) -> None:
    error = await fetch_time(server, reply)
    assert (error.kind, error.message) == (kind, message)


async def test_ccxt_still_reads_the_venues_own_errors(server: LocalServer) -> None:
    """4xx replies pass the checks: ccxt maps Binance's 429 to a rate limit itself."""
    assert (await fetch_time(server, "429")).kind is ErrorKind.RATE_LIMIT


async def test_a_refused_connection_is_the_network_not_the_exchange() -> None:
    port = refused_port()
    account = AccountConfig(name="a", exchange="binanceusdm", rest_url=f"http://127.0.0.1:{port}")
    client = create_client(account)
    try:
        with pytest.raises(ccxt.ExchangeNotAvailable) as info:
            await client.fapiPublicGetTime()
    finally:
        await client.close()
    error = classify(info.value)
    assert error.kind is ErrorKind.NETWORK
    assert error.message.startswith("cannot connect (ClientConnectorError): binanceusdm GET")


def test_connection_failures_under_ccxt_are_named() -> None:
    def under_ccxt(cause: BaseException) -> ccxt.BaseError:
        try:
            raise ccxt.ExchangeError("binanceusdm GET http://x/fapi?signature=s") from cause
        except ccxt.BaseError as exc:
            return exc

    payload = classify(under_ccxt(aiohttp.ClientPayloadError("cut")))
    assert (payload.kind, payload.message.split(" (")[0]) == (
        ErrorKind.NETWORK, "connection closed mid-reply",
    )  # fmt: skip
    assert "signature" not in payload.message
    closed = classify(under_ccxt(aiohttp.ServerDisconnectedError()))
    assert closed.message.startswith("connection closed by the server before a reply")


def test_pure_checks() -> None:
    assert reply_problem(200, "OK", '{"a": 1}') is None
    assert reply_problem(404, "Not Found", "<html>nope</html>") is None  # ccxt's to judge
    down = reply_problem(502, "Bad Gateway", "")
    assert down is not None and down.message == "HTTP 502 Bad Gateway"
    for body, message in (("[1, 2", "truncated JSON"), ("[1, 2]x", "malformed JSON at byte 6")):
        with pytest.raises(ValueError) as info:
            orjson.loads(body)
        assert json_problem(body, info.value).message.startswith(message)
    assert json_problem("[1", ValueError("no position")).message == "malformed JSON (2 bytes)"


def test_classify_scrubs_typed_errors_too() -> None:
    error = classify(ExchangeError(ErrorKind.BAD_REPLY, "echoed key abc123"), ["abc123"])
    assert error.message == "echoed key ***" and error.kind is ErrorKind.BAD_REPLY


async def test_a_request_that_times_out_says_so() -> None:
    async def hang(request: web.Request) -> web.Response:
        await asyncio.sleep(1)  # past the 0.2 s timeout; short, as shutdown waits for it
        return web.Response()

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", hang)
    async with LocalServer(app) as slow:
        account = AccountConfig(name="a", exchange="binanceusdm", rest_url=slow.base_url)
        client = create_client(account, timeout_ms=200)
        try:
            with pytest.raises(ccxt.RequestTimeout) as info:
                await client.fapiPublicGetTime()
        finally:
            await client.close()
    error = classify(info.value)
    assert error.kind is ErrorKind.NETWORK
    assert error.message.startswith("no reply within the request timeout: binanceusdm GET")
