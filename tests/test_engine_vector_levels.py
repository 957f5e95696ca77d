"""The array classifier (monitor/engine/vector/levels.py) is `level_for`, row by row.

The scalar `level_for` is the reference: on random figures (unknown, infinite, on and
next to every threshold and clearing edge), random valid thresholds and every previous
level, each row's code must be what `level_for` says for that row alone.
"""

from __future__ import annotations

import math

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from monitor.config import LevelThresholds
from monitor.engine.levels import Level, cleared_past, level_for, level_thresholds
from monitor.engine.vector.levels import UNKNOWN, UNSEEN, level_code, level_columns, levels


@st.composite
def thresholds(draw: st.DrawFn) -> LevelThresholds:
    ratios = sorted(draw(st.lists(st.floats(0.01, 0.99), min_size=3, max_size=3, unique=True)))
    distances = sorted(
        draw(st.lists(st.floats(0.005, 0.99), min_size=3, max_size=3, unique=True)), reverse=True
    )
    return LevelThresholds(
        warn=ratios[0], critical=ratios[1], imminent=ratios[2],
        distance_warn=distances[0], distance_critical=distances[1],
        distance_imminent=distances[2],
        clear_margin=draw(st.floats(0.0, 0.49)), clear_ratio=draw(st.floats(0.0, 0.49)),
        clear_distance=draw(st.floats(0.0, 0.49)),
    )  # fmt: skip


def edges(limits: LevelThresholds) -> tuple[list[float], list[float]]:
    """Every ratio and distance where a level is reached or clears, and a hair either side."""
    ratios, distances = [], []
    for _, ratio_at, distance_at in level_thresholds(limits):
        ratio_clear, distance_clear = cleared_past(ratio_at, distance_at, limits)
        ratios += [ratio_at, ratio_clear]
        distances += [distance_at, distance_clear]
    near = [1 - 1e-12, 1.0, 1 + 1e-12]
    return [r * k for r in ratios for k in near], [d * k for d in distances for k in near]


figure = st.one_of(st.just(math.nan), st.just(math.inf), st.floats(0.0, 2.0))
previous = st.sampled_from([None, *Level])


@settings(max_examples=300, deadline=None)
@given(
    st.lists(thresholds(), min_size=1, max_size=3),
    st.lists(st.tuples(figure, figure, previous, st.integers(0, 2), st.booleans()), min_size=1),
    st.randoms(use_true_random=False),
)
def test_each_row_is_level_for_of_that_row(limits, rows, rng):
    ratio, distance, prior, chosen = [], [], [], []
    for r, d, before, which, on_edge in rows:
        limit = limits[which % len(limits)]
        if on_edge:  # land exactly on (or a hair off) a reaching or clearing edge
            ratio_edges, distance_edges = edges(limit)
            r = rng.choice([r, rng.choice(ratio_edges)])
            d = rng.choice([d, rng.choice(distance_edges)])
        ratio.append(r)
        distance.append(d)
        prior.append(before)
        chosen.append(limit)
    got = levels(
        np.array(ratio),
        np.array(distance),
        level_columns(chosen),
        np.array([level_code(p) for p in prior], np.int8),
    )
    want = [
        level_code(
            level_for(None if math.isnan(r) else r, None if math.isnan(d) else d, limit, before)
        )
        for r, d, before, limit in zip(ratio, distance, prior, chosen, strict=True)
    ]
    assert got.tolist() == want


def test_unknown_and_unseen_hold_nothing():
    limits = LevelThresholds(warn=0.5, critical=0.7, distance_warn=0.3, distance_critical=0.1)
    columns = level_columns([limits] * 3)
    # a ratio of 0.49 is past no threshold: OK whether the target was unknown, unseen or OK
    got = levels(np.full(3, 0.49), np.full(3, math.nan), columns, np.array([UNKNOWN, UNSEEN, 0]))
    assert got.tolist() == [level_code(Level.OK)] * 3
    one = level_columns([limits])
    both_unknown = levels(np.array([math.nan]), np.array([math.nan]), one, np.array([3]))
    assert both_unknown.tolist() == [UNKNOWN]
