"""The OKX executor against the OKX v5 test server, through unmodified ccxt: each request
as OKX documents it, its outcome as OKX records it, and the lookups that settle an
unknown outcome without sending anything twice.

Figures are from `hybrid_account` (tests/servers/okx.py): ETH-USDT-SWAP cross short 20
contracts at mark 3,000; BTC-USDT-SWAP isolated long 50 contracts, margin 2,900, mark
60,000; availEq 6,100 USDT; 5,000 USDT in the funding account here.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path

import pytest

from monitor.actions.executor import SETTLE_GRACE
from monitor.actions.journal import Journal
from monitor.config.schema import CrossPolicy, ReserveConfig
from monitor.simulator.http import LocalServer
from monitor.venues.okx.adapter import OkxAdapter
from monitor.venues.okx.executor import OkxExecutor, okx_client_id
from monitor.venues.okx.permissions import read_permissions
from tests.servers import okx
from tests.servers.faults import OrderFault
from tests.venue_actions import Clock, decision, lost_reply, sent

ETH = "ETH/USDT:USDT"
BTC = "BTC/USDT:USDT"
ORDER_PATH = "/api/v5/trade/order"


@pytest.fixture
def state() -> okx.OkxState:
    state = okx.hybrid_account(perm="read_only,trade")
    state.account.funding["USDT"] = 5_000.0
    return state


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def executor(state: okx.OkxState, clock: Clock) -> AsyncIterator[OkxExecutor]:
    async with LocalServer(okx.create_app(state)) as server:
        client = okx.make_client(server.base_url)
        await client.load_markets()
        try:
            yield OkxExecutor(client, OkxAdapter(), CrossPolicy(), [okx.FIXTURE_SECRET], now=clock)
        finally:
            await client.close()


@pytest.fixture
def journal(tmp_path: Path) -> Journal:
    return Journal(tmp_path / "actions.sqlite3")


def _calls(state: okx.OkxState) -> list[tuple[str, str]]:
    return [(r.method, r.path) for r in state.requests]


async def test_a_cross_cut_is_one_single_order_read_back_by_its_clordid(
    executor: OkxExecutor, state: okx.OkxState, journal: Journal
) -> None:
    cut = decision("reduce", symbol=ETH, side="short", quantity=5, mark=3_000)
    request, _ = sent(journal, executor, cut)
    client_id = okx_client_id(cut.id)
    assert len(client_id) == 32 and client_id.isalnum()
    assert request["params"] == {
        "clientOrderId": client_id, "marginMode": "cross", "reduceOnly": True,
    }  # fmt: skip

    outcome = await executor.send(request)

    assert outcome.status == "filled", outcome.detail
    # 5 contracts fill at the mark 3,000 (the server fills market orders there)
    assert outcome.result and (outcome.result["filled"], outcome.result["average"]) == (5, 3_000)
    assert _calls(state)[-2:] == [("POST", "/api/v5/trade/order"), ("GET", "/api/v5/trade/order")]
    (order,) = state.account.orders
    assert (order.cl_ord_id, order.td_mode, order.side, order.reduce_only) == (
        client_id, "cross", "buy", True,
    )  # fmt: skip


async def test_an_isolated_cut_trades_in_its_own_td_mode(
    executor: OkxExecutor, state: okx.OkxState, journal: Journal
) -> None:
    cut = decision("reduce", symbol=BTC, margin_mode="isolated", quantity=10, mark=60_000)
    request, _ = sent(journal, executor, cut)
    outcome = await executor.send(request)
    assert outcome.status == "filled", outcome.detail
    (order,) = state.account.orders
    assert (order.td_mode, order.side, order.fill_sz) == ("isolated", "sell", 10)


async def test_margin_goes_into_the_isolated_position_by_the_raw_endpoint(
    executor: OkxExecutor, state: okx.OkxState, journal: Journal
) -> None:
    add = decision("add_margin", symbol=BTC, margin_mode="isolated", quantity=100)
    request, _ = sent(journal, executor, add)
    assert request["params"] == {
        "instId": "BTC-USDT-SWAP", "posSide": "net", "type": "add", "amt": "100",
    }  # fmt: skip
    outcome = await executor.send(request)
    assert outcome.status == "filled", outcome.detail
    assert state.account.margin_moves == [("BTC-USDT-SWAP", "add", 100.0)]

    # more than the 6,000 now available: OKX's 59301, a definite refusal
    too_much = decision("add_margin", symbol=BTC, margin_mode="isolated", quantity=9_000)
    request, _ = sent(journal, executor, too_much)
    outcome = await executor.send(request)
    assert outcome.status == "failed" and "59301" in outcome.detail


async def test_a_reserve_transfer_carries_our_client_id_and_is_found_by_it(
    executor: OkxExecutor, state: okx.OkxState, journal: Journal
) -> None:
    transfer = decision("transfer", quantity=1_000, source="funding")
    request, row = sent(journal, executor, transfer)
    assert request["params"] == {
        "ccy": "USDT", "amt": "1000", "from": "6", "to": "18", "type": "0",
        "clientId": okx_client_id(transfer.id),
    }  # fmt: skip

    outcome = await executor.send(request)

    assert outcome.status == "filled", outcome.detail
    (done,) = state.account.transfers
    assert done.client_id == okx_client_id(transfer.id) and done.amt == 1_000
    assert state.account.funding["USDT"] == 4_000
    found = await executor.lookup(row)
    assert (found.status, found.result) == ("filled", {"id": done.trans_id})


async def test_a_transfer_that_never_arrived_fails_only_once_it_cannot_land(
    executor: OkxExecutor, state: okx.OkxState, journal: Journal, clock: Clock
) -> None:
    _, row = sent(journal, executor, decision("transfer", quantity=1_000, source="funding"))
    assert (await executor.lookup(row)).status == "unknown"
    clock.now += 30 + 2 + 1  # OKX's 30 s timestamp window, the grace, and a second
    outcome = await executor.lookup(row)
    assert outcome.status == "failed" and "never executed" in outcome.detail
    assert state.account.transfers == []


@pytest.mark.parametrize(
    "fault",
    [OrderFault.HANG, OrderFault.DISCONNECT, OrderFault.GATEWAY_TIMEOUT, OrderFault.VENUE_TIMEOUT],
)
async def test_a_cut_that_filled_behind_a_lost_reply_is_found_not_sent_again(
    executor: OkxExecutor, state: okx.OkxState, journal: Journal, fault: OrderFault
) -> None:
    state.fail_next_order = fault
    executor.client.timeout = 300  # ms: the reply never comes (HANG)
    cut = decision("reduce", symbol=ETH, side="short", quantity=2, mark=3_000)
    request, _ = sent(journal, executor, cut)

    row = await lost_reply(journal, executor, cut, request)
    settled = await executor.resolve(row)

    assert settled.status == "filled", settled.detail
    assert len(state.account.orders) == 1
    assert _calls(state).count(("POST", "/api/v5/trade/order")) == 1
    eth = next(p for p in state.account.positions if p.inst_id == "ETH-USDT-SWAP")
    assert eth.pos == -18


async def test_an_order_never_placed_fails_once_its_request_has_expired(
    executor: OkxExecutor, state: okx.OkxState, journal: Journal, clock: Clock
) -> None:
    _, row = sent(journal, executor, decision("reduce", symbol=ETH, side="short", quantity=1))
    found = await executor.lookup(row)
    assert found.status == "unknown" and "may still arrive" in found.detail
    clock.now += 33
    found = await executor.lookup(row)
    assert found.status == "failed" and "never executed" in found.detail


@pytest.mark.parametrize(
    ("perm", "expected"),
    [
        ("read_only,trade", (True, False, True)),
        ("read_only,trade,withdraw", (True, True, True)),
        ("read_only", (False, False, False)),
    ],
)
async def test_the_key_permissions_are_read_from_account_config(
    executor: OkxExecutor, state: okx.OkxState, perm: str, expected: tuple[bool, ...]
) -> None:
    state.account.api_keys[0].perm = perm
    assert tuple(await read_permissions(executor.client))[:3] == expected


def test_a_reserve_is_drawn_from_the_funding_account_only(executor: OkxExecutor) -> None:
    funding = ReserveConfig.model_validate(
        {"from": "funding", "max_per_action": 1, "max_per_day": 1}
    )
    assert executor.reserve_refusal(funding) is None
    spot = funding.model_copy(update={"from_": "spot"})
    assert "use 'funding'" in str(executor.reserve_refusal(spot))


@pytest.mark.parametrize(
    ("kind", "path"),
    [("transfer", "/api/v5/asset/transfer"),
     ("add_margin", "/api/v5/account/position/margin-balance")],
)  # fmt: skip
async def test_money_moved_behind_a_lost_reply_is_found_not_moved_again(
    executor: OkxExecutor, state: okx.OkxState, journal: Journal, kind: str, path: str
) -> None:
    state.fail_next_post[path] = OrderFault.VENUE_TIMEOUT  # applied, then 50004
    made = (
        decision("transfer", quantity=1_000, source="funding")
        if kind == "transfer"
        else decision("add_margin", symbol=BTC, margin_mode="isolated", quantity=100)
    )
    request = executor.request(made, None)
    if kind == "add_margin":  # the fresh read the controller takes before acting
        request["isolated_margin_before"] = 2_900.0
    journal.record(made, "auto", "planned", request)
    journal.advance(made.id, "sent")

    outcome = await executor.send(request)
    assert outcome.status == "unknown" and "50004" in outcome.detail
    journal.settle(made.id, outcome)
    row = journal.get(made.id)
    assert row is not None
    settled = await executor.resolve(row)

    assert settled.status == "filled", settled.detail
    assert _calls(state).count(("POST", path)) == 1
    if kind == "transfer":
        assert len(state.account.transfers) == 1 and state.account.funding["USDT"] == 4_000
    else:  # isolated margin 2,900 + 100, read back from the position
        assert state.account.margin_moves == [("BTC-USDT-SWAP", "add", 100.0)]
        assert "3,000.00" in settled.detail


async def test_in_long_short_mode_a_cut_closes_its_leg_by_pos_side(
    executor: OkxExecutor, state: okx.OkxState, journal: Journal
) -> None:
    state.account.pos_mode = "long_short_mode"
    eth = next(p for p in state.account.positions if p.inst_id == "ETH-USDT-SWAP")
    eth.pos_side, eth.pos = "short", 20.0
    cut = decision("reduce", symbol=ETH, side="short", position_side="SHORT", quantity=5)
    request, _ = sent(journal, executor, cut)
    assert request["params"] == {
        "clientOrderId": okx_client_id(cut.id), "marginMode": "cross", "positionSide": "short",
    }  # fmt: skip
    outcome = await executor.send(request)
    assert outcome.status == "filled", outcome.detail
    (order,) = state.account.orders
    assert (order.pos_side, order.side, eth.pos) == ("short", "buy", 15)


# --- OKX's order deadline (expTime) ------------------------------------------------------

VALID_MS = 300
"""The validity the executor gives orders here (5 s in the daemon), short for the test."""


@pytest.fixture
async def deadline_executor(state: okx.OkxState, clock: Clock) -> AsyncIterator[OkxExecutor]:
    """The executor on a client made as the daemon makes it: `OkxAdapter.client_mixins`
    in front of ccxt's okx, so order requests carry `expTime`."""
    async with LocalServer(okx.create_app(state)) as server:
        client = okx.make_client(server.base_url, mixins=OkxAdapter.client_mixins)
        await client.load_markets()
        try:
            yield OkxExecutor(
                client, OkxAdapter(), CrossPolicy(), [okx.FIXTURE_SECRET],
                recv_window_ms=VALID_MS, now=clock,
            )  # fmt: skip
        finally:
            await client.close()


