"""Level holds: whenever one proves a pool keeps its levels, the exact evaluation agrees.

The oracle is the exact path: `AccountBook.evaluate_pool` (the solver, checked against
the exchanges' published examples) and `level_for` with the level last reported held.
Levels are first found exactly at some marks, from a random earlier level (so holds at
every level and through hysteresis are exercised); the marks then drift, within and past
the band a proof holds for. Wherever `holds` says yes, the pool and every member must be
exactly at the level held. A hold may say "can't tell" at will; never "kept" wrongly.
"""

from __future__ import annotations

from dataclasses import replace

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from monitor.config import LevelThresholds, Thresholds
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
from monitor.engine.levels import Level, level_for
from monitor.engine.screen import ALLOWANCE
from tests.strategies import level_thresholds, linear_positions, tier_tables, two_leg_pool

STORM = Thresholds.model_validate(
    {"cross": {"warn": 0.001, "critical": 0.5, "distance_warn": 0.99, "distance_critical": 0.08}}
).cross
"""Every target above OK (the tick benchmark's storm): only holds can settle a tick."""


def thresholds() -> st.SearchStrategy[LevelThresholds]:
    return st.one_of(st.sampled_from([Thresholds().cross, STORM]), level_thresholds())


@st.composite
def pools(draw: st.DrawFn) -> AccountSnapshot:
    """A cross pool of 1-6 linear legs, sometimes with a hedge-mode pair on one symbol,
    tiers keyed by notional or by contracts, its wallet anywhere from past liquidation
    to comfortable."""
    count = draw(st.integers(1, 6))
    positions = [draw(linear_positions(f"S{i}/USDT:USDT", MarginMode.CROSS)) for i in range(count)]
    if draw(st.booleans()):
        first = positions[0]
        positions[0] = replace(first, side=Side.LONG, position_side="LONG")
        other = draw(linear_positions(first.symbol, MarginMode.CROSS))
        positions.append(
            replace(other, side=Side.SHORT, position_side="SHORT", mark_price=first.mark_price)
        )
    tiers = {p.symbol: draw(tier_tables(draw(st.sampled_from(TierBasis)))) for p in positions}
    gross = sum(p.contracts * p.mark_price for p in positions)
    pnl = sum(p.side.sign * p.contracts * (p.mark_price - p.entry_price) for p in positions)
    wallet = -pnl + gross * draw(st.floats(-0.01, 0.5))
    return AccountSnapshot(
        "acct", "binanceusdm", (CrossPool("USDT", wallet),), tuple(positions), tiers
    )


def exact_levels(
    book: AccountBook, marks: dict[str, float], limits: LevelThresholds, held: list[Level | None]
) -> list[Level | None]:
    """Pool first, then each member in book order: what the tracker would report."""
    pool, members = book.evaluate_pool("USDT", marks)
    figures = [pool, *members]
    return [
        level_for(f.margin_ratio, f.liquidation_distance, limits, before)
        for f, before in zip(figures, held, strict=True)
    ]


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    pools(),
    thresholds(),
    st.sampled_from(list(Level)),
    st.lists(st.floats(-2 * ALLOWANCE, 2 * ALLOWANCE), min_size=12, max_size=12),
    st.integers(1, 5),
)
def test_a_kept_level_is_the_exact_level_at_every_drifted_mark(
    snapshot, limits, before, moves, steps
):
    book = AccountBook(snapshot)
    marks = {p.symbol: p.mark_price for p in snapshot.positions}
    size = len(snapshot.positions) + 1
    levels = exact_levels(book, marks, limits, [before] * size)
    if None in levels:
        return  # unknown figures are never held
    pool_level, *leg_levels = levels
    hold = book.level_hold("USDT", pool_level, leg_levels, limits)  # type: ignore[arg-type]
    assert hold is not None  # linear, regular tables: always covered
    symbols = sorted(marks)
    for step in range(steps + 1):
        if hold.holds(marks.get):
            assert exact_levels(book, marks, limits, levels) == levels, step
        scale = (step + 1) / steps
        marks = {s: marks[s] * (1 + moves[i % len(moves)] * scale) for i, s in enumerate(symbols)}


def stormy_pool() -> AccountSnapshot:
    """Two legs at 10x under the storm thresholds: WARN by the 0.001 ratio, far from
    the 0.5 critical ratio and the 8% critical distance."""
    return two_leg_pool(5_000.0)


def test_a_warned_pool_is_held_across_small_moves_and_released_by_a_large_one():
    """By hand: MM = 30,000 x 0.004 + 20,000 x 0.004 = 200 on a balance of 5,000, ratio
    0.04: WARN (>= 0.001), far below the 0.5 critical ratio. BTC down 1% costs 300 of
    the 4,800 free margin, so the 8% critical distance is not near either: the hold
    must stand over small moves. A 60% fall of BTC wipes the pool out: no hold then."""
    book = AccountBook(stormy_pool())
    marks = {"BTC/USDT:USDT": 30_000.0, "ETH/USDT:USDT": 2_000.0}
    pool, _ = book.evaluate_pool("USDT", marks)
    assert abs(pool.margin_ratio - 200 / 5_000) < 1e-12
    hold = book.level_hold("USDT", Level.WARN, [Level.WARN, Level.WARN], STORM)
    assert hold is not None
    for step in range(1, 20):
        moved = {"BTC/USDT:USDT": 30_000.0 * (1 - 0.001 * step), "ETH/USDT:USDT": 2_000.0}
        assert hold.holds(moved.get)
    crashed = {"BTC/USDT:USDT": 12_000.0, "ETH/USDT:USDT": 2_000.0}
    assert not hold.holds(crashed.get)


def test_inverse_pools_get_no_hold():
    position = Position(
        "BTC/USD:BTC", Side.LONG, MarginMode.CROSS, 10.0, 100.0, 30_000.0, 30_000.0, "BTC",
        inverse=True,
    )  # fmt: skip
    tiers = TierTable((Tier(0, 1e9, 0.004, 0),))
    snapshot = AccountSnapshot(
        "acct", "binancecoinm", (CrossPool("BTC", 1.0),), (position,), {position.symbol: tiers}
    )
    assert AccountBook(snapshot).level_hold("BTC", Level.WARN, [Level.WARN], STORM) is None
