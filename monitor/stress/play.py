"""Play a shock against a book: who goes, in what order, and what it costs.

The targets are what the exchange liquidates as one: a cross pool (all its positions
go together, healthy or not: the cascade) and each isolated position. Along each
straight segment of the path a target's equity - MM is concave in the distance
travelled (linear contracts, regular tier tables: engine/solver.py), so it crosses
zero in a segment only if it is below zero at the segment's end, and bisection finds
that first crossing to the last bit; a grid of eight points covers the rest.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from dataclasses import dataclass

from monitor.engine.book import AccountBook
from monitor.engine.legs import Leg
from monitor.stress.shocks import Shock, Waypoint

GRID = 8
BISECTIONS = 60


@dataclass(frozen=True, slots=True)
class Target:
    """A cross pool (`leg` None) or one isolated position."""

    name: str
    asset: str
    symbols: tuple[str, ...]
    leg: Leg | None = None

    @property
    def is_pool(self) -> bool:
        return self.leg is None


@dataclass(frozen=True, slots=True)
class Liquidation:
    target: Target
    at: float
    """Position along the path: waypoint index + the fraction of the segment into it."""
    move: float
    """BTC's move at that point."""
    loss: float
    """The target's whole margin balance before the shock: liquidation takes all of it."""


@dataclass(frozen=True, slots=True)
class PoolFigures:
    asset: str
    ratio: float | None
    distance: float | None


@dataclass(frozen=True, slots=True)
class Outcome:
    shock: Shock
    liquidations: tuple[Liquidation, ...]
    losses: dict[str, float]
    """Settlement asset -> equity lost (negative: gained)."""
    pool: PoolFigures | None
    """The worst pool after the move; a pool that went reads ratio 1, distance 0 (it
    reached liquidation; what the marks do afterwards is no longer its); None when the
    account has no cross pool."""
    unknown: tuple[str, ...]
    """Targets the engine cannot evaluate (no tiers, no margin): left out, named."""
    peak: tuple[float, PoolFigures] | None = None
    """Along a path of several waypoints where no pool went: BTC's move at the waypoint
    where the worst pool's ratio was highest, and its figures there."""

    @property
    def liquidated(self) -> list[str]:
        return [s for item in self.liquidations for s in item.target.symbols]


def targets(book: AccountBook) -> list[Target]:
    found = [
        Target(f"pool {asset}", asset, tuple(leg.symbol for leg in legs))
        for asset, legs in book.cross.items()
        if legs
    ]
    found += [Target(leg.symbol, leg.position.settle, (leg.symbol,), leg) for leg in book.isolated]
    return found


def start_marks(book: AccountBook) -> dict[str, float]:
    return {p.symbol: p.mark_price for p in book.snapshot.positions}


def marks_at(base: Mapping[str, float], a: Waypoint, b: Waypoint, s: float) -> dict[str, float]:
    """Marks a fraction `s` of the way from waypoint `a` to `b`."""
    out = {}
    for symbol, mark in base.items():
        fa, fb = a.prices.get(symbol, 1.0), b.prices.get(symbol, 1.0)
        out[symbol] = mark * (fa + s * (fb - fa))
    return out


def equity_and_mm(
    book: AccountBook, target: Target, marks: Mapping[str, float]
) -> tuple[float, float] | None:
    """The target's margin balance and maintenance margin at `marks`; None if unknown."""
    if target.leg is None:
        pool, _ = book.evaluate_pool(target.asset, marks)
        if pool.maintenance_margin is None:
            return None
        return pool.margin_balance, pool.maintenance_margin
    risk = book.evaluate_isolated(target.leg, marks)
    margin = target.leg.position.isolated_margin
    if risk.maintenance_margin is None or margin is None:
        return None
    return margin + risk.unrealized_pnl, risk.maintenance_margin


def surplus(book: AccountBook, target: Target, marks: Mapping[str, float]) -> float | None:
    """Equity - MM: liquidation at or below zero (ratio >= 1)."""
    figures = equity_and_mm(book, target, marks)
    return None if figures is None else figures[0] - figures[1]


