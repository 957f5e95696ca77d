"""The whole pipeline with a fake clock and a fake daemon view: what the user receives."""

from __future__ import annotations

import asyncio
import itertools
import json
from datetime import UTC, datetime

from alerts.messages import MAX_CHARS
from alerts.notification import Notification
from alerts.pipeline import AlertPipeline, next_daily
from monitor.config import Config
from monitor.events import Event, EventKind, TargetKind

START = datetime(2026, 3, 2, 12, 0, tzinfo=UTC).timestamp()
POOL = "pool USDT"


class FakeView:
    """The daemon as the pipeline sees it: accounts a and b, each on its own feed."""

    def __init__(self) -> None:
        self.levels_now: dict[str, dict[str, str] | None] = {"a": None, "b": None}
        self.seeing: set[tuple[str | None, str]] = set()

    def accounts(self):
        return tuple(self.levels_now)

    def exchange(self, account):
        return "binanceusdm"

    def risk(self, account):
        return None

    def levels(self, account):
        levels = self.levels_now.get(account, {})
        return None if levels is None else dict(levels)

    def figures(self, account, target):
        return None

    def book(self, account):
        return None

    def marks(self, account):
        return {}

    def feed_accounts(self):
        return {"feed binanceusdm": ("a",), "feed okx": ("b",)}

    def sees(self, account, target):
        return (account, target) in self.seeing


class Harness:
    def __init__(self, **alerts) -> None:
        self.now = START
        self.config = Config.model_validate(
            {
                "accounts": [
                    {"name": "a", "exchange": "binanceusdm"},
                    {"name": "b", "exchange": "okx"},
                ],
                "alerts": alerts,
            }
        )
        self.view = FakeView()
        self.sent: list[Notification] = []
        self.pipeline = AlertPipeline(
            lambda: self.config, self.view, lambda: self.now, self.sent.append
        )

    def emit(self, *events: Event) -> None:
        for event in events:
            self.pipeline.emit(event)

    def advance(self, seconds: float, step: float = 0.5) -> list[Notification]:
        """Tick every `step` seconds for `seconds`; returns what was sent meanwhile."""
        before = len(self.sent)
        end = self.now + seconds
        while self.now < end:
            self.now = min(end, self.now + step)
            self.pipeline.tick(self.now)
        return self.sent[before:]


def level(value: str, target: str = POOL, account: str = "a", ratio: float = 0.6) -> Event:
    kind = TargetKind.POOL if target.startswith("pool ") else TargetKind.POSITION
    return Event(EventKind.LEVEL, account, target, kind, value, margin_ratio=ratio)


def blind_feed(feed: str = "feed binanceusdm") -> Event:
    return Event(EventKind.BLIND, None, feed, TargetKind.FEED, "unknown", message="marks stale")


def test_warn_critical_imminent_resolved_is_four_messages_and_no_more():
    h = Harness()
    received = []
    for value, ratio in (("warn", 0.55), ("critical", 0.8), ("imminent", 0.96), ("ok", 0.2)):
        h.emit(level(value, ratio=ratio))
        received += h.advance(60)
    assert [(n.kind, n.level) for n in received] == [
        ("alert", "warn"), ("alert", "critical"), ("alert", "imminent"), ("resolved", "ok"),
    ]  # fmt: skip
    assert "CRITICAL (was WARN)" in received[1].text
    assert "IMMINENT (was CRITICAL)" in received[2].text
    assert "back to OK (was IMMINENT)" in received[3].text
    assert len({n.id for n in received}) == 4
    assert h.advance(24 * 3600, step=10) == []


def test_group_wait_delays_the_first_message_and_a_drop_back_within_for_sends_nothing():
    h = Harness(**{"for": {"warn": 30, "critical": 0, "imminent": 0}})
    h.emit(level("warn"))
    assert h.advance(29) == []
    h.emit(level("ok"))
    assert h.advance(600) == []
    h.emit(level("critical"))
    assert h.advance(1.5) == []
    assert [n.level for n in h.advance(1)] == ["critical"]


def test_repeats_follow_the_level_interval_on_the_fake_clock():
    h = Harness()
    h.emit(level("critical", ratio=0.8))
    first = h.advance(5)
    repeats = h.advance(3700)
    assert all("CRITICAL (still)" in n.text for n in repeats)
    times = [n.created for n in first + repeats]
    # every 15 minutes, each repeat of an account gathered for group_wait (2 s) too
    assert [later - earlier for earlier, later in itertools.pairwise(times)] == [902.0] * 4
    h.emit(level("imminent", ratio=0.97))
    assert len(h.advance(500)) == 1 + 4  # announced, then every 2 minutes


