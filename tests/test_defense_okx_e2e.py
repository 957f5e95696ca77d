"""The defense in auto mode against the OKX v5 test server, end to end on loopback.

One account's monitor and controller (the daemon's parts, the executor picked from the
venue registry) drive unmodified ccxt against tests/servers/okx.py; the journal is a
SQLite file. Each request the venue received is matched to its journal row.

The account (`single_currency_account` without its inverse position; taker 0.0005), with
the marks moved so that both its targets need defending, by hand:
- ETH-USDT-SWAP cross short 20 contracts (2 ETH) at 3,100, mark 6,500. USDT cash 10,000,
  of which 2,900 is the BTC position's isolated margin; the cross pool's equity
  = 10,000 - 2,900 + 2 x (3,100 - 6,500) = 300. Its liquidation, other prices fixed:
  7,100 + 2 x (3,100 - P) = 2 P x (0.005 + 0.0005) => P = 13,300 / 2.011 = 6,613.6,
  1.7 % away: imminent (cross: critical below 8 %).
- BTC-USDT-SWAP isolated long 50 contracts (0.5 BTC) at 58,000, margin 2,900, mark
  57,000: liquidation 26,100 / 0.49775 = 52,436.0 (margin-models.md, OKX isolated),
  8.0 % away: warn (isolated: warn below 10 %), the isolated policy's default trigger.
- The funding account holds 5,000 USDT: the reserve, 500 a transfer.
The cross pool has nothing to spare, so the isolated add needs the reserve too; the
pool's need (about 1,340 USDT to bring its liquidation 12 % away) is more than one
transfer, so a cut of the ETH short follows the transfer.
"""

from __future__ import annotations

from typing import Any

import pytest

from monitor.actions.journal import ActionRow
from monitor.simulator.http import LocalServer
from tests.servers import okx
from tests.servers.faults import OrderFault
from tests.venue_actions import controlled, filled, settle

RESERVE = {"from": "funding", "asset": "USDT", "max_per_action": 500, "max_per_day": 5_000}
AUTO = {"mode": "auto", "reserve": RESERVE, "caps": {"cooldown": 1}}
ETH, BTC = "ETH/USDT:USDT", "BTC/USDT:USDT"


def stressed() -> okx.OkxState:
    state = okx.single_currency_account(perm="read_only,trade")
    state.account.positions = [p for p in state.account.positions if p.inst_id != okx.BTC_USD]
    state.account.funding["USDT"] = 5_000.0
    okx.move_mark(state, okx.ETH_USDT, 6_500)
    okx.move_mark(state, okx.BTC_USDT, 57_000)
    return state


def account(url: str) -> dict[str, Any]:
    return {"name": "okx-main", "exchange": "okx", "api_key": okx.FIXTURE_API_KEY,
            "secret": okx.FIXTURE_SECRET, "password": okx.FIXTURE_PASSPHRASE,
            "rest_url": url}  # fmt: skip


def _posts(state: okx.OkxState, path: str) -> int:
    return sum(r.method == "POST" and r.path == path for r in state.requests)


def _all_three(rows: list[ActionRow]) -> bool:
    kinds = {r.kind for r in rows if r.status == "filled"}
    return kinds == {"transfer", "add_margin", "reduce"} and not any(
        r.status in ("planned", "sent", "unknown") for r in rows
    )


