"""The tick path reports exactly what a straightforward scalar evaluation would.

`Daemon._on_ticks` evaluates every target of an exchange group with the vectorised
engine and classifies every row's level with arrays (daemon/evaluation.py). The
reference here is the plain way: on every frame, every account's scalar book
(`AccountBook.evaluate`) through its own `LevelTracker`. On random accounts of every
exchange model (linear, inverse, cross, isolated, hedge-mode pairs, unified pools, and
the unknowns: no tiers, no wallet, no isolated margin), with each account's own
thresholds, on random price paths (one symbol per frame or the whole market, drifting
through every level and back), with accounts re-read mid-walk (same positions, new
figures; and a new shape) and an account's thresholds changed at run time, both must
emit the same level changes with the same figures, frame by frame; every account with a
target above OK must be heard by the actions controller after every frame; and the
figures people read (`current()`) are the scalar book's.
"""

from __future__ import annotations

import asyncio
import math
import random
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from monitor.bus import Evaluated, EventBus
from monitor.config import Config, Thresholds
from monitor.daemon.account import AccountState
from monitor.daemon.service import Daemon
from monitor.daemon.sinks import JsonLinesSink
from monitor.domain import AccountSnapshot, CrossPool, MarginMode, Position, Side, Tier, TierTable
from monitor.engine.book import AccountBook
from monitor.events import Event, EventKind
from monitor.events.tracker import LevelTracker
from monitor.feeds import MarkTick
from tests.strategies import model_accounts
from tests.test_engine_vector import assert_same, scale_of

STORM = {"warn": 0.001, "critical": 0.5, "distance_warn": 0.99, "distance_critical": 0.08}
"""Every target above OK (a market-wide crash)."""
TIGHT = {"warn": 0.3, "critical": 0.5, "imminent": 0.7, "distance_warn": 0.4,
         "distance_critical": 0.2, "distance_imminent": 0.05, "clear_ratio": 0.05}  # fmt: skip
STORM_AIM = {"isolated": {"trigger": "critical", "target_distance": 0.12}}
"""STORM's warning never clears (99 %), so no defense could be aimed past it: the isolated
one triggers at critical, aimed past where that clears (8 % + 2 points)."""
TIGHT_AIM = {"isolated": {"target_distance": 0.5}, "cross": {"target_distance": 0.5}}
THRESHOLDS = [(None, None), (STORM, STORM_AIM), (TIGHT, TIGHT_AIM)]
"""Per account: the defaults, a storm, or tight levels with wide hysteresis (and the
defenses' aims each allows)."""


def same_event(ours: Event, theirs: Event) -> bool:
    """Same target, level and previous level; figures to the engines' 1e-9."""
    if (ours.kind, ours.account, ours.target, ours.level, ours.previous_level) != (
        theirs.kind, theirs.account, theirs.target, theirs.level, theirs.previous_level,
    ):  # fmt: skip
        return False
    for field in ("margin_ratio", "liquidation_distance", "liquidation_price", "mark_price"):
        a, b = getattr(ours, field), getattr(theirs, field)
        if (a is None) != (b is None):
            return False
        if a is not None and not (
            a == b or math.isclose(a, b, rel_tol=1e-7, abs_tol=1e-12) or math.isnan(a + b)
        ):
            return False
    return (ours.message, ours.exchange_liquidation_price, ours.margin_mode) == (
        theirs.message, theirs.exchange_liquidation_price, theirs.margin_mode,
    )  # fmt: skip


def assert_same_events(ours: list[Event], theirs: list[Event], frame: int) -> None:
    def key(e: Event) -> tuple[str | None, str]:
        return e.account, e.target

    ours, theirs = sorted(ours, key=key), sorted(theirs, key=key)
    assert [key(e) for e in ours] == [key(e) for e in theirs], f"frame {frame}: {ours} {theirs}"
    for a, b in zip(ours, theirs, strict=True):
        assert same_event(a, b), f"frame {frame}: {a} != {b}"


class Reference:
    """Every account's scalar book evaluated whole, through its own tracker: on install
    (that account, at the marks of that moment) and on every frame (every account)."""

    def __init__(self, daemon: Daemon) -> None:
        self.daemon = daemon
        self.tracker = LevelTracker()
        self.books: dict[str, AccountBook] = {}
        self.events: list[Event] = []

    def install(self, snapshot: AccountSnapshot, prices: dict[str, float]) -> None:
        self.books[snapshot.name] = AccountBook(snapshot)
        self._evaluate(self.daemon.monitors[int(snapshot.name[1:])], prices)

    def evaluate(self, prices: dict[str, float]) -> None:
        for monitor in self.daemon.monitors:
            self._evaluate(monitor, prices)

    def _evaluate(self, monitor: AccountState, prices: dict[str, float]) -> None:
        risk = self.books[monitor.name].evaluate(prices)
        for pool in risk.pools:
            if (e := self.tracker.pool(monitor.name, pool, monitor.thresholds)) is not None:
                self.events.append(e)
        for position in risk.positions:
            e = self.tracker.position(monitor.name, position, monitor.thresholds)
            if e is not None:
                self.events.append(e)


