"""The defense in auto mode against the Hyperliquid test server, end to end on loopback.

One account's monitor and controller (the daemon's parts, the executor picked from the
venue registry) drive unmodified ccxt, signing with the agent (API) wallet's key only,
against tests/servers/hyperliquid.py; the journal is a SQLite file. Each action the
venue received is matched to its journal row, and every one was signed by the agent.

The account is `trading_user` (margin-models.md, Hyperliquid; l = 1 / (2 x maxLeverage)):
BTC cross long 0.5 at 58,000 (10x, l 0.0125), ETH cross short 4 at 3,100 (5x, mark
3,000, l 0.02), SOL isolated long 20 at 140 (rawUsd -2,240, l 0.025), cross totalRawUsd
-8,600, 2,000 USDC on spot (the reserve). By hand, two moves of the marks:
1. BTC 50,000, SOL 125. Cross accountValue = -8,600 + 0.5 x 50,000 - 4 x 3,000 = 4,400;
   its marginUsed 2,500 + 2,400 = 4,900, so nothing is withdrawable and an add needs
   the reserve. SOL: marginUsed = -2,240 + 20 x 125 = 260; liq = 125 - (260 - 2,500 x
   0.025) / 20 / 0.975 = 114.87, 8.1 % away: warn (isolated: below 10 %).
   BTC's liquidation (other prices fixed) stays 60,000 - 8,785 / 0.5 / 0.9875 = 42,207.6,
   15.6 % away: still ok.
2. BTC 43,500. With X the USDC the first step left in the pool (its transfer, which
   carries headroom for the move an add must outlast, less its add), accountValue =
   -8,600 + X + 0.5 x 43,500 - 12,000 and BTC's liquidation (other prices fixed) solves
   -20,600 + X + 0.5 P = 0.5 P x 0.0125 + 240: P = (20,840 - X) / 0.49375, whatever
   BTC's mark. It is within 8 % of 43,500 (critical: P > 40,020) while X < 1,080, and
   reaches the cross target of 12 % (P <= 38,280) only with X >= 1,939.25. One reserve
   transfer (at most 1,000) cannot bring X there while the first step left under 939,
   so the pool draws on the reserve and cuts BTC.
"""

from __future__ import annotations

from typing import Any

import pytest

from monitor.actions.journal import ActionRow
from monitor.simulator.http import LocalServer
from tests.servers import hyperliquid as hl
from tests.servers.faults import OrderFault
from tests.servers.hl_signing import address_of_key, l1_digest, recover_signer
from tests.venue_actions import controlled, settle

MAIN = address_of_key(hl.MAIN_KEY)
AGENT = address_of_key(hl.AGENT_KEY)
RESERVE = {"from": "spot", "asset": "USDC", "max_per_action": 1_000, "max_per_day": 2_000}
BTC = "BTC/USDC:USDC"


def account(url: str) -> dict[str, Any]:
    return {"name": "hl", "exchange": "hyperliquid", "wallet_address": MAIN,
            "private_key": hl.AGENT_KEY, "rest_url": url}  # fmt: skip


def _filled(kind: str) -> Any:
    """Done once `kind` filled and nothing is pending."""
    return lambda rows: (
        any(r.kind == kind and r.status == "filled" for r in rows)
        and not any(r.status in ("planned", "sent", "unknown") for r in rows)
    )


def _posts(state: hl.HlState, kind: str) -> list[dict[str, Any]]:
    return [
        r.body for r in state.requests
        if r.path == "/exchange" and r.body["action"]["type"] == kind
    ]  # fmt: skip


def _signer(body: dict[str, Any]) -> str | None:
    digest = l1_digest(
        body["action"], body["nonce"], vault_address=None,
        expires_after=body.get("expiresAfter"), mainnet=True,
    )  # fmt: skip
    return recover_signer(digest, body["signature"])


