"""Remember each target's level and report only changes: the event stream's source."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from monitor.config import Thresholds
from monitor.domain import MarginMode, Position
from monitor.engine.levels import Level, level_for
from monitor.engine.results import PoolRisk, PositionRisk
from monitor.events import Event, LevelFigures, TargetKind, pool_target, position_target

_OK = Level.OK
_ISOLATED = MarginMode.ISOLATED
_POOL, _POSITION = TargetKind.POOL, TargetKind.POSITION
_MODE_NAME = {mode: mode.value for mode in MarginMode}
"""Each margin mode's wire name, read once: `.value` is a property call, on every event
of a crash frame."""


class LevelTracker:
    """Per (account, target): the last level reported. A first sighting at OK is
    recorded silently; anything else, and every later change, becomes an event."""

    def __init__(self) -> None:
        self._levels: dict[tuple[str, str], Level] = {}
        self._generations: dict[str, int] = {}

    def forget(self, account: str, keep: Iterable[str]) -> list[str]:
        """Drop targets of `account` not in `keep`; returns the dropped targets."""
        keep = set(keep)
        gone = [t for (a, t) in self._levels if a == account and t not in keep]
        for target in gone:
            del self._levels[(account, target)]
        if gone:
            self._bump(account)
        return gone

    def items(self) -> list[tuple[tuple[str, str], Level]]:
        return list(self._levels.items())

    def last(self, account: str, target: str) -> Level | None:
        """The level last reported; None when never seen."""
        return self._levels.get((account, target))

    def generation(self, account: str) -> int:
        """Bumped whenever a level of `account` changes: a caller may keep what it
        derived from the account's levels until this moves."""
        return self._generations.get(account, 0)

    def _bump(self, account: str) -> None:
        self._generations[account] = self._generations.get(account, 0) + 1

    def _moved(
        self,
        account: str,
        target: str,
        ratio: float | None,
        distance: float | None,
        limits: Any,
    ) -> tuple[Level, Level | None] | None:
        """(level now, previous level or None when first seen) when the target's level
        changed in a way worth an event (`_record`). The common case on every tick is
        answered without the level machinery: the target was OK and both figures are
        known and short of every warning. Otherwise the level is held by hysteresis
        against the level last reported (`level_for`)."""
        previous = self._levels.get((account, target))
        if (
            previous is _OK
            and ratio is not None
            and distance is not None
            and ratio < limits.warn
            and distance > limits.distance_warn
        ):
            return None
        changed = self._record(
            (account,), (target,), (level_for(ratio, distance, limits, previous),)
        )
        return changed[0][1:] if changed else None

    def _record(
        self, accounts: Sequence[str], targets: Sequence[str], levels: Sequence[Level]
    ) -> list[tuple[int, Level, Level | None]]:
        """Record each (account, target)'s level; (its index, level, previous level or
        None when first seen) of those whose level changed in a way worth an event. The
        one place the rule lives: a scalar evaluation passes one target, the tick path
        every row its arrays saw move (hundreds in a crash frame: one loop, not a call
        per row)."""
        stored, generations = self._levels, self._generations
        lookup, count = stored.get, generations.get
        changed = []
        for i, key in enumerate(zip(accounts, targets, strict=True)):
            level, previous = levels[i], lookup(key)
            if previous is level:
                continue
            stored[key] = level
            account = key[0]
            generations[account] = count(account, 0) + 1
            if previous is None and level is _OK:
                continue  # a first sighting at OK is recorded silently
            changed.append((i, level, previous))
        return changed

    def pool(
        self, account: str, risk: PoolRisk, thresholds: Thresholds, target: str | None = None
    ) -> Event | None:
        """`target` is the pool's key when the caller already built it."""
        if target is None:
            target = pool_target(risk.asset)
        moved = self._moved(
            account, target, risk.margin_ratio, risk.liquidation_distance, thresholds.cross
        )
        return None if moved is None else _one(_POOL, account, target, moved, pool_figures([risk]))

    def position(
        self,
        account: str,
        risk: PositionRisk,
        thresholds: Thresholds,
        target: str | None = None,
    ) -> Event | None:
        """`target` is the position's key when the caller already built it."""
        p = risk.position
        limits = thresholds.isolated if p.margin_mode is _ISOLATED else thresholds.cross
        if target is None:
            target = position_target(p.symbol, p.side.value, p.margin_mode.value, p.position_side)
        moved = self._moved(account, target, risk.margin_ratio, risk.liquidation_distance, limits)
        if moved is None:
            return None
        return _one(_POSITION, account, target, moved, position_figures([risk]))

    def report(
        self,
        kind: TargetKind,
        accounts: Sequence[str],
        targets: Sequence[str],
        levels: Sequence[Level],
        figures: LevelFigures,
    ) -> list[Event]:
        """The tick path's targets (pools or positions, by `kind`) whose level its arrays
        saw move (`level_for`'s rules, held against the level last reported, for every
        row at once): each recorded at the level given, and the changes worth an event
        worded with the rows' `figures`, in row order."""
        changes = self._record(accounts, targets, levels)
        if not changes:
            return []
        return Event.level_changes(
            kind, changes, accounts=accounts, targets=targets, figures=figures
        )


def pool_figures(risks: Sequence[PoolRisk]) -> LevelFigures:
    """What pools' events say, from their records."""
    return pool_level_figures(
        [r.margin_ratio for r in risks], [r.liquidation_distance for r in risks],
        [r.note for r in risks],
    )  # fmt: skip


def position_figures(risks: Sequence[PositionRisk]) -> LevelFigures:
    """What positions' events say, from their records."""
    return position_level_figures(
        [r.margin_ratio for r in risks], [r.liquidation_distance for r in risks],
        [r.liquidation_price for r in risks],
        exchange_prices=[r.position.exchange_liquidation_price for r in risks],
        modes=[margin_mode_name(r.position) for r in risks],
        marks=[r.mark_price for r in risks], notes=[r.note for r in risks],
    )  # fmt: skip


def margin_mode_name(position: Position) -> str:
    """The margin mode an event of `position` names (its wire name)."""
    return _MODE_NAME[position.margin_mode]


def pool_level_figures(
    ratios: list[float | None], distances: list[float | None], notes: list[str | None]
) -> LevelFigures:
    """What pools' events say, figure by figure (a record's, or the tick path's columns):
    a pool has no price of its own, and is the cross margin's."""
    nothing = [None] * len(ratios)
    return LevelFigures(
        ratios, distances, nothing, nothing, nothing, ["cross"] * len(ratios),
        [note or "" for note in notes],
    )  # fmt: skip


def position_level_figures(
    ratios: list[float | None],
    distances: list[float | None],
    prices: list[float | None],
    *,
    exchange_prices: list[float | None],
    modes: list[str],
    marks: list[float],
    notes: list[str | None],
) -> LevelFigures:
    """What positions' events say, figure by figure; the exchange's own liquidation price
    and the margin mode (`margin_mode_name`) are the positions' own, not figures of the
    frame."""
    return LevelFigures(
        ratios, distances, prices, exchange_prices, marks, modes, [note or "" for note in notes]
    )


def _one(
    kind: TargetKind,
    account: str,
    target: str,
    moved: tuple[Level, Level | None],
    figures: LevelFigures,
) -> Event:
    """The event of a scalar evaluation's one target that moved."""
    (event,) = Event.level_changes(
        kind, [(0, *moved)], accounts=(account,), targets=(target,), figures=figures
    )
    return event
