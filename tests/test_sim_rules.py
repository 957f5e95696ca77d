"""The simulated exchange's own margin rules (binance_usdm/rules.py) against Binance.

Expected figures are Binance's published worked example (FAQ "How to Calculate
Liquidation Price of USDⓈ-M Futures Contracts") or derived by hand in the comments,
never obtained by running the monitor's engine: the simulator is the second
implementation the engine is checked against, so it must stand on the FAQ alone.

Brackets used (the simulator's fixture tables, continuous as Binance's are):
BTCUSDT   < 50,000: 0.4 %, cum 0;   50,000-250,000: 0.5 %, cum 50;  1M-5M: 2.5 %, cum 16,300
ETHUSDT   < 10,000: 0.5 %, cum 0;   2M-5M: 10 %, cum 135,365
SOLUSDT   < 5,000: 1 %, cum 0;      5,000-50,000: 1.5 %, cum 25
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import monitor.simulator
from monitor.simulator.binance_usdm import (
    FAQ_API_KEY,
    SimAccount,
    SimExchange,
    SimMarket,
    SimPosition,
    binance_faq_hybrid_account,
    usdm_markets,
)
from monitor.simulator.binance_usdm.fixtures import BTC_BRACKETS
from monitor.simulator.binance_usdm.rules import (
    MULTI_ASSETS_POOL,
    MarginPool,
    liquidation_price,
    margin_pools,
)
from monitor.simulator.risk import RiskEngine
from tests.imports import offenders

FAQ_WALLET = 1_535_443.01
BTC_QTY, BTC_ENTRY, BTC_MARK = 109.488, 32_481.98, 31_967.27
ETH_QTY, ETH_ENTRY, ETH_MARK = 3_683.979, 1_456.84, 1_335.18


def venue(
    marks: dict[str, float], wallet: float, *legs: SimPosition, hedge: bool = False
) -> tuple[SimExchange, SimAccount]:
    exchange = SimExchange(markets=usdm_markets(extended=True), mark_prices=dict(marks))
    account = SimAccount("rules", "s", {"USDT": wallet}, list(legs), dual_side_position=hedge)
    return exchange, exchange.add_account(account)


def pools_by_key(exchange: SimExchange, account: SimAccount) -> dict[str, MarginPool]:
    return {pool.key: pool for pool in margin_pools(exchange, account)}


def reported(exchange: SimExchange, account: SimAccount) -> dict[tuple[str, str], float | None]:
    return {
        (leg.symbol, leg.position_side): liquidation_price(exchange, pool, leg)
        for pool in margin_pools(exchange, account)
        for leg in pool.legs
    }


# --- Binance's worked example --------------------------------------------------------


def test_faq_cross_example_liquidation_prices() -> None:
    # FAQ: cross, one-way, WB 1,535,443.01, BTC long -> 26,316.89, ETH long -> 1,153.26.
    # The fixture adds an isolated SOL short, which must not touch the cross pool.
    exchange = binance_faq_hybrid_account()
    prices = reported(exchange, exchange.accounts[FAQ_API_KEY])
    assert prices["BTCUSDT", "BOTH"] == pytest.approx(26_316.89, abs=0.005)
    assert prices["ETHUSDT", "BOTH"] == pytest.approx(1_153.26, abs=0.005)


def test_faq_cross_example_pool_figures() -> None:
    exchange = binance_faq_hybrid_account()
    pool = pools_by_key(exchange, exchange.accounts[FAQ_API_KEY])["USDT"]
    assert pool.cross and pool.wallet == FAQ_WALLET  # the isolated wallet is not in it
    assert [leg.symbol for leg in pool.legs] == ["BTCUSDT", "ETHUSDT"]
    # MM = |notional| x rate - cum, in the FAQ's brackets (BTC 2.5 % / 16,300;
    # ETH 10 % / 135,365): 3,500,032.55 x 0.025 - 16,300 + 4,918,775.08 x 0.1 - 135,365
    btc_mm = BTC_QTY * BTC_MARK * 0.025 - 16_300
    eth_mm = ETH_QTY * ETH_MARK * 0.10 - 135_365
    assert pool.maint_margin == pytest.approx(btc_mm + eth_mm, rel=1e-12)
    pnl = BTC_QTY * (BTC_MARK - BTC_ENTRY) + ETH_QTY * (ETH_MARK - ETH_ENTRY)
    assert pool.margin_balance == pytest.approx(FAQ_WALLET + pnl, rel=1e-12)
    assert pool.margin_ratio == pytest.approx((btc_mm + eth_mm) / (FAQ_WALLET + pnl))
    assert not pool.liquidating


def test_faq_isolated_example_liquidation_prices() -> None:
    # FAQ: the same two longs isolated, each with WB 1,535,443.01: ETH 1,114.78,
    # BTC 18,778.73 (TMM1 = UPNL1 = 0; at those prices BTC's notional 2.06M and ETH's
    # 4.11M are still in the FAQ's brackets).
    exchange, account = venue(
        {"BTCUSDT": BTC_MARK, "ETHUSDT": ETH_MARK},
        0.0,
        SimPosition(
            "BTCUSDT", BTC_QTY, BTC_ENTRY, margin_type="isolated", isolated_wallet=FAQ_WALLET
        ),
        SimPosition(
            "ETHUSDT", ETH_QTY, ETH_ENTRY, margin_type="isolated", isolated_wallet=FAQ_WALLET
        ),
    )
    prices = reported(exchange, account)
    assert prices["BTCUSDT", "BOTH"] == pytest.approx(18_778.73, abs=0.005)
    assert prices["ETHUSDT", "BOTH"] == pytest.approx(1_114.78, abs=0.005)
    pools = pools_by_key(exchange, account)
    assert set(pools) == {"BTCUSDT:BOTH", "ETHUSDT:BOTH", "USDT"}
    assert pools["USDT"].legs == ()  # nothing cross: an empty pool never liquidates


# --- Hand derivations -------------------------------------------------------------------

# A cross short beside a cross long of another symbol (TMM1 and UPNL1 at work).
# Wallet 2,000; SOL short 100 @ 150 (mark 150: notional 15,000, 1.5 % / cum 25);
# ETH long 2 @ 3,000, mark 3,100 (notional 6,200: 0.5 %, cum 0): TMM1 = 31, UPNL1 = 200.
# LP = (WB - TMM1 + UPNL1 + cum - Side x Pos x EP) / (Pos x MMR - Side x Pos)
#    = (2,000 - 31 + 200 + 25 + 100 x 150) / (100 x 0.015 + 100) = 17,194 / 101.5
SHORT_LP = 17_194 / 101.5  # 169.399..., notional 16,940: still the 1.5 % bracket


def short_book() -> tuple[SimExchange, SimAccount]:
    return venue(
        {"SOLUSDT": 150.0, "ETHUSDT": 3_100.0},
        2_000.0,
        SimPosition("SOLUSDT", -100, 150.0),
        SimPosition("ETHUSDT", 2, 3_000.0),
    )


def test_cross_short_liquidation_price_holds_the_other_symbol_at_its_mark() -> None:
    exchange, account = short_book()
    assert reported(exchange, account)["SOLUSDT", "BOTH"] == pytest.approx(SHORT_LP, rel=1e-12)


@pytest.mark.parametrize(
    ("sol_mark", "liquidated"),
    [
        # equity 2,000 + 200 - 100 x 19.3 = 270 > MM 31 + 16,930 x 0.015 - 25 = 259.95
        (169.30, False),
        # equity 2,000 + 200 - 100 x 19.5 = 250 <= MM 31 + 16,950 x 0.015 - 25 = 260.25
        (169.50, True),
    ],
)
def test_cross_pool_liquidates_when_equity_reaches_its_maintenance_margin(
    sol_mark: float, liquidated: bool
) -> None:
    exchange, account = short_book()
    exchange.mark_prices["SOLUSDT"] = sol_mark
    assert pools_by_key(exchange, account)["USDT"].liquidating is liquidated
    RiskEngine(exchange).check()
    assert (account.open_positions() == []) is liquidated  # both legs go together


# Hedge mode, cross: BTC LONG 0.5 @ 60,000 and SHORT 0.3 @ 62,000, wallet 1,000, mark
# 60,000 (both legs in the 0.4 % / cum 0 bracket). The FAQ's hedge formula:
# LP = (WB + cumL + cumS - PosL x EPL + PosS x EPS) / (PosL x MMR_L + PosS x MMR_S - PosL + PosS)
#    = (1,000 - 30,000 + 18,600) / (0.002 + 0.0012 - 0.5 + 0.3) = -10,400 / -0.1968
HEDGE_LP = 10_400 / 0.1968  # 52,845.53; notionals 26,423 and 15,854: same bracket


def hedge_book() -> tuple[SimExchange, SimAccount]:
    return venue(
        {"BTCUSDT": 60_000.0},
        1_000.0,
        SimPosition("BTCUSDT", 0.5, 60_000.0, "LONG"),
        SimPosition("BTCUSDT", -0.3, 62_000.0, "SHORT"),
        hedge=True,
    )


def test_hedge_mode_legs_share_the_faq_hedge_liquidation_price() -> None:
    exchange, account = hedge_book()
    prices = reported(exchange, account)
    assert prices["BTCUSDT", "LONG"] == pytest.approx(HEDGE_LP, rel=1e-12)
    assert prices["BTCUSDT", "SHORT"] == pytest.approx(HEDGE_LP, rel=1e-12)


@pytest.mark.parametrize(
    ("btc_mark", "liquidated"),
    [
        # equity 1,000 + 0.5 x -7,100 - 0.3 x -9,100 = 180 > MM 0.8 x 52,900 x 0.004 = 169.28
        (52_900.0, False),
        # equity 1,000 + 0.5 x -7,200 - 0.3 x -9,200 = 160 <= MM 0.8 x 52,800 x 0.004 = 168.96
        (52_800.0, True),
    ],
)
def test_hedge_pool_liquidation_closes_both_legs(btc_mark: float, liquidated: bool) -> None:
    exchange, account = hedge_book()
    exchange.mark_prices["BTCUSDT"] = btc_mark
    RiskEngine(exchange).check()
    remaining = {leg.position_side for leg in account.open_positions()}
    assert remaining == (set() if liquidated else {"LONG", "SHORT"})


def test_isolated_hedge_legs_each_have_their_own_price() -> None:
    # Isolated hedge legs do not share a wallet: each is a one-way FAQ case of its own.
    # LONG 0.5 @ 60,000, wallet 3,000: (3,000 - 30,000) / (0.002 - 0.5) = 54,216.87
    # SHORT 0.3 @ 62,000, wallet 1,860: (1,860 + 18,600) / (0.0012 + 0.3) = 67,928.29
    exchange, account = venue(
        {"BTCUSDT": 60_000.0},
        1_000.0,
        SimPosition("BTCUSDT", 0.5, 60_000.0, "LONG", "isolated", 3_000.0),
        SimPosition("BTCUSDT", -0.3, 62_000.0, "SHORT", "isolated", 1_860.0),
        hedge=True,
    )
    prices = reported(exchange, account)
    assert prices["BTCUSDT", "LONG"] == pytest.approx(27_000 / 0.498, rel=1e-12)
    assert prices["BTCUSDT", "SHORT"] == pytest.approx(20_460 / 0.3012, rel=1e-12)


# A bracket change at the liquidation price: isolated BTC long 1 @ 60,000, wallet 12,000.
# At the mark (notional 60,000) the bracket is 0.5 % / cum 50, which would give
# (12,000 + 50 - 60,000) / (0.005 - 1) = 48,190.95, a notional under 50,000: outside the
# bracket used. The 0.4 % / cum 0 bracket gives 48,000 / 0.996 = 48,192.77, inside it.
BRACKET_LP = 48_000 / 0.996
BRACKET_AT_MARK_LP = 47_950 / 0.995


def bracket_book() -> tuple[SimExchange, SimAccount]:
    position = SimPosition("BTCUSDT", 1, 60_000.0, margin_type="isolated", isolated_wallet=12_000)
    return venue({"BTCUSDT": 60_000.0}, 0.0, position)


def test_liquidation_price_uses_the_bracket_at_the_liquidation_price() -> None:
    assert BTC_BRACKETS[1].cum == 50 and BTC_BRACKETS[1].floor == 50_000
    exchange, account = bracket_book()
    price = reported(exchange, account)["BTCUSDT", "BOTH"]
    assert price == pytest.approx(BRACKET_LP, rel=1e-12)
    assert price != pytest.approx(BRACKET_AT_MARK_LP, rel=1e-6)


@pytest.mark.parametrize(
    ("btc_mark", "liquidated"),
    [
        (48_200.0, False),  # equity 200 > MM 48,200 x 0.004 = 192.80
        # between the two candidate prices: equity 191 <= MM 192.764, so the price
        # computed with the bracket at the mark (48,190.95) would have been too low
        (48_191.0, True),
        (48_190.0, True),  # equity 190 <= MM 192.76
    ],
)
def test_isolated_leg_liquidates_at_hand_derived_marks(btc_mark: float, liquidated: bool) -> None:
    exchange, account = bracket_book()
    exchange.mark_prices["BTCUSDT"] = btc_mark
    (pool,) = [p for p in margin_pools(exchange, account) if not p.cross]
    assert pool.liquidating is liquidated
    RiskEngine(exchange).check()
    assert (account.open_positions() == []) is liquidated
    assert account.cross_wallet == {"USDT": 0.0}  # an isolated loss never reaches it


def test_a_long_no_positive_price_liquidates_reports_none() -> None:
    # Wallet 70,000 behind a 1 BTC long @ 60,000: (70,000 - 60,000) / (0.004 - 1) < 0.
    exchange, account = venue({"BTCUSDT": 60_000.0}, 70_000.0, SimPosition("BTCUSDT", 1, 60_000))
    assert reported(exchange, account)["BTCUSDT", "BOTH"] is None


def test_hybrid_account_keeps_isolated_and_cross_pools_apart() -> None:
    # Cross ETH long 2 @ 3,000 on wallet 100; isolated SOL short 100 @ 150 with 1,500.
    # ETH at 2,960: cross equity 100 - 80 = 20 <= MM 5,920 x 0.005 = 29.6: liquidated;
    # SOL at 150: isolated equity 1,500 > MM 15,000 x 0.015 - 25 = 200: untouched.
    exchange, account = venue(
        {"ETHUSDT": 2_960.0, "SOLUSDT": 150.0},
        100.0,
        SimPosition("ETHUSDT", 2, 3_000.0),
        SimPosition("SOLUSDT", -100, 150.0, margin_type="isolated", isolated_wallet=1_500.0),
    )
    pools = pools_by_key(exchange, account)
    assert (pools["USDT"].wallet, pools["USDT"].maint_margin) == (100.0, pytest.approx(29.6))
    assert pools["USDT"].liquidating and not pools["SOLUSDT:BOTH"].liquidating
    RiskEngine(exchange).check()
    (survivor,) = account.open_positions()
    assert (survivor.symbol, survivor.isolated_wallet) == ("SOLUSDT", 1_500.0)
    # realized -80, then the clearance fee 5,920 x 1.25 % = 74 of the 20 left: 0
    assert account.cross_wallet == {"USDT": 0.0}


def test_multi_assets_mode_is_one_pool_over_every_margin_asset() -> None:
    # BTCUSDT long 1 @ 60,000 at mark 59,800 (uPnL -200; notional 59,800 in the
    # 0.5 % / cum 50 bracket: MM 249), on USDT 300 and USDC 300 (valued 1:1).
    # Single-asset mode: the USDT pool alone has 300 - 200 = 100 <= 249: liquidated.
    # Multi-Assets mode: one pool of 600 - 200 = 400 > 249: alive.
    btc_usdc = SimMarket("BTCUSDC", "BTC", "USDC", 0.1, 0.001, 0.001, 1000, 120, 100, BTC_BRACKETS)
    exchange, account = venue({"BTCUSDT": 59_800.0}, 300.0, SimPosition("BTCUSDT", 1, 60_000))
    exchange.markets["BTCUSDC"] = btc_usdc
    account.cross_wallet["USDC"] = 300.0
    assert pools_by_key(exchange, account)["USDT"].liquidating

    account.multi_assets_margin = True
    pools = pools_by_key(exchange, account)
    assert set(pools) == {MULTI_ASSETS_POOL}
    pool = pools[MULTI_ASSETS_POOL]
    assert (pool.wallet, pool.margin_balance) == (600.0, 400.0)
    assert pool.maint_margin == pytest.approx(59_800 * 0.005 - 50)
    assert not pool.liquidating
    # LP = (600 + 50 - 60,000) / (0.005 - 1) = 59,648.24 (notional still 50k-250k)
    (price,) = reported(exchange, account).values()
    assert price == pytest.approx(59_350 / 0.995, rel=1e-12)


def test_margin_call_events_carry_the_pool_at_eighty_percent() -> None:
    # The bracket book at 48,500: MM 194 / equity 500 = 0.39: quiet; at 48,230:
    # MM 192.92 / equity 230 = 0.84 >= 0.8: one MARGIN_CALL for the isolated leg.
    exchange, _account = bracket_book()
    published: list[dict[str, Any]] = []
    exchange.listeners.append(lambda _account, event: published.append(event))
    risk = RiskEngine(exchange)
    exchange.mark_prices["BTCUSDT"] = 48_500.0
    risk.check()
    assert published == []
    exchange.mark_prices["BTCUSDT"] = 48_230.0
    risk.check()
    (call,) = published
    assert call["e"] == "MARGIN_CALL" and float(call["p"][0]["mm"]) == pytest.approx(192.92)


# --- Independence -----------------------------------------------------------------------

FORBIDDEN = ("monitor.engine", "monitor.domain")


def test_simulator_source_imports_nothing_from_the_engine_or_the_domain() -> None:
    package = Path(monitor.simulator.__file__).parent
    assert list(offenders(package, FORBIDDEN)) == []
    # the walk did find every dialect's own rules
    assert {p.parent.name for p in package.rglob("rules.py")} >= {"binance_usdm", "bybit_v5"}


def test_importing_the_whole_simulator_loads_neither_engine_nor_domain() -> None:
    # In a fresh interpreter, so that nothing this test process imported counts.
    script = (
        "import importlib, pkgutil, sys, monitor.simulator as s\n"
        "for m in pkgutil.walk_packages(s.__path__, 'monitor.simulator.'):\n"
        "    importlib.import_module(m.name)\n"
        f"print(sorted(n for n in sys.modules if n.startswith({FORBIDDEN!r})))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"
