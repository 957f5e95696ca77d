"""Tick-to-event latency: stream frame receipt to the end of event emission, 200 x 25.

Goals: issue 4, p99 <= 5 ms from `MarkTick.received` (time.monotonic() when the feed read
the frame) to the end of event emission, with 200 accounts x 25 positions on one Binance
USD-M group; issue 14, the same in every case below including `--step 0.02`, and
p99 <= 10 ms at `--accounts 1000`. Real parts, over loopback:

* a local websockets server speaking Binance's `/market/ws/!markPrice@arr@1s` dialect
  (a JSON list of markPriceUpdate objects, numbers as strings, the held symbols plus
  `--unheld` other listed markets, as the real all-market array carries every market);
* the real feed client (`feed_for("binanceusdm", ...)`, created by the daemon itself);
* a real `Daemon` (not started: no scheduler, no REST) whose `AccountState`s get
  their books from `_succeeded(snapshot)` with snapshots of `common.synthetic_book`;
  their ccxt clients get a synthetic market table so the daemon maps ids itself;
* events go to a `JsonLinesSink` on the daemon's bus, as with `run --events`: flushed
  once per frame, after the frame's events (per event for the naive handlers below).

Latency is read in `Daemon.on_tick_done` (called after the frame's evaluation, and so
after emission). Every frame that moves a mark evaluates every target of the group
exactly (monitor/daemon/evaluation.py: one vectorised engine update, every row's level
classified with arrays, events for the rows whose level moved): "targets/frame" is all
of them, whatever the frame carries. The book holds `--symbols` (default 60) markets:
above `MANY_STREAMS` (50) the feed subscribes to the all-market array; at 50 or fewer it
would use one `<id>@markPrice@1s` stream per symbol, one symbol per frame (case c below).

Cases, each a sequence of frames sent one at a time (the next after the previous one was
handled, so no frame waits behind another):
  a. array frame, every held symbol moved;
  b. array frame, one held symbol moved, the rest unchanged (a quiet second);
  c. a frame carrying only the one moved symbol (what a per-symbol stream delivers);
  baseline: array frame, every symbol moved, a naive handler that re-evaluates every
     account's whole book with the scalar engine (`AccountBook.evaluate`) and reports it;
  d. storm: array frame, every held symbol moved, thresholds set so that every target
     is above OK (a market-wide crash); compared with the naive handler under the same
     thresholds.

`--step` is each mark's move per frame (standard deviation): 0.001 is a calm second,
0.02 a crash. The book (`common.synthetic_book`) is far from calm: about half of its
isolated positions start above OK and some are past liquidation.

    python benchmarks/tick_latency.py [--frames N] [--accounts 200] [--step 0.001]
        [--symbols 60] [--unheld 500]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import random
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
from common import market_id, summary, synthetic_book
from websockets.asyncio.server import ServerConnection, serve

from monitor.bus import EventBus
from monitor.config import Config, Thresholds
from monitor.daemon.service import Daemon, ExchangeGroup
from monitor.daemon.sinks import JsonLinesSink
from monitor.engine.levels import Level
from monitor.feeds import MarkTick
from monitor.heappolicy import keep_freed_pages
from monitor.venues.binance.feed import MANY_STREAMS

ARRAY_PATH = "/market/ws/!markPrice@arr@1s"
GOAL_P99_MS = {200: 5.0, 1000: 10.0}
"""Issue 14's goals (p99, ms) by account count, at 25 positions each; 5 ms otherwise."""


class MarkServer:
    """Loopback websockets server: remembers the one client and the path it asked for."""

    def __init__(self) -> None:
        self.client: ServerConnection | None = None
        self.path = ""
        self.connected = asyncio.Event()

    async def handler(self, ws: ServerConnection) -> None:
        self.client, self.path = ws, ws.request.path if ws.request else ""
        self.connected.set()
        await ws.wait_closed()


