"""Tick path CPU per frame, in process: `tick_latency.py`'s scenario without the socket.

The same book, marks and frames as `tick_latency.py` (same seeds), fed to the daemon's
own feed parser and `Daemon._on_ticks` one after the other on this thread, with no event
loop turn between them: what is timed is `time.process_time()` per frame, parsing
included, so the figures hold on a shared machine where wall-clock p99 measures the
neighbours. Cases a (array, every held symbol moved), b (array, one moved) and d (storm)
as there; c and the naive baselines are left out (a per-symbol frame is case b's
evaluation without the array's parse).

`--events FILE` writes every event's JSON line with its `time` set to 0: a change to
the tick path that keeps the events byte-identical leaves the file unchanged.

    python benchmarks/tick_replay.py [--frames N] [--accounts 200] [--step 0.02]
        [--events FILE] [--profile]
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import gc
import pstats
import random
import re
import tempfile
import time
from pathlib import Path

from common import summary, synthetic_book
from tick_latency import _walk, array_frame, unified_market

from monitor.bus import EventBus
from monitor.config import Config, Thresholds
from monitor.daemon.service import Daemon
from monitor.daemon.sinks import JsonLinesSink
from monitor.events import Event
from monitor.feeds.stream import StreamFeed, _Connection
from monitor.heappolicy import keep_freed_pages

STORM = {"warn": 0.001, "critical": 0.5, "distance_warn": 0.99, "distance_critical": 0.08}
"""tick_latency's storm thresholds: every target above OK."""


def _frames(args: argparse.Namespace, marks: dict[str, float], unheld: dict[str, float]):
    """(case, frames) in tick_latency's order and seeds (its cases a, b, then d)."""
    rng = random.Random(5)
    warm = _walk(marks, 5, args.step, rng)
    yield "warm", [array_frame(m, unheld) for m in warm]
    moves = _walk(warm[-1], args.frames, args.step, rng)
    yield "a. array, all moved", [array_frame(m, unheld) for m in moves]
    current = dict(moves[-1])
    frames = []
    for _ in range(args.frames):
        symbol = rng.choice(list(current))
        current[symbol] *= 1.0 + rng.gauss(0.0, args.step)
        frames.append(array_frame(current, unheld))
    yield "b. array, 1 moved", frames
    yield "storm", None
    storm = _walk(current, args.frames + 5, args.step, random.Random(11))
    yield "storm warm", [array_frame(m, unheld) for m in storm[:5]]
    yield "d. storm, all moved", [array_frame(m, unheld) for m in storm[5:]]


async def run(args: argparse.Namespace) -> None:
    snapshots, marks = synthetic_book(args.accounts, 25, symbols=60)
    rng = random.Random(3)
    unheld = {f"X{i:03d}USDT": rng.uniform(0.01, 100) for i in range(500)}
    markets = {s: unified_market(s) for s in marks}
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "events.jsonl"
        bus = EventBus()
        sink = JsonLinesSink(path, bus)
        config = Config.model_validate(
            {"state_dir": tmp, "accounts": [
                {"name": s.name, "exchange": "binanceusdm", "rest_url": "http://127.0.0.1:9",
                 "ws_url": "ws://127.0.0.1:9"} for s in snapshots]}
        )  # fmt: skip
        daemon = Daemon(config, sink.emit, bus=bus)
        for poller, snapshot in zip(daemon.pollers.values(), snapshots, strict=True):
            poller.client.set_markets(markets)
            poller._succeeded(snapshot)
        (group,) = daemon.groups.values()
        feed = group.feed
        assert isinstance(feed, StreamFeed)  # created, its task never run: no await below
        evaluation = group.evaluation
        parts = {"parse": _timed(feed, "_parse"), "engine": _timed(evaluation.engine, "update"),
                 "events": _timed(evaluation, "_report")}  # fmt: skip
        conn = _Connection(None, "", 0.0)  # type: ignore[arg-type]
        counted: list[Event] = []
        bus.subscribe(Event, counted.append)
        gc.freeze()
        keep_freed_pages()  # as the daemon does (runner.py, monitor/heappolicy.py)
        profile = cProfile.Profile() if args.profile else None
        report = []
        for case, frames in _frames(args, marks, unheld):
            if frames is None:
                _storm(daemon)
                continue
            times, events = [], []
            for spent in parts.values():
                spent.clear()
            for frame in frames:
                counted.clear()
                times.append(_frame(feed, conn, frame, profile))
                events.append(len(counted))
            if not case.endswith("warm"):
                split = {name: sum(spent) / len(frames) * 1e3 for name, spent in parts.items()}
                split["us/event"] = sum(parts["events"]) / max(1, sum(events)) * 1e6
                report.append(
                    (case, summary(times), max(times) * 1e3, _slope(events, times), split)
                )
        await daemon.stop()
        sink.close()
        lines = path.read_bytes().splitlines()
    for case, (median, p99), worst, (per_event, fixed, mean), split in report:
        print(
            f"{case:20}: CPU median {median:5.2f} ms  p99 {p99:5.2f}  max {worst:5.2f}"
            f"  {mean:5.1f} ev/frame: {per_event:5.2f} us/ev + {fixed:4.2f} ms"
        )
        print(" " * 22 + "  ".join(f"{name} {value:.3f}" for name, value in split.items()))
    print(f"{len(lines)} events")
    if args.events:
        zeroed = [re.sub(rb'"time":[^,}]+', b'"time":0', line) for line in lines]
        Path(args.events).write_bytes(b"\n".join(zeroed) + b"\n")
    if profile is not None:
        pstats.Stats(profile).sort_stats("tottime").print_stats(25)


def _storm(daemon: Daemon) -> None:
    storm = Thresholds.model_validate({"cross": STORM, "isolated": STORM})
    for monitor in daemon.monitors:
        monitor.thresholds = storm


def _frame(
    feed: StreamFeed, conn: _Connection, frame: str, profile: cProfile.Profile | None
) -> float:
    if profile is not None:
        profile.enable()
    start = time.process_time()
    feed._on_frame(frame, conn)  # as the socket's reader hands it over: parse, ticks, events
    spent = time.process_time() - start
    if profile is not None:
        profile.disable()
    return spent


def _timed(owner: object, name: str) -> list[float]:
    """Shadow `owner.name` with a wrapper adding each call's CPU time to the list returned."""
    spent: list[float] = []
    call = getattr(owner, name)

    def timed(*args: object) -> object:
        start = time.process_time()
        try:
            return call(*args)
        finally:
            spent.append(time.process_time() - start)

    setattr(owner, name, timed)
    return spent


def _slope(events: list[int], times: list[float]) -> tuple[float, float, float]:
    """(us per event, ms per frame without events, mean events) by least squares."""
    n = len(events)
    mean_e, mean_t = sum(events) / n, sum(times) / n
    spread = sum((e - mean_e) ** 2 for e in events)
    if not spread:
        return 0.0, mean_t * 1e3, mean_e
    slope = sum((e - mean_e) * (t - mean_t) for e, t in zip(events, times, strict=True)) / spread
    return slope * 1e6, (mean_t - slope * mean_e) * 1e3, mean_e


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=int, default=200)
    parser.add_argument("--accounts", type=int, default=200)
    parser.add_argument("--step", type=float, default=0.02)
    parser.add_argument("--events", help="write the events here, their time zeroed")
    parser.add_argument("--profile", action="store_true", help="cProfile the frames")
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
