"""The Binance COIN-M executor through unmodified ccxt `binancecoinm` against the dapi
test server (tests/servers/binance_coinm.py), in the controller's own order: journal
`planned`, then `sent`, send once, settle, and resolve an unknown outcome by lookup.

Fixture (hand figures): BTCUSD_PERP cross long 300 contracts x 100 USD at 60,000, mark
58,000; ETHUSD_PERP isolated long 1,000 x 10 USD at 3,000 with 0.4 ETH, mark 2,900.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from typing import Any, NamedTuple

import pytest

from monitor.actions.journal import Journal, Outcome
from monitor.actions.policy import Decision
from monitor.config.schema import CrossPolicy
from monitor.events import TargetKind
from monitor.simulator.http import LocalServer
from monitor.venues.binance import permissions
from monitor.venues.binance.executor import BinanceCoinmExecutor
from monitor.venues.registry import adapter_for
from tests.servers.binance_coinm import CoinmState, btc_account, create_app, make_client
from tests.servers.faults import OrderFault
from tests.venue_actions import act_on_venue

BTC, ETH = "BTC/USD:BTC", "ETH/USD:ETH"


class Wire(NamedTuple):
    state: CoinmState
    client: Any
    executor: BinanceCoinmExecutor
    journal: Journal


@pytest.fixture
async def wire(tmp_path: Path) -> AsyncIterator[Wire]:
    state = btc_account()
    async with LocalServer(create_app(state)) as server:
        client = make_client(server.base_url)
        await client.load_markets()
        executor = BinanceCoinmExecutor(
            client, adapter_for("binancecoinm"), CrossPolicy(), recv_window_ms=1000
        )
        journal = Journal(tmp_path / "actions.sqlite3")
        try:
            yield Wire(state, client, executor, journal)
        finally:
            journal.close()
            await client.close()


def decision(kind: str, symbol: str, quantity: float, *, source: str = "") -> Decision:
    asset = symbol.split(":")[-1] if symbol else "BTC"
    return Decision(
        id=f"{kind}{symbol}{quantity}".encode().hex()[:32].ljust(32, "0"), account="c",
        target=f"{symbol} long", target_kind=TargetKind.POSITION, kind=kind,  # type: ignore[arg-type]
        symbol=symbol, side="long", position_side="BOTH",
        margin_mode="isolated" if symbol == ETH else "cross", asset=asset,
        position_contracts=1000 if symbol == ETH else 300, contract_size=10, inverse=True,
        quantity=quantity, notional=quantity, mark=2900 if symbol == ETH else 58000,
        ratio_before=None, ratio_after=None, distance_before=None, distance_after=None,
        reaches_target=True, snapshot_at=0.0, source=source,
    )  # fmt: skip


async def act(wire: Wire, chosen: Decision) -> Outcome:
    """The position read as the controller reads it, then its sequence for one decision."""
    positions = await wire.client.dapiPrivateGetPositionRisk()
    row = next((p for p in positions if p["symbol"].startswith(chosen.name)), None)
    position = (
        wire.executor.adapter.parse_position(row, wire.client) if row and chosen.symbol else None
    )
    return await act_on_venue(wire.journal, wire.executor, chosen, position=position)


async def test_a_cut_is_whole_contracts_reduce_only_and_read_back_by_client_id(wire):
    cut = decision("reduce", BTC, 120)
    request = wire.executor.request(cut, None)
    assert request["params"] == {"clientOrderId": cut.client_order_id, "recvWindow": 1000,
                                 "reduceOnly": True}  # fmt: skip

    outcome = await act(wire, cut)

    # Binance acknowledges a market order as NEW: the fill is read by origClientOrderId.
    assert outcome.status == "filled", outcome.detail
    (order,) = wire.state.orders
    assert (order.client_order_id, order.quantity, order.executed) == (
        cut.client_order_id,
        120,
        120,
    )
    assert order.reduce_only and wire.state.position("BTCUSD_PERP").amount == 180
    # realised 120 x 100 x (1/60,000 - 1/58,000) = 0.2 - 0.2068966 = -0.0068966 BTC; fee
    # 12,000 / 58,000 x 0.0005 = 0.0001034 BTC; together -12,000 x 1.0005 / 58,000 + 0.2
    # = -0.007 exactly: the wallet is 0.6 - 0.007 = 0.593.
    assert wire.state.wallets["BTC"].quantize(Decimal("1e-12")) == Decimal("0.593")
    assert wire.state.requests.count("POST /dapi/v1/order") == 1


@pytest.mark.parametrize("fault", [OrderFault.HANG, OrderFault.VENUE_TIMEOUT])
async def test_a_cut_whose_reply_is_lost_after_the_fill_is_placed_once(wire, fault):
    wire.state.fail_next_order = fault
    wire.client.timeout = 300  # ms
    outcome = await act(wire, decision("reduce", BTC, 50))
    assert outcome.status == "filled", outcome.detail
    assert len(wire.state.orders) == 1 and wire.state.position("BTCUSD_PERP").amount == 250
    assert wire.state.requests.count("POST /dapi/v1/order") == 1
    assert "GET /dapi/v1/order" in wire.state.requests


async def test_margin_is_added_in_coin_and_verified_on_the_position(wire):
    wire.state.wallets["ETH"] = Decimal("1")  # 0.6 ETH in the cross wallet
    add = decision("add_margin", ETH, 0.12345678)
    request = wire.executor.request(add, None)
    assert request["params"]["amount"] == "0.12345678" and request["params"]["type"] == 1

    outcome = await act(wire, add)

    assert outcome.status == "filled", outcome.detail
    assert wire.state.margin_changes == [("ETHUSD_PERP", Decimal("0.12345678"), 1)]
    row = wire.journal.get(add.id)
    assert row is not None and row.request["isolated_margin_before"] == 0.4
    # The lookup (used after a lost reply) finds the 0.4 + 0.12345678 on the position.
    assert (await wire.executor.lookup_margin(row)).status == "filled"


async def test_an_add_the_cross_wallet_cannot_fund_is_refused_not_unknown(wire):
    # ETH futures wallet 0.4, all of it isolated: nothing in the cross wallet (-4050).
    outcome = await act(wire, decision("add_margin", ETH, 0.5))
    assert outcome.status == "failed" and "-4050" in outcome.detail


async def test_the_reserve_moves_from_spot_into_the_coin_futures_wallet(wire):
    move = decision("transfer", "", 0.05, source="spot")
    request = wire.executor.request(move, None)
    assert request["params"]["type"] == "MAIN_CMFUTURE"

    outcome = await act(wire, move)

    assert outcome.status == "filled", outcome.detail
    (transfer,) = wire.state.transfers
    assert (transfer.asset, transfer.amount, transfer.kind) == ("BTC", Decimal("0.05"),
                                                                "MAIN_CMFUTURE")  # fmt: skip
    assert wire.state.spot["BTC"] == Decimal("0.15")
    assert outcome.result == {"id": str(transfer.tran_id)}
    row = wire.journal.get(move.id)
    assert row is not None
    found = await wire.executor.lookup_transfer(row)
    assert found.status == "filled" and str(transfer.tran_id) in found.detail


async def test_key_permissions_refuse_a_key_that_can_withdraw(wire):
    assert (await permissions.read_permissions(wire.client)).can_withdraw is False
    wire.state.can_withdraw = True
    assert (await permissions.read_permissions(wire.client)).can_withdraw is True
