"""The Bybit v5 executor through unmodified ccxt `bybit` against the Bybit dialect server
(tests/servers/bybit.py), in the controller's order: journal `planned`, `sent`, send once,
settle, resolve an unknown outcome by lookup. The fixture's figures are derived in
tests/test_server_bybit_trading.py; here only what the executor asks and concludes.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from typing import Any, NamedTuple

import ccxt
import pytest

from monitor.actions.journal import Journal, Outcome
from monitor.actions.policy import Decision
from monitor.config.schema import CrossPolicy
from monitor.events import TargetKind
from monitor.simulator.http import LocalServer
from monitor.venues.bybit import permissions
from monitor.venues.bybit.executor import BybitExecutor
from monitor.venues.registry import adapter_for
from tests.servers.bybit import TEST_KEY, BybitState, create_app, hybrid_unified_account
from tests.servers.bybit import make_client as bybit_client
from tests.venue_actions import act_on_venue

ETH, SOL = "ETH/USDT:USDT", "SOL/USDT:USDT"


class Wire(NamedTuple):
    state: BybitState
    client: Any
    executor: BybitExecutor
    journal: Journal


@pytest.fixture
async def wire(tmp_path: Path) -> AsyncIterator[Wire]:
    state = hybrid_unified_account()
    state.api_keys[TEST_KEY].wallet = ["AccountTransfer"]
    state.funding["USDT"] = Decimal("10000")
    async with LocalServer(create_app(state)) as server:
        client = bybit_client(server.base_url)
        adapter = adapter_for("bybit")
        adapter.configure(client)
        await client.load_markets()
        executor = BybitExecutor(client, adapter, CrossPolicy(), reserve_asset="USDT")
        journal = Journal(tmp_path / "actions.sqlite3")
        try:
            yield Wire(state, client, executor, journal)
        finally:
            journal.close()
            await client.close()


def decision(kind: str, symbol: str, quantity: float, **extra: Any) -> Decision:
    fields: dict[str, Any] = {
        "id": uuid.uuid4().hex, "account": "uta", "target": f"{symbol} target",
        "target_kind": TargetKind.POSITION, "kind": kind, "symbol": symbol, "side": "long",
        "position_side": "BOTH", "margin_mode": "isolated", "asset": "USD",
        "position_contracts": 1000, "contract_size": 1.0, "inverse": False,
        "quantity": quantity, "notional": quantity, "mark": 150.0, "ratio_before": None,
        "ratio_after": None, "distance_before": None, "distance_after": None,
        "reaches_target": True, "snapshot_at": 0.0,
    }  # fmt: skip
    return Decision(**(fields | extra))


async def act(wire: Wire, chosen: Decision) -> Outcome:
    """The position read as the controller reads it, then its sequence for one decision."""
    positions = [
        p for raw in await wire.executor.adapter.fetch_positions(wire.client)
        if (p := wire.executor.adapter.parse_position(raw, wire.client)) is not None
    ]  # fmt: skip
    position = next((p for p in positions if p.symbol == chosen.symbol), None)
    return await act_on_venue(wire.journal, wire.executor, chosen, position=position)


async def test_a_hedge_leg_is_cut_by_its_position_idx_and_read_back_by_link_id(wire):
    wire.state.hedge_symbols.add("ETHUSDT")
    eth = next(p for p in wire.state.account.positions if p.symbol == "ETHUSDT")
    eth.position_idx = 2
    cut = decision("reduce", ETH, 4, side="short", position_side="SHORT", margin_mode="cross")
    request = wire.executor.request(cut, None)
    assert request["params"] == {"clientOrderId": cut.client_order_id, "reduceOnly": True,
                                 "positionIdx": 2}  # fmt: skip

    outcome = await act(wire, cut)

    # Bybit acknowledges with {orderId, orderLinkId}; the fill is read by orderLinkId.
    assert outcome.status == "filled" and "filled 4 at 3200" in outcome.detail
    (order,) = wire.state.orders
    assert (order.order_link_id, order.position_idx, order.reduce_only) == (
        cut.client_order_id,
        2,
        True,
    )
    assert eth.size == "6"


async def test_a_transfer_sent_twice_moves_money_once_and_is_found_by_its_id(wire):
    move = decision("transfer", "", 1000.0, source="funding")
    request = wire.executor.request(move, None)
    transfer_id = request["params"]["transferId"]
    assert uuid.UUID(transfer_id).version == 4 and request["asset"] == "USDT"
    assert wire.executor.request(move, None) == request  # the id is the decision's

    assert (await act(wire, move)).status == "filled"
    # The same request again (a process that lost the reply and its journal row): Bybit
    # says 131214 "TransferId exist", which the lookup turns into the transfer made.
    again = await wire.executor.send(request)
    assert again.status == "unknown" and "131214" in again.detail
    row = wire.journal.get(move.id)
    assert row is not None
    found = await wire.executor.lookup(row)
    assert found.status == "filled" and found.result == {"id": transfer_id}
    assert [t.transfer_id for t in wire.state.transfers] == [transfer_id]
    assert wire.state.funding["USDT"] == Decimal("9000")


async def test_margin_added_is_verified_on_the_position(wire):
    add = decision("add_margin", SOL, 985.0)
    outcome = await act(wire, add)
    assert outcome.status == "filled" and "30226.6" in outcome.detail
    row = wire.journal.get(add.id)
    assert row is not None and row.request["isolated_margin_before"] == 29_241.6
    assert (await wire.executor.lookup_margin(row)).status == "filled"


@pytest.mark.parametrize(
    ("failure", "status"),
    [
        (ccxt.ExchangeError('bybit {"retCode":10000,"retMsg":"Server Timeout"}'), "unknown"),
        (ccxt.ExchangeError('bybit {"retCode":10016,"retMsg":"Server error"}'), "unknown"),
        (ccxt.InsufficientFunds('bybit {"retCode":110007,"retMsg":"100000 short"}'), "failed"),
        (ccxt.InvalidOrder('bybit {"retCode":110017,"retMsg":"Reduce-only"}'), "failed"),
    ],
)
def test_status_unknown_codes_are_told_from_refusals(wire, failure, status) -> None:
    assert wire.executor.maybe_executed(failure) is (status == "unknown")


async def test_a_key_that_can_withdraw_is_read_as_such(wire):
    read = await permissions.read_permissions(wire.client)
    assert (read.can_trade, read.can_withdraw, read.can_transfer) == (True, False, True)
    wire.state.api_keys[TEST_KEY].wallet = ["AccountTransfer", "Withdraw"]
    assert (await permissions.read_permissions(wire.client)).can_withdraw is True


async def test_rows_left_sent_by_a_dead_process_are_settled_from_the_venue(wire):
    """A process journals `sent`, makes the calls and dies before settling; the next one
    (a fresh executor, its own clock) looks each row up: the order and the transfer that
    reached Bybit are `filled`, the transfer that never did stays `unknown` while its
    X-BAPI-RECV-WINDOW (5 s) could still let it land, then is `failed`."""
    cut = decision("reduce", SOL, 100)
    made = decision("transfer", "", 500.0, source="funding")
    lost = decision("transfer", "", 700.0, source="funding")
    for chosen in (cut, made, lost):
        assert wire.journal.record(chosen, "auto", "planned", wire.executor.request(chosen, None))
        wire.journal.advance(chosen.id, "sent")
    await wire.executor.send(wire.journal.get(cut.id).request)  # type: ignore[union-attr]
    await wire.executor.send(wire.journal.get(made.id).request)  # type: ignore[union-attr]

    clock = [wire.journal.get(lost.id).updated_at]  # type: ignore[union-attr]
    restarted = BybitExecutor(
        wire.client, wire.executor.adapter, CrossPolicy(), reserve_asset="USDT",
        now=lambda: clock[0],
    )  # fmt: skip
    outcomes = {r.id: await restarted.lookup(r) for r in wire.journal.pending("uta")}
    assert (outcomes[cut.id].status, outcomes[made.id].status) == ("filled", "filled")
    assert outcomes[lost.id].status == "unknown"
    clock[0] += 5 + 2 + 0.1  # the window, and the grace for clock skew
    late = await restarted.lookup(wire.journal.get(lost.id))  # type: ignore[arg-type]
    assert late.status == "failed" and "validity window expired" in late.detail
    assert len(wire.state.orders) == 1 and len(wire.state.transfers) == 1
