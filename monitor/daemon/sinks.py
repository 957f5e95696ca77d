"""Where events go: the log, the terminal, an audit file. Alerting adds its own sink."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import IO, Protocol

from monitor.engine.levels import Level
from monitor.events import Event, EventKind
from monitor.formatting import pct, price

log = logging.getLogger("marginwatch.events")


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
    """Append-only audit trail, one JSON object per line, flushed per event."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._file: IO[bytes] = path.open("ab")

    def emit(self, event: Event) -> None:
        self._file.write(event.to_json_bytes() + b"\n")
        self._file.flush()

    def close(self) -> None:
        self._file.close()


class FanOut:
    """Hand each event to every sink; one failing sink never silences the others."""

    def __init__(self, sinks: list[EventSink]) -> None:
        self.sinks = sinks

    def emit(self, event: Event) -> None:
        for sink in self.sinks:
            try:
                sink.emit(event)
            except Exception:
                log.exception("event sink %s failed", type(sink).__name__)
