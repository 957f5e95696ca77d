"""OKX's margin model: MM + liquidation fee on a contract-keyed tier, isolated and cross.

Expected figures are OKX's formulas (shared/reference/margin-models.md, OKX section)
evaluated by hand in each test:
  linear value = ctVal x |pos| x mark; inverse value = ctVal x |pos| / mark (coin)
  MM + fee = value x (tier mmr + taker rate); ours = (MM + fee) / equity
"""

from __future__ import annotations

import math

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
    TierBasis,
    TierTable,
)
from monitor.engine.book import AccountBook
from monitor.engine.models import OkxModel, model_for

RATIO_TOLERANCE = 1e-9
TAKER = 0.0005

BTC_USDT = "BTC/USDT:USDT"
ETH_USDT = "ETH/USDT:USDT"
BTC_USDC = "BTC/USDC:USDC"
BTC_USD = "BTC/USD:BTC"

# OKX's shape: brackets by contracts, no deduction. Tier 2 starts above 2,000 contracts.
BTC_TIERS = TierTable(
    (Tier(0, 2_000, 0.004), Tier(2_000, 5_000, 0.005), Tier(5_000, math.inf, 0.01)),
    TierBasis.CONTRACTS,
)
ETH_TIERS = TierTable((Tier(0, 5_000, 0.005), Tier(5_000, math.inf, 0.01)), TierBasis.CONTRACTS)
INVERSE_TIERS = TierTable(
    (Tier(0, 10_000, 0.005), Tier(10_000, math.inf, 0.01)), TierBasis.CONTRACTS
)
TIERS = {BTC_USDT: BTC_TIERS, ETH_USDT: ETH_TIERS, BTC_USDC: BTC_TIERS, BTC_USD: INVERSE_TIERS}


def snapshot(
    *positions: Position,
    pools: tuple[CrossPool, ...] = (),
    unified: str | None = None,
    fee: float = TAKER,
) -> AccountSnapshot:
    return AccountSnapshot(
        "okx-main", "okx", pools, positions, TIERS, taker_fee_rate=fee, unified_pool=unified
    )


def evaluate(snap: AccountSnapshot):
    risk = AccountBook(snap).evaluate()
    return risk, {p.position.symbol: p for p in risk.positions}


def test_okx_is_the_exact_model_for_the_okx_exchange_id():
    model = model_for("okx")
    assert isinstance(model, OkxModel)
    assert (model.name, model.exact) == ("okx", True)


# --------------------------------------------------------------------------- isolated


def test_isolated_linear_long():
    # 50 contracts x 0.01 BTC = 0.5 BTC, entry 58,000, mark 60,000, margin 2,900.
    #   value = 30,000 (50 contracts: tier 1, 0.004): OKX's MM = 30,000 x 0.004 = 120,
    #   its liquidation fees beside it = 30,000 x 0.0005 = 15 (12.5 % of the MM)
    #   equity = 2,900 + 0.5 x 2,000 = 3,900; ratio = (120 + 15) / 3,900
    #   LP: 2,900 + 0.5 (P - 58,000) = 0.5 P x 0.0045  =>  P = 26,100 / 0.49775
    position = Position(
        BTC_USDT, Side.LONG, MarginMode.ISOLATED, 50, 0.01, 58_000, 60_000, "USDT",
        isolated_margin=2_900,
    )  # fmt: skip
    _, risk = evaluate(snapshot(position))
    btc = risk[BTC_USDT]
    assert btc.maintenance_margin == pytest.approx(120, rel=1e-12)
    assert btc.liquidation_fees == pytest.approx(15, rel=1e-12)
    assert btc.requirement == pytest.approx(135, rel=1e-12)
    assert btc.unrealized_pnl == pytest.approx(1_000, rel=1e-12)
    assert btc.margin_ratio == pytest.approx(135 / 3_900, rel=1e-12)
    assert btc.liquidation_price == pytest.approx(26_100 / 0.49775, rel=1e-12)


