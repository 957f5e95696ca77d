"""Binance's ACCOUNT_UPDATE applied to a snapshot, checked against hand arithmetic.

The snapshot (Binance USD-M model, flat maintenance rates BTC 0.4 %, ETH 0.5 %):
- USDT cross pool, cross wallet 1,000, with the exchange's own ratio and MM beside it;
  cross BTC long 0.5 @ 60,000;
- isolated ETH short 2 @ 3,000, isolated wallet 300;
- cross SOL long 10 @ 150.
The event (fields as Binance sends them, numbers as strings): BTC reduced to 0.3 (entry
unchanged), ETH's isolated wallet down to 250 (margin removed), SOL closed (pa 0), the
USDT cross wallet now 990 (fees and the SOL loss). Marks from the feed: BTC 62,000,
ETH 3,100.
"""

from __future__ import annotations

import pytest

from monitor.domain import (
    AccountSnapshot,
    CrossPool,
    MarginMode,
    MarketInfo,
    Position,
    Side,
    TierTable,
)
from monitor.engine.book import AccountBook
from monitor.venues.binance.account_update import apply_account_update

BTC, ETH, SOL, XRP = "BTC/USDT:USDT", "ETH/USDT:USDT", "SOL/USDT:USDT", "XRP/USDT:USDT"
MARKETS = {
    f"{base}USDT": {"symbol": f"{base}/USDT:USDT", "settle": "USDT", "quote": "USDT",
                    "contractSize": 1.0, "inverse": False}
    for base in ("BTC", "ETH", "SOL", "XRP")
}  # fmt: skip
MARKS = {BTC: 62_000.0, ETH: 3_100.0}


def snapshot(unified: str | None = None) -> AccountSnapshot:
    cross, isolated = MarginMode.CROSS, MarginMode.ISOLATED
    positions = (
        Position(BTC, Side.LONG, cross, 0.5, 1, 60_000, 60_000, "USDT", leverage=10,
                 exchange_liquidation_price=41_000.0, exchange_maintenance_margin=120.0),
        Position(ETH, Side.SHORT, isolated, 2, 1, 3_000, 3_000, "USDT", isolated_margin=300,
                 exchange_liquidation_price=3_140.0),
        Position(SOL, Side.LONG, cross, 10, 1, 150, 150, "USDT"),
    )  # fmt: skip
    tiers = {BTC: TierTable.flat(0.004), ETH: TierTable.flat(0.005), SOL: TierTable.flat(0.01)}
    pool = CrossPool(unified or "USDT", 1_000.0, 0.1, 135.0)
    return AccountSnapshot(
        "a", "binanceusdm", (pool,), positions, tiers, unified_pool=unified, fetched_at=1.0
    )


def row(symbol: str, amount: str, entry: str, mode: str, wallet: str) -> dict[str, str]:
    return {"s": symbol, "pa": amount, "ep": entry, "bep": entry, "cr": "0", "up": "0",
            "mt": mode, "iw": wallet, "ps": "BOTH", "ma": "USDT"}  # fmt: skip


UPDATE = {
    "m": "ORDER",
    "B": [{"a": "USDT", "wb": "1240.00000000", "cw": "990.00000000", "bc": "0"}],
    "P": [
        row("BTCUSDT", "0.300", "60000.0", "cross", "0"),
        row("ETHUSDT", "-2.000", "3000.0", "isolated", "250.00000000"),
        row("SOLUSDT", "0", "0.0", "cross", "0"),
    ],
}


def apply(snap: AccountSnapshot, update: dict = UPDATE):
    return apply_account_update(
        snap, update, market=MARKETS.__getitem__, marks=MARKS, market_info=MarketInfo
    )


def test_positions_and_the_cross_wallet_follow_the_event():
    applied = apply(snapshot())
    assert applied.needs_read is None
    after = applied.snapshot
    legs = {p.symbol: p for p in after.positions}
    assert set(legs) == {BTC, ETH}  # SOL closed
    btc, eth = legs[BTC], legs[ETH]
    assert (btc.contracts, btc.entry_price, btc.mark_price) == (0.3, 60_000, 62_000)
    assert btc.leverage == 10  # not in the event: kept from the last read
    # what the exchange computed for the old leg no longer describes it: unknown
    assert btc.exchange_liquidation_price is None and btc.exchange_maintenance_margin is None
    assert (eth.side, eth.isolated_margin, eth.margin_mode) == (Side.SHORT, 250, "isolated")
    [pool] = after.pools
    assert pool == CrossPool("USDT", 990.0)  # exchange ratio and MM: unknown now

    risk = AccountBook(after).evaluate()
    # pool: wallet 990 + BTC uPnL 0.3 x (62,000 - 60,000) = 600 -> balance 1,590
    #       MM = 0.3 x 62,000 x 0.004 = 74.4 -> ratio 74.4 / 1,590
    [pool_risk] = risk.pools
    assert pool_risk.margin_balance == pytest.approx(1_590, rel=1e-12)
    assert pool_risk.maintenance_margin == pytest.approx(74.4, rel=1e-12)
    assert pool_risk.margin_ratio == pytest.approx(74.4 / 1_590, rel=1e-12)
    # ETH isolated: 250 + (-2) x (3,100 - 3,000) = 50; MM = 2 x 3,100 x 0.005 = 31
    eth_risk = next(p for p in risk.positions if p.position.symbol == ETH)
    assert eth_risk.margin_ratio == pytest.approx(31 / 50, rel=1e-12)
    # LP: 250 + 2 (3,000 - P) = 2 P x 0.005  =>  P = 6,250 / 2.01
    assert eth_risk.liquidation_price == pytest.approx(6_250 / 2.01, rel=1e-12)


def test_an_unchanged_leg_keeps_the_exchange_figures():
    update = {"m": "FUNDING_FEE", "B": [], "P": [row("ETHUSDT", "-2", "3000", "isolated", "300")]}
    eth = next(p for p in apply(snapshot(), update).snapshot.positions if p.symbol == ETH)
    assert eth.exchange_liquidation_price == 3_140.0 and eth.mark_price == 3_100.0


def test_a_new_symbol_is_applied_and_asks_for_its_tiers():
    update = {"m": "ORDER", "B": [], "P": [row("XRPUSDT", "100", "0.5", "cross", "0")]}
    applied = apply(snapshot(), update)
    xrp = next(p for p in applied.snapshot.positions if p.symbol == XRP)
    assert (xrp.contracts, xrp.entry_price, xrp.mark_price) == (100, 0.5, 0.5)  # no mark yet
    assert applied.needs_read is not None and "tiers" in applied.needs_read
    assert XRP in applied.snapshot.markets


def test_a_multi_assets_balance_change_needs_a_read_but_positions_apply():
    applied = apply(snapshot(unified="USD"))
    assert applied.needs_read is not None and "Multi-Assets" in applied.needs_read
    [pool] = applied.snapshot.pools
    assert (pool.asset, pool.wallet_balance, pool.exchange_margin_ratio) == ("USD", 1_000, None)
    assert {p.symbol for p in applied.snapshot.positions} == {BTC, ETH}