def unified_market(symbol: str) -> dict[str, Any]:
    """The few ccxt market fields the daemon and ccxt's set_markets need."""
    base, rest = symbol.split("/", 1)
    quote = rest.split(":", 1)[0]
    return {
        "id": market_id(symbol), "symbol": symbol, "base": base, "quote": quote,
        "settle": quote, "type": "swap", "spot": False, "swap": True, "future": False,
        "option": False, "linear": True, "inverse": False, "contract": True, "active": True,
        "contractSize": 1.0, "precision": {}, "limits": {},
    }  # fmt: skip


def array_frame(marks: dict[str, float], unheld: dict[str, float]) -> str:
    """One `!markPrice@arr@1s` message: every listed market, numbers as strings."""
    now = int(time.time() * 1000)
    items = [
        {"e": "markPriceUpdate", "E": now, "s": sid, "p": f"{price:.8f}", "i": f"{price:.8f}",
         "P": f"{price:.8f}", "r": "0.00010000", "T": now + 3_600_000}
        for sid, price in (*((market_id(s), p) for s, p in marks.items()), *unheld.items())
    ]  # fmt: skip
    return orjson.dumps(items).decode()


async def measure(
    server: MarkServer,
    frames: list[str],
    done: asyncio.Event,
    samples: list[float],
) -> list[float]:
    """Send each frame once the previous one was handled; return the new samples (s)."""
    assert server.client is not None
    start = len(samples)
    for frame in frames:
        done.clear()
        await server.client.send(frame)
        await asyncio.wait_for(done.wait(), 10)
        await asyncio.sleep(0.002)  # let the loop breathe, as between real frames
    return samples[start:]


