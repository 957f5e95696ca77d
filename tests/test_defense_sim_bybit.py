"""Auto-deleverage end to end on the simulated Bybit: the daemon, its Bybit executor and
unmodified ccxt against the simulator's Bybit v5 dialect (REST and tickers stream), the
venue's own books checked against the journal one to one.

The book is the Bybit defense test's (tests/test_defense_bybit.py derives it by hand),
held still so that only the defense moves it: BTCUSDT cross long 0.5 @ 62,000 at 50x
(mark 60,000), SOLUSDT isolated long 100 @ 140 at 5x (mark 118) with positionBalance
2,806.16, cross wallet 5,500 - 2,806.16 = 2,693.84, and 10,000 USDT in FUND. Left alone
SOL's liquidation is 113.13 (4.1 % away) and the pool's BTC liquidation 56,919.6 (5.1 %
away): both critical. The defense must add to SOL (funded from the reserve) and bring
the pool to 12 % with reserve collateral and a reduce-only cut of BTC.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, NamedTuple

import pytest

from monitor.actions.journal import Journal
from monitor.simulator.binance_usdm import Fault, SimAccount
from monitor.simulator.bybit_v5.rules import position_figures
from monitor.simulator.runner import SimulatedVenue
from monitor.simulator.scenario import parse_scenario
from tests.test_actions_sim import until
from tests.venue_actions import defending, filled

ENDANGERED = """
seed: 1
tick_seconds: 1
symbols:
  BTCUSDT: {{start: 60000}}
  SOLUSDT: {{start: 118}}
segments:
  - {{duration: 600s}}
accounts:
  - name: uta
    balances: {{USDT: {wallet}}}
    reserve: {{USDT: 10000}}
    reserve_wallet: funding
    positions:
      - {{symbol: BTCUSDT, side: long, size: 0.5, entry: 62000, leverage: 50}}
{sol}"""
SOL = """      - {symbol: SOLUSDT, side: long, size: 100, entry: 140, leverage: 5,
         margin_mode: isolated, isolated_margin: 2806.16}
"""
DEFENSE = {
    "mode": "auto",
    "isolated": {"trigger": "warn", "target_distance": 0.15,
                 "max_add_per_action": 2000, "max_add_per_position": 3000},
    "reserve": {"from": "funding", "max_per_action": 1500, "max_per_day": 5000},
    "caps": {"cooldown": 1},
}  # fmt: skip
FINAL = ("filled", "refused", "aborted", "failed")


class Defended(NamedTuple):
    venue: SimulatedVenue
    account: SimAccount
    journal: Journal


@asynccontextmanager
async def defended(
    tmp_path: Path, scenario: str, actions: dict[str, Any], **daemon: float
) -> AsyncIterator[Defended]:
    async with SimulatedVenue(parse_scenario(scenario), speed=1, venue="bybit") as venue:
        (creds,) = venue.credentials.values()
        account = {
            "name": "uta",
            "exchange": "bybit",
            "api_key": creds.api_key,
            "secret": creds.secret,
            "rest_url": venue.base_url,
            "ws_url": venue.ws_url,
        }
        async with defending(
            tmp_path, account, actions, emit=lambda _event: None, **daemon
        ) as journal:
            yield Defended(venue, venue.exchange.accounts[creds.api_key], journal)


def settled(journal: Journal) -> bool:
    return all(r.status in FINAL for r in journal.rows("uta"))


async def test_auto_defense_on_the_simulated_bybit_matches_its_books_one_to_one(tmp_path):
    book = ENDANGERED.format(wallet=2693.84, sol=SOL)
    async with defended(tmp_path, book, DEFENSE) as (venue, account, journal):

        def defended_both() -> bool:
            rows = journal.rows("uta")
            return bool(filled(rows, "reduce")) and bool(filled(rows, "add_margin"))

        await until(defended_both, 40, "an add to SOL and a cut of BTC")
        await until(lambda: settled(journal), 10, "every row settled")
        rows = journal.rows("uta")
        sol = account.position("SOLUSDT")
        assert sol is not None
        sol_liquidation = position_figures(venue.exchange, account, sol).liquidation_price

    assert all(r.status in FINAL for r in rows), rows
    assert not [o for o in account.orders if o.type == "LIQUIDATION"]
    # Orders: each filled reduce row is one venue order with its orderLinkId, size and
    # the reduce-only flag; the venue holds no other order.
    cuts = filled(rows, "reduce")
    assert sorted(r.client_order_id or "" for r in cuts) == sorted(
        o.client_order_id for o in account.orders
    )
    by_link = {o.client_order_id: o for o in account.orders}
    for row in cuts:
        order = by_link[row.client_order_id or ""]
        assert order.reduce_only and (order.symbol, order.side) == ("BTCUSDT", "SELL")
        assert order.executed_qty == pytest.approx(row.quantity)
    # Transfers: each filled row is one FUND -> UNIFIED inter-transfer with our id.
    moves = filled(rows, "transfer")
    assert len(moves) >= 2  # the pool's collateral and the SOL add's funding
    assert sorted(r.request["params"]["transferId"] for r in moves) == sorted(
        t.client_id for t in account.transfers
    )
    amounts = {t.client_id: t for t in account.transfers}
    for row in moves:
        transfer = amounts[row.request["params"]["transferId"]]
        assert transfer.type == "FUND_UNIFIED"
        assert transfer.amount == pytest.approx(round(row.quantity, 2))
    assert account.funding["USDT"] == pytest.approx(
        10_000 - sum(t.amount for t in account.transfers)
    )
    # Adds: SOL's positionBalance grew by exactly the filled adds.
    adds = filled(rows, "add_margin")
    assert sol.isolated_wallet == pytest.approx(2_806.16 + sum(round(r.quantity, 2) for r in adds))
    # On the venue: SOL's liquidation (Bybit's own liqPrice) at least 15 % under the mark,
    # BTC smaller but still open (a cut, never a close of the whole book).
    assert sol_liquidation is not None and sol_liquidation <= 118 * 0.85 * (1 + 1e-6)
    btc = account.position("BTCUSDT")
    assert btc is not None and 0 < btc.amount < 0.5


async def test_an_order_whose_reply_comes_after_the_timeout_is_placed_once(tmp_path):
    """The cross BTC long alone (critical, 5.1 % away): the simulated Bybit fills the cut
    and holds its reply past ccxt's 1 s timeout. The outcome is unknown, the order is
    looked up by its orderLinkId and found filled; nothing is sent twice."""
    book = ENDANGERED.format(wallet=2693.84, sol="")
    cut = {"mode": "auto", "caps": {"cooldown": 600}}
    async with defended(tmp_path, book, cut, request_timeout=1.0) as (venue, account, journal):
        venue.exchange.faults["/v5/order/create"] = Fault.answer_late(2.0, times=1)
        await until(lambda: bool(journal.rows("uta")), 20, "a decision")
        await until(lambda: settled(journal), 20, "the decision settled")
        rows = journal.rows("uta")
        requests = list(venue.exchange.requests)
    (row,) = rows
    assert row.status == "filled", row.detail
    (order,) = account.orders
    assert order.client_order_id == row.client_order_id and order.reduce_only
    assert requests.count("POST /v5/order/create") == 1
    assert "GET /v5/order/realtime" in requests  # looked up, not resent
