"""A cheap proof that a cross pool and each of its members keep the levels last reported.

The quiet-tick screen (screen.py) proves that a pool is still short of its warning; it
has nothing to say once a target is above OK, so in a market-wide fall every pool would
be evaluated exactly on every tick. This proof covers any level. A target held at level
L keeps it while (engine/levels.py) it reaches no level above L and, when L is above OK,
still meets L's hysteresis test:

- ratio < r(L+1) and distance > d(L+1), the next level's thresholds (the later ones are
  stricter), unless L is the top level;
- ratio >= r(L) x (1 - m) or distance <= d(L) x (1 + m), unless L is OK.

Every member shares the pool's ratio MM / B (B = wallet + PnL); the pool's distance is
the nearest root of the free margin F = B - MM under a uniform move x of every mark
(searched down if a long moves, up if a short does), a member's the nearest root when
only its own symbol's legs move. For linear legs whose MM is continuous with a rate that
never falls as the value grows (`screenable`), MM is convex in x and F concave, so on a
move from 0 to x* F stays above the smaller of F(0) and F(x*). At marks M0:

- ratio < r   <=  S = r B - MM > 0;   ratio >= r  <=  S = MM - r B > 0;   and B > 0;
- a distance > d   <=  S = min(F(0), F(x*)) > 0 for x* = d in each searched direction,
  or, without evaluating anything, S = F - d x (sum of v (1 + c) over the moving legs)
  > 0 (their PnL - MM moves no faster), tried first;
- a distance <= d  <=  S = -F(x*) > 0 for x* = d in one searched direction (F changes
  sign between 0 and x*, so the nearest root is within d);

F(x*) evaluated exactly with the moving legs moved by x*. When every mark then drifts
by a fraction u, |u| <= delta <= ALLOWANCE, each statement's quantity moves by at most
delta times its lever: sum of v (r + c) for a ratio statement (c the leg's rate ceiling
over the values in play), sum of v for B, (1 + d) x sum of v (1 + c) for F at a move
of d. A statement holds through the drift while delta < S / lever; the band is the
smallest such delta over the statements deciding every target's level (the better of
the two for a hysteresis test). Inverse or mixed pools, and tables whose MM jumps, get
no proof: they are evaluated exactly.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from monitor.engine.legs import Leg
from monitor.engine.levels import Keeping, Level, LevelLimits, keeping
from monitor.engine.screen import ALLOWANCE, ROUNDING_MARGIN, ProofBand, rate_ceiling, screenable

_LOWEST_PRICE = 1e-6
"""A downward move is only evaluated while it leaves this fraction of the price: the
exact search treats a root at price zero as no liquidation."""


def holdable(legs: Sequence[Leg]) -> bool:
    """Whether `LevelHold` applies: linear legs with a continuous, never-falling MM."""
    return bool(legs) and all(not leg.inverse and screenable(leg) for leg in legs)


class LevelHold(ProofBand):
    """Whether a linear cross pool and its members provably keep their levels.

    Built for the levels just reported (`pool_level`, and per leg `leg_levels`); valid
    until one of them changes, which only an exact evaluation can report.
    """

    __slots__ = ("_grow", "_leg_needs", "_pool_need", "groups", "wallet")

    def __init__(
        self,
        legs: list[Leg],
        groups: list[list[int]],
        wallet: float,
        limits: LevelLimits,
        pool_level: Level,
        leg_levels: Sequence[Level],
    ) -> None:
        super().__init__(legs)
        self.groups = groups
        """Indices of legs that move together (one symbol: a hedge-mode pair)."""
        self.wallet = wallet
        self._pool_need = keeping(pool_level, limits)
        self._leg_needs = [keeping(level, limits) for level in leg_levels]
        needs = [self._pool_need, *self._leg_needs]
        widest = max(
            (d or 0.0 for n in needs for d in (n.next_distance, n.held_distance)), default=0.0
        )
        self._grow = (1.0 + widest) * (1.0 + ALLOWANCE)
        """How far a leg's value can grow within the widest move asked about, plus the
        drift allowance: rate ceilings are taken there."""

    def _prove(self, marks: list[float]) -> bool:
        facts = _Facts(self.legs, marks, self.wallet, self._grow)
        if facts.value <= 0.0:
            return False
        band = facts.drift(facts.balance, facts.value)
        band = facts.band(self._pool_need, list(range(len(self.legs))), band)
        for group in self.groups:
            for i in group:
                if not band > 0.0:
                    return False
                band = facts.band(self._leg_needs[i], group, band)
        if not band > 0.0:
            return False
        self._keep(marks, band)
        return True


class _Facts:
    """The pool's terms at one set of marks, and the drift each statement survives."""

    def __init__(self, legs: list[Leg], marks: list[float], wallet: float, grow: float) -> None:
        self.legs, self.marks = legs, marks
        self.states = states = [leg.state(mark) for leg, mark in zip(legs, marks, strict=True)]
        self.balance = wallet + sum(state[0] for state in states)
        self.total_mm = sum(state[2] for state in states)
        self.free = self.balance - self.total_mm
        rated = [
            state[3] * rate_ceiling(leg, state[3] * grow)
            for leg, state in zip(legs, states, strict=True)
        ]
        self.reaches = [state[3] + mm_slope for state, mm_slope in zip(states, rated, strict=True)]
        """Per leg, v (1 + c): the most its PnL - MM moves per unit of fractional move."""
        self.value = sum(state[3] for state in states)
        self.rated = sum(rated)
        self.noise = ROUNDING_MARGIN * (abs(self.balance) + self.value + self.rated)
        """A slack this small proves nothing: the exact evaluation rounds around it."""
        self._ratios: dict[tuple[float, bool], float] = {}

    def band(self, need: Keeping, moving: list[int], band: float) -> float:
        """`band` narrowed to the drift that also keeps one target's level (negative:
        none does), the legs `moving` being those its distance moves. Cheap statements
        go first, and the distance side of the hysteresis test is only evaluated when
        the ratio side alone would narrow the band."""
        ratio_below, distance_above, ratio_at, distance_at = need
        if ratio_below is not None:
            band = min(band, self._ratio(ratio_below, below=True))
        if distance_above is not None and band > 0.0:
            band = min(band, self._beyond(moving, distance_above, band))
        if ratio_at is not None and band > 0.0:
            assert distance_at is not None
            either = self._ratio(ratio_at, below=False)
            if either < band:
                either = max(either, self._within(moving, distance_at))
            band = min(band, either)
        return band

    def _ratio(self, r: float, below: bool) -> float:
        known = self._ratios.get((r, below))
        if known is None:
            slack = r * self.balance - self.total_mm
            lever = r * self.value + self.rated
            known = self._ratios[(r, below)] = self.drift(slack if below else -slack, lever)
        return known

    def _beyond(self, moving: list[int], d: float, band: float) -> float:
        """The drift keeping every root more than a move of `d` of `moving` away. The
        slope bound (F - d x their reach, no evaluation) is tried first: when it alone
        does not narrow `band`, the exact F at the move cannot either."""
        lever = (1.0 + d) * (self.value + self.rated)
        bounded = self.drift(self.free - d * sum(self.reaches[i] for i in moving), lever)
        if bounded >= band:
            return bounded
        lowest = self.free
        for move in self._moves(moving, d):
            if move is None:
                return bounded  # a move this deep is not evaluated: the bound alone
            lowest = min(lowest, self._free_after(moving, move))
        return max(bounded, self.drift(lowest, lever))

    def _within(self, moving: list[int], d: float) -> float:
        """The drift keeping a root within a move of `d` of `moving`."""
        lowest = math.inf
        for move in self._moves(moving, d):
            if move is not None:
                lowest = min(lowest, self._free_after(moving, move))
        return self.drift(-lowest, (1.0 + d) * (self.value + self.rated))

    def _moves(self, moving: list[int], d: float) -> list[float | None]:
        """The moves of `d` the exact search looks at: down if a long moves, up if a
        short does; None for a fall too deep to evaluate (a root there may be none)."""
        signs = {self.legs[i].sign for i in moving}
        moves: list[float | None] = []
        if 1 in signs:
            moves.append(-d if d < 1.0 - _LOWEST_PRICE else None)
        if -1 in signs:
            moves.append(d)
        return moves

    def _free_after(self, moving: list[int], move: float) -> float:
        """F, exactly, with the legs `moving` moved by the fraction `move`."""
        free = self.free
        for i in moving:
            pnl, _, mm, _ = self.states[i]
            moved_pnl, _, moved_mm, _ = self.legs[i].state(self.marks[i] * (1.0 + move))
            free += (moved_pnl - moved_mm) - (pnl - mm)
        return free

    def drift(self, slack: float, lever: float) -> float:
        """The drift a statement with `slack`, moving by at most `lever` per unit of
        drift, survives; negative when the slack is too small to prove anything."""
        if not slack > self.noise:
            return -1.0
        return slack / lever if lever > 0.0 else math.inf
