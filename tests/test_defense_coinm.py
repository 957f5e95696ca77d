"""Auto-deleverage end to end on Binance COIN-M, on loopback: the daemon, unmodified ccxt
`binancecoinm`, the dapi server and its mark-price stream (tests/servers/binance_coinm.py).

The account (hand figures, Binance's COIN-M formula LP = N cs (1 + MMR) / (N cs / EP + WB)):
- BTC pool: cross long 300 x 100 USD at 60,000, mark 58,000, MMR 0.5 %, cross wallet
  0.05 BTC: LP = 30,150 / 0.55 = 54,818, 5.5 % away (critical). Reserve: 0.2 BTC in spot,
  at most 0.02 per transfer: LP = 30,150 / 0.57 = 52,895 (8.8 %), short of the 12 %
  target, so a cut of whole contracts follows.
- ETH isolated long 1,000 x 10 USD at 3,000, mark 2,900, MMR 1 %, 0.3 ETH posted:
  LP = 10,100 / 3.6333 = 2,779.8, 4.1 % away; 0.2364 ETH more puts it 10 % away
  (the unit derivation in test_actions_inverse.py); the ETH cross wallet holds 1.0.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any, NamedTuple

import pytest

from monitor.actions.journal import Journal
from monitor.events import Event
from monitor.simulator.http import LocalServer
from tests.servers.binance_coinm import (
    TEST_KEY,
    TEST_SECRET,
    CoinmState,
    MarkStream,
    btc_account,
    create_app,
)
from tests.servers.faults import OrderFault
from tests.test_actions_sim import until
from tests.test_feeds_support import WsServer
from tests.venue_actions import defending, filled

DEFENSE = {
    "mode": "auto",
    "isolated": {"trigger": "critical", "target_distance": 0.10},
    "reserve": {"from": "spot", "asset": "BTC", "max_per_action": 0.02, "max_per_day": 0.1},
    "caps": {"cooldown": 1},
}


def endangered() -> CoinmState:
    state = btc_account()
    state.wallets = {"BTC": Decimal("0.05"), "ETH": Decimal("1.3")}
    state.positions[1].isolated_wallet = Decimal("0.3")
    return state


class Defended(NamedTuple):
    state: CoinmState
    journal: Journal
    events: list[Event]
    stream: WsServer


@asynccontextmanager
async def defended(
    tmp_path: Path, state: CoinmState, actions: dict[str, Any], **daemon: float
) -> AsyncIterator[Defended]:
    events: list[Event] = []
    async with LocalServer(create_app(state)) as rest, WsServer(MarkStream(state)) as ws:
        account = {
            "name": "coin",
            "exchange": "binancecoinm",
            "api_key": TEST_KEY,
            "secret": TEST_SECRET,
            "rest_url": rest.base_url,
            "ws_url": ws.origin,
        }
        async with defending(tmp_path, account, actions, emit=events.append, **daemon) as journal:
            yield Defended(state, journal, events, ws)


def settled(journal: Journal) -> bool:
    rows = journal.rows("coin")
    return bool(rows) and all(r.status not in ("planned", "sent", "unknown") for r in rows)


async def test_auto_defense_adds_transfers_and_cuts_one_to_one_with_the_venue(tmp_path):
    state = endangered()
    async with defended(tmp_path, state, DEFENSE) as run:

        def both() -> bool:
            rows = run.journal.rows("coin")
            return bool(filled(rows, "reduce")) and bool(filled(rows, "add_margin"))

        await until(both, 30, "an add to ETH and a cut of BTC")
        await until(lambda: settled(run.journal), 10, "every row settled")
        rows = run.journal.rows("coin")
    # The marks came from the COIN-M stream (dstream's combined endpoint).
    assert any("btcusd_perp@markPrice@1s" in path for path in run.stream.paths)

    # One to one: each filled cut is one reduce-only dapi order with our client id, in
    # whole contracts, filled in full; no order of anyone else.
    cuts = filled(rows, "reduce")
    assert sorted(r.client_order_id or "" for r in cuts) == sorted(
        o.client_order_id for o in state.orders
    )
    by_id = {o.client_order_id: o for o in state.orders}
    for row in cuts:
        order = by_id[row.client_order_id or ""]
        assert order.reduce_only and order.status == "FILLED"
        assert order.symbol == "BTCUSD_PERP" and order.executed == order.quantity == row.quantity
    # Each filled transfer is one MAIN_CMFUTURE of BTC, and the spot reserve gave exactly that.
    transfers = filled(rows, "transfer")
    assert len(transfers) == len(state.transfers) >= 1
    for row, transfer in zip(transfers, state.transfers, strict=True):
        assert (transfer.asset, transfer.kind) == ("BTC", "MAIN_CMFUTURE")
        assert transfer.amount == Decimal(row.request["amount"]).quantize(Decimal("1e-8"))
        assert str((row.result or {}).get("id")) == str(transfer.tran_id)
    assert state.spot["BTC"] == Decimal("0.2") - sum(t.amount for t in state.transfers)
    # Each filled add is one positionMargin type 1 on ETHUSD_PERP, in ETH to 8 decimals.
    adds = filled(rows, "add_margin")
    assert state.margin_changes == [
        ("ETHUSD_PERP", Decimal(r.request["params"]["amount"]), 1) for r in adds
    ]
    assert all(len(r.request["params"]["amount"].partition(".")[2]) <= 8 for r in adds)

    # On the venue, by Binance's formula: ETH's liquidation at least 10 % below 2,900,
    # and the BTC pool's at least 12 % below 58,000.
    eth = state.position("ETHUSD_PERP")
    assert eth is not None and eth.isolated_wallet is not None
    eth_lp = 10_100 / (Decimal(10_000) / 3_000 + eth.isolated_wallet)
    assert eth_lp <= Decimal("2610")
    btc = state.position("BTCUSD_PERP")
    assert btc is not None and 0 < btc.amount < 300
    face = btc.amount * 100
    cross = state.wallets["BTC"]
    btc_lp = face * Decimal("1.005") / (face / Decimal(60_000) + cross)
    assert btc_lp <= Decimal("58000") * Decimal("0.88")


@pytest.mark.parametrize("fault", [OrderFault.HANG, OrderFault.VENUE_TIMEOUT])
async def test_a_cut_whose_reply_is_lost_after_the_fill_is_placed_once(tmp_path, fault):
    state = endangered()
    state.positions = state.positions[:1]  # the cross BTC long alone
    state.fail_next_order = fault
    cut = {"mode": "auto", "caps": {"cooldown": 600}}
    async with defended(tmp_path, state, cut, request_timeout=1.0) as run:
        await until(lambda: settled(run.journal), 20, "the decision settled")
        rows = run.journal.rows("coin")
    (row,) = rows
    assert row.status == "filled", row.detail
    (order,) = state.orders
    assert order.client_order_id == row.client_order_id and order.status == "FILLED"
    assert state.requests.count("POST /dapi/v1/order") == 1
    assert "GET /dapi/v1/order" in state.requests  # looked up, not resent
