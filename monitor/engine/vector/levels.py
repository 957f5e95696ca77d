"""Every row's level at once: `engine.levels.level_for` over a frame's arrays.

The daemon classifies every target on every frame; doing that in Python would cost a
call per target. Here the thresholds of each row (its account's, for its margin mode)
are laid out once per layout as columns, and a frame's ratios and distances are compared
against them in a few array operations. The rules are `level_for`'s, to the letter:

- a level is reached when the ratio is at or above its ratio, or the distance at or
  below its distance; the worst level reached wins;
- a level held before (`previous`) is kept while either figure is still short of where
  it clears (`cleared_past`): the hysteresis;
- an unknown figure (NaN) reaches nothing (NaN compares false, which is level_for's -inf
  ratio and +inf distance); both unknown is UNKNOWN, not OK.

tests/test_engine_vector_levels.py holds this to `level_for` on random figures,
thresholds and previous levels.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

from monitor.engine.levels import Level, LevelLimits, cleared_past, level_thresholds

UNKNOWN = -1
"""Code of `Level.UNKNOWN`: neither figure known (it holds nothing, so it is below OK
here, unlike in the severity order)."""
UNSEEN = -2
"""Code of a target never reported: every level, UNKNOWN included, differs from it."""
_ASCENDING = (Level.WARN, Level.CRITICAL, Level.IMMINENT)
"""The levels a threshold reaches, assigned in this order, so the worst level reached wins."""
_CODES = {Level.OK: 0, **{level: code for code, level in enumerate(_ASCENDING, 1)}}
"""Each threshold level's code: held ones compare by code (`previous >= code`)."""
_CODE_COLUMN = np.array([[_CODES[level]] for level in _ASCENDING], np.int8)
"""The codes of `_ASCENDING` as a column, against the 2-D `LevelColumns`."""


_LEVEL_OF_CODE = np.array([Level.UNKNOWN, *sorted(_CODES, key=_CODES.__getitem__)], dtype=object)
"""Each code's `Level`, at index code - UNKNOWN."""


def levels_of(codes: np.ndarray) -> list[Level]:
    """The `Level` of each code `levels` returned: what leaves the arrays is a `Level`
    again (one gather for a frame's hundreds of moved rows)."""
    return _LEVEL_OF_CODE.take(codes - UNKNOWN).tolist()


def level_code(level: Level | None) -> int:
    """The array code of `level` (None and UNKNOWN: UNKNOWN)."""
    return _CODES.get(level, UNKNOWN) if level is not None else UNKNOWN


class LevelColumns(NamedTuple):
    """Per level above OK (rows of these 2-D arrays, WARN first) and per target row
    (columns): where the level is reached and where a held one clears."""

    reach_ratio: np.ndarray
    reach_distance: np.ndarray
    clear_ratio: np.ndarray
    clear_distance: np.ndarray


def level_columns(limits: Sequence[LevelLimits]) -> LevelColumns:
    """The columns of rows whose limits are `limits` (one per row; rows share objects,
    so each distinct one is read once)."""
    table: dict[int, list[tuple[float, float, float, float]]] = {}
    for each in limits:
        if id(each) not in table:
            by_level = {level: (r, d) for level, r, d in level_thresholds(each)}
            table[id(each)] = [
                (*by_level[level], *cleared_past(*by_level[level], each)) for level in _ASCENDING
            ]
    rows = np.array([table[id(each)] for each in limits], float).reshape(-1, len(_ASCENDING), 4)
    columns = np.ascontiguousarray(rows.transpose(2, 1, 0))
    return LevelColumns(*columns)


def levels(
    ratio: np.ndarray, distance: np.ndarray, columns: LevelColumns, previous: np.ndarray
) -> np.ndarray:
    """Each row's level code (`level_code`) at `ratio` and `distance`, held
    by hysteresis against `previous` (codes; UNKNOWN and UNSEEN hold nothing)."""
    # All three levels at once (the columns are 2-D: a level per row, WARN first), in
    # arithmetic, not masked assignment (`result[hit] = code` costs several comparisons):
    # the worst level reached is the largest code hit, and a row with both figures
    # unknown hits nothing (NaN compares false), so it is 0 until made UNKNOWN (-1).
    hit = ratio >= columns.reach_ratio
    hit |= distance <= columns.reach_distance
    held = previous >= _CODE_COLUMN
    if held.any():
        held &= (ratio >= columns.clear_ratio) | (distance <= columns.clear_distance)
        hit |= held
    result = (hit.view(np.int8) * _CODE_COLUMN).max(axis=0)
    unknown = np.isnan(ratio)
    unknown &= np.isnan(distance)
    result -= unknown.view(np.int8)
    return result
