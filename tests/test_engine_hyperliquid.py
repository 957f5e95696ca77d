"""Hyperliquid's published margin rules, reproduced by the engine.

Sources: Hyperliquid docs "Margin tiers" (rate = 1 / (2 x maxLeverage) of the tier,
deduction_n = deduction_(n-1) + lowerBound_n x (rate_n - rate_(n-1))) and "Liquidations":

    liq = mark - side x margin_available / |szi| / (1 - l x side)
    margin_available = accountValue - crossMaintenanceMarginUsed          (cross)
                     = marginUsed - MM of the position                    (isolated)

Expected figures are that formula, or the equation equity = MM, worked by hand here, and
two liquidation prices Hyperliquid itself published. An isolated position enters our
snapshot with the adapter's split of its value: wallet = rawUsd + szi x entryPx.
"""

from __future__ import annotations

import math
from dataclasses import replace

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from monitor.domain import AccountSnapshot, CrossPool, MarginMode, Position, Side, TierTable
from monitor.engine.book import AccountBook
from monitor.engine.models.hyperliquid import flat_tiers, maintenance_tiers
from monitor.venues.hyperliquid.adapter import margin_table
from tests.strategies import linear_positions

RATIO_TOLERANCE = 1e-9
BTC, ETH, SOL = "BTC/USDC:USDC", "ETH/USDC:USDC", "SOL/USDC:USDC"


def published_liq(mark: float, side: int, available: float, size: float, rate: float) -> float:
    """Hyperliquid's closed form, as the docs print it."""
    return mark - side * available / size / (1 - rate * side)


def position(symbol, side, mode, size, entry, mark, *, raw_usd=None) -> Position:
    """A position as the adapter reads it: isolated wallet = rawUsd + szi x entryPx."""
    szi = size * side.sign
    wallet = raw_usd + szi * entry if raw_usd is not None else None
    return Position(symbol, side, mode, size, 1.0, entry, mark, "USDC", isolated_margin=wallet)


def evaluate(positions, tiers, wallet=0.0):
    snapshot = AccountSnapshot(
        "hl", "hyperliquid", (CrossPool("USDC", wallet),), tuple(positions), tiers
    )
    book = AccountBook(snapshot)
    assert (book.model.name, book.model.exact) == ("hyperliquid", True)
    risk = book.evaluate()
    return risk, {p.position.symbol: p for p in risk.positions}


# --------------------------------------------------------------------------- margin tables


def test_tiers_follow_the_published_rate_and_deduction_rule():
    # Mainnet BTC ("Margin tiers"): 40x to 150M, 20x beyond.
    # rates 1/80 = 0.0125, 1/40 = 0.025; deduction = 150M x (0.025 - 0.0125) = 1,875,000
    mainnet = maintenance_tiers([(0, 40), (150_000_000, 20)])
    assert [(t.floor, t.maintenance_rate, t.maintenance_amount) for t in mainnet.tiers] == [
        (0, 0.0125, 0),
        (150_000_000, 0.025, pytest.approx(1_875_000)),
    ]
    # Testnet BTC: 40x, 25x from 10k, 10x from 50k, 5x from 100k, 3x from 300k.
    testnet = maintenance_tiers([(0, 40), (10e3, 25), (50e3, 10), (100e3, 5), (300e3, 3)])
    # deductions: 10k x 0.0075 = 75; + 50k x 0.03 = 1,575; + 100k x 0.05 = 6,575;
    # + 300k x (1/6 - 0.1) = 26,575
    assert [t.maintenance_amount for t in testnet.tiers] == pytest.approx(
        [0, 75, 1_575, 6_575, 26_575]
    )
    assert [t.max_leverage for t in testnet.tiers] == [40, 25, 10, 5, 3]
    assert testnet.regular  # MM continuous at every floor: 10k x 0.0125 = 10k x 0.02 - 75
    assert flat_tiers(20).tiers[0].maintenance_rate == 0.025