def test_isolated_linear_short():
    # 40 contracts x 0.1 ETH = 4 ETH, entry 2,000, mark 2,100, margin 800, taker 0.0006.
    #   value = 8,400; MM = 8,400 x 0.005 = 42; fees = 8,400 x 0.0006 = 5.04
    #   equity = 800 - 4 x 100 = 400; ratio = (42 + 5.04) / 400
    #   LP: 800 + 4 (2,000 - P) = 4 P x 0.0056  =>  P = 8,800 / 4.0224
    position = Position(
        ETH_USDT, Side.SHORT, MarginMode.ISOLATED, 40, 0.1, 2_000, 2_100, "USDT",
        isolated_margin=800,
    )  # fmt: skip
    _, risk = evaluate(snapshot(position, fee=0.0006))
    eth = risk[ETH_USDT]
    assert eth.maintenance_margin == pytest.approx(42, rel=1e-12)
    assert eth.liquidation_fees == pytest.approx(5.04, rel=1e-12)
    assert eth.margin_ratio == pytest.approx(47.04 / 400, rel=1e-12)
    assert eth.liquidation_price == pytest.approx(8_800 / 4.0224, rel=1e-12)


def test_isolated_tier_is_chosen_by_contracts_not_notional():
    # 2,500 contracts x 0.01 = 25 BTC: tier 2 by size (2,000 < 2,500 <= 5,000), 0.005.
    #   value at 1,000 = 25,000 (would be tier 1 if keyed by notional); margin 5,000
    #   MM = 25,000 x 0.005 = 125, fees 25,000 x 0.0005 = 12.5
    #   equity = 5,000 + 25 x (1,000 - 990) = 5,250
    #   LP: 5,000 + 25 (P - 990) = 25 P x 0.0055  =>  P = 19,750 / 24.8625
    position = Position(
        BTC_USDT, Side.LONG, MarginMode.ISOLATED, 2_500, 0.01, 990, 1_000, "USDT",
        isolated_margin=5_000,
    )  # fmt: skip
    _, risk = evaluate(snapshot(position))
    btc = risk[BTC_USDT]
    assert btc.maintenance_margin == pytest.approx(125, rel=1e-12)
    assert btc.liquidation_fees == pytest.approx(12.5, rel=1e-12)
    assert btc.margin_ratio == pytest.approx(137.5 / 5_250, rel=1e-12)
    assert btc.liquidation_price == pytest.approx(19_750 / 24.8625, rel=1e-12)


def test_isolated_inverse_short():
    # 30 contracts x 100 USD = 3,000 USD face, entry 62,000, mark 60,000, margin 0.0025 BTC.
    #   value = 0.05 BTC; MM = 0.05 x 0.005 = 0.00025 BTC, fees 0.05 x 0.0005 = 0.000025
    #   upl = 3,000 (1/62,000 - 1/60,000) x -1 = 3,000 (1/60,000 - 1/62,000)
    #   LP: 0.0025 + 3,000 (1/P - 1/62,000) = 3,000 / P x 0.0055
    #       =>  P = 3,000 x 0.9945 / (3,000 / 62,000 - 0.0025)
    position = Position(
        BTC_USD, Side.SHORT, MarginMode.ISOLATED, 30, 100, 62_000, 60_000, "BTC",
        inverse=True, isolated_margin=0.0025,
    )  # fmt: skip
    _, risk = evaluate(snapshot(position))
    inverse = risk[BTC_USD]
    upl = 3_000 * (1 / 60_000 - 1 / 62_000)
    assert inverse.maintenance_margin == pytest.approx(0.00025, rel=1e-12)
    assert inverse.liquidation_fees == pytest.approx(0.000025, rel=1e-12)
    assert inverse.margin_ratio == pytest.approx(0.000275 / (0.0025 + upl), rel=1e-12)
    assert inverse.liquidation_price == pytest.approx(
        3_000 * 0.9945 / (3_000 / 62_000 - 0.0025), rel=1e-12
    )


