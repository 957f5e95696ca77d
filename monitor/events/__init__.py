"""The events the daemon emits: the contract between monitoring, its actions and alerting.

Every event is one immutable record with a stable JSON form, so the audit trail
(`--events FILE`) can be grepped and the alert rules can consume the same objects.
Outside the daemon (which composes the actions and feeds the alerts), so that all three
import it and none imports another to get at it.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from enum import StrEnum
from typing import Any, NamedTuple

import orjson

from monitor.engine.levels import Level


class EventKind(StrEnum):
    LEVEL = "level"
    """A pool, position or account crossed a threshold level, up or down."""
    BLIND = "blind"
    """No fresh data from a feed or an account: the monitor cannot see."""
    RECOVERED = "recovered"
    """Data flows again after a blind period."""
    PROBABLE_LIQUIDATION = "probable_liquidation"
    """A position near liquidation disappeared between two reads (liquidation or ADL)."""
    CLOSED_BY_US = "closed_by_us"
    """A position disappeared because our own reduce-only orders closed it: never a
    liquidation (monitor/daemon/ownfills.py)."""
    ERROR = "error"
    """An exchange call failed in a way the user should hear about (auth, bad reply)."""
    CONFIG = "config"
    """A reload was applied or refused."""
    ACTION = "action"
    """Auto-deleverage decided, would have (dry run), asked, did, or failed to act."""


class TargetKind(StrEnum):
    POOL = "pool"
    POSITION = "position"
    FEED = "feed"
    ACCOUNT = "account"


@dataclass(frozen=True)
class Event:
    """No `__slots__`, on purpose: orjson encodes a dataclass that has a `__dict__` from
    the dict itself, three times faster than one with slots, read field by field (about
    0.5 against 1.4 µs an event, paid per event in a crash frame)."""

    kind: EventKind
    account: str | None
    target: str
    target_kind: TargetKind
    level: Level | None = None
    """None where no level applies (an error, a blind feed); unknown figures are
    `Level.UNKNOWN`."""
    previous_level: Level | None = None
    """None when the target is seen for the first time."""
    margin_ratio: float | None = None
    liquidation_distance: float | None = None
    liquidation_price: float | None = None
    exchange_liquidation_price: float | None = None
    mark_price: float | None = None
    margin_mode: str | None = None
    message: str = ""
    time: float = field(default_factory=time.time)
    order_id: str | None = None
    """The exchange's id of the order the event is about (a liquidation order), when the
    exchange named one: what makes the event itself recognisable after a restart."""

    def __post_init__(self) -> None:
        """Levels are typed whoever built the event: a wire name (a persisted event, a
        caller that spelled it) becomes its `Level`; a name that is no level is refused."""
        level, previous = self.level, self.previous_level  # no loop: a crash frame builds 100
        if level is not None and type(level) is not Level:
            object.__setattr__(self, "level", Level(level))
        if previous is not None and type(previous) is not Level:
            object.__setattr__(self, "previous_level", Level(previous))

    @classmethod
    def level_changes(
        cls,
        target_kind: TargetKind,
        changes: Sequence[tuple[int, Level, Level | None]],
        *,
        accounts: Sequence[str],
        targets: Sequence[str],
        figures: LevelFigures,
    ) -> list[Event]:
        """LEVEL events of typed callers (the tracker): `changes` are (row, level, previous
        level) and the other arguments are per row. The same immutable Events `__init__`
        builds, at about a sixth of its cost, which a crash frame pays hundreds of times
        over (the frozen `__init__` sets each of the 15 fields through
        `object.__setattr__`): each is given its attributes as unpickling does, in field
        order (the order orjson encodes them in). `__post_init__`'s typing of the levels is
        the caller's, by its types. One time for all: they were seen at one instant."""
        ratio, distance, price, exchange_price, mark, mode, message = figures
        new, assign, now = object.__new__, object.__setattr__, time.time()
        events = []
        for row, level, previous in changes:
            event = new(cls)
            assign(event, "__dict__", {
                "kind": EventKind.LEVEL, "account": accounts[row], "target": targets[row],
                "target_kind": target_kind, "level": level, "previous_level": previous,
                "margin_ratio": ratio[row], "liquidation_distance": distance[row],
                "liquidation_price": price[row], "exchange_liquidation_price": exchange_price[row],
                "mark_price": mark[row], "margin_mode": mode[row], "message": message[row],
                "time": now, "order_id": None,
            })  # fmt: skip
            events.append(event)
        return events

    def to_json(self) -> dict[str, Any]:
        """JSON-safe: infinities (no equity left) become null, as everywhere else.

        Every field is immutable, so no deep copy (`dataclasses.asdict` spent 25 µs of a
        fast-market frame on one)."""
        return {name: _finite_or_none(getattr(self, name)) for name in EVENT_FIELDS}

    def to_json_bytes(self) -> bytes:
        """`to_json()` encoded, byte for byte, in about 0.5 µs: orjson encodes the
        dataclass itself, from its `__dict__` (fields in order, as `__init__` or
        `level_change` set them; enums by value, NaN and infinities as null); numpy
        scalars are numbers like any other."""
        return orjson.dumps(self, option=_NUMPY)

    def to_json_line(self) -> bytes:
        """`to_json_bytes()` and a newline, appended by the encoder: an audit file's line."""
        return orjson.dumps(self, option=_NUMPY_LINE)

    @staticmethod
    def json_lines(events: Sequence[Event]) -> bytes:
        """`to_json_line()` of each of `events`, joined, byte for byte, from one encoding
        of the list: a crash frame's hundreds of events in one buffer, not one allocated
        (and grown, and trimmed) per event, which cost twice the encoding in a frame.

        The list's `},{"kind":` separators become newlines: nothing else in it reads so,
        since every event's object starts with its `kind` (fields in order), holds no
        nested object, and a quote inside a string is escaped (`\\"`)."""
        if not events:
            return b""
        return orjson.dumps(events, option=_NUMPY)[1:-1].replace(_BETWEEN, _APART) + b"\n"

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> Event:
        """The event `to_json()` wrote (an unfinite figure comes back as None), its kinds
        typed again from their wire names (its levels type themselves)."""
        return cls(**{
            **doc, "kind": EventKind(doc["kind"]), "target_kind": TargetKind(doc["target_kind"])
        })  # fmt: skip


EVENT_FIELDS = tuple(f.name for f in fields(Event))
_NUMPY = orjson.OPT_SERIALIZE_NUMPY
_NUMPY_LINE = orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_APPEND_NEWLINE
_BETWEEN, _APART = b'},{"kind":', b'}\n{"kind":'


class LevelFigures(NamedTuple):
    """What a LEVEL event says of each target besides its level, one sequence per figure,
    by row: the tick path reads each from its frame's column once for all the rows whose
    level moved (no record per row); a scalar evaluation gives its one record's."""

    margin_ratio: Sequence[float | None]
    liquidation_distance: Sequence[float | None]
    liquidation_price: Sequence[float | None]
    exchange_liquidation_price: Sequence[float | None]
    mark_price: Sequence[float | None]
    margin_mode: Sequence[str]
    message: Sequence[str]


def _finite_or_none(value: Any) -> Any:
    return None if isinstance(value, float) and not math.isfinite(value) else value


def pool_target(asset: str) -> str:
    return f"pool {asset}"


def position_target(symbol: str, side: str, margin_mode: str, position_side: str) -> str:
    """Hedge-mode legs of one symbol are distinct targets; one-way positions are not."""
    leg = "" if position_side == "BOTH" else f" {position_side}"
    return f"{symbol} {side} {margin_mode}{leg}"
