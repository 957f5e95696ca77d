"""Encoding one event as its JSON line (the `--events FILE` audit trail, every level change
of a fast-market frame).

Goal (issue 14): well under the 25 µs `dataclasses.asdict` cost. The baseline, run in the
same process on the same events, is that former encoding: `asdict`, non-finite floats
replaced by None, then orjson on the dict. Both produce the same bytes (checked here and
in tests/test_event_json.py).

    python benchmarks/event_json.py [--repeats 20000]
"""

from __future__ import annotations

import argparse
import math
from dataclasses import asdict

import orjson
from common import summary, timed

from monitor.engine.levels import Level
from monitor.events import Event, EventKind, TargetKind


def asdict_line(event: Event) -> bytes:
    doc = asdict(event)
    for key, value in doc.items():
        if isinstance(value, float) and not math.isfinite(value):
            doc[key] = None
    return orjson.dumps(doc)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=20_000)
    args = parser.parse_args()
    event = Event(EventKind.LEVEL, "main", "BTC/USDT:USDT long isolated", TargetKind.POSITION,
                  Level.CRITICAL, Level.WARN, margin_ratio=0.91, liquidation_distance=0.031,
                  liquidation_price=58_123.4, exchange_liquidation_price=math.inf,
                  mark_price=60_000.0, margin_mode="isolated", message="")  # fmt: skip
    assert event.to_json_bytes() == asdict_line(event)
    fast = summary(timed(event.to_json_bytes, args.repeats))
    slow = summary(timed(lambda: asdict_line(event), args.repeats))
    print(f"orjson on the event : median {fast[0] * 1e3:6.2f} µs   p99 {fast[1] * 1e3:6.2f} µs")
    print(f"asdict then orjson  : median {slow[0] * 1e3:6.2f} µs   p99 {slow[1] * 1e3:6.2f} µs"
          "   (baseline)")  # fmt: skip
    print(f"baseline / orjson (median): {slow[0] / fast[0]:.1f}x")


if __name__ == "__main__":
    main()