def test_margin_table_ids_as_meta_lists_them():
    listed = {
        56: [{"lowerBound": "0.0", "maxLeverage": 40}, {"lowerBound": "1e8", "maxLeverage": 20}]
    }
    tiered = margin_table({"name": "BTC", "maxLeverage": 40, "marginTableId": 56}, listed)
    assert [t.maintenance_rate for t in tiered.tiers] == [0.0125, 0.025]
    # ids under 50 are one tier at that leverage and are not listed
    assert margin_table({"maxLeverage": 20, "marginTableId": 20}, listed) == flat_tiers(20)
    # a meta without table ids: the asset's max leverage
    assert margin_table({"maxLeverage": 25}, listed) == flat_tiers(25)
    # a tiered id meta did not list is unknown, never guessed flat
    assert margin_table({"maxLeverage": 10, "marginTableId": 57}, listed) is None


# --------------------------------------------------------------------------- cross


def test_cross_long_and_short_match_the_published_formula():
    """The dialect server's hybrid account: BTC long 0.5 @ 58,000 and ETH short 4 @ 3,100.

    Marks 60,000 / 3,000; wallet (USDC cash) 8,000; accountValue 8,000 + 1,000 + 400 =
    9,400; MM 30,000 x 0.0125 + 12,000 x 0.02 = 615; margin_available 8,785.
    """
    tiers = {BTC: flat_tiers(40), ETH: flat_tiers(25)}
    risk, legs = evaluate(
        [
            position(BTC, Side.LONG, MarginMode.CROSS, 0.5, 58_000, 60_000),
            position(ETH, Side.SHORT, MarginMode.CROSS, 4, 3_100, 3_000),
        ],
        tiers,
        wallet=8_000,
    )
    [pool] = risk.pools
    assert (pool.margin_balance, pool.maintenance_margin) == pytest.approx((9_400, 615))
    assert pool.margin_ratio == pytest.approx(615 / 9_400)
    # BTC: 9,400 + 0.5 (P - 60,000) = 0.5 P x 0.0125 + 240  ->  P = 20,840 / 0.49375
    assert legs[BTC].liquidation_price == pytest.approx(20_840 / 0.49375, rel=1e-12)
    assert legs[BTC].liquidation_price == pytest.approx(
        published_liq(60_000, 1, 9_400 - 615, 0.5, 0.0125), rel=1e-12
    )
    # ETH: 9,400 - 4 (P - 3,000) = 4 P x 0.02 + 375  ->  P = 21,025 / 4.08
    assert legs[ETH].liquidation_price == pytest.approx(21_025 / 4.08, rel=1e-12)
    assert legs[ETH].liquidation_price == pytest.approx(
        published_liq(3_000, -1, 9_400 - 615, 4, 0.02), rel=1e-12
    )


# --------------------------------------------------------------------------- isolated


def test_isolated_long_matches_the_published_formula():
    """SOL long 20 @ 140, mark 150, 5x: posted 560, rawUsd 560 - 2,800 = -2,240.

    marginUsed = -2,240 + 3,000 = 760 (posted + uPnL 200); MM 3,000 x 0.025 = 75.
    """
    _, legs = evaluate(
        [position(SOL, Side.LONG, MarginMode.ISOLATED, 20, 140, 150, raw_usd=-2_240)],
        {SOL: flat_tiers(20)},
    )
    sol = legs[SOL]
    assert sol.position.isolated_margin == pytest.approx(560)  # uPnL excluded
    assert sol.maintenance_margin == pytest.approx(75)
    assert sol.margin_ratio == pytest.approx(75 / 760)
    # -2,240 + 20 P = 20 P x 0.025  ->  P = 2,240 / 19.5
    assert sol.liquidation_price == pytest.approx(2_240 / 19.5, rel=1e-12)
    assert sol.liquidation_price == pytest.approx(
        published_liq(150, 1, 760 - 75, 20, 0.025), rel=1e-12
    )


