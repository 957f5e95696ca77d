"""The daemon's small parts: level changes, mark ordering, event form, backoff."""

from __future__ import annotations

import math

import orjson

from monitor.bus import EventBus
from monitor.config import Thresholds
from monitor.daemon.marks import MarkBoard
from monitor.daemon.retry import AUTH_CAP, RATE_LIMIT_CAP, retry_delay
from monitor.daemon.sinks import JsonLinesSink, describe
from monitor.domain import MarginMode, Position, Side
from monitor.engine.levels import Level
from monitor.engine.results import PoolRisk, PositionRisk
from monitor.events import Event, EventKind, TargetKind
from monitor.events.tracker import LevelTracker, pool_figures
from monitor.exchange.errors import ErrorKind

LIMITS = Thresholds()  # cross warn 0.5 / critical 0.75, distance 0.15 / 0.08


def pool(ratio: float | None, distance: float | None = 0.5) -> PoolRisk:
    return PoolRisk("USDT", 1000.0, 0.0, 1000.0, 10.0, ratio, -distance if distance else None,
                    distance, None)  # fmt: skip


def test_first_ok_sighting_is_silent_and_changes_both_ways_are_events():
    tracker = LevelTracker()
    assert tracker.pool("a", pool(0.1), LIMITS) is None
    up = tracker.pool("a", pool(0.6), LIMITS)
    assert (up.kind, up.previous_level, up.level) == (EventKind.LEVEL, "ok", "warn")
    assert tracker.pool("a", pool(0.61), LIMITS) is None  # same level: no event
    critical = tracker.pool("a", pool(0.8), LIMITS)
    assert (critical.previous_level, critical.level) == ("warn", "critical")
    down = tracker.pool("a", pool(0.2), LIMITS)
    assert (down.previous_level, down.level) == ("critical", "ok")


def test_a_level_the_caller_classified_is_taken_as_given():
    """The tick path's arrays classify every row (`level_for`'s rules, held against the
    level last reported); the tracker records and words what they decided, in row order,
    and stays silent where it already holds that level or first sees a target at OK."""
    tracker = LevelTracker()
    key = "pool USDT"

    def report(accounts: list[str], risks: list[PoolRisk], levels: list[Level]) -> list[Event]:
        keys = [key] * len(accounts)
        return tracker.report(TargetKind.POOL, accounts, keys, levels, pool_figures(risks))

    assert report(["a", "b"], [pool(0.1), pool(0.1)], [Level.OK] * 2) == []
    # Its figures say OK; the level given is what counts. b's row holds its level.
    (up,) = report(["a", "b"], [pool(0.1), pool(0.1)], [Level.CRITICAL, Level.OK])
    assert (up.account, up.previous_level, up.level, up.margin_ratio) == (
        "a", Level.OK, Level.CRITICAL, 0.1,
    )  # fmt: skip
    assert type(up) is Event and up.margin_mode == "cross" and up.target_kind is TargetKind.POOL
    assert tracker.last("a", key) is Level.CRITICAL
    first, down = report(["c", "a"], [pool(None, None), pool(0.2)], [Level.UNKNOWN, Level.OK])
    assert (first.account, first.previous_level, first.level) == ("c", None, Level.UNKNOWN)
    assert (down.account, down.previous_level, down.level) == ("a", Level.CRITICAL, Level.OK)
    assert first.time == down.time  # one frame's changes, seen at one instant
    assert tracker.pool("a", pool(0.2), LIMITS) is None  # the scalar path sees it held


def test_unknown_figures_are_a_level_of_their_own_not_ok():
    tracker = LevelTracker()
    tracker.pool("a", pool(0.1), LIMITS)
    event = tracker.pool("a", pool(None, None), LIMITS)
    assert event.level == "unknown"


def test_isolated_positions_use_isolated_thresholds():
    position = Position("X/USDT:USDT", Side.LONG, MarginMode.ISOLATED, 1, 1, 10, 10, "USDT",
                        isolated_margin=1.0)  # fmt: skip
    risk = PositionRisk(position, 10, 10, 0, 0.1, 0.55, 9.0, 0.5)  # isolated warn is 0.60
    assert LevelTracker().position("a", risk, LIMITS) is None
    risk = risk._replace(margin_ratio=0.65)
    assert LevelTracker().position("a", risk, LIMITS).level == "warn"


def test_forget_drops_only_vanished_targets_of_that_account():
    tracker = LevelTracker()
    tracker.pool("a", pool(0.6), LIMITS)
    tracker.pool("b", pool(0.6), LIMITS)
    assert tracker.forget("a", keep=[]) == ["pool USDT"]
    assert tracker.last("a", "pool USDT") is None
    assert tracker.last("b", "pool USDT") == "warn"


