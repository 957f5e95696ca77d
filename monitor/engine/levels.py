"""Which threshold level a ratio or a distance has reached, with hysteresis.

Pure and shared: `status` prints it, the daemon's events and the alert rules build on it.
Our own thresholds are warnings about approaching liquidation, never a liquidation.
"""

from __future__ import annotations

import math
from enum import StrEnum
from typing import NamedTuple, Protocol


class Level(StrEnum):
    """A target's level: the one type from the engine to the pager.

    The members are declared mildest first and that order IS the severity order, defined
    here once: compare levels (`<`, `>=`, `max`, `sorted`), never their names. The value
    is the wire name, the lowercase word the JSON events, the SQLite stores and the
    messages have always carried, so `Level(name)` loads a persisted one. Adding a level
    touches this class and the presentation tables keyed by it (formatting.SHORT_LEVEL,
    render.LEVEL_STYLES, alerts.messages.ICONS, the notifiers' severities).
    """

    OK = "ok"
    WARN = "warn"
    UNKNOWN = "unknown"
    """Neither figure could be computed. Worse than a warning (not seeing is worse than
    a warning), milder than critical; never reached by crossing a threshold, and holds
    nothing (a level after it is decided afresh)."""
    CRITICAL = "critical"
    IMMINENT = "imminent"
    """Liquidation is imminent (ratio near 1 or the price within a hair of it)."""

    @property
    def severity(self) -> int:
        """The rank in the severity order: 0 for OK, rising with danger."""
        return _SEVERITY[self]

    def __lt__(self, other: object) -> bool:
        return _SEVERITY[self] < _severity_of(other)

    def __le__(self, other: object) -> bool:
        return _SEVERITY[self] <= _severity_of(other)

    def __gt__(self, other: object) -> bool:
        return _SEVERITY[self] > _severity_of(other)

    def __ge__(self, other: object) -> bool:
        return _SEVERITY[self] >= _severity_of(other)


_SEVERITY: dict[Level, int] = {level: rank for rank, level in enumerate(Level)}


def _severity_of(other: object) -> int:
    """A level compares only with a level: as a `str` it would sort by spelling, and
    "critical" < "warn" is exactly the bug an enum is here to prevent."""
    if type(other) is not Level:
        raise TypeError(f"a Level compares only with a Level, not {other!r}")
    return _SEVERITY[other]


class LevelLimits(Protocol):
    """Thresholds on the uniform ratio (rising is worse) and on distance (falling is worse)."""

    warn: float
    critical: float
    imminent: float
    distance_warn: float
    distance_critical: float
    distance_imminent: float
    clear_margin: float
    clear_ratio: float
    clear_distance: float


_IMMINENT, _CRITICAL, _WARN, _OK = Level.IMMINENT, Level.CRITICAL, Level.WARN, Level.OK
_UNKNOWN = Level.UNKNOWN
"""Members read once: an enum member lookup costs a descriptor call on every tick."""


def level_thresholds(limits: LevelLimits) -> tuple[tuple[Level, float, float], ...]:
    """(level, ratio at which it is reached, distance at which it is reached), worst first:
    the levels a threshold reaches, in the severity order."""
    return (
        (_IMMINENT, limits.imminent, limits.distance_imminent),
        (_CRITICAL, limits.critical, limits.distance_critical),
        (_WARN, limits.warn, limits.distance_warn),
    )


def cleared_past(ratio_at: float, distance_at: float, limits: LevelLimits) -> tuple[float, float]:
    """(ratio, distance) a level reached at (`ratio_at`, `distance_at`) clears past.

    Both margins apply, whichever is wider: the relative `clear_margin` alone shrinks with
    the threshold, so a level at a 5 % distance would clear 0.25 points later and flap on
    every tick of an ordinary altcoin; the absolute `clear_ratio` and `clear_distance`
    keep the band a market has to cross at least that wide. The ratio's absolute margin
    is at most half the threshold, so a level set near a ratio of 0 can still clear.
    """
    margin = limits.clear_margin
    return (
        min(ratio_at * (1 - margin), ratio_at - min(limits.clear_ratio, ratio_at / 2)),
        max(distance_at * (1 + margin), distance_at + limits.clear_distance),
    )


def level_for(
    ratio: float | None,
    distance: float | None,
    limits: LevelLimits,
    previous: Level | None = None,
) -> Level:
    """The worse of the two figures' levels; UNKNOWN when neither is known (never OK).

    With `previous`, a level is kept until both figures have moved back past it by the
    clear margins (`cleared_past`): a ratio of 0.74 after critical at 0.75 is still
    critical. An unknown
    figure reaches nothing (it is compared as -inf for the ratio, +inf for the distance).
    """
    if ratio is None:
        if distance is None:
            return _UNKNOWN
        ratio = -math.inf
    elif distance is None:
        distance = math.inf
    # `previous` holds the levels from itself down: worst first, that is from the moment
    # it is met (identity tests, no rank lookups; OK, UNKNOWN and None hold nothing).
    holding = False
    for level, ratio_at, distance_at in level_thresholds(limits):
        if ratio >= ratio_at or distance <= distance_at:
            return level
        holding = holding or level is previous
        if holding:
            ratio_clear, distance_clear = cleared_past(ratio_at, distance_at, limits)
            if ratio >= ratio_clear or distance <= distance_clear:
                return level
    return _OK


class Keeping(NamedTuple):
    """What keeps a level held (`level_for` with that level as `previous`): the next
    level's ratio and distance must stay unreached (the later levels' are stricter, so
    they add nothing), and the level's own hysteresis test, its thresholds moved back by
    the clear margins (`cleared_past`), must keep holding. None where there is none: the
    top level has no next level, OK no hysteresis test."""

    next_ratio: float | None
    next_distance: float | None
    held_ratio: float | None
    held_distance: float | None


def keeping(level: Level, limits: LevelLimits) -> Keeping:
    """OK and UNKNOWN hold nothing (as `previous` of `level_for`): the mildest threshold
    is their next level."""
    next_ratio = next_distance = held_ratio = held_distance = None
    passed = level is _OK or level is _UNKNOWN
    for at, ratio_at, distance_at in reversed(level_thresholds(limits)):  # mildest first
        if passed:
            next_ratio, next_distance = ratio_at, distance_at
            break
        if at is level:
            held_ratio, held_distance = cleared_past(ratio_at, distance_at, limits)
            passed = True
    return Keeping(next_ratio, next_distance, held_ratio, held_distance)
