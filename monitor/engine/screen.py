"""A cheap proof that a target is still short of its warning: the quiet-tick test.

Most ticks change nothing that matters: every target stays far from its thresholds.
Proving that needs neither the exact liquidation search nor, most of the time, any
arithmetic on the positions: a proof made at some marks stays valid while every mark
stays within a computed band around them, and checking the band is two comparisons.
When nothing can be proven, the caller runs the exact evaluation; figures people read
are always computed exactly.

The proof, for a set of legs sharing one wallet (a cross pool, or an isolated position
alone with its margin), a warning ratio w and a warning distance D. Take a linear leg of
value v = q x p whose MM is continuous in the price with a rate that never falls as the
value grows (a `regular` notional-keyed table, a contract-keyed one, or a fixed MM).
While its value stays below v x (1 + D) x (1 + A) its MM rate stays within [0, r], r the
rate of the bracket holding that value, so the leg's equity - MM moves by at most
v (1 + r) per unit of fractional price move, and its w x equity - MM no faster.

At marks M0, with F = wallet + PnL - MM (the free margin) and N = the signed value:
- the ratio is below w when  S1 = w x (wallet + PnL) - MM > 0;
- every price moving together by x with |x| <= D leaves F above
  F - max(|N - R|, |N|) |x|  (dF/dx = N - sum of v x rate, that sum within [0, R]),
  so the pool's distance exceeds D when  S2 = F - max(|N - R|, |N|) D > 0;
- a member's own legs moving (the rest held still) change F by at most their
  v (1 + r), so every member's distance exceeds D when  S3 = F - G max(v (1 + r)) D > 0,
  G the size of the largest set of legs moving together (2 for a hedge-mode pair).
Then let the marks drift to M1 = M0 x (1 + d), each |d| <= delta <= A: every leg's
terms move by at most v (1 + r)(1 + D) delta, so all three statements still hold at
M1 while min(S1, S2, S3) > (1 + D) delta sum(v (1 + r)). That delta is the band.

Inverse legs are linear in u = 1 / p with values in coin: the same argument holds with
N + R in place of N - R, 1 / (1 - D) in place of 1 + D, D / (1 - D) in place of D, and
a drift of delta in price being at most delta / (1 - delta) in u. A table whose MM jumps
at a floor, or a leg without margin terms, has no such bound: never screened.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from operator import gt, lt

from monitor.domain import TierBasis
from monitor.engine.legs import Leg
from monitor.engine.levels import LevelLimits

ALLOWANCE = 0.05
"""A: the largest drift a proof may cover. Rates are bounded at values this much past
the warning move, so a proof lapses after at most a 5% move of any of its marks."""
_SAFETY = 1.0 - 1e-9
"""The band is narrowed by this factor: its own rounding can never make it too wide."""

ROUNDING_MARGIN = 1e-9
"""A slack this small relative to the book's size proves nothing: float rounding in the
exact evaluation could land on either side of it."""

MarkLookup = Callable[[str, float], float | None]
"""`dict.get`-like: the latest mark of a symbol, or the default given."""


def screenable(leg: Leg) -> bool:
    """Whether the leg's MM is continuous in the price with a never-falling rate."""
    if leg.mm_fixed is not None:
        return True
    tiers = leg.tiers
    return (
        tiers is not None
        and leg.rate_extra >= 0.0
        and (tiers.basis is TierBasis.CONTRACTS or tiers.regular)
    )


def rate_ceiling(leg: Leg, value: float) -> float:
    """The highest maintenance rate the leg reaches at values up to `value`."""
    if leg.mm_fixed is not None:
        return 0.0
    tiers = leg.tiers
    assert tiers is not None
    key = leg.contracts if tiers.basis is TierBasis.CONTRACTS else value
    return tiers.tiers[tiers.index_for(key)].maintenance_rate + leg.rate_extra


