"""The pure stages one by one: rules state machine, inhibition, silences, grouping."""

from __future__ import annotations

import orjson
import pytest

from alerts.group import Grouper
from alerts.inhibit import blind_feeds, inhibited, inhibited_accounts
from alerts.rules import Alert, AlertKey, Reason, Rule, Rules
from alerts.silence import ANY_ACCOUNT, Silences
from monitor.config.schema import AlertsConfig
from monitor.engine.levels import Level
from monitor.events import Event, EventKind, TargetKind

CONFIG = AlertsConfig()  # for 0/0/0, repeat 4h / 15m / 2m
POOL = "pool USDT"
KEY = AlertKey("a", POOL, Rule.PRICE)


def level(value: str, target: str = POOL, account: str = "a") -> Event:
    return Event(EventKind.LEVEL, account, target, TargetKind.POOL, value, margin_ratio=0.6)


def never(alert: Alert) -> bool:
    return False


def step(rules: Rules, now: float, config: AlertsConfig = CONFIG) -> list[tuple[str, Reason]]:
    """What is due at `now`, marked sent as the pipeline would after delivering it."""
    due = rules.due(now, config, never)
    for key, reason in due:
        rules.sent(key, reason, now)
    return [(key.target, reason) for key, reason in due]


def test_escalation_then_resolution_says_each_change_once():
    rules = Rules()
    rules.observe(level("warn"), 0)
    assert step(rules, 0) == [(POOL, Reason.ALERT)]
    assert step(rules, 1) == []
    rules.observe(level("critical"), 10)
    assert step(rules, 10) == [(POOL, Reason.ALERT)]
    rules.observe(level("imminent"), 20)
    assert step(rules, 20) == [(POOL, Reason.ALERT)]
    assert rules.get(KEY).announced == "imminent"
    rules.observe(level("ok"), 30)
    assert step(rules, 30) == [(POOL, Reason.RESOLVED)]
    assert rules.get(KEY) is None
    assert step(rules, 10_000) == []


def test_a_level_must_hold_for_its_duration_and_a_drop_back_cancels():
    config = AlertsConfig(**{"for": {"warn": 60, "critical": 30, "imminent": 0}})
    rules = Rules()
    rules.observe(level("warn"), 0)
    assert step(rules, 59, config) == []
    rules.observe(level("ok"), 59)
    assert step(rules, 61, config) == []
    assert rules.get(KEY) is None  # cancelled, and no "resolved" for what was never said
    rules.observe(level("warn"), 100)
    assert step(rules, 160, config) == [(POOL, Reason.ALERT)]


def test_rising_waits_for_the_new_level_but_lowering_is_said_at_once():
    config = AlertsConfig(**{"for": {"warn": 0, "critical": 30, "imminent": 0}})
    rules = Rules()
    rules.observe(level("warn"), 0)
    step(rules, 0, config)
    rules.observe(level("critical"), 10)
    assert step(rules, 20, config) == []
    assert step(rules, 40, config) == [(POOL, Reason.ALERT)]
    rules.observe(level("warn"), 50)
    assert step(rules, 50, config) == [(POOL, Reason.ALERT)]
    assert rules.get(KEY).announced == "warn"


def test_repeats_shorten_as_the_level_rises():
    rules = Rules()
    rules.observe(level("critical"), 0)
    step(rules, 0)
    assert step(rules, 899) == []
    assert step(rules, 900) == [(POOL, Reason.REPEAT)]
    assert step(rules, 1799) == []
    rules.observe(level("imminent"), 1000)
    assert step(rules, 1000) == [(POOL, Reason.ALERT)]
    assert step(rules, 1119) == []
    assert step(rules, 1120) == [(POOL, Reason.REPEAT)]


def test_unknown_is_announced_as_unknown_not_ok():
    rules = Rules()
    rules.observe(level("unknown"), 0)
    assert step(rules, 0) == [(POOL, Reason.ALERT)]
    assert rules.get(KEY).announced == "unknown"


def test_resolution_is_silent_when_resolved_notices_are_off():
    rules = Rules()
    rules.observe(level("warn"), 0)
    step(rules, 0)
    rules.observe(level("ok"), 5)
    assert step(rules, 5, AlertsConfig(resolved=False)) == []
    assert rules.get(KEY) is None


def test_blindness_is_a_critical_alert_and_recovery_resolves_it():
    rules = Rules()
    blind = Event(EventKind.BLIND, None, "feed binanceusdm", TargetKind.FEED, "unknown")
    rules.observe(blind, 0)
    key = AlertKey(None, "feed binanceusdm", Rule.BLIND)
    assert rules.get(key).level == "critical"
    assert step(rules, 0) == [("feed binanceusdm", Reason.ALERT)]
    assert step(rules, 900) == [("feed binanceusdm", Reason.REPEAT)]
    recovered = Event(EventKind.RECOVERED, None, "feed binanceusdm", TargetKind.FEED, "ok")
    rules.observe(recovered, 901)
    assert step(rules, 901) == [("feed binanceusdm", Reason.RESOLVED)]


def test_probable_liquidation_is_one_shot_and_ends_the_price_alert():
    rules = Rules()
    target = "BTC/USDT:USDT long cross"
    rules.observe(level("critical", target), 0)
    step(rules, 0)
    gone = Event(EventKind.PROBABLE_LIQUIDATION, "a", target, TargetKind.POSITION, "critical")
    rules.observe(gone, 5)
    assert step(rules, 5) == [(target, Reason.ONCE)]
    assert [a.key for a in rules] == []
    assert step(rules, 10_000) == []