async def test_auto_transfers_adds_and_cuts_with_the_journal_matching_okx(tmp_path):
    state = stressed()
    async with (
        LocalServer(okx.create_app(state)) as server,
        controlled(account(server.base_url), tmp_path, AUTO) as harness,
    ):
        rows = await settle(harness, _all_three)
    filled = [r for r in rows if r.status == "filled"]
    # nothing refused: each add was sized within what OKX lets move (its availEq)
    assert {r.status for r in rows} == {"filled"}, [(r.kind, r.detail) for r in rows]

    # cuts: one order per row, each our clOrdId, reduce-only on the cross ETH short,
    # sent to the single-order endpoint and never to batch-orders
    cuts = [r for r in filled if r.kind == "reduce"]
    orders = {o.cl_ord_id: o for o in state.account.orders}
    assert {r.request["params"]["clientOrderId"] for r in cuts} == set(orders)
    assert _posts(state, "/api/v5/trade/order") == len(orders) == len(cuts)
    assert _posts(state, "/api/v5/trade/batch-orders") == 0
    for row in cuts:
        order = orders[row.request["params"]["clientOrderId"]]
        assert (row.symbol, row.target) == (ETH, "pool USDT")
        assert (order.inst_id, order.td_mode, order.side, order.reduce_only) == (
            "ETH-USDT-SWAP", "cross", "buy", True,
        )  # fmt: skip
        assert order.state == "filled" and order.fill_sz == pytest.approx(row.quantity)
    eth = next(p for p in state.account.positions if p.inst_id == "ETH-USDT-SWAP")
    assert -eth.pos == pytest.approx(20 - sum(r.quantity for r in cuts))

    # margin: one margin-balance call per add, moving exactly what was journaled
    adds = [r for r in rows if r.kind == "add_margin"]
    assert _posts(state, "/api/v5/account/position/margin-balance") == len(adds)
    assert state.account.margin_moves == [
        ("BTC-USDT-SWAP", "add", pytest.approx(r.quantity)) for r in adds
    ]

    # transfers: one per row, found by our clientId, the reserve lighter by their sum
    transfers = [r for r in filled if r.kind == "transfer"]
    moved = {t.client_id: t for t in state.account.transfers}
    assert {r.request["params"]["clientId"] for r in transfers} == set(moved)
    assert _posts(state, "/api/v5/asset/transfer") == len(moved)
    assert all(moved[r.request["params"]["clientId"]].amt == r.quantity for r in transfers)
    assert state.account.funding["USDT"] == pytest.approx(
        5_000 - sum(r.quantity for r in transfers)
    )
    assert all(r.quantity <= RESERVE["max_per_action"] for r in transfers)


async def test_a_cut_whose_reply_is_lost_after_the_fill_is_placed_exactly_once(tmp_path):
    state = stressed()  # no reserve configured: the pool's defense is the cut alone
    state.fail_next_order = OrderFault.HANG
    actions = {"mode": "auto", "isolated": {"trigger": "critical"}, "caps": {"cooldown": 600}}
    async with (
        LocalServer(okx.create_app(state)) as server,
        controlled(account(server.base_url), tmp_path, actions, request_timeout=1.0) as harness,
    ):
        rows = await settle(harness, lambda rows: any(r.status == "filled" for r in rows))
    (row,) = rows
    assert (row.kind, row.status) == ("reduce", "filled"), row.detail
    assert state.fail_next_order is None  # the reply of that very order was lost
    (order,) = state.account.orders
    assert order.cl_ord_id == row.request["params"]["clientOrderId"]
    assert _posts(state, "/api/v5/trade/order") == 1  # looked up by clOrdId, not resent
    (placed,) = [r for r in state.requests if (r.method, r.path) == ("POST", "/api/v5/trade/order")]
    assert placed.exp_time is not None  # the daemon's client sends OKX's order deadline
    assert row.request["valid_ms"] == 5_000
    assert order.fill_sz == pytest.approx(row.quantity)


# --- multi-currency margin (acctLv 3): the add is OKX's to allow in USDT ------------------
#
# `multi_currency_account` with BTC-USDT marked at 57,000: the isolated long's liquidation
# is 52,436.0 as above, 8.0 % away (warn), and USDT's own availEq stays 1,100 (its
# isolated equity and its cash fall together), while the account's USD-valued adjEq is
# 62,300 (1 BTC of collateral): the pool could fund any add, USDT cannot.
# The add to 15 % (the isolated policy's default target), P = 57,000 x 0.85 = 48,450:
#   MM + fee at P = 0.5 x 48,450 x (0.004 + 0.0005) = 109.0125
#   uPnL at P = 0.5 x (48,450 - 58,000) = -4,775
#   add = 109.0125 + 4,775 - 2,900 = 1,984.0125 -> 1,984.02 (cents, up)
# USDT's availEq moves with the ETH cross short (2 ETH at 3,000, 5x): a 3 % move
# (isolated.close_before) against it takes 2 x 90 of uPnL and 2 x 90 / 5 more initial
# margin: 216 of headroom. The transfer lifts what is left after that move to the add:
#   transfer = 1,984.02 - (1,100 - 216) = 1,100.02, within reserve.max_per_action.
MULTI = {
    "mode": "auto",
    "reserve": {"from": "funding", "asset": "USDT", "max_per_action": 1_500, "max_per_day": 5_000},
    "isolated": {"max_add_per_action": 2_000},
}
ADD, TRANSFER = 1_984.02, 1_100.02