def refigured(snapshot: AccountSnapshot, rng: random.Random) -> AccountSnapshot:
    """A new read of the same positions: wallets and the exchange's liquidation prices
    moved (the engine writes it over the account's rows; the events carry the new
    prices)."""
    pools = tuple(replace(p, wallet_balance=p.wallet_balance * rng.uniform(0.6, 1.4))
                  for p in snapshot.pools)  # fmt: skip
    positions = tuple(
        replace(p, exchange_liquidation_price=p.entry_price * rng.uniform(0.5, 1.5))
        for p in snapshot.positions
    )
    return replace(snapshot, pools=pools, positions=positions, fetched_at=time.time())


def reshaped(snapshot: AccountSnapshot) -> AccountSnapshot:
    """A new read listing the same positions in another order: new rows (a re-join)."""
    return replace(snapshot, positions=snapshot.positions[::-1], fetched_at=time.time())


def step(rng: random.Random, drift: float) -> float:
    """A mark's factor for one frame: about 3 %, never more than 20 % (a seeded source
    may draw any float), never exactly none (a repeated mark is rightly not evaluated)."""
    factor = math.exp(max(-0.2, min(0.2, rng.gauss(drift, 0.03))))
    return factor if factor != 1.0 else 1.001


async def walk(
    snapshots: list[AccountSnapshot], levels: list[int], rng: random.Random
) -> set[str | None]:
    """Returns the levels the tick path reported."""
    with tempfile.TemporaryDirectory() as tmp:
        accounts = []
        for snapshot, choice in zip(snapshots, levels, strict=True):
            account = {"name": snapshot.name, "exchange": "binanceusdm",
                       "rest_url": "http://127.0.0.1:9"}  # fmt: skip
            levels, aim = THRESHOLDS[choice]
            if levels is not None:
                account["thresholds"] = {"cross": levels, "isolated": levels}
                account["actions"] = aim
            accounts.append(account)
        config = Config.model_validate({"state_dir": tmp, "accounts": accounts})
        events: list[Event] = []
        daemon = Daemon(config, events.append)
        (group,) = daemon.groups.values()
        board = group.marks
        heard: set[str] = set()
        daemon.bus.subscribe(Evaluated, lambda news: heard.add(news.account))
        reference = Reference(daemon)
        current = {s.name: s for s in snapshots}
        seen: set[str | None] = set()
        try:
            for monitor in daemon.monitors:
                # no market table: no feed (ticks come from here); each install writes
                # its snapshot's marks to the board and evaluates its account there
                daemon.pollers[monitor.name]._succeeded(current[monitor.name])
                reference.install(current[monitor.name], board.prices)
            assert_same_events(events, reference.events, -1)
            symbols = sorted(board.prices)
            for frame in range(120):
                events.clear()
                reference.events.clear()
                if frame % 40 == 39:  # a poll mid-walk: same positions, or a new shape
                    monitor = rng.choice(daemon.monitors)
                    again = current[monitor.name]
                    again = refigured(again, rng) if frame < 79 else reshaped(again)
                    current[monitor.name] = again
                    daemon.pollers[monitor.name]._succeeded(again)
                    reference.install(again, board.prices)
                    assert_same_events(events, reference.events, frame)
                    events.clear()
                    reference.events.clear()
                if frame == 60:  # new thresholds at run time (the storm benchmark does it)
                    retuned = rng.choice(daemon.monitors)
                    retuned.thresholds = Thresholds.model_validate(
                        {"cross": TIGHT, "isolated": STORM}
                    )
                whole = frame % 5 == 0
                moved = symbols if whole else [rng.choice(symbols)]
                drift = 0.01 if (frame // 30) % 2 else -0.01
                now = time.time()
                ticks = [
                    MarkTick("binanceusdm", s, board.prices[s] * step(rng, drift), now,
                             time.monotonic())
                    for s in moved
                ]  # fmt: skip
                heard.clear()
                daemon._on_ticks(group, ticks)
                reference.evaluate(board.prices)
                levels_only = [e for e in events if e.kind is EventKind.LEVEL]
                assert levels_only == events  # a tick only ever reports level changes
                assert_same_events(events, reference.events, frame)
                seen |= {e.level for e in events}
                alarmed = {a for (a, _), level in reference.tracker.items() if level != "ok"}
                assert alarmed <= heard, f"frame {frame}: not heard: {alarmed - heard}"
            for monitor in daemon.monitors:
                snapshot = current[monitor.name]
                scalar = AccountBook(snapshot).evaluate(board.prices)
                assert_same(monitor.current(), scalar, scale_of(snapshot))
        finally:
            await daemon.stop()
    return seen


def named(snapshots: list[AccountSnapshot]) -> list[AccountSnapshot]:
    return [replace(s, name=f"a{i}") for i, s in enumerate(snapshots)]


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(
    st.lists(model_accounts(), min_size=1, max_size=5).map(named),
    st.lists(st.integers(0, len(THRESHOLDS) - 1), min_size=5, max_size=5),
    st.randoms(use_true_random=False),
)
def test_tick_path_events_equal_a_scalar_evaluation_on_every_frame(snapshots, levels, rng):
    asyncio.run(walk(snapshots, levels[: len(snapshots)], rng))


SYMBOLS = [f"S{i}/USDT:USDT" for i in range(6)]


def binance_like(scale: float) -> TierTable:
    floors, rates = [0, 5e4, 2.5e5, 1e6, 5e6], [0.004, 0.005, 0.01, 0.025, 0.05]
    tiers, cum = [], 0.0
    for i, (floor, rate) in enumerate(zip(floors, rates, strict=True)):
        cum += floor * scale * (rate - rates[i - 1]) if i else 0.0
        cap = floors[i + 1] * scale if i + 1 < len(floors) else 1e15
        tiers.append(Tier(floor * scale, cap, rate, cum))
    return TierTable(tuple(tiers))


def binance_account(rng: random.Random, name: str, marks: dict[str, float]) -> AccountSnapshot:
    """Cross legs plus a couple of isolated ones, leveraged from calm to reckless."""
    tiers = {s: binance_like(rng.choice([0.1, 1.0])) for s in SYMBOLS}
    positions = []
    for i, symbol in enumerate(rng.sample(SYMBOLS, 5)):
        mode = MarginMode.ISOLATED if i < 2 else MarginMode.CROSS
        notional = rng.uniform(5e3, 3e5)
        mark = marks[symbol]
        positions.append(
            Position(
                symbol, rng.choice(list(Side)), mode, notional / mark, 1.0,
                mark * rng.uniform(0.97, 1.03), mark, "USDT",
                isolated_margin=notional / rng.uniform(4, 40) if i < 2 else None,
            )
        )  # fmt: skip
    gross = sum(p.contracts * p.mark_price for p in positions if p.isolated_margin is None)
    pools = (CrossPool("USDT", gross / rng.uniform(3, 60)),)
    return AccountSnapshot(name, "binanceusdm", pools, tuple(positions), tiers)


def test_many_accounts_on_one_set_of_symbols_report_every_change():
    """Many accounts on the same few symbols, calm to reckless: the common production
    shape (one Binance group), every account's levels crossed many times."""
    rng = random.Random(7)
    marks = {s: rng.uniform(1, 50_000) for s in SYMBOLS}
    snapshots = [binance_account(rng, f"a{i}", marks) for i in range(12)]
    seen = asyncio.run(walk(snapshots, [i % len(THRESHOLDS) for i in range(12)], rng))
    assert {"ok", "warn", "critical", "imminent"} <= seen, seen


def test_a_frames_events_are_on_disk_before_its_news_reaches_the_controllers():
    """With the audit file on the daemon's bus (as `run --events` wires it), a frame's
    events are written out together, once the frame is evaluated: every one of them is
    in the file, in order, by the time an account's `Evaluated` news is heard."""
    rng = random.Random(11)
    marks = {s: rng.uniform(1, 50_000) for s in SYMBOLS}
    snapshots = [binance_account(rng, f"a{i}", marks) for i in range(6)]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "events.jsonl"
        events = asyncio.run(crash(snapshots, path))
        assert path.read_bytes().splitlines() == [e.to_json_bytes() for e in events]


async def crash(snapshots: list[AccountSnapshot], path: Path) -> list[Event]:
    """Every mark down 6 % a frame, ten frames, on tight thresholds (every level crossed);
    returns the events published."""
    bus = EventBus()
    sink = JsonLinesSink(path, bus)
    accounts = [{"name": s.name, "exchange": "binanceusdm", "rest_url": "http://127.0.0.1:9",
                 "thresholds": {"cross": TIGHT, "isolated": TIGHT},
                 "actions": TIGHT_AIM} for s in snapshots]  # fmt: skip
    config = Config.model_validate({"state_dir": path.parent, "accounts": accounts})
    events: list[Event] = []
    daemon = Daemon(config, sink.emit, bus=bus)
    bus.subscribe(Event, events.append)
    on_disk: list[tuple[int, int]] = []  # (lines in the file, events published so far)
    bus.subscribe(
        Evaluated, lambda _: on_disk.append((len(path.read_bytes().splitlines()), len(events)))
    )
    (group,) = daemon.groups.values()
    try:
        for snapshot in snapshots:
            daemon.pollers[snapshot.name]._succeeded(snapshot)
        for frame in range(10):
            before = len(events)
            on_disk.clear()
            prices = group.marks.prices
            ticks = [MarkTick("binanceusdm", s, prices[s] * 0.94, time.time(), time.monotonic())
                     for s in SYMBOLS]  # fmt: skip
            daemon._on_ticks(group, ticks)
            assert on_disk, f"frame {frame}: no account above OK heard"
            assert all(lines == published for lines, published in on_disk), on_disk
            if frame == 0:
                assert len(events) > before + 1  # several events in one frame
    finally:
        await daemon.stop()
        sink.close()
    return events