def test_isolated_inverse_long():
    # 200 contracts x 10 USD = 2,000 USD face, entry 40,000, mark 38,000, margin 0.004 BTC.
    #   value = 2,000 / 38,000 BTC; MM = value x 0.005, fees = value x 0.0005
    #   equity = 0.004 + 2,000 (1/40,000 - 1/38,000)
    #   LP: 0.004 + 2,000 / 40,000 - 2,000 / P = 2,000 x 0.0055 / P  =>  P = 2,011 / 0.054
    position = Position(
        BTC_USD, Side.LONG, MarginMode.ISOLATED, 200, 10, 40_000, 38_000, "BTC",
        inverse=True, isolated_margin=0.004,
    )  # fmt: skip
    _, risk = evaluate(snapshot(position))
    inverse = risk[BTC_USD]
    mm, fees = 2_000 / 38_000 * 0.005, 2_000 / 38_000 * 0.0005
    assert inverse.maintenance_margin == pytest.approx(mm, rel=1e-12)
    assert inverse.liquidation_fees == pytest.approx(fees, rel=1e-12)
    equity = 0.004 + 2_000 * (1 / 40_000 - 1 / 38_000)
    assert inverse.margin_ratio == pytest.approx((mm + fees) / equity, rel=1e-12)
    assert inverse.liquidation_price == pytest.approx(2_011 / 0.054, rel=1e-12)


# --------------------------------------------------------------------------- cross

# A hedged USDT cross pair: ETH short and BTC long of equal notional, wallet 500.
#   ETH: 20 x 0.1 = 2 ETH, entry 3,100, mark 3,000: value 6,000, MM + fee 33, upl +200
#   BTC: 10 x 0.01 = 0.1 BTC, entry 61,000, mark 60,000: value 6,000, MM + fee 27, upl -100
#   equity = 500 + 200 - 100 = 600; OKX's MM = 30 + 24 = 54, fees 3 + 3 = 6
#   ratio = (54 + 6) / 600 = 0.1
#   ETH LP (BTC held): 500 + 2 (3,100 - P) - 100 - 27 = 2 P x 0.0055  =>  P = 6,573 / 2.011
#   BTC LP (ETH held): 500 + 200 - 33 + 0.1 (P - 61,000) = 0.1 P x 0.0045
#                      =>  P = 5,433 / 0.09955
#   uniform move x: equity stays 600 (hedged), MM = 60 (1 + x)  =>  x = 9
CROSS_WALLET = 500.0


def cross_pair(btc_symbol: str = BTC_USDT, btc_settle: str = "USDT") -> tuple[Position, ...]:
    return (
        Position(ETH_USDT, Side.SHORT, MarginMode.CROSS, 20, 0.1, 3_100, 3_000, "USDT"),
        Position(btc_symbol, Side.LONG, MarginMode.CROSS, 10, 0.01, 61_000, 60_000, btc_settle),
    )


def assert_hedged_pair(pool, risk, btc_symbol: str) -> None:
    assert pool.wallet_balance == pytest.approx(CROSS_WALLET)
    assert pool.margin_balance == pytest.approx(600, rel=1e-12)
    assert pool.maintenance_margin == pytest.approx(54, rel=1e-12)
    assert pool.liquidation_fees == pytest.approx(6, rel=1e-12)
    assert pool.margin_ratio == pytest.approx(0.1, rel=1e-12)
    assert pool.liquidation_move == pytest.approx(9, rel=1e-12)
    assert risk[ETH_USDT].liquidation_price == pytest.approx(6_573 / 2.011, rel=1e-12)
    assert risk[btc_symbol].liquidation_price == pytest.approx(5_433 / 0.09955, rel=1e-12)
    assert risk[ETH_USDT].margin_ratio == risk[btc_symbol].margin_ratio == pool.margin_ratio


def test_cross_single_currency_pool():
    """Spot-and-futures mode: the USDT cross positions share the USDT cross equity."""
    snap = snapshot(*cross_pair(), pools=(CrossPool("USDT", CROSS_WALLET),))
    account, risk = evaluate(snap)
    [pool] = account.pools
    assert pool.asset == "USDT"
    assert_hedged_pair(pool, risk, BTC_USDT)


