"""Unmodified ccxt `bybit` trading against the local Bybit v5 server: the calls a defense
executor makes (reduce-only order with a client id and its lookup, add margin, FUND ->
UNIFIED transfer, key permissions) and the reply shapes and retCodes it must handle.

Expected figures are derived by hand in comments from the fixture (`hybrid_unified_account`):
BTCUSDT cross long 0.5 @ 62,000, ETHUSDT cross short 10 @ 3,000, SOLUSDT isolated long
1,000 @ 140; marks 65,000 / 3,200 / 150; taker fee 0.00055; USDT wallet 50,000.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import ccxt
import pytest

from monitor.simulator.http import LocalServer
from tests.servers.bybit import (
    TEST_KEY,
    BybitState,
    create_app,
    hybrid_unified_account,
    make_client,
)
from tests.servers.faults import OrderFault

BTC = "BTC/USDT:USDT"
ETH = "ETH/USDT:USDT"


@pytest.fixture
def state() -> BybitState:
    state = hybrid_unified_account()
    state.api_keys[TEST_KEY].wallet = ["AccountTransfer"]
    state.funding["USDT"] = Decimal("10000")
    return state


@pytest.fixture
async def client(state: BybitState) -> AsyncIterator[Any]:
    async with LocalServer(create_app(state)) as server:
        exchange = make_client(server.base_url)
        try:
            yield exchange
        finally:
            await exchange.close()


async def _order_by_link_id(client: Any, link_id: str) -> list[dict[str, Any]]:
    """The recent closed orders (`openOnly=1`): a filled market order is not "open"."""
    response = await client.privateGetV5OrderRealtime(
        {"category": "linear", "symbol": "BTCUSDT", "orderLinkId": link_id, "openOnly": 1}
    )
    return response["result"]["list"]


async def _wallet(client: Any) -> dict[str, Any]:
    balance = await client.fetch_balance()
    return balance["info"]["result"]["list"][0]


async def test_reduce_only_fill_shrinks_position_and_books_pnl(client: Any) -> None:
    order = await client.create_order(
        BTC, "market", "sell", 0.2, None, {"reduceOnly": True, "clientOrderId": "mw-r1"}
    )
    assert order["clientOrderId"] == "mw-r1"

    (row,) = await _order_by_link_id(client, "mw-r1")
    assert row["orderId"] == order["id"] and row["orderStatus"] == "Filled"
    assert row["reduceOnly"] is True
    # Filled at the mark: 0.2 x 65,000 = 13,000 value; fee 13,000 x 0.00055 = 7.15.
    assert (row["cumExecQty"], row["avgPrice"], row["cumExecFee"]) == ("0.2", "65000", "7.15")
    history = await client.privateGetV5OrderHistory({"category": "linear", "orderLinkId": "mw-r1"})
    assert [r["orderId"] for r in history["result"]["list"]] == [order["id"]]
    open_only = await client.privateGetV5OrderRealtime(
        {"category": "linear", "symbol": "BTCUSDT", "orderLinkId": "mw-r1"}
    )
    assert open_only["result"]["list"] == []  # openOnly=0 (default) lists open orders only

    btc = next(p for p in await client.fetch_positions() if p["symbol"] == BTC)
    assert btc["contracts"] == 0.3
    # Remaining 0.3 at mark 65,000 = 19,500 (tier 1, MMR 0.005);
    # fee to close = 0.3 x 62,000 x (1 - 1/10) x 0.00055 = 9.207; MM = 97.5 + 9.207.
    assert btc["info"]["positionMM"] == "106.707"
    # realised = (65,000 - 62,000) x 0.2 = 600, minus the 7.15 fee -> wallet 50,592.85.
    assert (await _wallet(client))["totalWalletBalance"] == "50592.85"
    assert btc["info"]["cumRealisedPnl"] == "575.8"  # -17.05 + 592.85


async def test_isolated_reduce_releases_margin_in_proportion(client: Any) -> None:
    await client.create_order(
        "SOL/USDT:USDT", "market", "sell", 400, None, {"reduceOnly": True, "clientOrderId": "s1"}
    )

    sol = next(p for p in await client.fetch_positions() if p["symbol"] == "SOL/USDT:USDT")
    info = sol["info"]
    # 400 of 1,000 closed: positionBalance 29,241.6 x 600 / 1,000 = 17,544.96.
    assert (sol["contracts"], info["positionBalance"]) == (600, "17544.96")
    # Remaining value at mark 90,000 -> tier 1 (MMR 0.01, no deduction);
    # fee to close = 600 x 140 x (1 - 1/5) x 0.00055 = 36.96; MM = 900 + 36.96.
    assert (info["positionMM"], info["positionIM"]) == ("936.96", "16836.96")
    # liq: (600 x 140 - 17,544.96 + 36.96) / (600 x 0.99) = 66,492 / 594 = 111.9393...
    assert info["liqPrice"] == "111.94"
    wallet = await _wallet(client)
    # realised 400 x 10 = 4,000, fee 400 x 150 x 0.00055 = 33: wallet 53,967;
    # cross pool = 53,967 - 17,544.96 + (1,500 - 2,000) = 35,922.04; available - 4,882.67.
    assert (wallet["totalWalletBalance"], wallet["totalMarginBalance"]) == (
        "53967",
        "35922.04",
    )
    assert wallet["totalAvailableBalance"] == "31039.37"


async def test_reduce_only_that_would_increase_is_refused(client: Any, state: BybitState) -> None:
    with pytest.raises(ccxt.InvalidOrder, match="110017"):
        await client.create_order(ETH, "market", "sell", 1, None, {"reduceOnly": True})
    with pytest.raises(ccxt.InsufficientFunds, match="110007"):
        await client.create_order(BTC, "market", "buy", 100, None, {"clientOrderId": "big"})
    assert state.orders == []


async def test_hedge_mode_reduce_only_on_the_short_leg(client: Any, state: BybitState) -> None:
    state.hedge_symbols.add("ETHUSDT")
    eth = next(p for p in state.account.positions if p.symbol == "ETHUSDT")
    eth.position_idx = 2
    with pytest.raises(ccxt.BadRequest, match="position idx"):
        await client.create_order(ETH, "market", "buy", 4, None, {"reduceOnly": True})

    await client.create_order(ETH, "market", "buy", 4, None, {"reduceOnly": True, "positionIdx": 2})

    # realised = (3,000 - 3,200) x 4 = -800; fee = 4 x 3,200 x 0.00055 = 7.04.
    assert (await _wallet(client))["totalWalletBalance"] == "49192.96"
    assert eth.size == "6"


async def test_ioc_limit_that_does_not_cross_fills_nothing(client: Any) -> None:
    await client.create_order(
        BTC, "limit", "sell", 0.1, 66_000, {"reduceOnly": True, "timeInForce": "IOC",
                                            "clientOrderId": "mw-ioc"}
    )  # fmt: skip
    (row,) = await _order_by_link_id(client, "mw-ioc")
    assert (row["orderStatus"], row["cumExecQty"]) == ("Cancelled", "0")
    assert (await client.fetch_positions())[0]["contracts"] == 0.5


async def test_add_margin_moves_cross_balance_into_the_isolated_position(client: Any) -> None:
    result = (
        await client.privatePostV5PositionAddMargin(
            {"category": "linear", "symbol": "SOLUSDT", "margin": "985", "positionIdx": 0}
        )
    )["result"]
    assert result["positionBalance"] == "30226.6"  # 29,241.6 + 985

    wallet = await _wallet(client)
    # The cross pool gives up what the position took: 15,375.73 - 985.
    assert wallet["totalAvailableBalance"] == "14390.73"
    assert wallet["totalMarginBalance"] == "19273.4"  # 20,258.4 - 985
    assert wallet["totalWalletBalance"] == "50000"


async def test_transfer_from_funding_is_idempotent_by_transfer_id(
    client: Any, state: BybitState
) -> None:
    transfer_id = str(uuid.uuid4())
    params = {"transferId": transfer_id}

    done = await client.transfer("USDT", 1000, "funding", "unified", params)
    assert done["id"] == transfer_id and done["status"] == "ok"
    with pytest.raises(ccxt.BadRequest, match="131214"):
        await client.transfer("USDT", 1000, "funding", "unified", params)

    assert state.funding["USDT"] == Decimal("9000")
    assert (await _wallet(client))["totalWalletBalance"] == "51000"
    listed = await client.privateGetV5AssetTransferQueryInterTransferList(params)
    assert [(t["transferId"], t["amount"], t["status"]) for t in listed["result"]["list"]] == [
        (transfer_id, "1000", "SUCCESS")
    ]
    reserve = await client.privateGetV5AssetTransferQueryAccountCoinsBalance(
        {"accountType": "FUND", "coin": "USDT"}
    )
    assert reserve["result"]["balance"][0]["transferBalance"] == "9000"
    with pytest.raises(ccxt.InsufficientFunds, match="131212"):
        await client.transfer("USDT", 9001, "funding", "unified", {"transferId": str(uuid.uuid4())})


async def test_key_permissions_are_read_and_enforced(client: Any, state: BybitState) -> None:
    key = state.api_keys[TEST_KEY]
    key.wallet = ["AccountTransfer", "Withdraw"]
    info = (await client.privateGetV5UserQueryApi())["result"]
    assert info["readOnly"] == 0
    assert info["permissions"]["Wallet"] == ["AccountTransfer", "Withdraw"]

    key.wallet = []
    with pytest.raises(ccxt.PermissionDenied):
        await client.transfer("USDT", 10, "funding", "unified", {"transferId": str(uuid.uuid4())})
    key.read_only = True
    assert (await client.privateGetV5UserQueryApi())["result"]["readOnly"] == 1


@pytest.mark.parametrize(
    ("fault", "raised"),
    [
        (OrderFault.HANG, ccxt.RequestTimeout),
        (OrderFault.DISCONNECT, ccxt.NetworkError),
        (OrderFault.GATEWAY_TIMEOUT, ccxt.RequestTimeout),
        (OrderFault.VENUE_TIMEOUT, ccxt.ExchangeError),  # retCode 10000 "Server Timeout"
    ],
)
async def test_timeout_after_fill_then_lookup_finds_one_order(
    client: Any, state: BybitState, fault: OrderFault, raised: type[Exception]
) -> None:
    state.fail_next_order = fault
    client.timeout = 300  # ms: how long ccxt waits for a reply that never comes
    with pytest.raises(raised):
        await client.create_order(
            BTC, "market", "sell", 0.1, None, {"reduceOnly": True, "clientOrderId": "mw-t1"}
        )

    (row,) = await _order_by_link_id(client, "mw-t1")
    assert (row["orderStatus"], row["cumExecQty"]) == ("Filled", "0.1")
    assert len(state.orders) == 1
    assert (await client.fetch_positions())[0]["contracts"] == 0.4
    # A retry with the same client id is refused, never doubled.
    with pytest.raises(ccxt.InvalidOrder, match="110072"):
        await client.create_order(
            BTC, "market", "sell", 0.1, None, {"reduceOnly": True, "clientOrderId": "mw-t1"}
        )
