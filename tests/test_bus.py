"""The daemon's event bus (monitor/bus.py): every subscriber hears every message of its
kind, in order; one that raises is logged and skipped, never the others; a cancelled
subscription hears nothing more."""

from __future__ import annotations

import logging

import pytest

from monitor.bus import REPEAT_LOG_PERIOD, Evaluated, EventBus, Polled, SymbolsChanged
from monitor.events import Event, EventKind, TargetKind


def level(account: str | None = "a", value: str = "warn") -> Event:
    return Event(EventKind.LEVEL, account, "pool USDT", TargetKind.POOL, value)


def test_every_subscriber_hears_every_message_of_its_kind_in_order() -> None:
    bus = EventBus()
    heard: list[tuple[str, object]] = []
    bus.subscribe(Event, lambda e: heard.append(("first", e)))
    bus.subscribe(Event, lambda e: heard.append(("second", e)))
    bus.subscribe(Evaluated, lambda e: heard.append(("evaluated", e)))
    warn, news = level(), Evaluated("a")
    bus.publish(warn)
    bus.publish(news)
    bus.publish(Polled("a", "binanceusdm", None))  # nobody listens: nothing happens
    assert heard == [("first", warn), ("second", warn), ("evaluated", news)]


def test_a_subscription_narrowed_to_an_account_hears_only_that_account() -> None:
    bus = EventBus()
    mine: list[Event] = []
    everything: list[Event] = []
    bus.subscribe(Event, mine.append, account="a")
    bus.subscribe(Event, everything.append)
    ours, theirs, feed = level("a"), level("b"), level(None)
    for event in (ours, theirs, feed):
        bus.publish(event)
    assert mine == [ours]
    assert everything == [ours, theirs, feed]


def test_a_failing_subscriber_is_logged_and_the_others_still_hear(
    caplog: pytest.LogCaptureFixture,
) -> None:
    now = [0.0]
    bus = EventBus(clock=lambda: now[0])
    before: list[Event] = []
    after: list[Event] = []

    def broken(_event: Event) -> None:
        raise RuntimeError("boom")

    bus.subscribe(Event, before.append)
    bus.subscribe(Event, broken)
    bus.subscribe(Event, after.append)
    with caplog.at_level(logging.ERROR, logger="monitor.bus"):
        for _ in range(3):  # a failure on every tick: logged once, not three times
            bus.publish(level())
        now[0] = REPEAT_LOG_PERIOD
        bus.publish(level())  # a minute on: logged again, with what it kept quiet
    assert len(before) == len(after) == 4
    assert bus.failed == 4
    logged = [r for r in caplog.records if r.name == "monitor.bus"]
    assert len(logged) == 2
    assert "broken" in logged[0].getMessage() and logged[0].exc_info is not None
    assert "2 more failures since last logged" in logged[1].getMessage()


def test_a_cancelled_subscription_hears_nothing_more() -> None:
    bus = EventBus()
    kept: list[SymbolsChanged] = []
    dropped: list[SymbolsChanged] = []
    bus.subscribe(SymbolsChanged, kept.append)
    subscription = bus.subscribe(SymbolsChanged, dropped.append)
    bus.publish(SymbolsChanged("a"))
    subscription.cancel()
    subscription.cancel()  # twice is harmless
    bus.publish(SymbolsChanged("a"))
    assert len(kept) == 2 and len(dropped) == 1


def test_cancelling_during_a_delivery_spares_that_delivery() -> None:
    """A subscriber that unsubscribes another (a daemon stopping on an event) changes
    the next delivery, not the one under way: nobody is skipped halfway."""
    bus = EventBus()
    heard: list[str] = []
    later = bus.subscribe(Evaluated, lambda _e: heard.append("later"))

    def first(_news: Evaluated) -> None:
        heard.append("first")
        later.cancel()

    bus.subscribe(Evaluated, first)
    bus.publish(Evaluated("a"))  # "later" was subscribed first: it heard before the cancel
    bus.publish(Evaluated("a"))
    assert heard == ["later", "first", "first"]

    heard.clear()
    bus = EventBus()
    bus.subscribe(Evaluated, lambda _e: (heard.append("canceller"), victim.cancel()))
    victim = bus.subscribe(Evaluated, lambda _e: heard.append("victim"))
    bus.publish(Evaluated("a"))  # under way when cancelled: still delivered this once
    bus.publish(Evaluated("a"))
    assert heard == ["canceller", "victim", "canceller"]


