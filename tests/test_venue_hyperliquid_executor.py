"""The Hyperliquid executor against the Hyperliquid test server, through unmodified ccxt
signing with the agent (API) wallet's key: each action as Hyperliquid documents it, its
outcome as the server records it, and the lookups that settle an unknown outcome without
sending anything twice.

Figures are from `trading_user` (tests/servers/hyperliquid.py): BTC cross long 0.5 at
mark 60,000; SOL isolated long 20 at mark 150; withdrawable 4,000; 2,000 USDC on spot.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from monitor.actions.journal import Journal
from monitor.actions.permissions import refusal
from monitor.config.schema import AccountConfig, CrossPolicy, ReserveConfig
from monitor.exchange.clients import create_client, secret_values
from monitor.simulator.http import LocalServer
from monitor.venues.hyperliquid.adapter import HyperliquidAdapter
from monitor.venues.hyperliquid.executor import HyperliquidExecutor, cloid
from monitor.venues.hyperliquid.permissions import read_permissions
from tests.servers import hyperliquid as hl
from tests.servers.faults import OrderFault
from tests.servers.hl_signing import address_of_key
from tests.venue_actions import Clock, decision, lost_reply, sent

BTC = "BTC/USDC:USDC"
SOL = "SOL/USDC:USDC"
MAIN = address_of_key(hl.MAIN_KEY)


@pytest.fixture
def state() -> hl.HlState:
    return hl.trading_user()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def connect(state: hl.HlState, clock: Clock) -> AsyncIterator[Callable[[str], Any]]:
    """An executor factory: ccxt signing with the given key for the main wallet."""
    clients: list[Any] = []
    async with LocalServer(hl.create_app(state)) as server:

        async def make(private_key: str = hl.AGENT_KEY) -> HyperliquidExecutor:
            client = hl.make_trading_client(
                server.base_url, private_key=private_key, wallet_address=MAIN
            )
            clients.append(client)
            await client.load_markets()
            return HyperliquidExecutor(
                client, HyperliquidAdapter(), CrossPolicy(), [private_key], now=clock
            )

        try:
            yield make
        finally:
            for client in clients:
                await client.close()


@pytest.fixture
def journal(tmp_path: Path) -> Journal:
    return Journal(tmp_path / "actions.sqlite3")


def _exchange_posts(state: hl.HlState, kind: str) -> list[dict[str, Any]]:
    return [
        r.body for r in state.requests
        if r.path == "/exchange" and r.body["action"]["type"] == kind
    ]  # fmt: skip


async def test_a_cut_is_one_reduce_only_ioc_order_with_our_cloid_and_an_expiry(
    connect: Callable[..., Any], state: hl.HlState, journal: Journal
) -> None:
    executor = await connect()
    cut = decision("reduce", symbol=BTC, quantity=0.2, mark=60_000, asset="USDC")
    request, _ = sent(journal, executor, cut)

    outcome = await executor.send(request)

    assert outcome.status == "filled", outcome.detail
    # 0.2 fills at the mark, 60,000 (ccxt's market order: an IOC limit 5 % through it)
    assert outcome.result and (outcome.result["filled"], outcome.result["average"]) == (
        0.2, 60_000,
    )  # fmt: skip
    (body,) = _exchange_posts(state, "order")
    (wire,) = body["action"]["orders"]
    assert (wire["r"], wire["c"], wire["t"], wire["p"]) == (
        True, cloid(cut.id), {"limit": {"tif": "Ioc"}}, "57000",
    )  # fmt: skip
    assert body["expiresAfter"] == body["nonce"] + executor.recv_window_ms
    (order,) = state.orders
    assert (order.cloid, order.status, order.filled_sz) == (cloid(cut.id), "filled", 0.2)


async def test_margin_goes_into_the_isolated_position(
    connect: Callable[..., Any], state: hl.HlState, journal: Journal
) -> None:
    executor = await connect()
    add = decision("add_margin", symbol=SOL, margin_mode="isolated", quantity=100, asset="USDC")
    request, _ = sent(journal, executor, add)
    outcome = await executor.send(request)
    assert outcome.status == "filled", outcome.detail
    assert state.margin_updates == [("SOL", 100.0)]
    (body,) = _exchange_posts(state, "updateIsolatedMargin")
    assert body["action"] == {"type": "updateIsolatedMargin", "asset": 2, "isBuy": True,
                              "ntli": 100_000_000}  # fmt: skip


async def test_the_agent_moves_the_reserve_from_spot_and_finds_it_by_its_nonce(
    connect: Callable[..., Any], state: hl.HlState, journal: Journal
) -> None:
    executor = await connect()
    transfer = decision("transfer", quantity=500, source="spot", asset="USDC")
    request, row = sent(journal, executor, transfer)

    outcome = await executor.send(request)

    assert outcome.status == "filled", outcome.detail
    assert state.class_transfers == [(MAIN.lower(), 500.0, True)]
    (body,) = _exchange_posts(state, "agentSendAsset")
    assert body["action"]["destination"] == MAIN.lower()
    assert body["action"]["token"] == "USDC:" + hl.USDC_TOKEN["tokenId"]
    found = await executor.lookup(row)
    assert found.status == "filled" and found.result == {"nonce": request["params"]["nonce"]}


@pytest.mark.parametrize(
    "fault", [OrderFault.HANG, OrderFault.DISCONNECT, OrderFault.GATEWAY_TIMEOUT]
)
async def test_a_cut_that_filled_behind_a_lost_reply_is_found_not_sent_again(
    connect: Callable[..., Any], state: hl.HlState, journal: Journal, fault: OrderFault
) -> None:
    executor = await connect()
    executor.client.timeout = 300  # ms: the reply never comes (HANG)
    state.fail_next_order = fault
    cut = decision("reduce", symbol=BTC, quantity=0.1, mark=60_000, asset="USDC")
    request, _ = sent(journal, executor, cut)

    row = await lost_reply(journal, executor, cut, request)
    settled = await executor.resolve(row)

    assert settled.status == "filled", settled.detail
    assert len(state.orders) == 1 and len(_exchange_posts(state, "order")) == 1
    assert state.users[MAIN.lower()].positions[0].szi == pytest.approx(0.4)


async def test_an_order_never_placed_fails_once_its_expiry_has_passed(
    connect: Callable[..., Any], journal: Journal, clock: Clock
) -> None:
    executor = await connect()
    _, row = sent(journal, executor, decision("reduce", symbol=BTC, quantity=0.1, mark=60_000))
    found = await executor.lookup(row)
    assert found.status == "unknown" and "may still arrive" in found.detail
    clock.now = row.request["params"]["expiresAfter"] / 1000 + 2 + 1  # + grace + 1 s
    found = await executor.lookup(row)
    assert found.status == "failed" and "never executed" in found.detail


async def test_an_action_arriving_after_its_expiry_is_refused_and_changes_nothing(
    connect: Callable[..., Any], state: hl.HlState, journal: Journal
) -> None:
    executor = await connect()
    add = decision("add_margin", symbol=SOL, margin_mode="isolated", quantity=100, asset="USDC")
    request, _ = sent(journal, executor, add)
    state.time_ms = request["params"]["expiresAfter"] + 1  # it reaches the venue too late
    outcome = await executor.send(request)
    assert outcome.status == "failed" and "expired" in outcome.detail
    assert state.margin_updates == []


async def test_the_key_must_be_an_agent_of_the_configured_wallet(
    connect: Callable[..., Any], state: hl.HlState
) -> None:
    agent = await connect(hl.AGENT_KEY)
    permissions = await read_permissions(agent.client)
    assert tuple(permissions)[:3] == (True, False, True)
    assert refusal("hl", "hyperliquid", permissions, reserve=True) is None

    main = await connect(hl.MAIN_KEY)  # the main wallet itself: it can withdraw
    permissions = await read_permissions(main.client)
    assert tuple(permissions)[:3] == (True, True, True)
    assert "itself, which can WITHDRAW" in str(refusal("hl", "hyperliquid", permissions))

    stranger = await connect("0x" + "5e" * 32)  # approved by nobody
    permissions = await read_permissions(stranger.client)
    assert tuple(permissions)[:3] == (False, False, False)
    assert "role 'missing'" in str(refusal("hl", "hyperliquid", permissions))

    other = "0x" + "77" * 20
    state.agents[address_of_key(hl.AGENT_KEY)] = other  # an agent, of another wallet
    permissions = await read_permissions(agent.client)
    assert tuple(permissions)[:3] == (False, False, False)
    assert f"an agent of {other}" in str(refusal("hl", "hyperliquid", permissions))


async def test_a_reserve_is_usdc_on_spot_only(connect: Callable[..., Any]) -> None:
    executor = await connect()
    spot = ReserveConfig.model_validate(
        {"from": "spot", "asset": "USDC", "max_per_action": 1, "max_per_day": 1}
    )
    assert executor.reserve_refusal(spot) is None
    funding = spot.model_copy(update={"from_": "funding"})
    assert "use 'spot'" in str(executor.reserve_refusal(funding))
    usdt = spot.model_copy(update={"asset": "USDT"})
    assert "use 'USDC'" in str(executor.reserve_refusal(usdt))


async def test_the_agent_key_is_a_secret_like_any_other(connect: Callable[..., Any]) -> None:
    settings = {"name": "hl", "exchange": "hyperliquid", "wallet_address": MAIN}
    account = AccountConfig.model_validate({**settings, "private_key": hl.AGENT_KEY})
    assert hl.AGENT_KEY not in repr(account) and hl.AGENT_KEY in secret_values(account)
    client = create_client(account)
    try:
        assert client.privateKey == hl.AGENT_KEY
    finally:
        await client.close()
    executor = await connect()  # its secrets are the key it signs with
    assert executor.scrubbed(RuntimeError(f"signing with {hl.AGENT_KEY} failed")) == (
        "signing with *** failed"
    )
    with pytest.raises(ValidationError, match="wallet_address"):
        AccountConfig.model_validate({**settings, "wallet_address": None,
                                      "private_key": hl.AGENT_KEY})  # fmt: skip


@pytest.mark.parametrize("kind", ["transfer", "add_margin"])
async def test_money_moved_behind_a_lost_reply_is_found_not_moved_again(
    connect: Callable[..., Any], state: hl.HlState, journal: Journal, kind: str
) -> None:
    executor = await connect()
    action = "agentSendAsset" if kind == "transfer" else "updateIsolatedMargin"
    state.fail_next_action[action] = OrderFault.GATEWAY_TIMEOUT  # applied, then a 504
    made = (
        decision("transfer", quantity=500, source="spot", asset="USDC")
        if kind == "transfer"
        else decision("add_margin", symbol=SOL, margin_mode="isolated", quantity=100,
                      asset="USDC")
    )  # fmt: skip
    request = executor.request(made, None)
    if kind == "add_margin":  # the fresh read the controller takes before acting:
        request["isolated_margin_before"] = 560.0  # rawUsd -2,240 + 20 x 140
    journal.record(made, "auto", "planned", request)
    journal.advance(made.id, "sent")

    row = await lost_reply(journal, executor, made, request)
    settled = await executor.resolve(row)

    assert settled.status == "filled", settled.detail
    assert len(_exchange_posts(state, action)) == 1
    if kind == "transfer":
        assert state.class_transfers == [(MAIN.lower(), 500.0, True)]
    else:  # the isolated wallet (rawUsd + szi x entry) rose from 560 to 660
        assert state.margin_updates == [("SOL", 100.0)]
        assert "660.00" in settled.detail