class ProofBand:
    """A proof about legs sharing a wallet, made at some marks and reused while every
    leg's mark stays strictly inside a band around the mark it was made at."""

    __slots__ = ("_ceilings", "_fallbacks", "_floors", "legs", "symbols")

    def __init__(self, legs: list[Leg]) -> None:
        self.legs = legs
        self.symbols = [leg.symbol for leg in legs]
        self._fallbacks = [leg.position.mark_price for leg in legs]
        self._ceilings: list[float] = []
        self._floors: list[float] = []
        """Per leg, the marks strictly between which the last proof still holds; empty
        when there is no proof to reuse."""

    def holds(self, get: MarkLookup) -> bool:
        """Whether the statement is proven at the marks `get` gives: by the standing
        band when every mark is inside it, else by a new proof at these marks."""
        marks = list(map(get, self.symbols, self._fallbacks))
        if (
            self._ceilings
            and all(map(lt, marks, self._ceilings))
            and all(map(gt, marks, self._floors))
        ):
            return True
        self._ceilings = self._floors = []
        return self._prove(marks)

    def bounds(self) -> Iterable[tuple[str, float, float]] | None:
        """(symbol, floor, ceiling) per leg of the last proof that still stands: marks
        strictly between them keep it; None when the last attempt proved nothing."""
        if not self._ceilings:
            return None
        return zip(self.symbols, self._floors, self._ceilings, strict=True)

    def _prove(self, marks: list[float]) -> bool:
        """Try to prove the statement at `marks`; on success, `_keep` its band."""
        raise NotImplementedError

    def _keep(self, marks: list[float], band: float) -> None:
        """Reuse the proof while every mark moves by less than the fraction `band`."""
        band = min(band, ALLOWANCE) * _SAFETY
        if band > 0.0 and math.isfinite(band):
            self._ceilings = [mark * (1.0 + band) for mark in marks]
            self._floors = [mark * (1.0 - band) for mark in marks]


class QuietTest(ProofBand):
    """Whether one set of legs sharing a wallet is provably short of its warning.

    Keeps each leg's terms at the marks it was last priced at (only legs whose mark
    moved are re-priced) and, once a proof holds, the band of marks it holds for.
    """

    __slots__ = (
        "_exposures", "_grow", "_marks", "_mm_slopes", "_mms", "_pnls", "_reaches", "_span",
        "_stretch", "distance", "group_size", "inverse", "wallet", "warn",
    )  # fmt: skip

    def __init__(
        self, legs: list[Leg], wallet: float, group_size: int, limits: LevelLimits
    ) -> None:
        super().__init__(legs)
        self.wallet = wallet
        self.group_size = group_size
        """Legs in the largest set moving together (2 for a hedge-mode pair)."""
        self.warn = limits.warn
        self.distance = limits.distance_warn
        self.inverse = inverse = legs[0].inverse
        d = self.distance
        self._grow = (
            1.0 / ((1.0 - d) * (1.0 - ALLOWANCE)) if inverse else (1.0 + d) * (1.0 + ALLOWANCE)
        )
        """How far a leg's value can grow within the warning move plus the allowance."""
        self._span = d / (1.0 - d) if inverse else d
        """The warning move in the bound's variable (x, or 1 / (1 + x))."""
        self._stretch = 1.0 / (1.0 - d) if inverse else 1.0 + d
        """The most a price scales within the warning move (the drift's lever)."""
        count = len(legs)
        self._marks: list[float | None] = [None] * count
        self._pnls = [0.0] * count
        self._mms = [0.0] * count
        self._exposures = [0.0] * count
        self._mm_slopes = [0.0] * count
        self._reaches = [0.0] * count

    def _prove(self, marks: list[float]) -> bool:
        """True when the ratio is below `warn` and every distance exceeds `distance`:
        re-price the legs whose mark moved, then try to prove it (module docstring)."""
        grow = self._grow
        for i, (leg, mark) in enumerate(zip(self.legs, marks, strict=True)):
            if mark != self._marks[i]:
                pnl, _, mm, value = leg.state(mark)
                mm_slope = value * rate_ceiling(leg, value * grow)
                self._pnls[i], self._mms[i] = pnl, mm
                self._exposures[i] = leg.sign * value
                self._mm_slopes[i] = mm_slope
                self._reaches[i] = value + mm_slope
        self._marks = marks
        total_mm = sum(self._mms)
        balance = self.wallet + sum(self._pnls)
        free = balance - total_mm
        exposure, mm_slope = sum(self._exposures), sum(self._mm_slopes)
        moved = exposure + mm_slope if self.inverse else exposure - mm_slope
        steepest = max(abs(moved), abs(exposure))
        span = self._span
        slack = min(
            self.warn * balance - total_mm,
            free - steepest * span,
            free - self.group_size * max(self._reaches) * span,
        )
        if slack <= ROUNDING_MARGIN * (abs(balance) + sum(self._reaches)):
            return False  # too close to call without the exact figures
        band = slack / (self._stretch * sum(self._reaches))
        if self.inverse:
            band /= 1.0 + band  # a drift of delta in price is delta / (1 - delta) in u
        self._keep(marks, band)
        return True
