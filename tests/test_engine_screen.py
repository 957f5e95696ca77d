"""The quiet-tick screen: whatever it proves, the exact evaluation must confirm.

The oracle is `AccountBook.evaluate_pool` / `evaluate_isolated` (the exact solver, itself
checked against the exchanges' published examples): whenever the screen answers "quiet"
at some marks, the exact ratio there is below the warning and every exact distance is
beyond the warning distance. The marks then drift, within and past the band the proof
holds for, and the same must stay true. The screen may say "can't tell" whenever it
likes; it must never say "quiet" wrongly. Separate tests keep it from being vacuous.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from hypothesis import HealthCheck, given, settings
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
from monitor.engine.screen import ALLOWANCE
from tests.strategies import linear_positions, tier_tables, two_leg_pool


@dataclass(frozen=True)
class Limits:
    warn: float
    distance_warn: float


def exactly_quiet_pool(book: AccountBook, asset: str, marks: dict[str, float], limits: Limits):
    pool, members = book.evaluate_pool(asset, marks)
    far = [pool.liquidation_distance, *(m.liquidation_distance for m in members)]
    return (
        pool.margin_ratio is not None
        and pool.margin_ratio < limits.warn
        and all(d is None or d > limits.distance_warn for d in far)
    )


def exactly_quiet_isolated(book: AccountBook, marks: dict[str, float], limits: Limits):
    risk = book.evaluate_isolated(book.isolated[0], marks)
    distance = risk.liquidation_distance
    return (
        risk.margin_ratio is not None
        and risk.margin_ratio < limits.warn
        and (distance is None or distance > limits.distance_warn)
    )


limits_st = st.builds(Limits, st.floats(0.05, 0.95), st.floats(0.005, 0.4))
drifts = st.lists(st.floats(-2 * ALLOWANCE, 2 * ALLOWANCE), min_size=12, max_size=12)


@st.composite
def screened_pools(draw: st.DrawFn) -> AccountSnapshot:
    """A cross pool of 1-6 linear legs, sometimes with a hedge-mode pair on one symbol,
    its wallet anywhere from nearly wiped out to comfortable."""
    count = draw(st.integers(1, 6))
    positions = [draw(linear_positions(f"S{i}/USDT:USDT", MarginMode.CROSS)) for i in range(count)]
    if draw(st.booleans()):  # hedge mode: the first symbol held both ways
        first = positions[0]
        positions[0] = replace(first, side=Side.LONG, position_side="LONG")
        other = draw(linear_positions(first.symbol, MarginMode.CROSS))
        positions.append(
            replace(
                other, side=Side.SHORT, position_side="SHORT",
                mark_price=first.mark_price,
            )
        )  # fmt: skip
    tiers = {p.symbol: draw(tier_tables()) for p in positions}
    gross = sum(p.contracts * p.mark_price for p in positions)
    pnl = sum(p.side.sign * p.contracts * (p.mark_price - p.entry_price) for p in positions)
    wallet = -pnl + gross * draw(st.floats(0.001, 1.0))
    return AccountSnapshot(
        "acct", "binanceusdm", (CrossPool("USDT", wallet),), tuple(positions), tiers
    )


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(screened_pools(), limits_st, drifts, st.integers(1, 4))
def test_a_quiet_pool_is_quiet_by_the_exact_figures_at_every_drifted_mark(
    snapshot, limits, moves, steps
):
    book = AccountBook(snapshot)
    marks = {p.symbol: p.mark_price for p in snapshot.positions}
    symbols = sorted(marks)
    for step in range(steps):  # successive drifts: the band is reused, then re-proven
        if book.quiet_pool("USDT", marks.get, limits):
            assert exactly_quiet_pool(book, "USDT", marks, limits)
        scale = (step + 1) / steps
        marks = {s: marks[s] * (1 + moves[i % len(moves)] * scale) for i, s in enumerate(symbols)}
    if book.quiet_pool("USDT", marks.get, limits):
        assert exactly_quiet_pool(book, "USDT", marks, limits)


@settings(max_examples=300, deadline=None)
@given(
    linear_positions("BTC/USDT:USDT", MarginMode.ISOLATED),
    tier_tables(),
    limits_st,
    drifts,
)
def test_a_quiet_isolated_position_is_quiet_by_the_exact_figures(position, tiers, limits, moves):
    snapshot = AccountSnapshot("acct", "binanceusdm", (), (position,), {position.symbol: tiers})
    book = AccountBook(snapshot)
    leg = book.isolated[0]
    mark = position.mark_price
    for move in moves:
        marks = {position.symbol: mark}
        if book.quiet_isolated(leg, marks.get, limits):
            assert exactly_quiet_isolated(book, marks, limits)
        mark *= 1 + move


@settings(max_examples=200, deadline=None)
@given(
    st.floats(1_000.0, 60_000.0),
    st.floats(0.01, 5.0),
    st.sampled_from(list(Side)),
    limits_st,
    drifts,
)
def test_a_quiet_inverse_position_is_quiet_by_the_exact_figures(mark, btc, side, limits, moves):
    """COIN-M: USD face, coin-valued margin; the bound runs in 1 / price."""
    face = round(btc * mark, -2) or 100.0
    tiers = TierTable((Tier(0, 5, 0.004, 0), Tier(5, 10, 0.005, 0.005), Tier(10, 1e9, 0.01, 0.055)))
    position = Position(
        "BTC/USD:BTC", side, MarginMode.ISOLATED, face / 100, 100.0, mark, mark, "BTC",
        inverse=True, isolated_margin=face / mark / 10,
    )  # fmt: skip
    snapshot = AccountSnapshot("acct", "binancecoinm", (), (position,), {position.symbol: tiers})
    book = AccountBook(snapshot)
    for move in moves:
        marks = {position.symbol: mark}
        if book.quiet_isolated(book.isolated[0], marks.get, limits):
            assert exactly_quiet_isolated(book, marks, limits)
        mark *= 1 + move


def healthy_pool() -> AccountSnapshot:
    """Two 5x-leveraged legs, long and short, on a Binance-like table: far from danger."""
    return two_leg_pool(10_000.0)


def test_a_healthy_pool_is_proven_quiet_and_stays_so_over_small_moves():
    book = AccountBook(healthy_pool())
    limits = Limits(0.5, 0.15)
    marks = {"BTC/USDT:USDT": 30_000.0, "ETH/USDT:USDT": 2_000.0}
    assert book.quiet_pool("USDT", marks.get, limits)
    for step in range(1, 20):
        marks = {"BTC/USDT:USDT": 30_000.0 * (1 - 0.001 * step), "ETH/USDT:USDT": 2_000.0}
        assert book.quiet_pool("USDT", marks.get, limits)


def test_a_pool_near_its_warning_is_left_to_the_exact_evaluation():
    """Ratio by hand: MM = 30,000 x 0.004 + 20,000 x 0.004 = 200; with the wallet at
    420 the margin balance is 420 and the ratio 0.476, under a 0.5 warning, but a 1%
    move of BTC (300) takes the pool most of the way to liquidation: its distance is
    well inside 15%, so the screen must not call it quiet."""
    snapshot = healthy_pool()
    snapshot = replace(snapshot, pools=(CrossPool("USDT", 420.0),))
    book = AccountBook(snapshot)
    marks = {"BTC/USDT:USDT": 30_000.0, "ETH/USDT:USDT": 2_000.0}
    pool, _ = book.evaluate_pool("USDT", marks)
    assert abs(pool.margin_ratio - 200 / 420) < 1e-12
    assert not book.quiet_pool("USDT", marks.get, Limits(0.5, 0.15))


def test_tables_whose_margin_jumps_are_never_screened():
    """No deduction at the floors (ccxt's unified tiers): MM jumps, the bound fails."""
    jumpy = TierTable((Tier(0, 5e4, 0.004, 0), Tier(5e4, 1e12, 0.05, 0)))
    assert not jumpy.regular
    snapshot = healthy_pool()
    snapshot = replace(snapshot, tiers={s: jumpy for s in snapshot.tiers})
    book = AccountBook(snapshot)
    marks = {"BTC/USDT:USDT": 30_000.0, "ETH/USDT:USDT": 2_000.0}
    assert exactly_quiet_pool(book, "USDT", marks, Limits(0.5, 0.15))
    assert not book.quiet_pool("USDT", marks.get, Limits(0.5, 0.15))