def test_mark_board_never_goes_back_in_time():
    board = MarkBoard()
    assert board.update("BTC", 100.0, at=10.0)
    assert not board.update("BTC", 90.0, at=9.0)  # an older REST mark loses to the stream
    assert board["BTC"] == 100.0
    assert board.update("BTC", 95.0, at=11.0)
    assert board.get("ETH") is None and not board.update("ETH", 0.0, at=12.0)


def test_event_json_has_no_infinities():
    event = Event(EventKind.LEVEL, "a", "pool USDT", TargetKind.POOL, "critical", "warn",
                  margin_ratio=math.inf, liquidation_distance=0.0)  # fmt: skip
    doc = orjson.loads(orjson.dumps(event.to_json()))
    assert doc["margin_ratio"] is None and doc["liquidation_distance"] == 0.0
    assert doc["kind"] == "level" and doc["target_kind"] == "pool"
    assert "warn -> critical" in describe(event)


def test_transient_failures_are_retried_at_the_next_poll_however_many():
    for kind in (ErrorKind.NETWORK, ErrorKind.EXCHANGE_DOWN, ErrorKind.BAD_REPLY):
        assert retry_delay(kind, 1, 10.0) == 0.0
        assert retry_delay(kind, 40, 10.0) == 0.0  # a long outage does not delay the return


def test_rate_limits_back_off_jittered_and_capped_unless_the_exchange_says_longer():
    first = [retry_delay(ErrorKind.RATE_LIMIT, 1, 10.0) for _ in range(50)]
    assert all(5.0 <= d <= 10.0 for d in first) and len(set(first)) > 1
    assert all(20.0 <= retry_delay(ErrorKind.RATE_LIMIT, 3, 10.0) <= 40.0 for _ in range(20))
    assert all(retry_delay(ErrorKind.RATE_LIMIT, 30, 10.0) <= RATE_LIMIT_CAP for _ in range(20))
    assert retry_delay(ErrorKind.RATE_LIMIT, 1, 10.0, retry_after=120.0) == 120.0  # a 418 ban
    assert retry_delay(ErrorKind.RATE_LIMIT, 9, 10.0, retry_after=1.0) == 1.0  # its word
    assert all(retry_delay(ErrorKind.AUTH, 30, 10.0) <= AUTH_CAP for _ in range(20))
    assert retry_delay(ErrorKind.AUTH, 30, 10.0) > RATE_LIMIT_CAP / 2


def test_jsonl_sink_appends_and_a_broken_sink_does_not_stop_others(tmp_path):
    class Broken:
        def emit(self, event):
            raise RuntimeError("boom")

    path = tmp_path / "events.jsonl"
    jsonl = JsonLinesSink(path)
    bus = EventBus()
    bus.subscribe(Event, Broken().emit)
    bus.subscribe(Event, jsonl.emit)
    for level in ("warn", "critical"):
        bus.publish(Event(EventKind.LEVEL, "a", "pool USDT", TargetKind.POOL, level))
    jsonl.close()
    lines = [orjson.loads(line) for line in path.read_bytes().splitlines()]
    assert [line["level"] for line in lines] == ["warn", "critical"]


def test_hysteresis_holds_a_level_until_the_clear_margin_is_passed():
    from monitor.engine.levels import Level, level_for

    # critical 0.75: 5 % of it (0.0375) is wider than clear_ratio's 0.02 -> below 0.7125
    cross = LIMITS.cross
    assert level_for(0.76, None, cross) is Level.CRITICAL
    assert level_for(0.74, None, cross, previous=Level.CRITICAL) is Level.CRITICAL
    assert level_for(0.7126, None, cross, previous=Level.CRITICAL) is Level.CRITICAL
    assert level_for(0.7124, None, cross, previous=Level.CRITICAL) is Level.WARN
    assert level_for(0.74, None, cross, previous=Level.WARN) is Level.WARN  # no carry upward
    # distance: critical at 8 %; 5 % of it would clear above 8.4 %, but the absolute
    # clear_distance of 2 points is wider: it clears above 10 %
    assert level_for(None, 0.085, cross, previous=Level.CRITICAL) is Level.CRITICAL
    assert level_for(None, 0.0999, cross, previous=Level.CRITICAL) is Level.CRITICAL
    assert level_for(None, 0.1001, cross, previous=Level.CRITICAL) is Level.WARN


def test_imminent_is_reached_by_either_figure():
    from monitor.engine.levels import Level, level_for

    assert level_for(0.96, 0.5, LIMITS.cross) is Level.IMMINENT
    assert level_for(0.1, 0.009, LIMITS.cross) is Level.IMMINENT
    assert level_for(0.1, 0.5, LIMITS.cross) is Level.OK