async def run(args: argparse.Namespace) -> None:
    snapshots, marks = synthetic_book(args.accounts, args.positions, symbols=args.symbols)
    held = list(marks)
    rng = random.Random(3)
    unheld = {f"X{i:03d}USDT": rng.uniform(0.01, 100) for i in range(args.unheld)}
    markets = {s: unified_market(s) for s in held}

    server = MarkServer()
    with tempfile.TemporaryDirectory() as tmp:
        bus = EventBus()
        sink = JsonLinesSink(Path(tmp) / "events.jsonl", bus)
        async with serve(server.handler, "127.0.0.1", 0, max_size=None) as ws_server:
            port = ws_server.sockets[0].getsockname()[1]
            samples: list[float] = []
            evaluated: list[int] = []
            done = asyncio.Event()

            def tick_done(received: float, targets: int) -> None:
                samples.append(time.monotonic() - received)
                evaluated.append(targets)
                done.set()

            config = Config.model_validate(
                {"state_dir": tmp, "accounts": [
                    {"name": s.name, "exchange": "binanceusdm", "rest_url": "http://127.0.0.1:9",
                     "ws_url": f"ws://127.0.0.1:{port}"} for s in snapshots]}
            )  # fmt: skip
            daemon = Daemon(config, sink.emit, bus=bus, on_tick_done=tick_done)
            (group,) = daemon.groups.values()
            for poller, snapshot in zip(daemon.pollers.values(), snapshots, strict=True):
                poller.client.set_markets(markets)
                poller._succeeded(snapshot)  # the book a successful poll would build
            gc.freeze()  # as the daemon does after its first evaluation (runner.py)
            keep_freed_pages()  # and keeps the heap's freed pages (runner.py)
            try:
                await asyncio.wait_for(server.connected.wait(), 10)
                if server.path != ARRAY_PATH:
                    raise RuntimeError(f"feed asked for {server.path}, not {ARRAY_PATH}")
                print(f"feed subscribed to {server.path}")
                levels = [level for _, level in daemon.tracker.items()]
                alarmed = sum(level is not Level.OK for level in levels)
                print(f"targets above OK at the start: {alarmed} of {len(levels)}")
                report = await _cases(args, server, done, samples, evaluated, marks, unheld)
                # The feed calls `daemon._on_ticks(group, ticks)`: shadow it on the instance.
                naive = _naive_handler(group, tick_done)
                daemon._on_ticks = lambda _group, ticks: naive(ticks)  # type: ignore[method-assign]
                latest = {symbol: group.marks[symbol] for symbol in held}  # walk on from here
                moves = _walk(latest, max(20, args.frames // 4), args.step, rng)
                base = await measure(server, [array_frame(m, unheld) for m in moves], done, samples)
                del daemon._on_ticks
                storm, storm_base = await _storm(
                    args, daemon, server, done, samples, evaluated, unheld
                )
            finally:
                await daemon.stop()
                sink.close()
            events = len((Path(tmp) / "events.jsonl").read_bytes().splitlines())
    _print(args, report, summary(base), events)
    _print_storm(args, storm, storm_base)


Report = list[tuple[str, tuple[float, float], float]]


async def _cases(
    args: argparse.Namespace,
    server: MarkServer,
    done: asyncio.Event,
    samples: list[float],
    evaluated: list[int],
    marks: dict[str, float],
    unheld: dict[str, float],
) -> Report:
    rng = random.Random(5)
    # warm up on moving marks: a frame repeating every mark is (rightly) not recomputed
    warm = _walk(marks, 5, args.step, rng)
    await measure(server, [array_frame(m, unheld) for m in warm], done, samples)
    report: Report = []
    moves = _walk(warm[-1], args.frames, args.step, rng)
    frames = [array_frame(m, unheld) for m in moves]
    start = len(evaluated)
    got = await measure(server, frames, done, samples)
    report.append(("a. array, all moved", summary(got), _mean(evaluated[start:])))

    current = dict(moves[-1])
    frames, singles = [], []
    for i in range(2 * args.frames):
        symbol = rng.choice(list(current))
        current[symbol] *= 1.0 + rng.gauss(0.0, args.step)
        if i < args.frames:
            frames.append(array_frame(current, unheld))
        else:
            singles.append(array_frame({symbol: current[symbol]}, {}))
    start = len(evaluated)
    got = await measure(server, frames, done, samples)
    report.append(("b. array, 1 moved", summary(got), _mean(evaluated[start:])))
    start = len(evaluated)
    got = await measure(server, singles, done, samples)
    report.append(("c. 1-symbol frame", summary(got), _mean(evaluated[start:])))
    return report


async def _storm(
    args: argparse.Namespace,
    daemon: Daemon,
    server: MarkServer,
    done: asyncio.Event,
    samples: list[float],
    evaluated: list[int],
    unheld: dict[str, float],
) -> tuple[tuple[str, tuple[float, float], float], tuple[float, float]]:
    """d. the worst case: every target above OK, so none can be settled by the screen
    and every one is evaluated exactly on every frame (as in a market-wide crash)."""
    alarmed = {"warn": 0.001, "critical": 0.5, "distance_warn": 0.99, "distance_critical": 0.08}
    storm = Thresholds.model_validate({"cross": alarmed, "isolated": alarmed})
    for monitor in daemon.monitors:
        monitor.thresholds = storm
    (group,) = daemon.groups.values()
    rng = random.Random(11)
    held = group.evaluation.engine.layout.symbols
    moves = _walk({s: group.marks[s] for s in held}, args.frames + 5, args.step, rng)
    frames = [array_frame(m, unheld) for m in moves]
    await measure(server, frames[:5], done, samples)  # every target moves up to WARN
    half = 5 + args.frames // 2
    start = len(evaluated)
    got = await measure(server, frames[5:half], done, samples)
    ours = ("d. storm, all moved", summary(got), _mean(evaluated[start:]))
    naive = _naive_handler(group, lambda received, _: _storm_done(received, samples, done))
    daemon._on_ticks = lambda _group, ticks: naive(ticks)  # type: ignore[method-assign]
    base = await measure(server, frames[half:], done, samples)
    del daemon._on_ticks
    return ours, summary(base)


def _storm_done(received: float, samples: list[float], done: asyncio.Event) -> None:
    samples.append(time.monotonic() - received)
    done.set()


def _walk(
    marks: dict[str, float], count: int, step: float, rng: random.Random
) -> list[dict[str, float]]:
    """`count` successive mark sets, every symbol one random-walk step from the last.

    A walk with small steps, as 1-second marks move, rather than independent draws
    around the start: those would flip every near-threshold target on every frame and
    measure the audit file's flushes instead of a quiet market's steady state."""
    walk, current = [], dict(marks)
    for _ in range(count):
        current = {s: m * (1.0 + rng.gauss(0.0, step)) for s, m in current.items()}
        walk.append(current)
    return walk


def _mean(values: list[int]) -> float:
    return sum(values) / len(values) if values else 0.0


def _naive_handler(
    group: ExchangeGroup, tick_done: Callable[[float, int], None]
) -> Callable[[list[MarkTick]], None]:
    """What a monitor without the symbol index does: every account, every target."""

    def handle(ticks: list[MarkTick]) -> None:
        now = time.time()
        for tick in ticks:
            group.marks.update(tick.symbol, tick.price, now)
        targets = 0
        for monitor in group.monitors:
            assert monitor.book is not None
            risk = monitor.book.evaluate(group.marks)
            monitor._report(risk.pools, risk.positions)
            targets += len(risk.pools) + len(risk.positions)
        tick_done(min(t.received for t in ticks), targets)

    return handle


def _print(
    args: argparse.Namespace, report: Report, base: tuple[float, float], events: int
) -> None:
    print(
        f"{args.accounts} accounts x {args.positions} positions on {args.symbols} symbols; "
        f"array frames carry {args.symbols + args.unheld} markets; {events} events emitted"
    )
    for case in report:
        _print_case(args, case)
    print(f"{'baseline, full books':22}: median {base[0]:6.2f} ms   p99 {base[1]:6.2f} ms")
    for name, (median, p99), _ in report:
        print(f"baseline / {name:22}: median {base[0] / median:6.2f}x   p99 {base[1] / p99:6.2f}x")


def _print_case(args: argparse.Namespace, case: tuple[str, tuple[float, float], float]) -> None:
    name, (median, p99), targets = case
    goal = GOAL_P99_MS.get(args.accounts, 5.0) if args.positions == 25 else 5.0
    verdict = "ok" if p99 <= goal else "MISSED"
    print(
        f"{name:22}: median {median:6.2f} ms   p99 {p99:6.2f} ms   "
        f"{targets:7.1f} targets/frame   (goal p99 <= {goal:g} ms: {verdict})"
    )


def _print_storm(
    args: argparse.Namespace,
    storm: tuple[str, tuple[float, float], float],
    base: tuple[float, float],
) -> None:
    name, (median, p99), _ = storm
    _print_case(args, storm)
    print(f"{'baseline, storm':22}: median {base[0]:6.2f} ms   p99 {base[1]:6.2f} ms")
    print(f"baseline / {name:22}: median {base[0] / median:6.2f}x   p99 {base[1] / p99:6.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=int, default=200, help="frames per case")
    parser.add_argument("--accounts", type=int, default=200)
    parser.add_argument("--positions", type=int, default=25)
    parser.add_argument("--symbols", type=int, default=60, help="markets the book holds")
    parser.add_argument("--unheld", type=int, default=500, help="other markets in the array")
    parser.add_argument("--step", type=float, default=0.001, help="mark move per frame (sd)")
    args = parser.parse_args()
    if args.symbols <= MANY_STREAMS:
        parser.error(f"--symbols must exceed {MANY_STREAMS} for the all-market array stream")
    asyncio.run(run(args))


if __name__ == "__main__":
    main()
