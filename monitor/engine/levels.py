"""Which threshold level a ratio or a distance has reached.

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


class LevelLimits(Protocol):
    """Thresholds on the uniform ratio (rising is worse) and on distance (falling is worse)."""

    warn: float
    critical: float
    distance_warn: float
    distance_critical: float


def level_for(ratio: float | None, distance: float | None, limits: LevelLimits) -> Level | None:
    """The worse of the two levels; None when neither figure is known (unknown, not OK)."""
    if ratio is None and distance is None:
        return None
    level = Level.OK
    if ratio is not None:
        if ratio >= limits.critical:
            level = Level.CRITICAL
        elif ratio >= limits.warn:
            level = Level.WARN
    if distance is not None:
        if distance <= limits.distance_critical:
            level = max(level, Level.CRITICAL)
        elif distance <= limits.distance_warn:
            level = max(level, Level.WARN)
    return level
