"""Bybit's published examples and formulas, reproduced by the engine.

Sources (shared/reference/margin-models.md, Bybit section, and Bybit's help centre):
- the reference's checked isolated examples and the "Liquidation Price (USDT Contract)"
  example use the rule before 2 Sep 2025 (MM at the entry value): the entry variant;
- "The New Margin Calculation" (2 Sep 2025): MM at the mark value, isolated IM and the fee
  to close at entry; the UTA isolated article's inverse formula (2026 revision)
  LP_long = size (1 + MMR) / (size/entry + size/entry/leverage + extra + deduction);
- "Order Cost": fee to close = size x entry x (1 -/+ 1/leverage) x taker (linear),
  size / entry x (1 +/- 1/leverage) x taker (inverse), long/short.
Every other expected number is derived by hand in the test, never by the engine.
"""

from __future__ import annotations

import math
from dataclasses import replace

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from monitor.domain import (
    AccountSnapshot,
    CrossPool,
    MarginMode,
    Position,
    Side,
    Tier,
    TierTable,
)
from monitor.engine.book import AccountBook
from monitor.engine.models import model_for
from monitor.engine.models.bybit import BybitModel, fee_to_close
from tests.strategies import cross_accounts, linear_positions, tier_tables

RATIO_TOLERANCE = 1e-9
SYMBOL = "X/USDT:USDT"
INVERSE = "BTC/USD:BTC"
ENTRY_RULE = BybitModel(isolated_mm_at_entry=True)


def isolated(
    side: Side, size: float, entry: float, margin: float, mark: float | None = None, **kw
) -> Position:
    return Position(
        SYMBOL, side, MarginMode.ISOLATED, size, 1, entry, mark or entry, "USDT",
        isolated_margin=margin, **kw,
    )  # fmt: skip


def evaluate(position: Position, tiers: TierTable, model: BybitModel, taker=None, pools=()):
    snapshot = AccountSnapshot(
        "a", "bybit", pools, (position,), {position.symbol: tiers}, taker_fee_rate=taker,
        unified_pool="USD" if pools else None,
    )  # fmt: skip
    return AccountBook(snapshot, model).evaluate().positions[0]


def test_registry_picks_the_exact_bybit_model():
    model = model_for("bybit")
    assert isinstance(model, BybitModel) and model.exact and model.name == "bybit"
    assert not model.isolated_mm_at_entry


# Entry 10, size 1, MMR 0.01, IM = 10 / leverage, no extra margin, no fee term.
CHECKED = [
    (Side.LONG, 5, 8.1),
    (Side.LONG, 10, 9.1),
    (Side.LONG, 3, 6.7 + 0.2 / 3),  # 6.7666...
    (Side.SHORT, 5, 11.9),
    (Side.SHORT, 10, 10.9),
]


@pytest.mark.parametrize(("side", "leverage", "expected"), CHECKED)
def test_reference_checked_examples_under_the_entry_rule(side, leverage, expected):
    position = isolated(side, 1, 10.0, 10.0 / leverage, leverage=leverage)
    risk = evaluate(position, TierTable.flat(0.01), ENTRY_RULE)
    assert risk.liquidation_price == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize(("side", "leverage", "_"), CHECKED)
def test_same_examples_under_the_current_rule_price_mm_at_liquidation(side, leverage, _):
    # IM + side x (P - 10) = 0.01 P  ->  long P = (10 - IM) / 0.99, short (10 + IM) / 1.01
    im = 10.0 / leverage
    expected = (10 - im) / 0.99 if side is Side.LONG else (10 + im) / 1.01
    position = isolated(side, 1, 10.0, im, leverage=leverage)
    risk = evaluate(position, TierTable.flat(0.01), BybitModel())
    assert risk.liquidation_price == pytest.approx(expected, rel=1e-12)