async def test_auto_transfers_adds_and_cuts_with_the_journal_matching_hyperliquid(tmp_path):
    state = hl.trading_user()
    hl.move_mark(state, "BTC", 50_000)
    hl.move_mark(state, "SOL", 125)
    actions = {"mode": "auto", "reserve": RESERVE, "caps": {"cooldown": 1}}
    async with (
        LocalServer(hl.create_app(state)) as server,
        controlled(account(server.base_url), tmp_path, actions) as harness,
    ):
        first = await settle(harness, _filled("add_margin"))
        left = sum(r.quantity if r.kind == "transfer" else -r.quantity for r in first)
        assert left < 939  # so that the next move needs a cut (see above)
        hl.move_mark(state, "BTC", 43_500)
        rows: list[ActionRow] = await settle(harness, _filled("reduce"))

    assert {r.status for r in rows} == {"filled"}, [(r.kind, r.detail) for r in rows]
    assert {r.kind for r in rows} == {"transfer", "add_margin", "reduce"}
    # the agent signed every action; nothing needed the main wallet's key
    bodies = [r.body for r in state.requests if r.path == "/exchange"]
    assert {_signer(body) for body in bodies} == {AGENT.lower()}
    assert _posts(state, "usdClassTransfer") == []

    # cuts: one IOC reduce-only order per row, with our cloid, on the cross BTC long
    cuts = [r for r in rows if r.kind == "reduce"]
    orders = {o.cloid: o for o in state.orders}
    assert {r.request["params"]["clientOrderId"] for r in cuts} == set(orders)
    assert len(_posts(state, "order")) == len(orders) == len(cuts)
    for row in cuts:
        order = orders[row.request["params"]["clientOrderId"]]
        assert (row.symbol, row.target) == (BTC, "pool USDC")
        assert (order.coin, order.is_buy, order.reduce_only, order.status) == (
            "BTC", False, True, "filled",
        )  # fmt: skip
        assert order.filled_sz == pytest.approx(row.quantity)
    btc = next(p for p in state.users[MAIN.lower()].positions if p.coin == "BTC")
    assert btc.szi == pytest.approx(0.5 - sum(r.quantity for r in cuts))

    # margin: one updateIsolatedMargin per row, the amount journaled
    adds = [r for r in rows if r.kind == "add_margin"]
    assert len(_posts(state, "updateIsolatedMargin")) == len(adds)
    assert state.margin_updates == [("SOL", pytest.approx(r.quantity)) for r in adds]

    # transfers: one agentSendAsset per row, in the ledger under the row's nonce
    transfers = [r for r in rows if r.kind == "transfer"]
    assert len(_posts(state, "agentSendAsset")) == len(transfers) == len(state.class_transfers)
    ledger = {row["delta"]["nonce"]: row["delta"] for _, row in state.ledger}
    for row in transfers:
        delta = ledger[row.request["params"]["nonce"]]
        assert float(delta["amount"]) == pytest.approx(row.quantity)
        assert row.quantity <= RESERVE["max_per_action"]
    spot = state.users[MAIN.lower()].spot_balances["USDC"]
    assert spot == pytest.approx(2_000 - sum(r.quantity for r in transfers))


async def test_a_cut_whose_reply_is_lost_after_the_fill_is_placed_exactly_once(tmp_path):
    state = hl.trading_user()
    hl.move_mark(state, "BTC", 44_000)  # critical at once; no reserve: the cut alone
    state.fail_next_order = OrderFault.HANG
    actions = {"mode": "auto", "caps": {"cooldown": 600}}
    async with (
        LocalServer(hl.create_app(state)) as server,
        controlled(account(server.base_url), tmp_path, actions, request_timeout=1.0) as harness,
    ):
        rows = await settle(harness, _filled("reduce"))
    # the BTC cut whose reply was lost, then (the pool re-read) whatever else it needed
    assert {(r.kind, r.status) for r in rows} == {("reduce", "filled")}
    assert state.fail_next_order is None and "orderStatus" in state.info_types()
    lost = rows[0]
    assert lost.symbol == BTC
    orders = {o.cloid: o for o in state.orders}
    assert {r.request["params"]["clientOrderId"] for r in rows} == set(orders)
    assert len(_posts(state, "order")) == len(orders) == len(rows)  # none resent
    assert orders[lost.request["params"]["clientOrderId"]].filled_sz == pytest.approx(lost.quantity)


async def test_a_reserve_the_agent_cannot_draw_on_is_refused_at_startup(tmp_path):
    state = hl.trading_user()
    reserve = {**RESERVE, "from": "funding"}  # Hyperliquid has no funding wallet
    async with (
        LocalServer(hl.create_app(state)) as server,
        controlled(
            account(server.base_url), tmp_path, {"mode": "auto", "reserve": reserve}
        ) as harness,
    ):
        await settle(harness, lambda _: harness.controller.refused is not None, timeout=5)
        refused = str(harness.controller.refused)
    assert refused.startswith("account 'hl': actions.reserve.from 'funding'")
    assert any("confirm/auto refused" in e.message for e in harness.events)
