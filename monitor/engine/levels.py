"""Which threshold level a ratio or a distance has reached, with hysteresis.

Pure and shared: `status` prints it, the daemon's events and the alert rules build on it.
Our own thresholds are warnings about approaching liquidation, never a liquidation.
"""

from __future__ import annotations

from enum import IntEnum
from typing import Protocol


class Level(IntEnum):
    OK = 0
    WARN = 1
    CRITICAL = 2
    IMMINENT = 3
    """Liquidation is imminent (ratio near 1 or the price within a hair of it)."""


class LevelLimits(Protocol):
    """Thresholds on the uniform ratio (rising is worse) and on distance (falling is worse)."""

    warn: float
    critical: float
    imminent: float
    distance_warn: float
    distance_critical: float
    distance_imminent: float
    clear_margin: float


def _bounds(limits: LevelLimits) -> tuple[tuple[Level, float, float], ...]:
    return (
        (Level.IMMINENT, limits.imminent, limits.distance_imminent),
        (Level.CRITICAL, limits.critical, limits.distance_critical),
        (Level.WARN, limits.warn, limits.distance_warn),
    )


def _reached(
    ratio: float | None, distance: float | None, ratio_at: float, distance_at: float
) -> bool:
    return (ratio is not None and ratio >= ratio_at) or (
        distance is not None and distance <= distance_at
    )


def level_for(
    ratio: float | None,
    distance: float | None,
    limits: LevelLimits,
    previous: Level | None = None,
) -> Level | None:
    """The worse of the two figures' levels; None when neither is known (unknown, not OK).

    With `previous`, a level is kept until both figures have moved back past it by the
    clear margin: a ratio of 0.74 after critical at 0.75 is still critical.
    """
    if ratio is None and distance is None:
        return None
    margin = limits.clear_margin
    for level, ratio_at, distance_at in _bounds(limits):
        if _reached(ratio, distance, ratio_at, distance_at):
            return level
        held = previous is not None and previous >= level
        if held and _reached(ratio, distance, ratio_at * (1 - margin), distance_at * (1 + margin)):
            return level
    return Level.OK