def multi_currency() -> okx.OkxState:
    state = okx.multi_currency_account(perm="read_only,trade")
    state.account.funding["USDT"] = 5_000.0
    okx.move_mark(state, okx.BTC_USDT, 57_000)
    return state


def _filled(kind: str) -> Any:
    return lambda rows: any(r.kind == kind and r.status == "filled" for r in rows)


def _failed_adds(rows: list[ActionRow]) -> bool:
    return sum(r.kind == "add_margin" and r.status == "failed" for r in rows) == 2


def _matches_okx(state: okx.OkxState, rows: list[ActionRow]) -> None:
    """Every transfer and margin move OKX made is one filled journal row, and back."""
    transfers = filled(rows, "transfer")
    assert [(t.client_id, t.amt) for t in state.account.transfers] == [
        (r.request["params"]["clientId"], pytest.approx(r.quantity)) for r in transfers
    ]
    assert state.account.margin_moves == [
        ("BTC-USDT-SWAP", "add", pytest.approx(r.quantity)) for r in filled(rows, "add_margin")
    ]


async def test_a_multi_currency_add_is_sized_within_usdt_and_funded_once(tmp_path):
    state = multi_currency()
    async with (
        LocalServer(okx.create_app(state)) as server,
        controlled(account(server.base_url), tmp_path, MULTI) as harness,
    ):
        rows = await settle(harness, _filled("add_margin"))
        for _ in range(3):  # more reads: the position is where it was sent, nothing follows
            await harness.poller.poll()
        rows = harness.rows()
    assert [(r.kind, r.status) for r in rows] == [("transfer", "filled"), ("add_margin", "filled")]
    transfer, add = rows
    assert (transfer.quantity, add.quantity) == (pytest.approx(TRANSFER), pytest.approx(ADD))
    assert "USDT" in add.description and "USDT" in transfer.description  # sized in the coin
    _matches_okx(state, rows)
    assert state.account.funding["USDT"] == pytest.approx(5_000 - TRANSFER)
    btc = next(p for p in state.account.positions if p.inst_id == okx.BTC_USDT)
    assert btc.margin == pytest.approx(2_900 + ADD)


async def test_a_refused_funded_add_never_draws_the_reserve_again_even_after_a_restart(tmp_path):
    """OKX refuses the add the transfer funded (59301), and the add sized again on the
    fresh read from the USDT the transfer left: both rungs are refused in this process.
    After a restart the journal still rules the reserve out; the add is made from that
    USDT, and the reserve is drawn on once in all."""
    state = multi_currency()
    state.refuse_adds = 2
    async with LocalServer(okx.create_app(state)) as server:
        # a long cooldown: the refused rungs stay refused in this process
        first = MULTI | {"caps": {"cooldown": 600}}
        async with controlled(account(server.base_url), tmp_path, first) as harness:
            rows = await settle(harness, _failed_adds)
            assert all("59301" in r.detail for r in rows if r.kind == "add_margin")
        assert len(state.account.transfers) == 1 and state.account.margin_moves == []

        # the restart; its cooldown ends at once, and nothing of the first run's memory
        second = MULTI | {"caps": {"cooldown": 1}}
        async with controlled(account(server.base_url), tmp_path, second) as harness:
            rows = await settle(harness, _filled("add_margin"))
    assert [(r.kind, r.status) for r in rows] == [
        ("transfer", "filled"), ("add_margin", "failed"), ("add_margin", "failed"),
        ("add_margin", "filled"),
    ]  # fmt: skip
    assert len(state.account.transfers) == 1
    assert rows[-1].quantity == pytest.approx(ADD)  # 1,100 + 1,100.02 of USDT allows it
    _matches_okx(state, rows)
