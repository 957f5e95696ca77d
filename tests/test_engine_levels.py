"""Hysteresis with relative and absolute clear margins (monitor/engine/levels.py).

Every edge below is derived by hand from the thresholds: a level reached at ratio r and
distance d clears only below min(r (1 - m), r - min(clear_ratio, r / 2)) and above
max(d (1 + m), d + clear_distance).
"""

from __future__ import annotations

import pytest

from monitor.config import LevelThresholds, Thresholds
from monitor.domain import MarginMode, Position, Side
from monitor.engine.levels import Level, cleared_past, keeping, level_for
from monitor.engine.results import PositionRisk
from monitor.events.tracker import LevelTracker

ISOLATED = Thresholds().isolated
"""Ratios 0.60 / 0.80 / 0.95, distances 10 % / 5 % / 1 %, m = 5 %, 2 points each."""
DOGE = Position("DOGE/USDT:USDT", Side.LONG, MarginMode.ISOLATED, 40_000, 1, 0.16, 0.16,
                "USDT", isolated_margin=1_280)  # fmt: skip


def test_a_small_distance_clears_only_past_the_absolute_margin():
    # critical at 5 %: 5 % of 5 % is 5.25 %, 5 % + 2 points is 7 %: the wider holds
    assert level_for(None, 0.049, ISOLATED) is Level.CRITICAL
    assert level_for(None, 0.0525 + 1e-4, ISOLATED, Level.CRITICAL) is Level.CRITICAL
    assert level_for(None, 0.0699, ISOLATED, Level.CRITICAL) is Level.CRITICAL
    assert level_for(None, 0.0701, ISOLATED, Level.CRITICAL) is Level.WARN
    # imminent at 1 % clears above 3 %; warn at 10 % above 12 %
    assert level_for(None, 0.0299, ISOLATED, Level.IMMINENT) is Level.IMMINENT
    assert level_for(None, 0.0301, ISOLATED, Level.IMMINENT) is Level.CRITICAL
    assert level_for(None, 0.1199, ISOLATED, Level.WARN) is Level.WARN
    assert level_for(None, 0.1201, ISOLATED, Level.WARN) is Level.OK


def test_a_large_distance_clears_past_the_relative_margin_when_it_is_wider():
    # critical at 50 %: 5 % of it is 52.5 %, wider than 50 % + 2 points = 52 %
    wide = LevelThresholds(warn=0.5, critical=0.7, distance_warn=0.8, distance_critical=0.5)
    assert level_for(None, 0.524, wide, Level.CRITICAL) is Level.CRITICAL
    assert level_for(None, 0.526, wide, Level.CRITICAL) is Level.WARN


def test_ratio_margins_absolute_when_wider_relative_otherwise_and_at_most_half():
    # critical 0.80: 5 % is 0.76, 2 points 0.78: the relative one is wider
    assert level_for(0.761, None, ISOLATED, Level.CRITICAL) is Level.CRITICAL
    assert level_for(0.759, None, ISOLATED, Level.CRITICAL) is Level.WARN
    # clear_ratio 0.1: 0.80 - 0.1 = 0.70 is wider than 0.76
    loose = ISOLATED.model_copy(update={"clear_ratio": 0.1})
    assert level_for(0.701, None, loose, Level.CRITICAL) is Level.CRITICAL
    assert level_for(0.699, None, loose, Level.CRITICAL) is Level.WARN
    # warn 0.03: 2 points would take it to 0.01; capped at half the threshold, below 0.015
    low = LevelThresholds(warn=0.03, critical=0.5, distance_warn=0.2, distance_critical=0.1)
    assert level_for(0.0151, None, low, Level.WARN) is Level.WARN
    assert level_for(0.0149, None, low, Level.WARN) is Level.OK


def test_keeping_states_the_same_edges_as_level_for():
    need = keeping(Level.CRITICAL, ISOLATED)
    assert need.held_ratio == pytest.approx(0.76)
    assert need.held_distance == pytest.approx(0.07)
    assert (need.next_ratio, need.next_distance) == (0.95, 0.01)
    assert cleared_past(0.8, 0.05, ISOLATED) == (need.held_ratio, need.held_distance)


def test_a_price_hovering_at_a_small_distance_pages_once():
    """DOGE's 3-second flap in flash-crash: a distance wobbling around 5 % by a few
    tenths of a point. Only the 5 % relative margin (5.25 %) would let it flap."""
    wobble = (0.049, 0.054, 0.049, 0.056, 0.048, 0.06, 0.05)
    for limits, expected in (
        (Thresholds(), ["critical"]),
        (
            Thresholds.model_validate({"isolated": {"clear_distance": 0, "clear_ratio": 0}}),
            ["critical", "warn", "critical", "warn", "critical", "warn", "critical"],
        ),
    ):
        tracker = LevelTracker()
        levels = []
        for distance in wobble:
            risk = PositionRisk(DOGE, 0.16, 6400, 0, 10, 0.3, 0.16 * (1 - distance), distance)
            event = tracker.position("a", risk, limits)
            if event is not None:
                levels.append(event.level)
        assert levels == expected


def test_the_severity_order_is_the_declaration_order_with_unknown_above_warn():
    """Not seeing is worse than a warning, milder than critical (as `status` ranks it)."""
    mildest_first = [Level.OK, Level.WARN, Level.UNKNOWN, Level.CRITICAL, Level.IMMINENT]
    assert list(Level) == mildest_first
    assert [level.severity for level in mildest_first] == [0, 1, 2, 3, 4]
    assert sorted(reversed(mildest_first)) == mildest_first
    assert max(Level.WARN, Level.UNKNOWN) is Level.UNKNOWN
    assert Level.CRITICAL > Level.WARN  # by spelling, "critical" < "warn": never that
    assert Level.IMMINENT >= Level.CRITICAL > Level.UNKNOWN > Level.WARN > Level.OK


def test_a_level_is_its_wire_name_and_compares_only_with_levels():
    """The JSON events, the stores and the messages carry the lowercase names."""
    assert [str(level) for level in Level] == ["ok", "warn", "unknown", "critical", "imminent"]
    assert f"{Level.CRITICAL}" == "critical" and Level.CRITICAL.upper() == "CRITICAL"
    assert Level("imminent") is Level.IMMINENT
    for misuse in (lambda: Level.OK < "warn", lambda: "warn" > Level.OK):  # noqa: SIM300
        with pytest.raises(TypeError, match="compares only with a Level"):
            misuse()


def test_no_figure_is_unknown_and_unknown_holds_nothing():
    assert level_for(None, None, ISOLATED) is Level.UNKNOWN
    assert level_for(None, None, ISOLATED, Level.CRITICAL) is Level.UNKNOWN
    # a warn-range figure after unknown is decided afresh: nothing carried from it
    assert level_for(0.59, None, ISOLATED, Level.UNKNOWN) is Level.OK
    assert level_for(0.59, None, ISOLATED, Level.WARN) is Level.WARN  # 0.59 >= 0.57
    assert keeping(Level.UNKNOWN, ISOLATED) == keeping(Level.OK, ISOLATED)
    assert keeping(Level.OK, ISOLATED) == (0.60, 0.10, None, None)
    assert keeping(Level.IMMINENT, ISOLATED)[:2] == (None, None)
