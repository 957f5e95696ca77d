"""Properties that hold for any account, checked on random exchange-shaped books.

The engine's answers are checked by recomputing the ratio from first principles
(equity and MM summed by hand here), not by asking the engine twice.
"""

from __future__ import annotations

import itertools
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
    TierBasis,
    TierTable,
)
from monitor.engine.book import AccountBook
from monitor.engine.sizing import margin_to_add
from tests.strategies import cross_accounts, linear_positions, tier_tables

RATIO_TOLERANCE = 1e-9


def mm_by_hand(position: Position, mark: float, tiers) -> float:
    value = position.size / mark if position.inverse else position.size * mark
    key = position.contracts if tiers.basis is TierBasis.CONTRACTS else value
    tier = max((t for t in tiers.tiers if t.floor <= key), key=lambda t: t.floor)
    return value * tier.maintenance_rate - tier.maintenance_amount


def pnl_by_hand(position: Position, mark: float) -> float:
    if position.inverse:
        return position.side.sign * position.size * (1 / position.entry_price - 1 / mark)
    return position.side.sign * position.size * (mark - position.entry_price)


ROUNDING = 1e-12
"""Relative rounding of a sum of float terms, as a fraction of the terms' magnitude."""


def pool_balance_by_hand(
    snapshot: AccountSnapshot, marks: dict[str, float]
) -> tuple[float, float, float]:
    """(equity, MM, the magnitude of the terms summed into them). At a liquidation the
    first two are equal; how equal a float sum can make them depends on the third: a pool
    liquidated near a zero price subtracts numbers of the wallet's size to get a few
    millionths, so its ratio MM / equity is only good to a few 1e-9 there."""
    wallet = snapshot.pools[0].wallet_balance
    equity = wallet + sum(pnl_by_hand(p, marks[p.symbol]) for p in snapshot.positions)
    mm = sum(mm_by_hand(p, marks[p.symbol], snapshot.tiers[p.symbol]) for p in snapshot.positions)
    terms = (
        abs(wallet)
        + mm
        + sum(
            p.size * (marks[p.symbol] + p.entry_price) for p in snapshot.positions if not p.inverse
        )
    )
    return equity, mm, terms


def pool_ratio_by_hand(snapshot: AccountSnapshot, marks: dict[str, float]) -> float:
    wallet = snapshot.pools[0].wallet_balance
    equity = wallet + sum(pnl_by_hand(p, marks[p.symbol]) for p in snapshot.positions)
    mm = sum(mm_by_hand(p, marks[p.symbol], snapshot.tiers[p.symbol]) for p in snapshot.positions)
    return mm / equity


@st.composite
def isolated_books(draw: st.DrawFn, inverse: bool = False) -> AccountSnapshot:
    position = draw(linear_positions("X/USDT:USDT", MarginMode.ISOLATED))
    if inverse:
        position = replace(
            position, inverse=True, settle="X", contract_size=10.0,
            isolated_margin=position.contracts * 10.0 / position.mark_price
            / draw(st.floats(1.5, 50.0)),
        )  # fmt: skip
    basis = TierBasis.CONTRACTS if inverse else TierBasis.NOTIONAL
    tiers = {position.symbol: draw(tier_tables(basis))}
    return AccountSnapshot("acct", "binanceusdm", (), (position,), tiers)


@settings(max_examples=300, deadline=None)
@given(isolated_books(), st.booleans())
def test_isolated_ratio_is_one_at_liquidation_price(snapshot, inverse):
    if inverse:
        return  # covered by the inverse variant below
    risk = AccountBook(snapshot).evaluate().positions[0]
    assume(risk.liquidation_price is not None and risk.liquidation_price > 0)
    position = snapshot.positions[0]
    price = risk.liquidation_price
    equity = position.isolated_margin + pnl_by_hand(position, price)
    mm = mm_by_hand(position, price, snapshot.tiers[position.symbol])
    if math.isclose(price, position.mark_price, rel_tol=1e-12):
        assert equity <= mm * (1 + RATIO_TOLERANCE)  # already past liquidation
    else:
        assert mm / equity == pytest.approx(1.0, abs=RATIO_TOLERANCE)


@settings(max_examples=200, deadline=None)
@given(isolated_books(), st.lists(st.floats(0.3, 3.0), min_size=1, max_size=8))
def test_one_isolated_book_stays_exact_across_many_marks(snapshot, factors):
    """The book keeps what it can between ticks (an isolated liquidation price does not
    depend on the mark): at every mark of a walk the figures are still exact by hand."""
    book = AccountBook(snapshot)
    position = snapshot.positions[0]
    tiers = snapshot.tiers[position.symbol]
    for factor in factors:
        mark = position.mark_price * factor
        risk = book.evaluate({position.symbol: mark}).positions[0]
        equity = position.isolated_margin + pnl_by_hand(position, mark)
        mm = mm_by_hand(position, mark, tiers)
        # equity within rounding of zero: the ratio's sign is noise in both computations
        assume(abs(equity) > 1e-9 * position.contracts * mark)
        assert risk.margin_ratio == pytest.approx(mm / equity if equity > 0 else math.inf)
        price = risk.liquidation_price
        if price is None:
            continue
        assert risk.liquidation_distance == pytest.approx(abs(price / mark - 1), abs=1e-12)
        if risk.liquidation_distance == 0.0:  # already past: the mark itself
            assert price == pytest.approx(mark) and equity <= mm * (1 + RATIO_TOLERANCE)
            continue
        at_price = position.isolated_margin + pnl_by_hand(position, price)
        assert mm_by_hand(position, price, tiers) / at_price == pytest.approx(
            1.0, abs=RATIO_TOLERANCE
        )