def test_cross_multi_currency_pool_spans_settlement_currencies():
    """Multi-currency mode: a USDT- and a USDC-margined position share one USD pool."""
    snap = snapshot(
        *cross_pair(BTC_USDC, "USDC"), pools=(CrossPool("USD", CROSS_WALLET),), unified="USD"
    )
    account, risk = evaluate(snap)
    [pool] = account.pools
    assert pool.asset == "USD"
    assert_hedged_pair(pool, risk, BTC_USDC)


def test_cross_inverse_per_coin_pool():
    # BTC cross pool, wallet 0.01 BTC: 30 x 100 USD short, entry 62,000, mark 60,000.
    #   LP: 0.01 + 3,000 (1/P - 1/62,000) = 3,000 x 0.0055 / P
    #       =>  P = 3,000 x 0.9945 / (3,000 / 62,000 - 0.01)
    short = Position(
        BTC_USD, Side.SHORT, MarginMode.CROSS, 30, 100, 62_000, 60_000, "BTC", inverse=True
    )
    account, risk = evaluate(snapshot(short, pools=(CrossPool("BTC", 0.01),)))
    equity = 0.01 + 3_000 * (1 / 60_000 - 1 / 62_000)
    assert account.pools[0].margin_ratio == pytest.approx(0.000275 / equity, rel=1e-12)
    assert risk[BTC_USD].liquidation_price == pytest.approx(
        3_000 * 0.9945 / (3_000 / 62_000 - 0.01), rel=1e-12
    )


def test_coin_margined_cross_in_a_usd_pool_is_unknown_not_mis_summed():
    """Coin PnL cannot be summed into a USD pool: the pool and its members are unknown."""
    short = Position(
        BTC_USD, Side.SHORT, MarginMode.CROSS, 30, 100, 62_000, 60_000, "BTC", inverse=True
    )
    snap = snapshot(*cross_pair(), short, pools=(CrossPool("USD", CROSS_WALLET),), unified="USD")
    account, risk = evaluate(snap)
    [pool] = account.pools
    assert pool.margin_ratio is None and pool.note
    assert all(risk[s].margin_ratio is None for s in (ETH_USDT, BTC_USDT, BTC_USD))


def test_isolated_margin_stays_out_of_the_cross_pool():
    isolated = Position(
        BTC_USDT, Side.LONG, MarginMode.ISOLATED, 50, 0.01, 58_000, 60_000, "USDT",
        isolated_margin=2_900,
    )  # fmt: skip
    eth = cross_pair()[0]
    # USDT pool: wallet 7,100, ETH alone: 7,100 + 2 (3,100 - P) = 0.011 P => P = 13,300 / 2.011
    account, risk = evaluate(snapshot(isolated, eth, pools=(CrossPool("USDT", 7_100),)))
    assert account.pools[0].margin_ratio == pytest.approx(33 / 7_300, rel=1e-12)
    assert risk[ETH_USDT].liquidation_price == pytest.approx(13_300 / 2.011, rel=1e-12)
    assert risk[BTC_USDT].liquidation_price == pytest.approx(26_100 / 0.49775, rel=1e-12)


# --------------------------------------------------------------------------- properties


def value_by_hand(position: Position, mark: float) -> float:
    size = position.contracts * position.contract_size
    return size / mark if position.inverse else size * mark


def pnl_by_hand(position: Position, mark: float) -> float:
    size = position.contracts * position.contract_size
    if position.inverse:
        return position.side.sign * size * (1 / position.entry_price - 1 / mark)
    return position.side.sign * size * (mark - position.entry_price)


def mm_plus_fee_by_hand(position: Position, mark: float, tiers: TierTable, fee: float) -> float:
    """OKX: value x (mmr of the bracket holding |pos| contracts + taker rate)."""
    rate = max((t for t in tiers.tiers if t.floor <= position.contracts), key=lambda t: t.floor)
    return value_by_hand(position, mark) * (rate.maintenance_rate + fee)


