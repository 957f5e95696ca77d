"""Auto-deleverage end to end on Bybit v5, on loopback: the daemon, unmodified ccxt, the
Bybit REST dialect server (tests/servers/bybit.py) and the Bybit public tickers stream.

The unified account (hand derivation, Bybit's rules since 2 Sep 2025; taker 0.00055):
- BTCUSDT cross long 0.5 @ 62,000, 50x, mark 60,000: value 30,000 -> tier 1 (MMR 0.005);
  fee to close 0.5 x 62,000 x (1 - 1/50) x 0.00055 = 16.709; MM = 150 + 16.709 = 166.709;
  IM = 600 + 16.709; uPnL -1,000.
- SOLUSDT isolated long 100 @ 140, 5x, mark 118: IM at entry 2,800 + fee to close
  100 x 140 x 0.8 x 0.00055 = 6.16 -> positionBalance 2,806.16. Tier 1 (MMR 0.01):
  liq = (14,000 - 2,806.16 + 6.16) / (100 x 0.99) = 113.13: 4.1 % away (critical).
- USDT wallet 5,500: cross pool = 5,500 - 2,806.16 - 1,000 = 1,693.84. The BTC liquidation
  P solves 2,693.84 + 0.5 (P - 62,000) = 0.0025 P + 16.709: P = 56,919.6, 5.1 % away
  (critical under the cross default of 8 %).
- FUND wallet 10,000 USDT: the reserve.

Left alone both are critical. The defense must bring the SOL position to 15 % (an add of
about (113.13 - 100.3) x 99 = 1,270 USDT, funded from the reserve because the pool is
short of its own target), and the pool to 12 % (P <= 52,800: 2,053 more collateral, of
which the reserve gives 1,500 per action, then a reduce-only cut of BTC).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any, NamedTuple

import pytest

from monitor.actions.journal import Journal
from monitor.events import Event, EventKind
from monitor.simulator.http import LocalServer
from tests.servers.bybit import (
    TEST_KEY,
    TEST_SECRET,
    BybitState,
    create_app,
    hybrid_unified_account,
    move_marks,
)
from tests.servers.faults import OrderFault
from tests.test_actions_sim import until
from tests.test_feeds_bybit import BybitPublic, snapshot_state
from tests.test_feeds_support import WsServer
from tests.venue_actions import defending, filled

DEFENSE = {
    "mode": "auto",
    "isolated": {"trigger": "warn", "target_distance": 0.15,
                 "max_add_per_action": 2000, "max_add_per_position": 3000},
    "reserve": {"from": "funding", "max_per_action": 1500, "max_per_day": 5000},
    "caps": {"cooldown": 1},
}  # fmt: skip


def endangered() -> BybitState:
    state = hybrid_unified_account()
    state.api_keys[TEST_KEY].wallet = ["AccountTransfer"]
    state.funding["USDT"] = Decimal("10000")
    btc, _eth, sol = state.account.positions
    state.account.positions = [btc, sol]
    btc.leverage = "50"
    sol.size, sol.position_balance = "100", "2806.16"
    state.account.coins[0].wallet_balance = "5500"
    state.account.coins[0].cum_realised_pnl = "0"
    move_marks(state, {"BTCUSDT": "60000", "SOLUSDT": "118"})
    return state


class Venue(NamedTuple):
    state: BybitState
    events: list[Event]
    journal: Journal


@asynccontextmanager
async def defended(
    tmp_path: Path, state: BybitState, actions: dict[str, Any], **daemon: float
) -> AsyncIterator[Venue]:
    tickers = {
        symbol: snapshot_state(symbol, ticker.mark_price)
        for symbol, ticker in state.tickers.items()
    }
    events: list[Event] = []
    async with LocalServer(create_app(state)) as rest, WsServer(BybitPublic(tickers)) as ws:
        account = {
            "name": "uta",
            "exchange": "bybit",
            "api_key": TEST_KEY,
            "secret": TEST_SECRET,
            "rest_url": rest.base_url,
            "ws_url": ws.origin,
        }
        async with defending(tmp_path, account, actions, emit=events.append, **daemon) as journal:
            yield Venue(state, events, journal)


def settled(journal: Journal) -> bool:
    return not journal.pending("uta") and all(
        r.status not in ("planned", "sent") for r in journal.rows("uta")
    )


async def test_auto_defense_adds_transfers_and_cuts_one_to_one_with_the_venue(tmp_path):
    state = endangered()
    async with defended(tmp_path, state, DEFENSE) as venue:
        journal = venue.journal

        def defended_both() -> bool:
            rows = journal.rows("uta")
            return bool(filled(rows, "reduce")) and bool(filled(rows, "add_margin"))

        await until(defended_both, 30, "an add to SOL and a cut of BTC")
        await until(lambda: settled(journal), 10, "every row settled")
        rows = journal.rows("uta")

    # Nothing in flight, nothing unknown; no "dry run" (the key passed its check).
    assert all(r.status in ("filled", "refused", "aborted", "failed") for r in rows), rows
    assert not [e for e in venue.events if "refused" in e.message and e.target == "account"]

    # One to one: every filled order row is one venue order with its orderLinkId, size
    # and reduce-only flag, and the venue has no order of anyone else.
    orders = filled(rows, "reduce")
    assert sorted(r.client_order_id or "" for r in orders) == sorted(
        o.order_link_id for o in state.orders
    )
    by_link = {o.order_link_id: o for o in state.orders}
    for row in orders:
        order = by_link[row.client_order_id or ""]
        assert order.reduce_only and order.status == "Filled"
        assert (order.symbol, Decimal(order.cum_exec_qty)) == (
            "BTCUSDT",
            Decimal(str(row.quantity)),
        )
    # Every filled transfer row is one inter-transfer FUND -> UNIFIED with our id.
    transfers = filled(rows, "transfer")
    assert len(transfers) >= 2  # the pool's collateral and the SOL add's funding
    assert sorted(r.request["params"]["transferId"] for r in transfers) == sorted(
        t.transfer_id for t in state.transfers
    )
    moved = {t.transfer_id: t for t in state.transfers}
    for row in transfers:
        transfer = moved[row.request["params"]["transferId"]]
        assert (transfer.from_account_type, transfer.to_account_type) == ("FUND", "UNIFIED")
        assert Decimal(transfer.amount) == Decimal(f"{row.quantity:.2f}")
    total = sum(Decimal(t.amount) for t in state.transfers)
    assert state.funding["USDT"] == Decimal("10000") - total
    # Every filled add is one margin adjustment of the SOL position, and no more.
    adds = filled(rows, "add_margin")
    assert [(a.symbol, Decimal(a.margin)) for a in state.margin_adjustments] == [
        ("SOLUSDT", Decimal(f"{r.quantity:.2f}")) for r in adds
    ]

    # The outcome on the venue: SOL's liquidation is now at least 15 % away (Bybit's own
    # liqPrice, re-solved by the server), and BTC is smaller but still open.
    sol = next(p for p in state.account.positions if p.symbol == "SOLUSDT")
    assert Decimal(sol.liq_price) <= Decimal("118") * Decimal("0.85")
    btc = next(p for p in state.account.positions if p.symbol == "BTCUSDT")
    assert Decimal("0") < Decimal(btc.size) < Decimal("0.5")


@pytest.mark.parametrize("fault", [OrderFault.HANG, OrderFault.VENUE_TIMEOUT])
async def test_an_order_whose_reply_is_lost_after_it_filled_is_placed_once(tmp_path, fault):
    """The server fills the cut, then the reply never comes (ccxt times out after 1 s) or
    says retCode 10000 "Server Timeout": the outcome is unknown, the order is looked up
    by its orderLinkId and found filled; nothing is sent twice."""
    state = endangered()
    state.account.positions = state.account.positions[:1]  # the cross BTC long alone
    state.account.coins[0].wallet_balance = str(5500 - 2806.16)
    move_marks(state, {})
    state.fail_next_order = fault
    cut = {"mode": "auto", "caps": {"cooldown": 600}}
    async with defended(tmp_path, state, cut, request_timeout=1.0) as venue:
        await until(lambda: bool(venue.journal.rows("uta")), 20, "a decision")
        await until(lambda: settled(venue.journal), 20, "the decision settled")
        rows = venue.journal.rows("uta")
    (row,) = rows
    assert row.status == "filled", row.detail
    (order,) = state.orders
    assert order.order_link_id == row.client_order_id and order.status == "Filled"
    creates = [r for r in state.called() if r == ("POST", "/v5/order/create")]
    assert len(creates) == 1
    assert ("GET", "/v5/order/realtime") in state.called()  # looked up, not resent


async def test_a_key_that_can_withdraw_is_refused_and_only_dry_runs(tmp_path):
    state = endangered()
    state.api_keys[TEST_KEY].wallet = ["AccountTransfer", "Withdraw"]
    async with defended(tmp_path, state, DEFENSE) as venue:

        def said() -> list[Event]:
            return [e for e in venue.events if e.kind is EventKind.ACTION]

        await until(lambda: len(said()) >= 2, 20, "the refusal, then a dry run")
    refusal, *later = said()
    assert refusal.level == "critical" and "can WITHDRAW funds" in refusal.message
    assert later[0].message.startswith("dry run, would")
    assert not state.orders and not state.transfers and not state.margin_adjustments
