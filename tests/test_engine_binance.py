"""Binance's published examples, reproduced by the engine.

Expected figures come from Binance's FAQ worked example (shared/reference/margin-models.md)
and, for COIN-M, from the FAQ formula evaluated by hand in the test.
"""

from __future__ import annotations

import pytest

from monitor.domain import (
    AccountSnapshot,
    CrossPool,
    MarginMode,
    Position,
    Side,
    Tier,
    TierBasis,
    TierTable,
)
from monitor.engine.book import AccountBook

# Binance's USD-M brackets for the two symbols; the FAQ example sits in the
# 0.025 / 16,300 (BTC) and 0.10 / 135,365 (ETH) brackets.
BTC_TIERS = TierTable(
    (
        Tier(0, 50_000, 0.004, 0),
        Tier(50_000, 250_000, 0.005, 50),
        Tier(250_000, 1_000_000, 0.01, 1_300),
        Tier(1_000_000, 5_000_000, 0.025, 16_300),
        Tier(5_000_000, 10_000_000, 0.05, 141_300),
    )
)
ETH_TIERS = TierTable(
    (
        Tier(0, 10_000, 0.005, 0),
        Tier(10_000, 100_000, 0.0065, 15),
        Tier(100_000, 500_000, 0.01, 365),
        Tier(500_000, 1_000_000, 0.02, 5_365),
        Tier(1_000_000, 2_000_000, 0.05, 35_365),
        Tier(2_000_000, 5_000_000, 0.10, 135_365),
    )
)
WALLET = 1_535_443.01
TIERS = {"BTC/USDT:USDT": BTC_TIERS, "ETH/USDT:USDT": ETH_TIERS}


def faq_positions(mode: MarginMode, isolated: float | None = None) -> tuple[Position, ...]:
    return (
        Position(
            "BTC/USDT:USDT", Side.LONG, mode, 109.488, 1, 32_481.98, 31_967.27, "USDT",
            isolated_margin=isolated,
        ),
        Position(
            "ETH/USDT:USDT", Side.LONG, mode, 3_683.979, 1, 1_456.84, 1_335.18, "USDT",
            isolated_margin=isolated,
        ),
    )  # fmt: skip


def by_symbol(risk):
    return {p.position.symbol: p for p in risk.positions}


def test_cross_liquidation_prices_match_binance_faq():
    snapshot = AccountSnapshot(
        "a", "binanceusdm", (CrossPool("USDT", WALLET),), faq_positions(MarginMode.CROSS), TIERS
    )
    risk = by_symbol(AccountBook(snapshot).evaluate())
    assert risk["BTC/USDT:USDT"].liquidation_price == pytest.approx(26_316.89, abs=0.005)
    assert risk["ETH/USDT:USDT"].liquidation_price == pytest.approx(1_153.26, abs=0.005)


def test_isolated_liquidation_prices_match_binance_faq():
    positions = faq_positions(MarginMode.ISOLATED, isolated=WALLET)
    snapshot = AccountSnapshot("a", "binanceusdm", (CrossPool("USDT", 0.0),), positions, TIERS)
    risk = by_symbol(AccountBook(snapshot).evaluate())
    assert risk["BTC/USDT:USDT"].liquidation_price == pytest.approx(18_778.73, abs=0.005)
    assert risk["ETH/USDT:USDT"].liquidation_price == pytest.approx(1_114.78, abs=0.005)


def test_cross_pool_ratio_is_total_mm_over_margin_balance():
    snapshot = AccountSnapshot(
        "a", "binanceusdm", (CrossPool("USDT", WALLET),), faq_positions(MarginMode.CROSS), TIERS
    )
    pool = AccountBook(snapshot).evaluate().pools[0]
    btc_mm = 109.488 * 31_967.27 * 0.025 - 16_300
    eth_mm = 3_683.979 * 1_335.18 * 0.10 - 135_365
    pnl = 109.488 * (31_967.27 - 32_481.98) + 3_683.979 * (1_335.18 - 1_456.84)
    assert pool.maintenance_margin == pytest.approx(btc_mm + eth_mm, rel=1e-12)
    assert pool.margin_ratio == pytest.approx((btc_mm + eth_mm) / (WALLET + pnl), rel=1e-12)


def test_hybrid_account_keeps_isolated_margin_out_of_the_cross_pool():
    cross = faq_positions(MarginMode.CROSS)
    isolated = Position(
        "SOL/USDT:USDT", Side.SHORT, MarginMode.ISOLATED, 100, 1, 20.0, 25.0, "USDT",
        isolated_margin=1_000.0,
    )  # fmt: skip
    tiers = dict(TIERS, **{"SOL/USDT:USDT": TierTable.flat(0.01)})
    snapshot = AccountSnapshot(
        "a", "binanceusdm", (CrossPool("USDT", WALLET),), (*cross, isolated), tiers
    )
    risk = by_symbol(AccountBook(snapshot).evaluate())
    # the cross legs are exactly as without the isolated short
    assert risk["BTC/USDT:USDT"].liquidation_price == pytest.approx(26_316.89, abs=0.005)
    sol = risk["SOL/USDT:USDT"]
    # isolated short: 1000 + 100 x (20 - LP) = 100 x LP x 0.01  ->  LP = 3000 / 101
    assert sol.liquidation_price == pytest.approx(3_000 / 101, rel=1e-12)
    # ratio = MM / (wallet + PnL) = 25 / (1000 - 500)
    assert sol.margin_ratio == pytest.approx(25 / 500, rel=1e-12)