@st.composite
def okx_tiers(draw: st.DrawFn) -> TierTable:
    """OKX-shaped: brackets by contracts, rising mmr, no deduction."""
    count = draw(st.integers(1, 5))
    floors = [0.0]
    for _ in range(count - 1):
        floors.append(floors[-1] + draw(st.floats(10.0, 5_000.0)))
    rates = sorted(draw(st.lists(st.floats(0.003, 0.1), min_size=count, max_size=count)))
    caps = [*floors[1:], math.inf]
    return TierTable(
        tuple(Tier(f, c, r) for f, c, r in zip(floors, caps, rates, strict=True)),
        TierBasis.CONTRACTS,
    )


@st.composite
def okx_positions(draw: st.DrawFn, symbol: str, mode: MarginMode, inverse: bool) -> Position:
    mark = draw(st.floats(1.0, 100_000.0))
    entry = mark * draw(st.floats(0.7, 1.3))
    contracts = draw(st.floats(0.01, 20_000.0))
    contract_size = draw(st.sampled_from([0.001, 0.01, 0.1, 1.0, 10.0, 100.0]))
    margin = None
    if mode is MarginMode.ISOLATED:
        size = contracts * contract_size
        margin = (size / entry if inverse else size * entry) / draw(st.floats(1.5, 100.0))
    side = draw(st.sampled_from(list(Side)))
    settle = "X" if inverse else "USDT"
    return Position(
        symbol, side, mode, contracts, contract_size, entry, mark, settle,
        inverse=inverse, isolated_margin=margin,
    )  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(st.booleans(), st.data())
def test_isolated_ratio_is_one_at_our_liquidation_price(inverse, data):
    position = data.draw(okx_positions("X/USDT:USDT", MarginMode.ISOLATED, inverse))
    tiers = data.draw(okx_tiers())
    fee = data.draw(st.floats(0.0, 0.001))
    snap = AccountSnapshot(
        "a", "okx", (), (position,), {position.symbol: tiers}, taker_fee_rate=fee
    )
    risk = AccountBook(snap).evaluate().positions[0]
    assume(risk.liquidation_price is not None)
    assume(not math.isclose(risk.liquidation_price, position.mark_price, rel_tol=1e-12))
    price = risk.liquidation_price
    equity = position.isolated_margin + pnl_by_hand(position, price)
    ratio = mm_plus_fee_by_hand(position, price, tiers, fee) / equity
    assert ratio == pytest.approx(1.0, abs=RATIO_TOLERANCE)


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_cross_pool_ratio_is_one_at_each_member_liquidation_price(data):
    count = data.draw(st.integers(1, 4))
    positions = tuple(
        data.draw(okx_positions(f"S{i}/USDT:USDT", MarginMode.CROSS, False)) for i in range(count)
    )
    tiers = {p.symbol: data.draw(okx_tiers()) for p in positions}
    fee = data.draw(st.floats(0.0, 0.001))
    gross = sum(value_by_hand(p, p.mark_price) for p in positions)
    pnl = sum(pnl_by_hand(p, p.mark_price) for p in positions)
    wallet = max(gross * data.draw(st.floats(0.02, 1.0)), -pnl + gross * 0.2)
    snap = AccountSnapshot(
        "a", "okx", (CrossPool("USDT", wallet),), positions, tiers, taker_fee_rate=fee
    )
    risk = AccountBook(snap).evaluate()
    marks = {p.symbol: p.mark_price for p in positions}
    for member in risk.positions:
        if member.liquidation_price is None or member.liquidation_distance < 1e-12:
            continue
        moved = dict(marks, **{member.position.symbol: member.liquidation_price})
        equity = wallet + sum(pnl_by_hand(p, moved[p.symbol]) for p in positions)
        mm = sum(mm_plus_fee_by_hand(p, moved[p.symbol], tiers[p.symbol], fee) for p in positions)
        assert mm / equity == pytest.approx(1.0, abs=RATIO_TOLERANCE)