def test_a_blind_feed_pages_itself_and_holds_its_accounts_price_alerts():
    h = Harness()
    h.emit(blind_feed(), level("critical", account="a"), level("critical", account="b"))
    sent = h.advance(5)
    assert {(n.account, n.level) for n in sent} == {("b", "critical"), (None, "critical")}
    feed = next(n for n in sent if n.account is None)
    assert feed.accounts == ("a",)
    assert "BLIND · feed binanceusdm" in feed.text
    assert "price alerts of a held" in feed.text
    assert all(n.account != "a" for n in h.advance(600))  # the feed repeats; a stays held
    h.emit(Event(EventKind.RECOVERED, None, "feed binanceusdm", TargetKind.FEED, "ok"))
    sent = h.advance(5)
    assert {(n.account, n.kind) for n in sent} == {("a", "alert"), (None, "resolved")}


def test_a_blind_alert_resolves_when_the_daemon_sees_again_without_saying_so():
    h = Harness()
    h.emit(blind_feed())
    h.advance(5)
    h.view.seeing.add((None, "feed binanceusdm"))  # a reload's new daemon: LIVE, no event
    sent = h.advance(5)
    assert [n.kind for n in sent] == ["resolved"]


def test_a_silence_holds_alerts_until_it_expires():
    h = Harness()
    h.pipeline.silences.add("a", 600, target="pool")
    h.emit(level("critical"))
    assert h.advance(599) == []
    assert [n.level for n in h.advance(5)] == ["critical"]


def test_a_probable_liquidation_is_said_even_under_a_silence():
    h = Harness()
    target = "BTC/USDT:USDT long cross"
    h.emit(level("critical", target))
    h.advance(5)
    h.pipeline.silences.add("a", 3600)
    h.emit(
        Event(
            EventKind.PROBABLE_LIQUIDATION, "a", target, TargetKind.POSITION, "critical",
            message="position disappeared while critical: probable liquidation or ADL",
        )
    )  # fmt: skip
    sent = h.advance(5)
    assert len(sent) == 1
    assert "PROBABLE LIQUIDATION" in sent[0].text
    assert h.advance(3600) == []  # the position's price alert ended with it


def test_forty_positions_moving_in_one_burst_make_one_message():
    h = Harness()
    targets = [f"C{i:02d}/USDT:USDT long cross" for i in range(40)]
    h.emit(level("critical", ratio=0.8))
    for i, target in enumerate(targets):
        if i == 20:
            h.advance(1)  # the burst spans two ticks
        h.emit(level("critical", target, ratio=0.8))
    sent = h.advance(10)
    assert len(sent) == 1
    assert set(sent[0].targets) == {POOL, *targets}
    assert len(sent[0].text) <= MAX_CHARS


def test_a_target_that_closed_without_an_event_is_resolved_as_no_longer_open():
    h = Harness()
    h.emit(level("warn", "ETH/USDT:USDT long isolated"))
    h.advance(5)
    h.view.levels_now["a"] = {POOL: "ok"}  # read again: the position is gone
    sent = h.advance(5)
    assert [n.kind for n in sent] == ["resolved"]
    assert "no longer open (was WARN)" in sent[0].text


def test_export_restore_neither_repages_nor_forgets_and_reannounces_criticals_once():
    h = Harness()
    h.emit(
        level("warn", "pool BTC", ratio=0.55),
        level("critical", ratio=0.8),
        level("imminent", "ETH/USDT:USDT long isolated", account="b", ratio=0.97),
    )
    assert len(h.advance(5)) == 2  # one per account
    h.pipeline.silences.add("b", 7200, target="XRP")
    state = json.loads(json.dumps(h.pipeline.export_state()))  # as the store keeps it

    restarted = Harness()
    restarted.now = h.now + 30
    restarted.pipeline.restore_state(state, restarted.now)
    assert [s.target for s in restarted.pipeline.silences.active()] == ["XRP"]
    # The fresh LevelTracker reports every non-ok target again, as if new.
    restarted.emit(
        level("warn", "pool BTC", ratio=0.55),
        level("critical", ratio=0.8),
        level("imminent", "ETH/USDT:USDT long isolated", account="b", ratio=0.97),
    )
    assert restarted.advance(29) == []
    again = restarted.advance(5)
    assert sorted((n.account, n.kind, n.targets) for n in again) == [
        ("a", "reannounce", (POOL,)),
        ("b", "reannounce", ("ETH/USDT:USDT long isolated",)),
    ]
    assert all("re-announced after a restart" in n.text for n in again)
    assert restarted.advance(60) == []
    ids = {n.id for n in h.sent}
    assert not ids & {n.id for n in restarted.sent}


def test_after_a_restore_a_level_that_changed_meanwhile_is_said_at_once():
    h = Harness()
    h.emit(level("critical", ratio=0.8))
    h.advance(5)
    restarted = Harness()
    restarted.pipeline.restore_state(h.pipeline.export_state(), restarted.now)
    restarted.view.levels_now["a"] = {POOL: "ok"}  # first read after restart: calm, silently
    sent = restarted.advance(5)
    assert [n.kind for n in sent] == ["resolved"]