def test_a_burst_delivers_at_once_and_flushes_once_at_its_end(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A frame's events reach every subscriber as they are published; a buffering
    subscriber's flush runs once when the burst (nested or not) ends, where one that
    raises is logged and the others still run; outside a burst it runs at once, as part
    of the delivery (its failure is the subscriber's)."""
    bus = EventBus()
    story: list[str] = []

    def flush_a() -> None:
        story.append("flush a")

    def flush_b() -> None:
        story.append("flush b")

    def broken() -> None:
        raise OSError("disk full")

    def buffering(event: Event) -> None:
        story.append(f"got {event.level}")
        bus.flush_after(flush_a)
        bus.flush_after(broken)
        bus.flush_after(flush_b)

    bus.subscribe(Event, buffering)
    with caplog.at_level(logging.ERROR, logger="monitor.bus"):
        with bus.burst:
            bus.publish(level(value="warn"))
            with bus.burst:
                bus.publish(level(value="critical"))
            assert story == ["got warn", "got critical"]
        assert story == ["got warn", "got critical", "flush a", "flush b"]
        story.clear()
        bus.publish(level(value="ok"))
    assert story == ["got ok", "flush a"]
    assert bus.failed == 2
    assert "its flush" in caplog.records[0].getMessage()


def test_a_kind_is_listened_to_while_anyone_is_subscribed_to_it() -> None:
    bus = EventBus()
    assert not bus.listens(Evaluated)
    one = bus.subscribe(Evaluated, lambda _: None, account="a")
    everyone = bus.subscribe(Evaluated, lambda _: None)
    assert bus.listens(Evaluated) and not bus.listens(Polled)
    one.cancel()
    assert bus.listens(Evaluated)
    everyone.cancel()
    assert not bus.listens(Evaluated)


def test_a_batch_is_delivered_as_one_publish_per_message(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """`publish_all`: each message reaches every subscriber (everyone's, then its
    account's) before the next is handed out, messages of other kinds among them go to
    their own subscribers, and one that raises is logged and skipped for that message
    only."""
    bus = EventBus()
    heard: list[tuple[str, object]] = []

    def broken(event: Event) -> None:
        heard.append(("broken", event))
        raise RuntimeError("boom")

    bus.subscribe(Event, lambda e: heard.append(("first", e)))
    bus.subscribe(Event, broken)
    bus.subscribe(Event, lambda e: heard.append(("b's", e)), account="b")
    bus.subscribe(Evaluated, lambda n: heard.append(("news", n)))
    a, b, news, feed = level("a"), level("b"), Evaluated("b"), level(None)
    with caplog.at_level(logging.ERROR, logger="monitor.bus"):
        bus.publish_all([a, b, news, b, feed])
    assert heard == [
        ("first", a), ("broken", a),
        ("first", b), ("broken", b), ("b's", b),
        ("news", news),
        ("first", b), ("broken", b), ("b's", b),
        ("first", feed), ("broken", feed),
    ]  # fmt: skip
    assert bus.failed == 4
    assert "broken" in caplog.records[0].getMessage()


def test_a_subscription_made_or_cancelled_during_a_batch_counts_from_the_next_message() -> None:
    """As between two publishes: a subscriber cancelled by a delivery hears nothing
    more of the batch, one subscribed during it hears the messages that follow."""
    bus = EventBus()
    heard: list[tuple[str, str]] = []
    subscriptions = []

    def first(event: Event) -> None:
        heard.append(("first", event.level))
        if event.level == "critical":
            subscriptions[0].cancel()
            bus.subscribe(Event, lambda e: heard.append(("new", e.level)), account="a")

    bus.subscribe(Event, first)
    subscriptions.append(bus.subscribe(Event, lambda e: heard.append(("old", e.level))))
    bus.publish_all([level(value="warn"), level(value="critical"), level(value="ok")])
    assert heard == [
        ("first", "warn"), ("old", "warn"),
        ("first", "critical"), ("old", "critical"),  # under way when cancelled
        ("first", "ok"), ("new", "ok"),
    ]  # fmt: skip
