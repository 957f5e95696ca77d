"""Unmodified ccxt `okx` trading against the local OKX v5 server: reduce-only orders with a
clOrdId and their lookup, margin-balance on an isolated position, funding -> trading
transfers, key permissions, and an order whose reply is lost after it filled.

Expected figures are derived by hand from `hybrid_account` (taker 0.0005):
ETH-USDT-SWAP cross short -20 contracts (ctVal 0.1 = 2 ETH) @ 3,100, mark 3,000, 5x;
BTC-USDT-SWAP isolated long 50 contracts (0.5 BTC) @ 58,000, mark 60,000, margin 2,900;
USDT cash 10,000, adjEq 7,750, account mmr 30.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import ccxt
import pytest

from monitor.simulator.http import LocalServer
from tests.servers import okx
from tests.servers.faults import OrderFault
from tests.servers.okx import OkxState, make_client

ETH = "ETH/USDT:USDT"
BTC = "BTC/USDT:USDT"


@pytest.fixture
def state() -> OkxState:
    state = okx.hybrid_account(perm="read_only,trade")
    state.account.funding["USDT"] = 5_000.0
    return state


@pytest.fixture
async def client(state: OkxState) -> AsyncIterator[Any]:
    async with LocalServer(okx.create_app(state)) as server:
        exchange = make_client(server.base_url)
        try:
            yield exchange
        finally:
            await exchange.close()


def _usdt(balance: dict[str, Any]) -> dict[str, Any]:
    return next(d for d in balance["info"]["data"][0]["details"] if d["ccy"] == "USDT")


async def test_reduce_only_fill_shrinks_position_and_books_pnl(
    client: Any, state: OkxState
) -> None:
    # ccxt's default createOrder posts a one-element array to /api/v5/trade/batch-orders.
    order = await client.create_order(
        ETH, "market", "buy", 5, None, {"reduceOnly": True, "clientOrderId": "mwokx1"}
    )
    assert state.paths_called()[-1] == "/api/v5/trade/batch-orders"

    found = await client.fetch_order(None, ETH, {"clientOrderId": "mwokx1"})
    assert found["id"] == order["id"] and found["status"] == "closed"
    assert found["info"]["reduceOnly"] == "true" and found["info"]["state"] == "filled"
    # 5 contracts = 0.5 ETH at the mark 3,000: fee = 1,500 x 0.0005 = 0.75 (OKX sends -0.75).
    assert (found["filled"], found["average"], found["info"]["fee"]) == (5, 3000, "-0.75")

    eth = next(p for p in await client.fetch_positions() if p["symbol"] == ETH)
    # Remaining 15 contracts = 1.5 ETH: notional 4,500; MM 4,500 x 0.005 = 22.5; IM 900.
    assert (eth["contracts"], eth["info"]["mmr"], eth["info"]["imr"]) == (15, "22.5", "900")
    balance = await client.fetch_balance()
    # realised = 0.5 x (3,100 - 3,000) = 50, minus 0.75 fee: cash 10,049.25.
    assert _usdt(balance)["cashBal"] == "10049.25"
    # adjEq loses the fee only (the realised 50 was already in the upl): 7,750 - 0.75.
    account = balance["info"]["data"][0]
    assert account["adjEq"] == "7749.25" and account["mmr"] == "22.5"
    # mgnRatio = 7,749.25 / (22.5 + 4,500 x 0.0005) = 7,749.25 / 24.75
    assert float(account["mgnRatio"]) == pytest.approx(7_749.25 / 24.75)
    # ETH liqPx (other prices fixed): (7,749.25 + 1.5 x 3,000) / (1.5 x 1.0055)
    assert float(eth["info"]["liqPx"]) == pytest.approx(12_249.25 / 1.50825)


async def test_single_order_endpoint_and_reduce_only_refusal(client: Any, state: OkxState) -> None:
    client.options["createOrder"] = "privatePostTradeOrder"
    await client.create_order(
        ETH, "market", "buy", 1, None, {"reduceOnly": True, "clientOrderId": "mwokx2"}
    )
    assert state.paths_called()[-1] == "/api/v5/trade/order"

    # Selling reduce-only on a short would increase it.
    with pytest.raises(ccxt.ExchangeError, match="51169"):
        await client.create_order(
            ETH, "market", "sell", 1, None, {"reduceOnly": True, "clientOrderId": "mwokx3"}
        )
    with pytest.raises(ccxt.InsufficientFunds, match="51008"):
        await client.create_order(BTC, "market", "buy", 10_000, None, {"marginMode": "cross"})
    assert [o.cl_ord_id for o in state.account.orders] == ["mwokx2"]
    with pytest.raises(ccxt.OrderNotFound):
        await client.fetch_order(None, ETH, {"clientOrderId": "mwokx3"})


async def test_isolated_reduce_needs_its_own_td_mode(client: Any, state: OkxState) -> None:
    # A cross reduce-only order finds no cross BTC position: the isolated one is apart.
    with pytest.raises(ccxt.ExchangeError, match="51169"):
        await client.create_order(BTC, "market", "sell", 10, None, {"reduceOnly": True})

    await client.create_order(
        BTC, "market", "sell", 10, None,
        {"reduceOnly": True, "marginMode": "isolated", "clientOrderId": "mwiso"},
    )  # fmt: skip
    assert state.requests[-1].body.count('"tdMode":"isolated"') == 1
    btc = next(p for p in await client.fetch_positions() if p["symbol"] == BTC)
    # 10 of 50 contracts closed: margin 2,900 x 40 / 50 = 2,320 stays isolated.
    assert (btc["contracts"], btc["info"]["margin"]) == (40, "2320")
    usdt = _usdt(await client.fetch_balance())
    # realised = 0.1 BTC x (60,000 - 58,000) = 200; fee = 0.1 x 60,000 x 0.0005 = 3.
    assert (usdt["cashBal"], usdt["frozenBal"]) == ("10197", "2320")


async def test_long_short_mode_closes_by_pos_side(client: Any, state: OkxState) -> None:
    state.account.pos_mode = "long_short_mode"
    eth = next(p for p in state.account.positions if p.inst_id == "ETH-USDT-SWAP")
    eth.pos_side, eth.pos = "short", 20.0
    with pytest.raises(ccxt.BadRequest, match="posSide"):
        await client.create_order(ETH, "market", "buy", 5, None, {"clientOrderId": "mwls0"})

    await client.create_order(
        ETH, "market", "buy", 5, None, {"positionSide": "short", "clientOrderId": "mwls1"}
    )
    assert '"posSide":"short"' in state.requests[-1].body
    assert eth.pos == 15  # buy on the short side closes
    with pytest.raises(ccxt.ExchangeError, match="51169"):  # nothing long to close
        await client.create_order(ETH, "market", "sell", 1, None, {"positionSide": "long"})


async def test_add_margin_to_the_isolated_position(client: Any, state: OkxState) -> None:
    response = await client.privatePostAccountPositionMarginBalance(
        {"instId": "BTC-USDT-SWAP", "posSide": "net", "type": "add", "amt": "100"}
    )
    assert response["data"] == [
        {"amt": "100", "ccy": "USDT", "instId": "BTC-USDT-SWAP", "leverage": "10",
         "posSide": "net", "type": "add"}
    ]  # fmt: skip

    btc = next(p for p in await client.fetch_positions() if p["symbol"] == BTC)
    assert btc["info"]["margin"] == "3000"
    # liqPx = (0.5 x 58,000 - 3,000) / (0.5 x (1 - 0.004 - 0.0005)) = 26,000 / 0.49775
    assert float(btc["info"]["liqPx"]) == pytest.approx(26_000 / 0.49775)
    usdt = _usdt(await client.fetch_balance())
    # The cross pool gives up what the position took: availEq 6,100 - 100; isoEq 3,900 + 100.
    assert (usdt["availEq"], usdt["isoEq"], usdt["cashBal"]) == ("6000", "4000", "10000")
    assert state.account.margin_moves == [("BTC-USDT-SWAP", "add", 100.0)]
    with pytest.raises(ccxt.ExchangeError, match="59300"):  # cross: nothing isolated
        await client.privatePostAccountPositionMarginBalance(
            {"instId": "ETH-USDT-SWAP", "posSide": "net", "type": "add", "amt": "100"}
        )


async def test_ccxt_add_margin_moves_money_then_fails_to_parse(
    client: Any, state: OkxState
) -> None:
    """ccxt 4.5.90 okx.parse_margin_modification indexes a string (`type['type']`): the
    margin IS added on the venue, then ccxt raises TypeError. An executor must use the raw
    `privatePostAccountPositionMarginBalance` instead, or it would see a failure after
    the money moved."""
    with pytest.raises(TypeError):
        await client.add_margin(BTC, 100)
    assert state.account.margin_moves == [("BTC-USDT-SWAP", "add", 100.0)]


async def test_transfer_from_funding_to_trading(client: Any, state: OkxState) -> None:
    done = await client.transfer("USDT", 1000, "funding", "trading", {"clientId": "mwtr1"})
    assert done["id"] and done["amount"] == 1000

    rows = (await client.privateGetAssetTransferState({"clientId": "mwtr1"}))["data"]
    assert [(r["transId"], r["state"], r["from"], r["to"]) for r in rows] == [
        (done["id"], "success", "6", "18")
    ]
    assert state.account.funding["USDT"] == 4_000
    usdt = _usdt(await client.fetch_balance())
    assert (usdt["cashBal"], usdt["availEq"]) == ("11000", "7100")
    reserve = (await client.privateGetAssetBalances({"ccy": "USDT"}))["data"]
    assert reserve[0]["availBal"] == "4000"
    with pytest.raises(ccxt.InsufficientFunds, match="58350"):
        await client.transfer("USDT", 4_001, "funding", "trading", {"clientId": "mwtr2"})


async def test_key_permissions_are_read_and_enforced(client: Any, state: OkxState) -> None:
    key = state.account.api_keys[0]
    key.perm = "read_only,trade,withdraw"
    assert (await client.privateGetAccountConfig())["data"][0]["perm"] == (
        "read_only,trade,withdraw"
    )
    key.perm = "read_only"
    with pytest.raises(ccxt.ExchangeError, match="50120"):
        await client.create_order(ETH, "market", "buy", 1, None, {"reduceOnly": True})
    with pytest.raises(ccxt.ExchangeError, match="50120"):
        await client.transfer("USDT", 10, "funding", "trading")
    assert state.account.orders == [] and state.account.transfers == []


@pytest.mark.parametrize(
    ("fault", "raised"),
    [
        (OrderFault.HANG, ccxt.RequestTimeout),
        (OrderFault.DISCONNECT, ccxt.NetworkError),
        (OrderFault.GATEWAY_TIMEOUT, ccxt.RequestTimeout),
        (OrderFault.VENUE_TIMEOUT, ccxt.RequestTimeout),  # code 50004
    ],
)
async def test_timeout_after_fill_then_lookup_finds_one_order(
    client: Any, state: OkxState, fault: OrderFault, raised: type[Exception]
) -> None:
    state.fail_next_order = fault
    client.timeout = 300  # ms: how long ccxt waits for a reply that never comes
    with pytest.raises(raised):
        await client.create_order(
            ETH, "market", "buy", 2, None, {"reduceOnly": True, "clientOrderId": "mwokxt"}
        )

    found = await client.fetch_order(None, ETH, {"clientOrderId": "mwokxt"})
    assert (found["status"], found["filled"]) == ("closed", 2)
    assert len(state.account.orders) == 1
    with pytest.raises(ccxt.InvalidOrder, match="51016"):
        await client.create_order(
            ETH, "market", "buy", 2, None, {"reduceOnly": True, "clientOrderId": "mwokxt"}
        )
    eth = next(p for p in await client.fetch_positions() if p["symbol"] == ETH)
    assert eth["contracts"] == 18