def test_help_centre_usdt_example_under_the_entry_rule():
    # "Liquidation Price (USDT Contract)": 1 BTC long at 20,000, 50x, MMR 0.5 %:
    # IM 400, MM 100, LP = 20,000 - (400 - 100) = 19,700.
    position = isolated(Side.LONG, 1, 20_000.0, 400.0, mark=20_500.0, leverage=50)
    risk = evaluate(position, TierTable.flat(0.005), ENTRY_RULE)
    assert risk.liquidation_price == pytest.approx(19_700, rel=1e-12)
    assert risk.maintenance_margin == pytest.approx(100, rel=1e-12)


def test_current_rule_takes_the_tier_at_the_liquidation_price():
    # Mark value 150,000 sits in tier 2 (1.5 %, 500), but at 2x the liquidation value
    # falls into tier 1: 70,000 + 1,000 (P - 140) = 1,000 P x 0.01 -> P = 70,000 / 990
    # (tier 2's line would give 985 P = 69,500, P = 70.56: outside tier 2, so not it).
    tiers = TierTable((Tier(0, 100_000, 0.01, 0), Tier(100_000, 200_000, 0.015, 500)))
    position = isolated(Side.LONG, 1_000, 140.0, 70_000.0, mark=150.0, leverage=2)
    risk = evaluate(position, tiers, BybitModel())
    assert risk.liquidation_price == pytest.approx(70_000 / 990, rel=1e-12)
    assert risk.maintenance_margin == pytest.approx(150_000 * 0.015 - 500, rel=1e-12)


@pytest.mark.parametrize(
    ("side", "entry", "leverage", "taker", "expected"),
    [
        # Bybit "Order Cost (USDT Contract)": 1 BTC long at 50,000, 10x, taker 0.06 %: 27.
        (Side.LONG, 50_000.0, 10, 0.0006, 27.0),
        # the short closes at entry x (1 + 1/10): 1 x 55,000 x 0.0006 = 33.
        (Side.SHORT, 50_000.0, 10, 0.0006, 33.0),
    ],
)
def test_fee_to_close_at_the_bankruptcy_price(side, entry, leverage, taker, expected):
    position = isolated(side, 1, entry, 0.0, leverage=leverage)
    assert fee_to_close(position, taker) == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize(
    ("side", "expected"),
    [
        # Bybit "Order Cost": 10,000 USD ETHUSD long at 2,000, 25x, taker 0.055 %:
        # 5 ETH x (1 + 1/25) x 0.00055 = 0.00286 ETH.
        (Side.LONG, 0.00286),
        # short: 5 x (1 - 1/25) x 0.00055 = 0.00264 ETH.
        (Side.SHORT, 0.00264),
    ],
)
def test_inverse_fee_to_close(side, expected):
    position = Position(
        "ETH/USD:ETH", side, MarginMode.CROSS, 10_000, 1, 2_000.0, 2_000.0, "ETH",
        inverse=True, leverage=25,
    )  # fmt: skip
    assert fee_to_close(position, 0.00055) == pytest.approx(expected, rel=1e-12)


def test_cross_mm_adds_the_fee_and_prices_the_rest_at_the_mark():
    # 1 BTC long at 50,000, mark 52,000, 10x, MMR 0.5 %, taker 0.06 % (fee 27), wallet 1,000:
    # MM = 52,000 x 0.005 + 27 = 287;  LP: 1,000 + (P - 50,000) = 0.005 P + 27.
    position = Position(
        "BTC/USDT:USDT", Side.LONG, MarginMode.CROSS, 1, 1, 50_000.0, 52_000.0, "USDT",
        leverage=10,
    )  # fmt: skip
    pool = (CrossPool("USD", 1_000.0),)
    risk = evaluate(position, TierTable.flat(0.005), BybitModel(), taker=0.0006, pools=pool)
    assert risk.maintenance_margin == pytest.approx(287, rel=1e-12)
    assert risk.margin_ratio == pytest.approx(287 / (1_000 + 2_000), rel=1e-12)
    assert risk.liquidation_price == pytest.approx((50_000 + 27 - 1_000) / 0.995, rel=1e-12)