def test_isolated_short_matches_the_published_formula():
    """ETH short 2 @ 3,100, mark 3,000, 10x: posted 620, rawUsd 620 + 6,200 = 6,820.

    marginUsed = 6,820 - 6,000 = 820 (posted + uPnL 200); MM 6,000 x 0.02 = 120.
    """
    _, legs = evaluate(
        [position(ETH, Side.SHORT, MarginMode.ISOLATED, 2, 3_100, 3_000, raw_usd=6_820)],
        {ETH: flat_tiers(25)},
    )
    eth = legs[ETH]
    assert eth.position.isolated_margin == pytest.approx(620)
    assert eth.margin_ratio == pytest.approx(120 / 820)
    # 6,820 - 2 P = 2 P x 0.02  ->  P = 6,820 / 2.04
    assert eth.liquidation_price == pytest.approx(6_820 / 2.04, rel=1e-12)
    assert eth.liquidation_price == pytest.approx(
        published_liq(3_000, -1, 820 - 120, 2, 0.02), rel=1e-12
    )


@pytest.mark.parametrize(
    ("szi", "entry", "raw_usd", "position_value", "liquidation_px"),
    [
        # Hyperliquid API docs, clearinghouseState example (isolated, 20x, maxLeverage 50)
        (0.0335, 2_986.3, -95.059824, 100.02765, 2_866.26936529),
        # the live reply quoted in ccxt 4.5.90's hyperliquid.fetch_positions
        (0.2259, 2_213.9, -475.23904, 500.12001, 2_125.00856238),
    ],
)
def test_isolated_liquidation_prices_hyperliquid_published(
    szi, entry, raw_usd, position_value, liquidation_px
):
    """Hyperliquid's own liquidationPx, to the precision of its 6-decimal USD fields."""
    mark = position_value / szi
    _, legs = evaluate(
        [position(ETH, Side.LONG, MarginMode.ISOLATED, szi, entry, mark, raw_usd=raw_usd)],
        {ETH: flat_tiers(50)},
    )
    assert legs[ETH].liquidation_price == pytest.approx(liquidation_px, rel=1e-8)


def test_beyond_a_tier_boundary_the_solver_follows_the_lower_tier():
    """The closed form holds within the mark's tier; past a floor MM changes slope.

    Isolated BTC long 0.2, entry = mark 60,000, posted 3,000 (rawUsd -9,000); tiers 40x,
    then 25x from 10,000 (deduction 75). At the mark: tier 25x, MM 240 - 75 = 165, and the
    closed form gives 60,000 - 2,835 / 0.2 / 0.98 = 45,535.7: a notional of 9,107, below
    the floor, where MM is 0.0125 x notional, not 0.02 x notional - 75.
    Tier 40x: -9,000 + 0.2 P = 0.2 P x 0.0125  ->  P = 9,000 / 0.1975 = 45,569.6 (notional
    9,114: in that tier), so the true liquidation comes sooner than the closed form says.
    """
    tiers = {BTC: maintenance_tiers([(0, 40), (10_000, 25)])}
    _, legs = evaluate(
        [position(BTC, Side.LONG, MarginMode.ISOLATED, 0.2, 60_000, 60_000, raw_usd=-9_000)],
        tiers,
    )
    closed_form = published_liq(60_000, 1, 3_000 - 165, 0.2, 0.02)
    assert closed_form == pytest.approx(45_535.71, abs=0.01)
    assert legs[BTC].liquidation_price == pytest.approx(9_000 / 0.1975, rel=1e-12)


# --------------------------------------------------------------------------- properties


def rate_by_hand(table: TierTable, notional: float) -> float:
    """1 / (2 x maxLeverage) of the tier holding `notional`."""
    return 1 / (2 * max((t.floor, t.max_leverage) for t in table.tiers if t.floor <= notional)[1])


def mm_by_hand(table: TierTable, notional: float) -> float:
    """MM as the integral of the marginal rate, 1 / (2 x maxLeverage), over each tier's
    slice of the notional: independent of the deduction bookkeeping, which continuity
    makes equal to it."""
    return sum(max(0.0, min(notional, t.cap) - t.floor) / (2 * t.max_leverage) for t in table.tiers)


def pnl(p: Position, mark: float) -> float:
    return p.side.sign * p.contracts * (mark - p.entry_price)


@st.composite
def margin_tables(draw: st.DrawFn) -> TierTable:
    """1-4 tiers, max leverage falling as notional rises, as Hyperliquid's tables do."""
    leverages = sorted(
        draw(st.lists(st.sampled_from([50, 40, 25, 20, 10, 5, 3]), min_size=1, max_size=4,
                      unique=True)),
        reverse=True,
    )  # fmt: skip
    floors = [0.0]
    for _ in leverages[1:]:
        floors.append(floors[-1] + draw(st.floats(1e3, 5e6)))
    return maintenance_tiers(zip(floors, leverages, strict=True))


