"""The events the daemon emits: the contract between monitoring, its actions and alerting.

Every event is one immutable record with a stable JSON form, so the audit trail
(`--events FILE`) can be grepped and the alert rules can consume the same objects.
Outside the daemon (which composes the actions and feeds the alerts), so that all three
import it and none imports another to get at it.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field, fields
from enum import StrEnum
from typing import Any

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
    def level_change(
        cls,
        account: str,
        target: str,
        target_kind: TargetKind,
        *,
        level: Level,
        previous: Level | None,
        margin_ratio: float | None,
        liquidation_distance: float | None,
        liquidation_price: float | None = None,
        exchange_liquidation_price: float | None = None,
        mark_price: float | None = None,
        margin_mode: str,
        message: str,
    ) -> Event:
        """A LEVEL event from a caller whose levels are typed already (the tracker): the
        same immutable Event, built in a third of `__init__`'s time, which a crash frame
        pays a hundred times over (the frozen `__init__` sets each of the 15 fields
        through `object.__setattr__`). Its attributes are stored as unpickling stores
        them, in field order (the order orjson encodes them in); `__post_init__`'s
        typing of the levels is the caller's, by its types."""
        event = object.__new__(cls)
        event.__dict__.update({
            "kind": EventKind.LEVEL, "account": account, "target": target,
            "target_kind": target_kind, "level": level, "previous_level": previous,
            "margin_ratio": margin_ratio, "liquidation_distance": liquidation_distance,
            "liquidation_price": liquidation_price,
            "exchange_liquidation_price": exchange_liquidation_price,
            "mark_price": mark_price, "margin_mode": margin_mode, "message": message,
            "time": time.time(), "order_id": None,
        })  # fmt: skip
        return event

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
        return orjson.dumps(self, option=orjson.OPT_SERIALIZE_NUMPY)

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> Event:
        """The event `to_json()` wrote (an unfinite figure comes back as None), its kinds
        typed again from their wire names (its levels type themselves)."""
        return cls(**{
            **doc, "kind": EventKind(doc["kind"]), "target_kind": TargetKind(doc["target_kind"])
        })  # fmt: skip


EVENT_FIELDS = tuple(f.name for f in fields(Event))


def _finite_or_none(value: Any) -> Any:
    return None if isinstance(value, float) and not math.isfinite(value) else value


def pool_target(asset: str) -> str:
    return f"pool {asset}"


def position_target(symbol: str, side: str, margin_mode: str, position_side: str) -> str:
    """Hedge-mode legs of one symbol are distinct targets; one-way positions are not."""
    leg = "" if position_side == "BOTH" else f" {position_side}"
    return f"{symbol} {side} {margin_mode}{leg}"
