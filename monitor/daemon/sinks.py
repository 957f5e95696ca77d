"""Where events go: the log, the terminal, an audit file; each subscribes to the bus
(monitor/bus.py), which keeps a failing one from silencing the others."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import IO, Protocol

from monitor.bus import EventBus
from monitor.engine.levels import Level
from monitor.events import Event, EventKind
from monitor.formatting import pct, price

log = logging.getLogger("marginwatch.events")

AUDIT_BUFFER = 1 << 18
"""The audit file's write buffer: a crash frame's lines (some 400 bytes an event, several
hundred events at 1000 accounts) stay in it until the frame's one flush, one system call,
rather than one call per 8 KiB of the default buffer, every twentieth event."""


class EventSink(Protocol):
    def emit(self, event: Event) -> None: ...


def describe(event: Event) -> str:
    """One line a person can read at 3 a.m."""
    parts = [event.kind.value.upper()]
    if event.account:
        parts.append(event.account)
    parts.append(event.target)
    if event.kind is EventKind.LEVEL:
        parts.append(f"{event.previous_level or 'new'} -> {event.level}")
    if event.margin_ratio is not None:
        parts.append(f"ratio {pct(event.margin_ratio)}")
    if event.liquidation_distance is not None:
        parts.append(f"distance {pct(event.liquidation_distance)}")
    if event.liquidation_price is not None:
        parts.append(f"liq {price(event.liquidation_price)}")
    if event.message:
        parts.append(event.message)
    return " | ".join(parts)


class LogSink:
    """Every event into the log; level changes upward and blindness as warnings."""

    def emit(self, event: Event) -> None:
        loud = event.kind in (
            EventKind.BLIND, EventKind.PROBABLE_LIQUIDATION, EventKind.CLOSED_BY_US,
            EventKind.ERROR,
        )  # fmt: skip
        level = event.level
        # Unknown outranks a warning: not seeing is no routine line either.
        loud = loud or (event.kind is EventKind.LEVEL and level is not None and level >= Level.WARN)
        # A failed or refused action step (the journal's disk full, say) is no routine line.
        loud = loud or (event.kind is EventKind.ACTION and level is Level.CRITICAL)
        log.log(logging.WARNING if loud else logging.INFO, "%s", describe(event))


class JsonLinesSink:
    """Append-only audit trail, one JSON object per line, flushed per event, or, given
    the bus it is subscribed to, once per burst of events (`EventBus.flush_after`: a
    mark frame's, before anything else happens)."""

    def __init__(self, path: Path, bus: EventBus | None = None) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._file: IO[bytes] = path.open("ab", buffering=AUDIT_BUFFER)
        self._bus = bus
        self._flush = self._file.flush

    def emit(self, event: Event) -> None:
        self._file.write(event.to_json_line())
        if self._bus is not None:
            self._bus.flush_after(self._flush)
        else:
            self._flush()

    def close(self) -> None:
        self._file.close()