@settings(max_examples=300, deadline=None)
@given(isolated_books(inverse=True))
def test_inverse_isolated_ratio_is_one_at_liquidation_price(snapshot):
    risk = AccountBook(snapshot).evaluate().positions[0]
    assume(risk.liquidation_price is not None)
    assume(not math.isclose(risk.liquidation_price, risk.mark_price, rel_tol=1e-12))
    position = snapshot.positions[0]
    price = risk.liquidation_price
    equity = position.isolated_margin + pnl_by_hand(position, price)
    mm = mm_by_hand(position, price, snapshot.tiers[position.symbol])
    assert mm / equity == pytest.approx(1.0, abs=RATIO_TOLERANCE)


@settings(max_examples=300, deadline=None)
@given(cross_accounts())
def test_cross_ratio_is_one_at_each_liquidation_price(snapshot):
    risk = AccountBook(snapshot).evaluate()
    base = {p.symbol: p.mark_price for p in snapshot.positions}
    for member in risk.positions:
        if member.liquidation_price is None or member.liquidation_distance < 1e-12:
            continue
        marks = dict(base, **{member.position.symbol: member.liquidation_price})
        assert pool_ratio_by_hand(snapshot, marks) == pytest.approx(1.0, abs=RATIO_TOLERANCE)


@settings(max_examples=300, deadline=None)
@given(cross_accounts())
def test_pool_ratio_is_one_after_the_uniform_liquidation_move(snapshot):
    pool = AccountBook(snapshot).evaluate().pools[0]
    assume(pool.liquidation_move is not None and pool.liquidation_distance > 1e-12)
    marks = {p.symbol: p.mark_price * (1 + pool.liquidation_move) for p in snapshot.positions}
    # MM / equity = 1 to 1e-9, or as close as the float sums allow (see pool_balance_by_hand)
    equity, mm, terms = pool_balance_by_hand(snapshot, marks)
    assert abs(equity - mm) <= RATIO_TOLERANCE * mm + ROUNDING * terms
    # and no smaller uniform move in either direction liquidates
    for fraction in (0.25, 0.5, 0.9, 0.999):
        for sign in (1, -1):
            move = sign * pool.liquidation_distance * fraction
            if move <= -1:
                continue
            marks = {p.symbol: p.mark_price * (1 + move) for p in snapshot.positions}
            assert pool_ratio_by_hand(snapshot, marks) < 1.0


def test_hedged_pool_is_further_from_liquidation_than_its_legs():
    long = Position("A/USDT:USDT", Side.LONG, MarginMode.CROSS, 10, 1, 100, 100, "USDT")
    short = Position("B/USDT:USDT", Side.SHORT, MarginMode.CROSS, 5, 1, 100, 100, "USDT")
    tiers = {"A/USDT:USDT": TierTable.flat(0.01), "B/USDT:USDT": TierTable.flat(0.01)}
    snapshot = AccountSnapshot("a", "x", (CrossPool("USDT", 100.0),), (long, short), tiers)
    risk = AccountBook(snapshot).evaluate()
    # uniform move x: equity 100 + 1000x - 500x = 100 + 500x; MM = 15 (1 + x)
    # -> 85 + 485x = 0, x = -85/485 (down: the net long loses)
    assert risk.pools[0].liquidation_move == pytest.approx(-85 / 485, rel=1e-12)
    # legs, the other held: A: 95 + 1000x - 10(1+x) = 0; B: 90 - 500x - 5(1+x) = 0
    by_symbol = {p.position.symbol: p for p in risk.positions}
    assert by_symbol["A/USDT:USDT"].liquidation_price == pytest.approx(100 * (1 - 85 / 990))
    assert by_symbol["B/USDT:USDT"].liquidation_price == pytest.approx(100 * (1 + 85 / 505))
    assert risk.pools[0].liquidation_distance > max(p.liquidation_distance for p in risk.positions)


@settings(max_examples=200, deadline=None)
@given(isolated_books(), st.lists(st.floats(0.0, 0.5), min_size=2, max_size=6))
def test_ratio_grows_monotonically_with_adverse_moves(snapshot, moves):
    """Holds for every short, and for a long whose entry notional exceeds its margin by at
    least cum / rate of every tier: d(ratio)/d(mark) has the sign of
    cum - rate x (entry notional - margin). A long collateralised beyond that sees its
    ratio fall as the price falls, because MM shrinks with the notional."""
    position = snapshot.positions[0]
    if position.side is Side.LONG:
        tiers = snapshot.tiers[position.symbol].tiers
        cushion = position.size * position.entry_price - position.isolated_margin
        assume(all(cushion >= t.maintenance_amount / t.maintenance_rate for t in tiers))
    book = AccountBook(snapshot)
    ratios = []
    for move in sorted(moves):
        mark = position.mark_price * (1 - position.side.sign * move)
        ratios.append(book.evaluate({position.symbol: mark}).positions[0].margin_ratio)
    assert all(b >= a - 1e-12 for a, b in itertools.pairwise(ratios))


@settings(max_examples=200, deadline=None)
@given(isolated_books(), st.floats(0.05, 0.95))
def test_margin_to_add_reaches_the_target_exactly(snapshot, target):
    book = AccountBook(snapshot)
    leg = book.isolated[0]
    added = margin_to_add(book, leg, target)
    position = snapshot.positions[0]
    equity = position.isolated_margin + added + pnl_by_hand(position, position.mark_price)
    ratio = mm_by_hand(position, position.mark_price, snapshot.tiers[position.symbol]) / equity
    if added > 0:
        assert ratio == pytest.approx(target, rel=1e-9)
    else:
        assert 0 <= ratio <= target or equity <= 0
