"""Events encode to the same bytes as before orjson took over: the audit trail
(`--events FILE`) and whatever greps it must not see a difference."""

from __future__ import annotations

import math
from dataclasses import FrozenInstanceError, asdict, replace

import numpy as np
import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from monitor.daemon.sinks import JsonLinesSink
from monitor.engine.levels import Level
from monitor.events import Event, EventKind, LevelFigures, TargetKind


def reference_bytes(event: Event) -> bytes:
    """The encoding the JSON-lines sink used before: `dataclasses.asdict`, non-finite
    floats replaced by None, then orjson on the dict."""
    doc = asdict(event)
    for key, value in doc.items():
        if isinstance(value, float) and not math.isfinite(value):
            doc[key] = None
    return orjson.dumps(doc)


figures = st.one_of(
    st.none(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0.0, -0.0, 1e-300, 5e-324, 1.7976931348623157e308, math.inf, -math.inf]),
)
names = st.one_of(st.none(), st.text(max_size=12))
levels = st.one_of(st.none(), st.sampled_from(Level))
events = st.builds(
    Event,
    kind=st.sampled_from(EventKind),
    account=names,
    target=st.text(max_size=30),
    target_kind=st.sampled_from(TargetKind),
    level=levels,
    previous_level=levels,
    margin_ratio=figures,
    liquidation_distance=figures,
    liquidation_price=figures,
    exchange_liquidation_price=figures,
    mark_price=figures,
    margin_mode=names,
    message=st.text(max_size=60),
    time=st.floats(min_value=0, max_value=4e9),
)


@given(events)
def test_event_bytes_match_the_asdict_encoding(event: Event) -> None:
    assert event.to_json_bytes() == reference_bytes(event)
    assert orjson.dumps(event.to_json()) == reference_bytes(event)


def test_written_lines_match_the_asdict_encoding_on_typical_events(tmp_path) -> None:
    typical = [
        Event(EventKind.LEVEL, "main", "pool USDT", TargetKind.POOL, Level.CRITICAL, Level.WARN,
              margin_ratio=math.inf, liquidation_distance=0.0, time=1.0),
        Event(EventKind.LEVEL, "main", "BTC/USDT:USDT long isolated LONG", TargetKind.POSITION,
              Level.WARN, None, margin_ratio=0.81, liquidation_distance=0.07,
              liquidation_price=58_123.4, exchange_liquidation_price=58_120.0,
              mark_price=62_500.0, margin_mode="isolated", time=2.0),
        Event(EventKind.BLIND, None, "feed binanceusdm", TargetKind.FEED, level=Level.UNKNOWN,
              message="mark prices stale: no frame for 10 s — «reconnecting»", time=3.0),
        Event(EventKind.ACTION, "main", "account", TargetKind.ACCOUNT, level=Level.CRITICAL,
              liquidation_price=math.nan, mark_price=-math.inf, message="dry run", time=4.0),
    ]  # fmt: skip
    sink = JsonLinesSink(tmp_path / "events.jsonl")
    for event in typical:
        sink.emit(event)
    sink.close()
    expected = b"".join(reference_bytes(e) + b"\n" for e in typical)
    assert (tmp_path / "events.jsonl").read_bytes() == expected


def test_numpy_figures_are_plain_numbers() -> None:
    """A vectorised engine hands over numpy scalars; the line must not care."""
    ratio, liquidation = np.float64(0.5), np.float64(np.nan)
    event = Event(EventKind.LEVEL, "a", "pool USDT", TargetKind.POOL, margin_ratio=ratio,
                  liquidation_price=liquidation, time=1.0)  # fmt: skip
    doc = orjson.loads(event.to_json_bytes())
    assert doc["margin_ratio"] == 0.5 and doc["liquidation_price"] is None


def test_levels_keep_their_wire_names_and_a_persisted_event_loads_typed() -> None:
    """The JSON lines, the alert state and the outbox written before the enum hold the
    lowercase names: the same bytes come out, and they load back as Levels."""
    event = Event(EventKind.LEVEL, "main", "pool USDT", TargetKind.POOL, Level.CRITICAL,
                  Level.WARN, margin_ratio=0.8, time=1.0)  # fmt: skip
    line = event.to_json_bytes()
    assert b'"level":"critical","previous_level":"warn","margin_ratio":0.8,' in line
    loaded = Event.from_json(orjson.loads(line))
    assert loaded == event
    assert (loaded.level, loaded.previous_level) == (Level.CRITICAL, Level.WARN)
    assert type(loaded.level) is Level and type(loaded.previous_level) is Level
    spelled = Event(EventKind.LEVEL, "a", "t", TargetKind.POOL, "imminent", "unknown")
    assert (spelled.level, spelled.previous_level) == (Level.IMMINENT, Level.UNKNOWN)
    with pytest.raises(ValueError, match="'severe' is not a valid Level"):
        Event(EventKind.LEVEL, "a", "t", TargetKind.POOL, "severe")


@given(events, st.sampled_from(Level), st.text(max_size=12), st.text(max_size=8))
def test_level_changes_are_the_events_init_builds(
    drawn: Event, level: Level, account: str, margin_mode: str
) -> None:
    """`Event.level_changes` (the tracker's fast constructor) builds Events equal to
    `Event(...)`'s, as immutable, encoding to the same bytes."""
    event = replace(
        drawn, kind=EventKind.LEVEL, account=account, level=level, margin_mode=margin_mode
    )
    figures = LevelFigures(
        [None, event.margin_ratio], [None, event.liquidation_distance],
        [None, event.liquidation_price], [None, event.exchange_liquidation_price],
        [None, event.mark_price], ["", margin_mode], ["", event.message],
    )  # fmt: skip
    (built,) = Event.level_changes(
        event.target_kind, [(1, level, event.previous_level)],
        accounts=["other", account], targets=["other", event.target], figures=figures,
    )  # fmt: skip
    event = replace(event, time=built.time)
    assert type(built) is Event
    assert built.to_json_bytes() == event.to_json_bytes() == reference_bytes(event)
    assert built.to_json_line() == event.to_json_bytes() + b"\n"
    assert repr(built) == repr(event)
    with pytest.raises(FrozenInstanceError):
        built.level = Level.OK  # type: ignore[misc]
