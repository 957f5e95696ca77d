"""One account's stress report: every shock on the book as held, all cross, and all
isolated; the smallest changes that survive the chosen shock; the next funding."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from monitor.domain import AccountSnapshot
from monitor.engine.book import AccountBook
from monitor.engine.levels import LevelLimits
from monitor.stress.funding import FundingEffect, funding_effects
from monitor.stress.modes import as_cross, isolate
from monitor.stress.play import Outcome, play
from monitor.stress.remedy import Remedy, remedies
from monitor.stress.shocks import Shock

DEFAULT_SURVIVE = "uniform -20%"


@dataclass(frozen=True, slots=True)
class ShockRow:
    held: Outcome
    as_cross: Outcome
    as_isolated: Outcome


@dataclass(slots=True)
class AccountStress:
    name: str
    rows: list[ShockRow]
    survive: str | None = None
    remedies: list[Remedy] = field(default_factory=list)
    funding: list[FundingEffect] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def stress_account(
    snapshot: AccountSnapshot,
    shocks: Sequence[Shock],
    *,
    survive: str | None = DEFAULT_SURVIVE,
    rates: Mapping[str, float] | None = None,
    limits: tuple[LevelLimits, LevelLimits] | None = None,
) -> AccountStress:
    """`limits` are (cross, isolated) thresholds, for the funding warnings."""
    held, crossed, isolated = (
        AccountBook(snapshot), AccountBook(as_cross(snapshot)), AccountBook(isolate(snapshot))
    )  # fmt: skip
    rows = [ShockRow(play(held, s), play(crossed, s), play(isolated, s)) for s in shocks]
    report = AccountStress(snapshot.name, rows)
    report.notes += [f"{s.name}: {s.note}" for s in shocks if s.note]
    unknown = sorted({name for row in rows for name in row.held.unknown})
    if unknown:
        report.notes.append(f"not evaluated (no tiers or margin): {', '.join(unknown)}")
    chosen = next((s for s in shocks if s.name == survive), None)
    if chosen is not None:
        report.survive = chosen.name
        report.remedies = remedies(snapshot, chosen)
    elif survive is not None:
        report.notes.append(f"no shock named {survive!r} to survive")
    if rates and limits is not None:
        report.funding = funding_effects(snapshot, rates, *limits)
    return report


def loss_value(losses: Mapping[str, float]) -> float | dict[str, float]:
    """One number in the settlement asset; per asset when the account has several."""
    if len(losses) <= 1:
        return next(iter(losses.values()), 0.0)
    return dict(sorted(losses.items()))


def _finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


def shock_json(row: ShockRow) -> dict[str, Any]:
    held = row.held
    return {
        "shock": held.shock.name,
        "move": round(held.shock.move, 12),  # 0.8 - 1 reads -0.2, not -0.19999999999999996
        "liquidated": held.liquidated,
        "loss": loss_value(held.losses),
        "pool_ratio": _finite(held.pool.ratio) if held.pool else None,
        "pool_distance": _finite(held.pool.distance) if held.pool else None,
        "as_isolated": {
            "liquidated": row.as_isolated.liquidated,
            "loss": loss_value(row.as_isolated.losses),
        },
        "as_cross": {
            "liquidated": row.as_cross.liquidated,
            "loss": loss_value(row.as_cross.losses),
        },
    }


def stress_json(reports: Sequence[AccountStress]) -> dict[str, Any]:
    return {
        "accounts": [
            {"name": r.name, "shocks": [shock_json(row) for row in r.rows]} for r in reports
        ]
    }
