"""Level bands: inside one, the exact evaluation must report the level the band was
solved for.

The oracle is the exact path the daemon would otherwise run on the tick:
`AccountBook.evaluate_isolated` (checked against the exchanges' published examples)
and `level_for` with the level last reported as the one held. A band may be narrower
than it could be, or empty; it must never hold a mark at which the level changes.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from monitor.config import LevelThresholds, Thresholds
from monitor.domain import AccountSnapshot, MarginMode, Position, Side, Tier, TierTable
from monitor.engine.book import AccountBook
from monitor.engine.levels import Level, level_for
from tests.strategies import level_thresholds, linear_positions, tier_tables


def level_at(
    book: AccountBook, mark: float, limits: LevelThresholds, held: Level | None
) -> Level | None:
    risk = book.evaluate_isolated(book.isolated[0], {book.isolated[0].symbol: mark})
    return level_for(risk.margin_ratio, risk.liquidation_distance, limits, held)


def one_isolated(position: Position, tiers: TierTable) -> AccountBook:
    return AccountBook(
        AccountSnapshot("acct", "binanceusdm", (), (position,), {position.symbol: tiers})
    )


@settings(max_examples=500, deadline=None)
@given(
    linear_positions("BTC/USDT:USDT", MarginMode.ISOLATED),
    tier_tables(),
    level_thresholds(),
    st.sampled_from(list(Level)),
    st.lists(st.floats(0.0, 1.0), min_size=8, max_size=8),
    st.floats(0.3, 3.0),
)
def test_every_mark_inside_a_band_keeps_its_level(position, tiers, limits, before, spots, move):
    book = one_isolated(position, tiers)
    leg = book.isolated[0]
    mark = position.mark_price * move  # the walk has gone somewhere since the snapshot
    level = level_at(book, mark, limits, before)  # what the tracker reports and holds
    assert book.bandable(leg) and level is not None
    band = book.isolated_band(leg, mark, level, limits)
    if band.low == band.high:
        return  # too near a crossing to tell: the exact path decides
    assert band.low < mark < band.high and band.level is level
    width = band.high - band.low
    inside = [band.low + u * width for u in spots]
    inside += [band.low * (1 + 1e-15), band.high * (1 - 1e-15), band.low + width * 1e-12]
    for probe in inside:
        if band.low < probe < band.high:
            assert level_at(book, probe, limits, level) is level, probe


DEFAULT_ISOLATED = Thresholds().isolated
"""The shipped isolated thresholds: ratios 0.60 / 0.80 / 0.95, distances 10% / 5% / 1%,
cleared past a 5% margin and 2 points of ratio or distance (monitor/config/schema.py)."""


def ten_x_long() -> AccountBook:
    """1 BTC long from 30,000 with 3,000 of isolated margin, one bracket at 0.4%."""
    tiers = TierTable((Tier(0, 1e12, 0.004, 0.0),))
    position = Position(
        "BTC/USDT:USDT", Side.LONG, MarginMode.ISOLATED, 1.0, 1.0, 30_000.0, 30_000.0,
        "USDT", isolated_margin=3_000.0,
    )  # fmt: skip
    return one_isolated(position, tiers)


def test_a_warned_position_is_banded_between_its_critical_and_its_clearing_distance():
    """By hand: equity = 3,000 + (p - 30,000) = p - 27,000 and MM = 0.004 p, so the
    liquidation price is 27,000 / 0.996 = 27,108.43 and the distance 1 - 27,108.43 / p:
    9.64% at 30,000, inside the 10% warning (WARN). The level stays WARN until the
    distance reaches 5% (critical) at p = 27,108.43 / 0.95 = 28,535.19, or clears the
    warning: past both its 5% margin (10.5%) and 2 points (12%), so at 12%, at
    p = 27,108.43 / 0.88 = 30,805.04. The ratio (0.004 p / (p - 27,000) = 0.0401 here)
    reaches no threshold in between."""
    book = ten_x_long()
    band = book.isolated_band(book.isolated[0], 30_000.0, Level.WARN, DEFAULT_ISOLATED)
    root = 27_000.0 / 0.996
    assert band.level is Level.WARN
    assert band.low == pytest.approx(root / 0.95, rel=1e-8)
    assert band.high == pytest.approx(root / 0.88, rel=1e-8)
    assert level_at(book, band.low * (1 - 1e-7), DEFAULT_ISOLATED, Level.WARN) is Level.CRITICAL
    assert level_at(book, band.high * (1 + 1e-7), DEFAULT_ISOLATED, Level.WARN) is Level.OK


def test_an_ok_position_is_banded_by_the_warnings_not_the_clearing_margin():
    """At 31,000 the distance is 1 - 27,108.43 / 31,000 = 12.6%: OK. Held at OK, only
    reaching WARN matters: the 10% distance at 30,120.48 below; above, the 4x reach."""
    book = ten_x_long()
    band = book.isolated_band(book.isolated[0], 31_000.0, Level.OK, DEFAULT_ISOLATED)
    assert band.low == pytest.approx(27_000.0 / 0.996 / 0.9, rel=1e-8)
    assert band.high == pytest.approx(4 * 31_000.0, rel=1e-8)


def test_a_mark_on_a_deciding_crossing_gets_no_band():
    """Held at OK, the 10% warning distance decides; a mark right on it (30,120.48)
    could round either way, so no band."""
    book = ten_x_long()
    on_warning = 27_000.0 / 0.996 / 0.9
    band = book.isolated_band(book.isolated[0], on_warning, Level.OK, DEFAULT_ISOLATED)
    assert band.low == band.high == on_warning