async def test_only_order_requests_carry_a_deadline_from_their_own_timestamp(
    deadline_executor: OkxExecutor, state: okx.OkxState, journal: Journal
) -> None:
    cut = decision("reduce", symbol=ETH, side="short", quantity=1, mark=3_000)
    request, _ = sent(journal, deadline_executor, cut)
    assert request["valid_ms"] == VALID_MS  # journaled: the lookup's window
    assert (await deadline_executor.send(request)).status == "filled"
    add = decision("add_margin", symbol=BTC, margin_mode="isolated", quantity=10)
    margin, _ = sent(journal, deadline_executor, add)
    assert "valid_ms" not in margin
    assert (await deadline_executor.send(margin)).status == "filled"

    (placed,) = [r for r in state.requests if (r.method, r.path) == ("POST", ORDER_PATH)]
    assert placed.exp_time is not None and placed.stamp is not None
    stamp_ms = datetime.fromisoformat(placed.stamp).timestamp() * 1000
    assert int(placed.exp_time) - round(stamp_ms) == VALID_MS
    assert [r.path for r in state.requests if r.exp_time is not None] == [ORDER_PATH]


async def test_an_order_stuck_past_its_deadline_is_refused_and_settled_after_it(
    deadline_executor: OkxExecutor, state: okx.OkxState, journal: Journal, clock: Clock
) -> None:
    """The request reaches OKX after its expTime (held 1 s in transit, the client gave up
    after 0.2 s): OKX discards it (50036). The lookup finds nothing; that is final only
    once the deadline and the grace for clock skew have passed, not OKX's 30 s."""
    state.delay_next_order_s = 1.0
    deadline_executor.client.timeout = 200  # ms
    cut = decision("reduce", symbol=ETH, side="short", quantity=2, mark=3_000)
    request, _ = sent(journal, deadline_executor, cut)

    row = await lost_reply(journal, deadline_executor, cut, request)
    clock.now = row.updated_at
    assert (await deadline_executor.lookup(row)).status == "unknown"
    for _ in range(300):  # the held request reaches the server's order handler
        if state.expired_requests:
            break
        await asyncio.sleep(0.01)
    assert state.expired_requests == 1 and state.account.orders == []

    clock.now = row.updated_at + VALID_MS / 1000 + SETTLE_GRACE - 0.1
    found = await deadline_executor.lookup(row)
    assert found.status == "unknown" and "may still arrive" in found.detail
    clock.now = row.updated_at + VALID_MS / 1000 + SETTLE_GRACE + 0.1
    found = await deadline_executor.lookup(row)
    assert found.status == "failed" and "never executed" in found.detail
    assert _calls(state).count(("POST", ORDER_PATH)) == 1
    assert state.account.orders == []


async def test_an_expired_order_request_is_a_definite_refusal(
    deadline_executor: OkxExecutor, state: okx.OkxState, journal: Journal
) -> None:
    """OKX's answer to a request past its expTime (50036) says it was not executed."""
    state.delay_next_order_s = 0.5  # past the 0.3 s deadline, within ccxt's timeout
    cut = decision("reduce", symbol=ETH, side="short", quantity=2, mark=3_000)
    request, _ = sent(journal, deadline_executor, cut)
    outcome = await deadline_executor.send(request)
    assert outcome.status == "failed" and "50036" in outcome.detail
    assert state.account.orders == []