def liquidation(target: str, order_id: str | None, at: float) -> Event:
    return Event(EventKind.PROBABLE_LIQUIDATION, "a", target, TargetKind.POSITION, "critical",
                 message="liquidation order reported by the exchange", time=at,
                 order_id=order_id)  # fmt: skip


def test_a_page_restored_unsaid_from_an_older_save_is_not_said_again():
    """The audit's duplicate, without processes: the state saved while the liquidation
    waited out `group_wait`, then the page went out, then a crash. The restarted pipeline
    holds the liquidation as unsaid and ETH moved meanwhile; what was said (committed with
    the page) keeps the liquidation out of the new page, which has a new id."""
    btc, eth = "BTC/USDT:USDT long isolated", "ETH/USDT:USDT long isolated"
    h = Harness()
    h.emit(level("warn", eth, ratio=0.5))
    h.advance(5)
    h.emit(liquidation(btc, "17965541340741", h.now))
    stale = json.loads(json.dumps(h.pipeline.export_state()))  # saved mid group_wait
    (page,) = h.advance(5)
    said = json.loads(json.dumps(h.pipeline.export_state()))  # committed with the page
    assert "PROBABLE LIQUIDATION" in page.text

    restarted = Harness()
    restarted.now = h.now + 20
    restarted.pipeline.restore_state({**stale, "said": said["said"]}, restarted.now)
    restarted.emit(level("critical", eth, ratio=0.8))
    (again,) = restarted.advance(5)
    assert "PROBABLE LIQUIDATION" not in again.text
    assert "CRITICAL (was WARN)" in again.text and again.id != page.id


def test_a_liquidation_reported_again_with_its_order_id_is_deduplicated():
    """Same order id: same identity, whenever the event is re-emitted; another order of
    the same position (a later liquidation) is a new page."""
    btc = "BTC/USDT:USDT long isolated"
    h = Harness()
    h.emit(liquidation(btc, "1001", h.now))
    assert len(h.advance(5)) == 1
    restarted = Harness()
    restarted.now = h.now + 60
    restarted.pipeline.restore_state(h.pipeline.export_state(), restarted.now)
    restarted.emit(liquidation(btc, "1001", restarted.now))
    assert restarted.advance(5) == []
    restarted.emit(liquidation(btc, "1002", restarted.now))
    assert len(restarted.advance(5)) == 1


def test_a_refused_delivery_is_retried():
    h = Harness()
    failures = [RuntimeError("outbox full")]

    def deliver(notification):
        if failures:
            raise failures.pop()
        h.sent.append(notification)

    h.pipeline = AlertPipeline(lambda: h.config, h.view, lambda: h.now, deliver)
    h.emit(level("critical"))
    assert [n.level for n in h.advance(10)] == ["critical"]


def test_the_daily_summary_goes_out_once_per_account_at_its_time():
    h = Harness(daily_summary="08:00")
    h.now = datetime(2026, 3, 2, 7, 59, 50, tzinfo=UTC).timestamp()
    assert h.advance(9) == []
    sent = h.advance(2)
    assert [(n.kind, n.account) for n in sent] == [("summary", "a"), ("summary", "b")]
    assert "Daily summary · 08:00 UTC" in sent[0].text
    assert h.advance(3600) == []


def test_next_daily_is_strictly_after_now():
    eight = datetime(2026, 3, 2, 8, 0, tzinfo=UTC).timestamp()
    assert next_daily(eight - 1, "08:00") == eight
    assert next_daily(eight, "08:00") == eight + 86400


async def test_run_reacts_to_an_event_without_waiting_for_the_timer():
    h = Harness(group_wait=0)
    task = asyncio.create_task(h.pipeline.run())
    await asyncio.sleep(0)
    h.emit(level("critical"))
    for _ in range(50):
        if h.sent:
            break
        await asyncio.sleep(0.01)
    task.cancel()
    assert [n.level for n in h.sent] == ["critical"]


def test_a_spike_to_imminent_that_recovers_inside_the_group_window_is_still_said():
    h = Harness(resolved=False)  # even with resolved notices off: it was danger
    h.emit(level("imminent", ratio=0.97))
    h.advance(0.5)  # inside the 2 s group window
    h.emit(level("ok", ratio=0.3))
    [message] = h.advance(10)
    assert "touched IMMINENT and is back to OK" in message.text
    assert h.advance(600) == []  # said once


def test_a_peak_above_the_level_now_is_named_in_the_message():
    h = Harness()
    h.emit(level("warn", ratio=0.55))
    assert len(h.advance(5)) == 1
    h.emit(level("imminent", ratio=0.97))
    h.advance(0.5)
    h.emit(level("critical", ratio=0.8))
    [message] = h.advance(5)
    assert "CRITICAL, peaked at IMMINENT (was WARN)" in message.text
    h.emit(level("warn", ratio=0.55))
    [calmer] = h.advance(5)
    assert "peaked" not in calmer.text  # the peak was said; it is not repeated