def test_errors_are_said_once():
    rules = Rules()
    rules.observe(Event(EventKind.ERROR, "a", "account", TargetKind.ACCOUNT, message="auth"), 0)
    assert step(rules, 0) == [("account", Reason.ONCE)]
    assert step(rules, 100_000) == []


def test_muted_alerts_are_held_not_marked():
    rules = Rules()
    rules.observe(level("critical"), 0)
    assert rules.due(0, CONFIG, lambda alert: True) == []
    assert rules.get(KEY).announced is None
    assert step(rules, 1) == [(POOL, Reason.ALERT)]


def test_restore_reannounces_critical_ones_once_at_the_given_time():
    rules = Rules()
    rules.observe(level("critical"), 0)
    rules.observe(level("warn", "pool BTC"), 0)
    step(rules, 0)
    restored = Rules()
    restored.restore([Alert.from_json(a.to_json()) for a in rules], reannounce_at=50)
    assert step(restored, 49) == []
    assert step(restored, 50) == [(POOL, Reason.REANNOUNCE)]
    assert step(restored, 51) == []
    assert step(restored, 950) == [(POOL, Reason.REPEAT)]


def test_a_stored_alert_loads_with_typed_levels():
    """The alert state is kept as JSON: the lowercase names any version wrote load back
    as Levels, so the order and the icons apply to them."""
    rules = Rules()
    rules.observe(level("critical"), 0)
    step(rules, 0)
    rules.observe(level("warn"), 5)
    [stored] = [orjson.loads(orjson.dumps(alert.to_json())) for alert in rules]
    assert (stored["level"], stored["announced"], stored["peak"]) == (
        "warn",
        "critical",
        "critical",
    )
    alert = Alert.from_json(stored)
    assert (alert.level, alert.announced, alert.peak) == (
        Level.WARN,
        Level.CRITICAL,
        Level.CRITICAL,
    )
    assert all(type(x) is Level for x in (alert.level, alert.announced, alert.event.level))


# --- inhibition ---------------------------------------------------------------------------


def test_a_blind_feed_inhibits_the_price_alerts_of_its_accounts_only():
    rules = Rules()
    rules.observe(Event(EventKind.BLIND, None, "feed okx", TargetKind.FEED, "unknown"), 0)
    rules.observe(level("critical", account="a"), 0)
    rules.observe(level("critical", account="b"), 0)
    rules.observe(Event(EventKind.ERROR, "a", "account", TargetKind.ACCOUNT, message="x"), 0)
    accounts = inhibited_accounts(blind_feeds(rules), {"feed okx": ["a"], "feed bybit": ["b"]})
    assert accounts == {"a"}
    muted = {a.key for a in rules if inhibited(a, accounts)}
    assert muted == {AlertKey("a", POOL, Rule.PRICE)}


def test_a_recovered_feed_inhibits_nothing():
    rules = Rules()
    rules.observe(Event(EventKind.BLIND, None, "feed okx", TargetKind.FEED, "unknown"), 0)
    rules.observe(Event(EventKind.RECOVERED, None, "feed okx", TargetKind.FEED, "ok"), 1)
    assert blind_feeds(rules) == set()


# --- silences -------------------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_silences_match_by_account_and_target_prefix_or_exact_and_expire():
    clock = Clock()
    silences = Silences(clock)
    prefix = silences.add("a", 60, target="BTC/")
    exact = silences.add("b", 120, target="pool USDT", exact=True, comment="rebalancing")
    assert silences.silenced("a", "BTC/USDT:USDT long cross")
    assert not silences.silenced("a", "ETH/USDT:USDT long cross")
    assert silences.silenced("b", "pool USDT")
    assert not silences.silenced("b", "pool USDT2")
    assert not silences.silenced(None, "feed okx")
    assert [s.id for s in silences.active()] == [prefix.id, exact.id]
    clock.now += 60
    assert not silences.silenced("a", "BTC/USDT:USDT long cross")
    assert [s.id for s in silences.active()] == [exact.id]
    assert silences.remove(exact.id)
    assert not silences.remove(exact.id)
    assert silences.active() == []


def test_any_account_silence_also_covers_feeds():
    silences = Silences(Clock())
    silences.add(ANY_ACCOUNT, 60)
    assert silences.silenced(None, "feed okx")
    assert silences.silenced("a", "pool USDT")


def test_silences_survive_export_and_restore_without_reusing_ids():
    clock = Clock()
    silences = Silences(clock)
    silences.add("a", 60)
    short = silences.add("b", 10)
    clock.now += 30
    silences.add("c", 5)
    doc = silences.export()
    restored = Silences(clock)
    restored.restore(doc)
    assert short.id not in {s.id for s in restored.active()}
    assert restored.add("d", 1).id == "s4"
    clock.now += 60
    assert restored.active() == []


def test_a_silence_needs_a_positive_duration():
    with pytest.raises(ValueError):
        Silences(Clock()).add("a", 0)


# --- grouping ---------------------------------------------------------------------------------


def test_a_group_collects_for_group_wait_after_its_first_member():
    grouper = Grouper()
    a1, a2 = AlertKey("a", "x", Rule.PRICE), AlertKey("a", "y", Rule.PRICE)
    b1 = AlertKey("b", "x", Rule.PRICE)
    grouper.add("a", a1, 0)
    grouper.add("a", a2, 1.5)
    grouper.add("a", a1, 1.6)
    grouper.add("b", b1, 1.0)
    assert grouper.ready(1.9, 2) == []
    assert grouper.ready(2.0, 2) == [("a", [a1, a2])]
    assert grouper.ready(3.0, 2) == [("b", [b1])]
    assert grouper.ready(10, 2) == []
