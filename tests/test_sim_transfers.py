"""Binance's universal transfer against the simulator, through unmodified ccxt and raw HTTP.

The FAQ account's figures (tests/test_sim_binance_rest.py) are restated here: its cross
wallet is 1,535,443.01 USDT and its cross margin balance is below its initial margin, so
nothing may leave futures. Expected wire shapes are Binance's documented ones (see the
docstring of monitor/simulator/binance_usdm/transfers.py for the sources).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import time
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlencode

import aiohttp
import ccxt.async_support as ccxt
import orjson
import pytest
import websockets

from monitor.simulator.binance_usdm import (
    FAQ_API_KEY,
    FAQ_SECRET,
    Fault,
    SimExchange,
    binance_faq_hybrid_account,
    build_app,
)
from monitor.simulator.http import LocalServer
from tests.test_sim_binance_rest import client_for

WALLET = 1_535_443.01
SOL_WALLET = 6_000.0
SPOT, FUNDING = 5_000.0, 2_000.0
TRANSFER = "/sapi/v1/asset/transfer"


@pytest.fixture
async def venue() -> AsyncIterator[tuple[SimExchange, LocalServer]]:
    exchange = binance_faq_hybrid_account()
    account = exchange.accounts[FAQ_API_KEY]
    account.spot["USDT"] = SPOT
    account.funding["USDT"] = FUNDING
    account.can_transfer = True
    async with LocalServer(build_app(exchange)) as server:
        yield exchange, server


@pytest.fixture
async def client(venue: tuple[SimExchange, LocalServer]) -> AsyncIterator[ccxt.binanceusdm]:
    client = client_for(venue[1])
    try:
        yield client
    finally:
        await client.close()


async def signed(
    server: LocalServer, method: str, path: str, params: dict[str, Any]
) -> tuple[int, Any]:
    """A SIGNED Binance request signed here by hand: HMAC-SHA256 of the query string."""
    query = urlencode({**params, "timestamp": int(time.time() * 1000)})
    signature = hmac.new(FAQ_SECRET.encode(), query.encode(), hashlib.sha256).hexdigest()
    url = f"{server.base_url}{path}?{query}&signature={signature}"
    headers = {"X-MBX-APIKEY": FAQ_API_KEY}
    async with (
        aiohttp.ClientSession() as http,
        http.request(method, url, headers=headers) as reply,
    ):
        return reply.status, await reply.json()


async def test_transfer_from_spot_shows_at_once_in_every_futures_balance(
    venue: tuple[SimExchange, LocalServer], client: ccxt.binanceusdm
) -> None:
    exchange, server = venue
    # ccxt names the USD-M futures wallet 'swap' (or 'linear'): type MAIN_UMFUTURE.
    entry = await client.transfer("USDT", 1_500, "spot", "swap")
    assert int(entry["id"]) > 0
    account = exchange.accounts[FAQ_API_KEY]
    assert account.spot["USDT"] == SPOT - 1_500
    balance = await client.fetch_balance()
    assert float(balance["info"]["totalCrossWalletBalance"]) == pytest.approx(WALLET + 1_500)
    assert float(balance["info"]["totalWalletBalance"]) == pytest.approx(
        WALLET + 1_500 + SOL_WALLET
    )
    for path in ("/fapi/v2/balance", "/fapi/v3/balance"):
        status, rows = await signed(server, "GET", path, {})
        assert status == 200
        (usdt,) = [row for row in rows if row["asset"] == "USDT"]
        assert float(usdt["crossWalletBalance"]) == pytest.approx(WALLET + 1_500), path
        assert float(usdt["balance"]) == pytest.approx(WALLET + 1_500 + SOL_WALLET), path
    status, v3 = await signed(server, "GET", "/fapi/v3/account", {})
    assert status == 200
    assert float(v3["totalCrossWalletBalance"]) == pytest.approx(WALLET + 1_500)
    (asset,) = [row for row in v3["assets"] if row["asset"] == "USDT"]
    assert float(asset["walletBalance"]) == pytest.approx(WALLET + 1_500 + SOL_WALLET)

    await client.transfer("USDT", 2_000, "funding", "linear")  # FUNDING_UMFUTURE
    assert account.funding["USDT"] == 0
    assert float((await client.fetch_balance())["info"]["totalCrossWalletBalance"]) == (
        pytest.approx(WALLET + 3_500)
    )
    assert [t.type for t in account.transfers] == ["MAIN_UMFUTURE", "FUNDING_UMFUTURE"]


async def test_refusals_have_binance_codes_and_move_nothing(
    venue: tuple[SimExchange, LocalServer], client: ccxt.binanceusdm
) -> None:
    exchange, server = venue
    # Over loopback ccxt applies only its common error map: -5002 arrives as ExchangeError.
    with pytest.raises(ccxt.ExchangeError, match="-5002"):
        await client.transfer("USDT", SPOT + 0.01, "spot", "swap")
    cases = [
        ({"type": "MAIN_UMFUTURE", "asset": "USDT", "amount": "5000.01"}, 400, -5002),
        ({"type": "MAIN_UMFUTURE", "asset": "USDT", "amount": "0"}, 400, -5007),
        ({"type": "MAIN_UMFUTURE", "asset": "USDT", "amount": "lots"}, 400, -1130),
        ({"type": "MAIN_MOON", "asset": "USDT", "amount": "10"}, 400, -1130),
        ({"asset": "USDT", "amount": "10"}, 400, -1102),
        ({"type": "MAIN_UMFUTURE", "amount": "10"}, 400, -1102),
        # The FAQ account's available balance is negative: nothing may leave futures.
        ({"type": "UMFUTURE_MAIN", "asset": "USDT", "amount": "1"}, 400, -5002),
    ]
    for params, status, code in cases:
        got_status, body = await signed(server, "POST", TRANSFER, params)
        assert (got_status, body["code"]) == (status, code), params
        assert set(body) == {"code", "msg"}
    _, body = await signed(server, "POST", TRANSFER, cases[0][0])
    assert body == {"code": -5002, "msg": "You have insufficient balance."}
    _, body = await signed(server, "POST", TRANSFER, cases[4][0])
    assert body["msg"] == "Mandatory parameter 'type' was not sent, was empty/null, or malformed."

    # 'future' is not a ccxt account name: ccxt sends an isolated-margin type, refused.
    with pytest.raises(ccxt.BadRequest, match="-1130"):
        await client.transfer("USDT", 10, "spot", "future")

    account = exchange.accounts[FAQ_API_KEY]
    account.can_transfer = False
    restrictions = await client.sapi_get_account_apirestrictions()
    assert restrictions["permitsUniversalTransfer"] is False
    with pytest.raises(ccxt.AuthenticationError, match="-1002"):
        await client.transfer("USDT", 10, "spot", "swap")
    assert (account.spot["USDT"], account.cross_wallet["USDT"]) == (SPOT, WALLET)
    assert account.transfers == []


async def test_key_permissions_keep_transfer_and_withdrawal_apart(
    venue: tuple[SimExchange, LocalServer], client: ccxt.binanceusdm
) -> None:
    restrictions = await client.sapi_get_account_apirestrictions()
    assert (restrictions["permitsUniversalTransfer"], restrictions["enableInternalTransfer"]) == (
        True,
        True,
    )
    assert restrictions["enableWithdrawals"] is False


async def test_a_transfer_whose_reply_was_lost_is_found_in_the_history(
    venue: tuple[SimExchange, LocalServer],
) -> None:
    exchange, server = venue
    impatient = client_for(server, timeout=300)
    try:
        await impatient.transfer("USDT", 100, "spot", "swap")  # answered normally
        exchange.faults[TRANSFER] = Fault.answer_late(1.0, times=1)
        await asyncio.sleep(0.01)  # the first transfer is in an earlier millisecond
        since = int(time.time() * 1000)  # journaled before sending
        with pytest.raises(ccxt.RequestTimeout):
            await impatient.transfer("USDT", 1_200, "spot", "swap")
        # Binance transfers carry no client id: look the transfer up by type and time.
        found = await impatient.fetch_transfers("USDT", since, params={"type": "MAIN_UMFUTURE"})
    finally:
        await impatient.close()
    assert [(t["amount"], t["fromAccount"], t["toAccount"], t["status"]) for t in found] == [
        (1_200.0, "spot", "linear", "ok")
    ]
    account = exchange.accounts[FAQ_API_KEY]
    assert found[0]["id"] == str(account.transfers[-1].tran_id)
    assert account.spot["USDT"] == SPOT - 1_300  # executed once, not twice

    status, page = await signed(server, "GET", TRANSFER, {"type": "MAIN_UMFUTURE", "size": 1})
    assert status == 200 and page["total"] == 2
    (newest,) = page["rows"]
    assert newest == {
        "asset": "USDT",
        "amount": "1200",
        "type": "MAIN_UMFUTURE",
        "status": "CONFIRMED",
        "tranId": account.transfers[-1].tran_id,
        "timestamp": account.transfers[-1].time_ms,
    }
    _, second = await signed(
        server, "GET", TRANSFER, {"type": "MAIN_UMFUTURE", "size": 1, "current": 2}
    )
    assert [row["amount"] for row in second["rows"]] == ["100"]
    _, other = await signed(server, "GET", TRANSFER, {"type": "FUNDING_UMFUTURE"})
    assert other == {"total": 0, "rows": []}


async def test_user_stream_reports_transfers_as_deposit_and_withdraw(
    venue: tuple[SimExchange, LocalServer], client: ccxt.binanceusdm
) -> None:
    exchange, server = venue
    listen_key = (await client.fapiPrivatePostListenKey())["listenKey"]
    ws_url = server.base_url.replace("http://", "ws://")
    async with websockets.connect(f"{ws_url}/ws/{listen_key}") as ws:
        await client.transfer("USDT", 1_500, "spot", "swap")
        into = orjson.loads(await asyncio.wait_for(ws.recv(), 2))
        # With 1,500 in, the cross pool may give some back: it is the exchange's
        # maxWithdrawAmount that bounds a transfer out, here still 0 (available < 0).
        exchange.accounts[FAQ_API_KEY].cross_wallet["USDT"] += 500_000
        await client.transfer("USDT", 700, "swap", "spot")
        out = orjson.loads(await asyncio.wait_for(ws.recv(), 2))

    assert (into["e"], into["a"]["m"], into["a"]["P"]) == ("ACCOUNT_UPDATE", "DEPOSIT", [])
    (balance,) = into["a"]["B"]
    assert balance["a"] == "USDT"
    assert float(balance["cw"]) == pytest.approx(WALLET + 1_500)
    assert float(balance["wb"]) == pytest.approx(WALLET + 1_500 + SOL_WALLET)
    assert float(balance["bc"]) == 1_500

    assert out["a"]["m"] == "WITHDRAW"
    (balance,) = out["a"]["B"]
    assert float(balance["cw"]) == pytest.approx(WALLET + 1_500 + 500_000 - 700)
    assert float(balance["bc"]) == -700
    assert exchange.accounts[FAQ_API_KEY].spot["USDT"] == SPOT - 1_500 + 700