def test_tracker_does_not_flap_around_a_threshold():
    tracker = LevelTracker()
    levels = []
    for ratio in (0.74, 0.76, 0.749, 0.751, 0.748, 0.752, 0.70):
        event = tracker.pool("a", pool(ratio), LIMITS)
        if event is not None:
            levels.append(event.level)
    assert levels == ["warn", "critical", "warn"]


def test_library_tracebacks_become_one_line_and_secrets_are_masked():
    import io
    import logging

    from monitor.logs import OneLineLibraryErrors, RedactSecrets

    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(OneLineLibraryErrors(("telegram",)))
    handler.addFilter(RedactSecrets(["s3cr3t-token"]))
    logger = logging.getLogger("telegram.ext.Updater")
    logger.addHandler(handler)
    try:
        try:
            raise ConnectionError("502 from /bots3cr3t-token/getUpdates")
        except ConnectionError:
            logger.exception("polling failed")
    finally:
        logger.removeHandler(handler)
    text = stream.getvalue()
    assert text.count("\n") == 1 and "Traceback" not in text
    assert "ConnectionError" in text and "s3cr3t-token" not in text


def test_a_slow_poll_never_overwrites_a_mark_streamed_during_it(tmp_path):
    """A poll begins at t = 100 and its reply lands at t = 102 carrying the mark of its
    start, 3,000; the stream delivered 3,100 at t = 101. The streamed mark stays: the
    reply's prices are as old as the read's start, not as new as its arrival."""
    from monitor.config import Config
    from monitor.daemon.service import Daemon
    from monitor.domain import AccountSnapshot, CrossPool, Tier, TierTable

    config = Config.model_validate(
        {"state_dir": str(tmp_path), "accounts": [
            {"name": "a", "exchange": "binanceusdm", "rest_url": "http://127.0.0.1:9"}]}
    )  # fmt: skip
    (monitor,) = Daemon(config, lambda event: None).pollers.values()
    eth = Position("ETH/USDT:USDT", Side.LONG, MarginMode.CROSS, 5, 1, 3400, 3000, "USDT")
    tiers = {"ETH/USDT:USDT": TierTable((Tier(0, 1e12, 0.005, 0),))}
    snapshot = AccountSnapshot(
        "a", "binanceusdm", (CrossPool("USDT", 6000),), (eth,), tiers, fetched_at=102.0
    )
    marks = monitor.state.marks
    marks.update("ETH/USDT:USDT", 3100.0, 101.0)
    monitor._succeeded(snapshot, read_started=100.0)
    assert marks.get("ETH/USDT:USDT") == 3100.0
    monitor._succeeded(snapshot, read_started=101.5)  # a read begun after the stream's mark
    assert marks.get("ETH/USDT:USDT") == 3000.0


async def test_a_stopped_daemon_leaves_the_shared_bus_to_the_next(tmp_path):
    """A reload stops one daemon and builds the next on the runner's bus: the stopped one
    must hear nothing more (no doubled events, no controller of the old daemon woken),
    and the new one is wired as if the bus were its own."""
    from monitor.bus import Polled
    from monitor.config import Config
    from monitor.daemon.service import Daemon
    from monitor.domain import AccountSnapshot, CrossPool, Tier, TierTable

    config = Config.model_validate(
        {"state_dir": str(tmp_path), "accounts": [
            {"name": "a", "exchange": "binanceusdm", "rest_url": "http://127.0.0.1:9"}]}
    )  # fmt: skip
    bus = EventBus()
    reads: list[Polled] = []
    bus.subscribe(Polled, reads.append)  # the runner's own subscriber stays throughout
    old_events: list[Event] = []
    new_events: list[Event] = []
    old = Daemon(config, old_events.append, bus=bus)
    await old.stop()
    new = Daemon(config, new_events.append, bus=bus)
    eth = Position("ETH/USDT:USDT", Side.LONG, MarginMode.CROSS, 5, 1, 3400, 3000, "USDT")
    tiers = {"ETH/USDT:USDT": TierTable((Tier(0, 1e12, 0.005, 0),))}
    # equity 2,090 - 5 x 400 = 90 against 5 x 3,000 x 0.005 = 75 of MM: far from OK
    snapshot = AccountSnapshot("a", "binanceusdm", (CrossPool("USDT", 2090),), (eth,), tiers)
    try:
        new.pollers["a"]._succeeded(snapshot)
        assert new.first_evaluation.is_set() and not old.first_evaluation.is_set()
        assert old_events == [] and new_events  # the new daemon's first sightings
        assert [(r.account, r.error) for r in reads] == [("a", None)]
    finally:
        await new.stop()