def _first_crossing(
    book: AccountBook, target: Target, base: Mapping[str, float], a: Waypoint, b: Waypoint
) -> float | None:
    """The fraction of segment a -> b where the target first reaches liquidation."""
    previous = 0.0
    for k in range(GRID if concave(book, target) else 1, GRID + 1):
        s = k / GRID
        value = surplus(book, target, marks_at(base, a, b, s))
        if value is not None and value <= 0.0:
            low, high = previous, s
            for _ in range(BISECTIONS):
                mid = (low + high) / 2
                value = surplus(book, target, marks_at(base, a, b, mid))
                if value is not None and value <= 0.0:
                    high = mid
                else:
                    low = mid
            return high
        previous = s
    return None


def concave(book: AccountBook, target: Target) -> bool:
    """Whether equity - MM is concave along a straight path: linear legs with regular
    tables (or MM fixed). Then a segment whose end is solvent holds no crossing, and
    only its end need be tested; an inverse short's PnL is convex, so it is not."""
    legs = book.cross.get(target.asset, []) if target.leg is None else [target.leg]
    return all(
        not leg.inverse and (leg.mm_fixed is not None or leg.tiers is None or leg.tiers.regular)
        for leg in legs
    )


def path_of(shock: Shock) -> list[Waypoint]:
    """The shock's waypoints after today's marks (all multipliers 1)."""
    return [Waypoint(1.0, {}), *shock.path]


def play(book: AccountBook, shock: Shock) -> Outcome:
    base = start_marks(book)
    path = path_of(shock)
    alive = targets(book)
    start = {t.name: equity_and_mm(book, t, base) for t in alive}
    unknown = tuple(name for name, figures in start.items() if figures is None)
    alive = [t for t in alive if start[t.name] is not None]
    gone: list[Liquidation] = []
    for target in list(alive):
        equity, mm = start[target.name]  # type: ignore[misc]
        if equity - mm <= 0.0:  # already past it: goes at once
            gone.append(Liquidation(target, 0.0, 0.0, equity))
            alive.remove(target)
    for index, (a, b) in enumerate(itertools.pairwise(path)):
        crossed = []
        for target in alive:
            s = _first_crossing(book, target, base, a, b)
            if s is not None:
                crossed.append((s, target))
        for s, target in sorted(crossed, key=lambda item: item[0]):
            move = a.reference + s * (b.reference - a.reference) - 1.0
            equity = start[target.name][0]  # type: ignore[index]
            gone.append(Liquidation(target, index + s, move, equity))
            alive.remove(target)
    end = marks_at(base, path[-1], path[-1], 0.0)
    losses: dict[str, float] = {}
    for item in gone:
        losses[item.target.asset] = losses.get(item.target.asset, 0.0) + item.loss
    for target in alive:
        before = start[target.name][0]  # type: ignore[index]
        after = equity_and_mm(book, target, end)
        lost = before - after[0] if after is not None else 0.0
        losses[target.asset] = losses.get(target.asset, 0.0) + lost
    went = [item.target.asset for item in gone if item.target.is_pool]
    pool = PoolFigures(went[0], 1.0, 0.0) if went else worst_pool(book, end)
    peak = None if went or len(path) < 3 else _peak(book, base, path)
    return Outcome(shock, tuple(gone), losses, pool, unknown, peak)


def _peak(
    book: AccountBook, base: Mapping[str, float], path: list[Waypoint]
) -> tuple[float, PoolFigures] | None:
    best: tuple[float, PoolFigures] | None = None
    for point in path[1:]:
        figures = worst_pool(book, marks_at(base, point, point, 0.0))
        if figures is None or figures.ratio is None:
            continue
        if best is None or figures.ratio > (best[1].ratio or 0.0):
            best = (point.reference - 1.0, figures)
    return best


def worst_pool(book: AccountBook, marks: Mapping[str, float]) -> PoolFigures | None:
    """The pool with the highest ratio at `marks` (unknown ratios last)."""
    figures = []
    for asset, legs in book.cross.items():
        if not legs:
            continue
        pool, _ = book.evaluate_pool(asset, marks)
        figures.append(PoolFigures(asset, pool.margin_ratio, pool.liquidation_distance))
    if not figures:
        return None
    return max(figures, key=lambda f: -1.0 if f.ratio is None else f.ratio)
