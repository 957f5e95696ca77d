"""The marks between which an isolated position keeps its level: one comparison a tick.

An isolated position whose liquidation price does not depend on the mark (a linear leg
with a regular notional-keyed table, `solver.has_bracket_root`) is a function of one
number, its own mark. Within one tier its MM and its equity are both linear in that
mark, so each comparison `level_for` makes on the margin ratio (ratio >= r, i.e.
MM - r x equity >= 0 while equity is positive) flips at most once, where that line
crosses zero; its liquidation distance is monotone in the mark, so each comparison on
the distance flips at most once too. Between the nearest such crossings on either side
of the mark, and inside the tier, every comparison keeps its outcome, and so does the
level: a tick there is settled by two comparisons instead of an exact evaluation.

This holds at any level, not only OK, so it also settles the positions already above a
threshold, which the quiet-tick screen (screen.py) cannot. Only the comparisons that
decide the level held matter (`levels.keeping`): for the next level up, "reached" must
stay false (the later levels are stricter); for the level itself, the hysteresis test
(the threshold moved back by the clear margin) must keep its outcome. The band is
narrowed by a relative 1e-9 on each side, so the rounding of the exact evaluation near a
crossing can never disagree with it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from monitor.engine.legs import Leg
from monitor.engine.levels import Level, LevelLimits, keeping
from monitor.engine.solver import AT_BOUND

_GUARD = 1e-9
"""Relative narrowing of each edge: far above the exact evaluation's own rounding."""
_CLEARANCE = 1e-12
"""How far from zero, relative to the magnitudes summed, a compared quantity must stand
at the band's edges: a thousand times the rounding of those sums."""
_REACH = 4.0
"""A band never spans more than this factor of the mark either way, so its edges are
finite and can be checked."""


@dataclass(frozen=True, slots=True)
class LevelBand:
    """Marks strictly between `low` and `high` leave the position at `level`."""

    low: float
    high: float
    level: Level


def level_band(
    leg: Leg, wallet: float, root: float, mark: float, level: Level, limits: LevelLimits
) -> LevelBand:
    """The band around `mark` of a bracket-root leg (`solver.has_bracket_root`) with its
    own `wallet` and liquidation price `root`, at the `level` last reported for it; an
    empty band (low = high = mark) when the mark sits too near a crossing to tell."""
    line = _TierLine(leg, wallet, mark)
    decide = keeping(level, limits)
    ratios = [r for r in (decide.next_ratio, decide.held_ratio) if r is not None]
    distances = [d for d in (decide.next_distance, decide.held_distance) if d is not None]
    cuts = [mark / _REACH, mark * _REACH, *line.edges, line.solvent_from()]
    cuts.extend(line.ratio_crossing(r) for r in ratios)
    s = leg.sign
    if s > 0 and root > 0.0:  # distance = 1 - root / mark; unknown from root / AT_BOUND up
        cuts.append(root / AT_BOUND)
        cuts.extend(root / (1.0 - d) for d in distances if d < 1.0)
    elif s < 0:  # distance = root / mark - 1 below the root, 0 above it
        cuts.extend(root / (1.0 + d) for d in distances)
    low = max(c for c in cuts if c <= mark)
    high = min(c for c in cuts if c >= mark)
    low, high = low + low * _GUARD, high - high * _GUARD
    if not low < mark < high or not all(line.clear(p, ratios) for p in (low, high)):
        return LevelBand(mark, mark, level)
    return LevelBand(low, high, level)


class _TierLine:
    """MM and equity of one leg as lines in its mark, within the tier it holds now."""

    __slots__ = ("anchored", "edges", "leg", "mm_amount", "rate", "size")

    def __init__(self, leg: Leg, wallet: float, mark: float) -> None:
        table = leg.tiers
        assert table is not None
        q = leg.qty
        index = table.index_for(q * mark)
        tier = table.tiers[index]
        self.leg, self.size = leg, q
        self.edges = [tier.floor / q] if index > 0 else []
        if index + 1 < len(table.tiers):
            self.edges.append(table.tiers[index + 1].floor / q)
        self.rate = tier.maintenance_rate + leg.rate_extra
        self.mm_amount = tier.maintenance_amount - leg.mm_constant  # MM = q p rate - this
        self.anchored = wallet - leg.sign * q * leg.entry  # equity = this + side q p

    def solvent_from(self) -> float:
        """The mark at which equity is zero."""
        return -self.anchored / (self.leg.sign * self.size)

    def ratio_crossing(self, r: float) -> float:
        """The mark at which MM = r x equity (nan when the two lines are parallel)."""
        slope = self.size * (self.rate - r * self.leg.sign)
        return (self.mm_amount + r * self.anchored) / slope if slope else math.nan

    def clear(self, mark: float, ratios: list[float]) -> bool:
        """Whether at `mark` equity and every MM - r x equity stand far enough from zero
        that the exact evaluation's rounding (a few ulps of these magnitudes) cannot
        flip a comparison: a line nearly parallel to its threshold gets no band."""
        q, value = self.size, self.size * mark
        equity = self.anchored + self.leg.sign * value
        equity_scale = abs(self.anchored) + 2.0 * q * abs(self.leg.entry) + value
        if abs(equity) <= _CLEARANCE * equity_scale:
            return False
        if equity <= 0.0:
            return True  # the ratio is infinite throughout: every "reached" holds
        mm = value * self.rate - self.mm_amount
        return all(
            abs(mm - r * equity) > _CLEARANCE * (value * self.rate + abs(self.mm_amount)
                                                 + r * equity_scale)
            for r in ratios
        )  # fmt: skip
