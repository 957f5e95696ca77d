"""The next funding payment at the current rate, and what it does to ratio and distance.

Funding is paid from the pool that backs the position: the cross wallet for a cross
position, the isolated margin for an isolated one (margin-models.md, Funding). A long
pays rate x notional when the rate is positive and receives it when negative; a short
the opposite. Notional is at today's mark (coin-settled: face value / mark).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace

from monitor.domain import AccountSnapshot, MarginMode, Position
from monitor.engine.book import AccountBook
from monitor.engine.levels import Level, LevelLimits, level_for
from monitor.stress.modes import pool_asset


def payment(position: Position, rate: float) -> float:
    """Signed amount the position pays (negative: receives)."""
    notional = (
        position.size / position.mark_price if position.inverse
        else position.size * position.mark_price
    )  # fmt: skip
    return position.side.sign * rate * notional


@dataclass(frozen=True, slots=True)
class FundingEffect:
    target: str
    pays: float
    """Signed: positive is paid out of the pool or isolated margin."""
    ratio_before: float | None
    ratio_after: float | None
    distance_before: float | None
    distance_after: float | None
    level_before: Level
    level_after: Level

    @property
    def crosses_level(self) -> bool:
        """The payment alone moves the target to a worse level."""
        return self.level_after > self.level_before


def after_funding(
    snapshot: AccountSnapshot, rates: Mapping[str, float]
) -> tuple[AccountSnapshot, dict[str, float]]:
    """The snapshot with the next payments booked, and the amount per target."""
    paid: dict[str, float] = {}
    positions = []
    for p in snapshot.positions:
        amount = payment(p, rates[p.symbol]) if p.symbol in rates else 0.0
        if p.margin_mode is MarginMode.ISOLATED:
            paid[p.symbol] = paid.get(p.symbol, 0.0) + amount
            if p.isolated_margin is not None:
                p = replace(p, isolated_margin=p.isolated_margin - amount)
        else:
            key = f"pool {pool_asset(snapshot, p)}"
            paid[key] = paid.get(key, 0.0) + amount
        positions.append(p)
    pools = tuple(
        replace(pool, wallet_balance=pool.wallet_balance - paid.get(f"pool {pool.asset}", 0.0))
        for pool in snapshot.pools
    )
    return replace(snapshot, pools=pools, positions=tuple(positions)), paid


def funding_effects(
    snapshot: AccountSnapshot,
    rates: Mapping[str, float],
    cross: LevelLimits,
    isolated: LevelLimits,
) -> list[FundingEffect]:
    moved, paid = after_funding(snapshot, rates)
    before, after = AccountBook(snapshot).evaluate(), AccountBook(moved).evaluate()
    effects = []
    for b, a in zip(before.pools, after.pools, strict=True):
        name = f"pool {b.asset}"
        if name in paid:
            figures = (
                b.margin_ratio,
                a.margin_ratio,
                b.liquidation_distance,
                a.liquidation_distance,
            )
            effects.append(_effect(name, paid[name], *figures, cross))
    for b, a in zip(before.positions, after.positions, strict=True):
        if b.position.margin_mode is MarginMode.ISOLATED and b.position.symbol in paid:
            figures = (
                b.margin_ratio,
                a.margin_ratio,
                b.liquidation_distance,
                a.liquidation_distance,
            )
            effects.append(_effect(b.position.symbol, paid[b.position.symbol], *figures, isolated))
    return effects


def _effect(
    name: str,
    pays: float,
    ratio_before: float | None,
    ratio_after: float | None,
    distance_before: float | None,
    distance_after: float | None,
    limits: LevelLimits,
) -> FundingEffect:
    return FundingEffect(
        name, pays, ratio_before, ratio_after, distance_before, distance_after,
        level_for(ratio_before, distance_before, limits),
        level_for(ratio_after, distance_after, limits),
    )  # fmt: skip
