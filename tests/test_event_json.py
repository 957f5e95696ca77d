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


@given(st.lists(events, max_size=6))
def test_a_batch_of_lines_is_each_events_line_joined(batch: list[Event]) -> None:
    """`Event.json_lines` (the audit file's flush) writes what `to_json_line` would,
    event by event, whatever the strings hold."""
    assert Event.json_lines(batch) == b"".join(e.to_json_line() for e in batch)


def test_a_string_that_reads_like_a_line_break_stays_in_its_line() -> None:
    """The batch is split where one event's object ends and the next begins; a target
    or message spelling that boundary is escaped, so it never splits its own line."""
    boundary = '},{"kind":"level"}\n{"kind":'
    batch = [
        Event(EventKind.LEVEL, boundary, boundary, TargetKind.POOL, Level.WARN,
              message=boundary, time=1.0),
        Event.from_json(orjson.loads(Event(EventKind.ERROR, None, "x", TargetKind.ACCOUNT,
                                           message=boundary, time=2.0).to_json_bytes())),
        Event(EventKind.LEVEL, "a", "pool USDT", TargetKind.POOL, Level.OK, time=3.0),
    ]  # fmt: skip
    lines = Event.json_lines(batch)
    assert lines == b"".join(e.to_json_line() for e in batch)
    assert [Event.from_json(orjson.loads(line)) for line in lines.splitlines()] == batch
    assert Event.json_lines([]) == b""


def test_a_burst_of_events_is_written_at_its_end_and_a_bad_one_costs_only_its_line(
    tmp_path, caplog: pytest.LogCaptureFixture
) -> None:
    """Given the bus, the sink writes a burst's lines when it ends (nothing before);
    an event with a figure orjson cannot encode is logged and left out, the others of
    its burst are written."""
    from decimal import Decimal

    from monitor.bus import EventBus

    path = tmp_path / "events.jsonl"
    bus = EventBus()
    sink = JsonLinesSink(path, bus)
    bus.subscribe(Event, sink.emit)
    good = [
        Event(EventKind.LEVEL, "a", "pool USDT", TargetKind.POOL, Level.WARN, time=float(i))
        for i in range(3)
    ]
    bad = replace(good[0], margin_ratio=Decimal("0.5"))  # type: ignore[arg-type]
    with bus.burst:
        bus.publish_all(good[:2])
        bus.publish(bad)
        bus.publish(good[2])
        assert path.read_bytes() == b""
    assert path.read_bytes() == b"".join(e.to_json_line() for e in good)
    assert "not written to the audit file" in caplog.text
    sink.emit(good[0])  # outside a burst: written at once
    assert path.read_bytes().count(b"\n") == 4
    sink.close()