def inverse_isolated(side: Side, margin: float) -> Position:
    # UTA isolated article: 60,000 USD BTCUSD at 50,000, 10x: value 1.2 BTC, IM 0.12 BTC.
    return Position(
        INVERSE, side, MarginMode.ISOLATED, 60_000, 1, 50_000.0, 50_000.0, "BTC",
        inverse=True, leverage=10, isolated_margin=margin,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("side", "model", "expected"),
    [
        # entry rule: LP = size / (value + (IM - MM)), MM = 1.2 x 0.005 = 0.006
        (Side.LONG, ENTRY_RULE, 60_000 / (1.2 + 0.12 - 0.006)),
        (Side.SHORT, ENTRY_RULE, 60_000 / (1.2 - 0.12 + 0.006)),
        # current rule (2026 article): size (1 +/- MMR) / (value +/- IM)
        (Side.LONG, BybitModel(), 60_000 * 1.005 / (1.2 + 0.12)),
        (Side.SHORT, BybitModel(), 60_000 * 0.995 / (1.2 - 0.12)),
    ],
)
def test_inverse_isolated_liquidation(side, model, expected):
    risk = evaluate(inverse_isolated(side, 0.12), TierTable.flat(0.005), model)
    assert risk.liquidation_price == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("side", list(Side))
def test_reserved_fee_cancels_out_of_the_isolated_liquidation_price(side):
    # positionBalance holds the fee to close and MM adds the same fee: LP as without fees.
    fee = 1.2 * (1 + side.sign / 10) * 0.00055
    with_fee = evaluate(
        inverse_isolated(side, 0.12 + fee), TierTable.flat(0.005), BybitModel(), 0.00055
    )
    without = evaluate(inverse_isolated(side, 0.12), TierTable.flat(0.005), BybitModel())
    assert with_fee.liquidation_price == pytest.approx(without.liquidation_price, rel=1e-12)
    assert with_fee.maintenance_margin == pytest.approx(without.maintenance_margin + fee, rel=1e-12)


# ---------------------------------------------------------------------------------------
# Property: the ratio recomputed by hand is 1 at our liquidation price.
# ---------------------------------------------------------------------------------------


def mm_by_hand(position: Position, price: float, tiers: TierTable, taker: float, at_entry: bool):
    """Bybit MM from first principles: value x rate - deduction + fee to close."""
    ref = position.entry_price if at_entry else price
    value = position.size / ref if position.inverse else position.size * ref
    tier = max((t for t in tiers.tiers if t.floor <= value), key=lambda t: t.floor)
    step = position.side.sign / position.leverage
    if position.inverse:
        fee = position.size / position.entry_price * (1 + step) * taker
    else:
        fee = position.size * position.entry_price * (1 - step) * taker
    return value * tier.maintenance_rate - tier.maintenance_amount + fee


def pnl_by_hand(position: Position, price: float) -> float:
    if position.inverse:
        return position.side.sign * position.size * (1 / position.entry_price - 1 / price)
    return position.side.sign * position.size * (price - position.entry_price)


@st.composite
def bybit_isolated(draw: st.DrawFn, inverse: bool) -> tuple[Position, TierTable, float]:
    """An isolated position whose balance is Bybit's: IM at entry + fee + extra margin."""
    position = draw(linear_positions(SYMBOL, MarginMode.ISOLATED))
    if inverse:
        position = replace(position, symbol=INVERSE, inverse=True, settle="BTC", contract_size=10)
    leverage = draw(st.floats(1.5, 50.0))
    taker = draw(st.floats(0.0, 0.001))
    position = replace(position, leverage=leverage)
    entry_value = (
        position.size / position.entry_price if inverse else position.size * position.entry_price
    )
    extra = entry_value * draw(st.floats(0.0, 0.5))
    margin = entry_value / leverage + fee_to_close(position, taker) + extra
    return replace(position, isolated_margin=margin), draw(tier_tables()), taker


