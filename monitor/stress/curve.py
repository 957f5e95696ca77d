"""Margin ratio against a uniform market move, for the pool and each isolated position:
the curve a chart draws, and the live book it starts from."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import replace

from monitor.domain import AccountSnapshot, MarginMode
from monitor.engine.book import AccountBook

CURVE_MOVES = tuple(k / 200 for k in range(-60, 61))
"""-30 % to +30 % in steps of 0.5 %."""

Curve = list[tuple[float, float]]


def at_marks(snapshot: AccountSnapshot, marks: Mapping[str, float]) -> AccountSnapshot:
    """The snapshot's book priced at newer marks (the daemon's, between two reads)."""
    positions = tuple(
        replace(p, mark_price=marks.get(p.symbol) or p.mark_price) for p in snapshot.positions
    )
    return replace(snapshot, positions=positions)


def ratio_curves(book: AccountBook, moves: Sequence[float] = CURVE_MOVES) -> dict[str, Curve]:
    """target -> [(move, ratio)]; unknown and unbounded ratios are left out (gaps)."""
    curves: dict[str, Curve] = {}
    base = {p.symbol: p.mark_price for p in book.snapshot.positions}
    for move in moves:
        risk = book.evaluate({s: m * (1.0 + move) for s, m in base.items()})
        points = [(f"pool {pool.asset}", pool.margin_ratio) for pool in risk.pools]
        points += [
            (f"{p.position.symbol} isolated", p.margin_ratio)
            for p in risk.positions
            if p.position.margin_mode is MarginMode.ISOLATED
        ]
        for target, ratio in points:
            if ratio is not None and math.isfinite(ratio):
                curves.setdefault(target, []).append((move, ratio))
    return curves