@st.composite
def isolated_books(draw: st.DrawFn) -> AccountSnapshot:
    p = replace(draw(linear_positions(SOL, MarginMode.ISOLATED)), settle="USDC")
    return AccountSnapshot("hl", "hyperliquid", (), (p,), {SOL: draw(margin_tables())})


@st.composite
def cross_books(draw: st.DrawFn) -> AccountSnapshot:
    count = draw(st.integers(1, 4))
    positions = tuple(
        replace(draw(linear_positions(f"C{i}/USDC:USDC", MarginMode.CROSS)), settle="USDC")
        for i in range(count)
    )
    gross = sum(p.contracts * p.mark_price for p in positions)
    upnl = sum(pnl(p, p.mark_price) for p in positions)
    wallet = max(gross * draw(st.floats(0.05, 1.0)), -upnl + gross * 0.3)
    tiers = {p.symbol: draw(margin_tables()) for p in positions}
    return AccountSnapshot("hl", "hyperliquid", (CrossPool("USDC", wallet),), positions, tiers)


def same_tier(table: TierTable, a: float, b: float) -> bool:
    return table.index_for(a) == table.index_for(b)


@settings(max_examples=300, deadline=None)
@given(isolated_books())
def test_isolated_ratio_is_one_at_our_liquidation_price(snapshot):
    [risk] = AccountBook(snapshot).evaluate().positions
    assume(risk.liquidation_price is not None)
    p = snapshot.positions[0]
    table = snapshot.tiers[p.symbol]
    price, mark = risk.liquidation_price, p.mark_price
    equity = p.isolated_margin + pnl(p, price)
    mm = mm_by_hand(table, p.contracts * price)
    if math.isclose(price, mark, rel_tol=1e-12):
        assert equity <= mm * (1 + RATIO_TOLERANCE)  # already past liquidation
        return
    assert mm / equity == pytest.approx(1.0, abs=RATIO_TOLERANCE)
    if same_tier(table, p.contracts * price, p.contracts * mark):
        # within the mark's tier, the published closed form: marginUsed - MM available
        available = p.isolated_margin + pnl(p, mark) - mm_by_hand(table, p.contracts * mark)
        rate = rate_by_hand(table, p.contracts * mark)
        expected = published_liq(mark, p.side.sign, available, p.contracts, rate)
        assert price == pytest.approx(expected, rel=1e-9)


@settings(max_examples=300, deadline=None)
@given(cross_books())
def test_cross_ratio_is_one_at_each_of_our_liquidation_prices(snapshot):
    risk = AccountBook(snapshot).evaluate()
    wallet = snapshot.pools[0].wallet_balance
    marks = {p.symbol: p.mark_price for p in snapshot.positions}

    def equity_and_mm(at: dict[str, float]) -> tuple[float, float]:
        equity = wallet + sum(pnl(p, at[p.symbol]) for p in snapshot.positions)
        mm = sum(
            mm_by_hand(snapshot.tiers[p.symbol], p.contracts * at[p.symbol])
            for p in snapshot.positions
        )
        return equity, mm

    account_value, cross_mm = equity_and_mm(marks)
    for member in risk.positions:
        if member.liquidation_price is None or member.liquidation_distance < 1e-12:
            continue
        p, price = member.position, member.liquidation_price
        equity, mm = equity_and_mm(dict(marks, **{p.symbol: price}))
        assert mm / equity == pytest.approx(1.0, abs=RATIO_TOLERANCE)
        table = snapshot.tiers[p.symbol]
        if same_tier(table, p.contracts * price, p.contracts * p.mark_price):
            # accountValue - crossMaintenanceMarginUsed, the others held at their marks
            rate = rate_by_hand(table, p.contracts * p.mark_price)
            expected = published_liq(
                p.mark_price, p.side.sign, account_value - cross_mm, p.contracts, rate
            )
            assert price == pytest.approx(expected, rel=1e-9)