@settings(max_examples=300, deadline=None)
@given(bybit_isolated(inverse=False) | bybit_isolated(inverse=True), st.booleans())
def test_isolated_ratio_is_one_at_liquidation_price(case, at_entry):
    position, tiers, taker = case
    risk = evaluate(position, tiers, BybitModel(isolated_mm_at_entry=at_entry), taker)
    assume(risk.liquidation_price is not None)
    assume(not math.isclose(risk.liquidation_price, position.mark_price, rel_tol=1e-12))
    price = risk.liquidation_price
    equity = position.isolated_margin + pnl_by_hand(position, price)
    mm = mm_by_hand(position, price, tiers, taker, at_entry)
    assert mm / equity == pytest.approx(1.0, abs=RATIO_TOLERANCE)


@settings(max_examples=300, deadline=None)
@given(cross_accounts(), st.floats(1.5, 50.0), st.floats(0.0, 0.001))
def test_cross_ratio_is_one_at_each_liquidation_price(snapshot, leverage, taker):
    snapshot = replace(
        snapshot,
        exchange="bybit",
        positions=tuple(replace(p, leverage=leverage) for p in snapshot.positions),
        pools=(CrossPool("USD", snapshot.pools[0].wallet_balance),),
        taker_fee_rate=taker,
        unified_pool="USD",
    )
    risk = AccountBook(snapshot).evaluate()
    marks = {p.symbol: p.mark_price for p in snapshot.positions}
    for member in risk.positions:
        if member.liquidation_price is None or member.liquidation_distance < 1e-12:
            continue
        at = dict(marks, **{member.position.symbol: member.liquidation_price})
        equity = snapshot.pools[0].wallet_balance + sum(
            pnl_by_hand(p, at[p.symbol]) for p in snapshot.positions
        )
        mm = sum(
            mm_by_hand(p, at[p.symbol], snapshot.tiers[p.symbol], taker, at_entry=False)
            for p in snapshot.positions
        )
        assert mm / equity == pytest.approx(1.0, abs=RATIO_TOLERANCE)


# ---------------------------------------------------------------------------------------
# Inverse cross positions: a coin pool is exact, a USD-valued unified pool is not modelled.
# ---------------------------------------------------------------------------------------


def inverse_cross() -> Position:
    # BTCUSD cross long 30,000 @ 60,000, 10x, mark 58,000 (test_defense_bybit_inverse.py).
    return Position(
        INVERSE, Side.LONG, MarginMode.CROSS, 30_000, 1, 60_000.0, 58_000.0, "BTC",
        inverse=True, leverage=10,
    )  # fmt: skip


def test_an_inverse_cross_pool_of_its_own_coin_is_priced_in_the_coin():
    """A UTA 1.0 / classic inverse derivatives wallet: 0.05 BTC backs the long. Fee to
    close 0.5 x 1.1 x 0.00055 = 0.0003025; P = 30,150 / (0.05 + 0.5 - 0.0003025)."""
    snapshot = AccountSnapshot(
        "a", "bybit", (CrossPool("BTC", 0.05),), (inverse_cross(),),
        {INVERSE: TierTable.flat(0.005)}, taker_fee_rate=0.00055,
    )  # fmt: skip
    pool = AccountBook(snapshot).evaluate().pools[0]
    assert pool.maintenance_margin == pytest.approx(30_000 / 58_000 * 0.005 + 0.0003025)
    assert pool.liquidation_move is not None
    assert 58_000 * (1 + pool.liquidation_move) == pytest.approx(30_150 / 0.5496975, rel=1e-9)


def test_an_inverse_cross_position_in_the_unified_usd_pool_leaves_it_unknown():
    """UTA 2.0 cross: the coin PnL would enter the USD margin balance at the coin's USD
    value and collateral ratio; nothing here models that, so nothing is summed."""
    snapshot = AccountSnapshot(
        "a", "bybit", (CrossPool("USD", 10_000.0),), (inverse_cross(),),
        {INVERSE: TierTable.flat(0.005)}, taker_fee_rate=0.00055, unified_pool="USD",
    )  # fmt: skip
    risk = AccountBook(snapshot).evaluate()
    (pool,) = risk.pools
    assert pool.margin_ratio is None and pool.maintenance_margin is None
    assert pool.note is not None and "coin-settled (inverse)" in pool.note
    assert risk.positions[0].liquidation_price is None
