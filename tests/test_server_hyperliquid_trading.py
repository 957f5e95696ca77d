"""Unmodified ccxt `hyperliquid` trading against the local Hyperliquid server: orders signed
by an agent wallet (reduce-only with a cloid, and its lookup), isolated margin, the
spot -> perp transfer only the main wallet may sign, the key's role, and an order whose
reply is lost after it filled.

Expected figures are derived by hand from `trading_user` (= `hybrid_user`), taker 0.00045:
BTC cross long 0.5 @ 58,000 (mark 60,000, 10x), ETH cross short 4 @ 3,100 (mark 3,000, 5x),
SOL isolated long 20 @ 140 (mark 150, 5x, rawUsd -2,240), cross totalRawUsd -8,600,
crossMaintenanceMarginUsed 615, withdrawable 4,000, spot USDC 2,000.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import ccxt
import pytest

from monitor.simulator.http import LocalServer
from tests.servers import hyperliquid as hl
from tests.servers.faults import OrderFault
from tests.servers.hl_signing import address_of_key

BTC = "BTC/USDC:USDC"
ETH = "ETH/USDC:USDC"
SOL = "SOL/USDC:USDC"
MAIN = address_of_key(hl.MAIN_KEY)
AGENT = address_of_key(hl.AGENT_KEY)
CLOID = "0x" + "00" * 15 + "01"


@pytest.fixture
def state() -> hl.HlState:
    return hl.trading_user()


@pytest.fixture
async def connect(state: hl.HlState) -> AsyncIterator[Callable[[str], Any]]:
    """A factory of ccxt clients signing with the given key for the main wallet."""
    clients: list[Any] = []
    async with LocalServer(hl.create_app(state)) as server:

        def make(private_key: str) -> Any:
            client = hl.make_trading_client(
                server.base_url, private_key=private_key, wallet_address=MAIN
            )
            clients.append(client)
            return client

        try:
            yield make
        finally:
            for client in clients:
                await client.close()


async def _clearinghouse(client: Any) -> dict[str, Any]:
    return await client.publicPostInfo({"type": "clearinghouseState", "user": MAIN})


async def test_agent_reduce_only_fill_and_lookup_by_cloid(
    connect: Callable[[str], Any], state: hl.HlState
) -> None:
    agent = connect(hl.AGENT_KEY)
    # ccxt sends a market order as an IOC limit 5% through the price given (57,000).
    order = await agent.create_order(
        BTC, "market", "sell", 0.2, 60_000, {"reduceOnly": True, "clientOrderId": CLOID}
    )
    assert order["id"] == str(state.orders[0].oid)
    sent = state.requests[-1].body["action"]["orders"][0]
    assert (sent["r"], sent["c"], sent["t"]) == (True, CLOID, {"limit": {"tif": "Ioc"}})

    found = await agent.fetch_order(None, BTC, {"clientOrderId": CLOID})
    assert (found["status"], found["filled"], found["clientOrderId"]) == ("closed", 0.2, CLOID)

    btc = next(p for p in await agent.fetch_positions() if p["symbol"] == BTC)
    assert btc["contracts"] == 0.3
    account = await _clearinghouse(agent)
    # rawUsd -8,600 + 0.2 x 60,000 - fee (0.2 x 60,000 x 0.00045 = 5.4) = 3,394.6;
    # accountValue = 3,394.6 + 0.3 x 60,000 - 4 x 3,000 = 9,394.6 (9,400 less the fee).
    assert account["crossMarginSummary"]["accountValue"] == "9394.6"
    # marginUsed BTC = 18,000 / 10 = 1,800; withdrawable = 9,394.6 - 1,800 - 2,400.
    assert account["withdrawable"] == "5194.6"
    # crossMM = 18,000 x 0.0125 + 12,000 x 0.02 = 225 + 240.
    assert account["crossMaintenanceMarginUsed"] == "465.0"


async def test_reduce_only_that_would_increase_is_refused(
    connect: Callable[[str], Any], state: hl.HlState
) -> None:
    agent = connect(hl.AGENT_KEY)
    with pytest.raises(ccxt.ExchangeError, match="Reduce only order would increase position"):
        await agent.create_order(ETH, "market", "sell", 1, 3_000, {"reduceOnly": True})
    with pytest.raises(ccxt.ExchangeError, match="could not immediately match"):
        await agent.create_order(BTC, "limit", "sell", 0.1, 61_000, {"timeInForce": "Ioc"})
    assert [o.status for o in state.orders] == ["reduceOnlyRejected", "iocCancelRejected"]
    assert state.users[MAIN.lower()].positions[0].szi == 0.5


async def test_agent_adds_isolated_margin(connect: Callable[[str], Any], state: hl.HlState) -> None:
    agent = connect(hl.AGENT_KEY)
    await agent.add_margin(SOL, 100)

    assert state.requests[-1].body["action"]["ntli"] == 100_000_000  # USD x 1e6
    sol = next(p for p in await agent.fetch_positions() if p["symbol"] == SOL)
    # marginUsed = rawUsd (-2,240 + 100) + 20 x 150 = 860;
    # liq = 150 - (860 - 3,000 x 0.025) / 20 / (1 - 0.025) = 150 - 785 / 19.5
    assert sol["info"]["position"]["marginUsed"] == "860.0"
    assert float(sol["info"]["position"]["liquidationPx"]) == pytest.approx(150 - 785 / 19.5)
    # The cross ledger paid it: withdrawable 4,000 - 100.
    assert (await _clearinghouse(agent))["withdrawable"] == "3900.0"
    with pytest.raises(ccxt.ExchangeError, match="not isolated"):
        await agent.add_margin(BTC, 100)


async def test_only_the_main_wallet_moves_usdc_from_spot_to_perp(
    connect: Callable[[str], Any], state: hl.HlState
) -> None:
    agent, main = connect(hl.AGENT_KEY), connect(hl.MAIN_KEY)
    with pytest.raises(ccxt.ExchangeError, match=f"{AGENT} does not exist"):
        await agent.transfer("USDC", 500, "spot", "swap")
    assert state.class_transfers == []

    await main.transfer("USDC", 500, "spot", "swap")
    user = state.users[MAIN.lower()]
    assert user.spot_balances["USDC"] == 1_500
    assert (await _clearinghouse(main))["withdrawable"] == "4500.0"  # 4,000 + 500


async def test_signer_and_role_are_checked(
    connect: Callable[[str], Any], state: hl.HlState
) -> None:
    stranger = connect("0x" + "5e" * 32)
    with pytest.raises(ccxt.ExchangeError, match="does not exist"):
        await stranger.create_order(BTC, "market", "sell", 0.1, 60_000, {"reduceOnly": True})
    assert state.orders == []

    agent = connect(hl.AGENT_KEY)
    role = await agent.publicPostInfo({"type": "userRole", "user": AGENT})
    assert role == {"role": "agent", "data": {"user": MAIN.lower()}}
    assert (await agent.publicPostInfo({"type": "userRole", "user": MAIN})) == {"role": "user"}
    agents = await agent.publicPostInfo({"type": "extraAgents", "user": MAIN})
    assert [a["address"] for a in agents] == [AGENT]


@pytest.mark.parametrize(
    ("fault", "raised"),
    [
        (OrderFault.HANG, ccxt.RequestTimeout),
        (OrderFault.DISCONNECT, ccxt.NetworkError),
        (OrderFault.GATEWAY_TIMEOUT, ccxt.RequestTimeout),
    ],
)
async def test_timeout_after_fill_then_lookup_finds_one_order(
    connect: Callable[[str], Any], state: hl.HlState, fault: OrderFault, raised: type[Exception]
) -> None:
    agent = connect(hl.AGENT_KEY)
    agent.timeout = 300  # ms: how long ccxt waits for a reply that never comes
    state.fail_next_order = fault
    with pytest.raises(raised):
        await agent.create_order(
            BTC, "market", "sell", 0.1, 60_000, {"reduceOnly": True, "clientOrderId": CLOID}
        )

    found = await agent.fetch_order(None, BTC, {"clientOrderId": CLOID})
    assert (found["status"], found["filled"]) == ("closed", 0.1)
    assert len(state.orders) == 1
    assert state.users[MAIN.lower()].positions[0].szi == pytest.approx(0.4)
    # Re-sending the very same signed request is refused: its nonce is spent.
    with pytest.raises(ccxt.ExchangeError, match="duplicate nonce"):
        sent = next(r.body for r in reversed(state.requests) if r.path == "/exchange")
        await agent.privatePostExchange(dict(sent))
    assert len(state.orders) == 1


def _agent_send_asset(amount: str, *, to_perp: bool = True, destination: str = MAIN) -> dict:
    return {
        "type": "agentSendAsset", "destination": destination.lower(),
        "sourceDex": "spot" if to_perp else "", "destinationDex": "" if to_perp else "spot",
        "token": "USDC:" + hl.USDC_TOKEN["tokenId"], "amount": amount, "fromSubAccount": "",
    }  # fmt: skip


async def _send_l1(client: Any, action: dict[str, Any], expires_after: int | None = None) -> Any:
    """Sign an L1 action with ccxt's own signer (the agent's key) and post it."""
    nonce = client.milliseconds()
    action = {**action, "nonce": nonce} if action["type"] == "agentSendAsset" else action
    request: dict[str, Any] = {
        "action": action, "nonce": nonce,
        "signature": client.sign_l1_action(action, nonce, None, expires_after),
    }  # fmt: skip
    if expires_after is not None:
        request["expiresAfter"] = expires_after
    return await client.privatePostExchange(request)


async def test_agent_moves_usdc_from_spot_to_perp_within_its_own_account(
    connect: Callable[[str], Any], state: hl.HlState
) -> None:
    agent = connect(hl.AGENT_KEY)
    await agent.load_markets()
    reply = await _send_l1(agent, _agent_send_asset("500"))
    assert reply == {"status": "ok", "response": {"type": "default"}}
    user = state.users[MAIN.lower()]
    assert user.spot_balances["USDC"] == 1_500  # 2,000 - 500
    assert (await _clearinghouse(agent))["withdrawable"] == "4500.0"  # 4,000 + 500
    ledger = await agent.publicPostInfo(
        {"type": "userNonFundingLedgerUpdates", "user": MAIN, "startTime": 0}
    )
    sent = next(r.body["nonce"] for r in state.requests if r.path == "/exchange")
    assert [(row["delta"]["type"], row["delta"]["amount"], row["delta"]["nonce"])
            for row in ledger] == [("send", "500.0", sent)]  # fmt: skip

    # Never to another account, whoever signs.
    with pytest.raises(ccxt.ExchangeError, match="own account"):
        await _send_l1(agent, _agent_send_asset("1", destination=AGENT))
    assert user.spot_balances["USDC"] == 1_500


async def test_an_expired_action_is_refused_and_changes_nothing(
    connect: Callable[[str], Any], state: hl.HlState
) -> None:
    agent = connect(hl.AGENT_KEY)
    await agent.load_markets()
    with pytest.raises(ccxt.ExchangeError, match="expired"):
        await _send_l1(agent, _agent_send_asset("500"), expires_after=agent.milliseconds() - 1)
    assert state.class_transfers == [] and state.ledger == []