def test_hedge_mode_legs_of_one_symbol_share_one_liquidation_price():
    # Binance's hedge formula, evaluated by hand for a LONG and a SHORT BTC leg
    # (same bracket 0.004 / 0) in an otherwise empty cross pool:
    # LP = (WB + cumL + cumS - PosL x EPL + PosS x EPS) / (PosL x MMR + PosS x MMR - PosL + PosS)
    wb, pos_l, ep_l, pos_s, ep_s, mmr = 50.0, 2.0, 100.0, 1.0, 110.0, 0.004
    expected = (wb - pos_l * ep_l + pos_s * ep_s) / (pos_l * mmr + pos_s * mmr - pos_l + pos_s)
    assert 0 < expected < 105
    legs = (
        Position("X/USDT:USDT", Side.LONG, MarginMode.CROSS, pos_l, 1, ep_l, 105.0, "USDT",
                 position_side="LONG"),
        Position("X/USDT:USDT", Side.SHORT, MarginMode.CROSS, pos_s, 1, ep_s, 105.0, "USDT",
                 position_side="SHORT"),
    )  # fmt: skip
    tiers = {"X/USDT:USDT": TierTable.flat(mmr)}
    snapshot = AccountSnapshot("a", "binanceusdm", (CrossPool("USDT", wb),), legs, tiers)
    risk = AccountBook(snapshot).evaluate()
    prices = {p.liquidation_price for p in risk.positions}
    assert len(prices) == 1
    assert prices.pop() == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize(
    ("side", "expected"),
    [
        # long:  N cs (1 + MMR) / (N cs / EP + WB + cum) = 100*100*1.005 / (0.2 + 0.05)
        (Side.LONG, 10_050 / 0.25),
        # short: N cs (1 - MMR) / (N cs / EP - (WB + cum)) = 100*100*0.995 / (0.2 - 0.05)
        (Side.SHORT, 9_950 / 0.15),
    ],
)
def test_coin_m_liquidation_price_follows_binance_formula(side, expected):
    tiers = {"BTC/USD:BTC": TierTable((Tier(0, 1e9, 0.005, 0.0),), TierBasis.CONTRACTS)}
    position = Position(
        "BTC/USD:BTC", side, MarginMode.CROSS, 100, 100, 50_000, 48_000, "BTC", inverse=True
    )
    snapshot = AccountSnapshot("b", "binancecoinm", (CrossPool("BTC", 0.05),), (position,), tiers)
    risk = AccountBook(snapshot).evaluate().positions[0]
    assert risk.liquidation_price == pytest.approx(expected, rel=1e-12)
    # uPnL (coin) = side x N x cs x (1/EP - 1/mark)
    assert risk.unrealized_pnl == pytest.approx(side.sign * 10_000 * (1 / 50_000 - 1 / 48_000))


def test_coin_m_isolated_with_cum_uses_the_bracket_amount():
    # long: N cs (1 + MMR) / (N cs / EP + WB + cum), MMR 0.01, cum 0.002 BTC, WB 0.1
    tiers = {"ETH/USD:ETH": TierTable((Tier(0, 1e9, 0.01, 0.002),), TierBasis.CONTRACTS)}
    position = Position(
        "ETH/USD:ETH", Side.LONG, MarginMode.ISOLATED, 50, 10, 2_000, 1_900, "ETH",
        inverse=True, isolated_margin=0.1,
    )  # fmt: skip
    snapshot = AccountSnapshot("b", "binancecoinm", (), (position,), tiers)
    risk = AccountBook(snapshot).evaluate().positions[0]
    assert risk.liquidation_price == pytest.approx(500 * 1.01 / (500 / 2_000 + 0.1 + 0.002))


def test_long_without_liquidation_price_is_reported_unreachable_not_safe():
    position = Position(
        "BTC/USDT:USDT", Side.LONG, MarginMode.ISOLATED, 1, 1, 100, 100, "USDT",
        isolated_margin=150.0,
    )  # fmt: skip
    tiers = {"BTC/USDT:USDT": TierTable.flat(0.01)}
    snapshot = AccountSnapshot("a", "binanceusdm", (), (position,), tiers)
    risk = AccountBook(snapshot).evaluate().positions[0]
    assert risk.liquidation_price is None
    assert risk.note and "no price liquidates" in risk.note


def test_missing_tiers_make_figures_unknown_with_a_reason():
    position = Position("Z/USDT:USDT", Side.LONG, MarginMode.CROSS, 1, 1, 10, 10, "USDT")
    snapshot = AccountSnapshot("a", "mexc", (CrossPool("USDT", 100.0),), (position,), {})
    risk = AccountBook(snapshot).evaluate()
    assert risk.pools[0].margin_ratio is None
    assert risk.positions[0].liquidation_price is None
    assert "no maintenance tiers" in risk.positions[0].note
