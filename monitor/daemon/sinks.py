"""Where events go: the log, the terminal, an audit file; each subscribes to the bus
(monitor/bus.py), which keeps a failing one from silencing the others."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Protocol

from monitor.bus import EventBus
from monitor.engine.levels import Level
from monitor.events import Event, EventKind
from monitor.formatting import pct, price

log = logging.getLogger("marginwatch.events")

AUDIT_BUFFER = 1 << 18
"""The audit file's write buffer: a crash frame's lines (some 400 bytes an event, several
hundred events at 1000 accounts) go out in the frame's one flush, one system call (a
larger batch is written straight through), rather than one call per 8 KiB of the default
buffer, every twentieth event."""


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
    """Append-only audit trail, one JSON object per line, written out per event, or,
    given the bus it is subscribed to, once per burst of events (`EventBus.flush_after`:
    a mark frame's, before anything else happens).

    The events wait for the flush, which encodes them together (`Event.json_lines`) and
    writes their lines with one `write`: a crash frame's hundreds of events cost one
    encoding and one copy into the file's buffer, not one of each per event, and the
    flush is asked for once per burst, not per event."""

    def __init__(self, path: Path, bus: EventBus | None = None) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._file: IO[bytes] = path.open("ab", buffering=AUDIT_BUFFER)
        self._bus = bus
        self._events: list[Event] = []
        """Handed over, not yet written: empty between flushes."""

    def emit(self, event: Event) -> None:
        events = self._events
        events.append(event)
        if len(events) > 1:
            return  # its flush is asked for already (inside a burst)
        if self._bus is not None:
            self._bus.flush_after(self._flush)
        else:
            self._flush()

    def _flush(self) -> None:
        events, self._events = self._events, []
        try:
            lines = Event.json_lines(events)
        except TypeError:  # orjson's: a figure of a type it cannot encode
            lines = b"".join(_lines_of(events))
        self._file.write(lines)
        self._file.flush()

    def close(self) -> None:
        if self._events:
            self._flush()
        self._file.close()


def _lines_of(events: list[Event]) -> Iterator[bytes]:
    """The lines of the events that encode: one that does not is logged and left out,
    and costs no other its line (as when each event was encoded as it came)."""
    for event in events:
        try:
            yield event.to_json_line()
        except TypeError:
            log.exception("event not written to the audit file: %r", event)
