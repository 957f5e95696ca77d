"""Message contents on a small book whose figures are checked by hand.

The book (Binance USD-M model, every maintenance rate a flat 1 %):
- cross pool USDT, wallet 1,400: BTC long 0.5 @ 30,000 marked 29,000 (PnL -500, MM 145)
  and ETH short 5 @ 2,000 marked 2,100 (PnL -500, MM 105). Margin balance 1,400 - 1,000
  = 400, MM 250, ratio 250 / 400 = 62.5 %.
- isolated SOL long 100 @ 200 marked 195, isolated margin 800 (PnL -500, equity 300,
  MM 195): ratio 195 / 300 = 65 %.
Defenses (advice) at the default targets, 15 % for isolated and 12 % for cross:
- SOL (liquidation 800 + 100 (L - 200) = L: 193.94, 0.54 % away) must survive 195 x 0.85
  = 165.75, where MM is 165.75 and PnL -3,425: 165.75 + 3,425 - 800 = 2,790.75 more
  margin. The pool has none to spare (it is short of its own target), so it comes from
  outside the futures wallet (spot, as no reserve is configured).
- pool: every threat at 12 %. All marks down (BTC 25,520, ETH 1,848): MM 220, PnL
  -2,240 + 760; up (32,480, 2,352): MM 280, PnL 1,240 - 1,760; BTC alone down: MM 127.6
  + 105, PnL -2,240 - 500 -> wallet 2,972.6; ETH alone up: MM 117.6 + 145, PnL -1,760
  - 500 -> 2,522.6. The wallet must be 2,972.6: 1,572.60 more collateral.
"""

from __future__ import annotations

from dataclasses import replace
from types import SimpleNamespace

from alerts.defense import advice_policy, isolated_defense, pool_defense
from alerts.messages import MAX_CHARS, Item, amount, render_alert, render_status
from alerts.notification import Notification
from alerts.pipeline import AlertPipeline
from alerts.rules import AlertKey, Reason, Rule
from alerts.view import Figures, RunnerView
from monitor.config import Config, Thresholds
from monitor.config.schema import ActionsConfig, AlertsConfig
from monitor.daemon.events import Event, EventKind, TargetKind
from monitor.daemon.levels import LevelTracker
from monitor.domain import (
    AccountSnapshot,
    CrossPool,
    MarginMode,
    MarketInfo,
    Position,
    Side,
    TierTable,
)
from monitor.engine.book import AccountBook
from monitor.feeds import FeedStatus

BTC, ETH, SOL = "BTC/USDT:USDT", "ETH/USDT:USDT", "SOL/USDT:USDT"
BTC_T, ETH_T, SOL_T = f"{BTC} long cross", f"{ETH} short cross", f"{SOL} long isolated"


def small_book() -> AccountBook:
    cross, isolated = MarginMode.CROSS, MarginMode.ISOLATED
    positions = (
        Position(BTC, Side.LONG, cross, 0.5, 1, 30_000, 29_000, "USDT",
                 exchange_liquidation_price=21_000.0),
        Position(ETH, Side.SHORT, cross, 5, 1, 2_000, 2_100, "USDT"),
        Position(SOL, Side.LONG, isolated, 100, 1, 200, 195, "USDT", isolated_margin=800,
                 exchange_liquidation_price=189.5),
    )  # fmt: skip
    tiers = {symbol: TierTable.flat(0.01) for symbol in (BTC, ETH, SOL)}
    snapshot = AccountSnapshot(
        "a", "binanceusdm", (CrossPool("USDT", 1_400, exchange_margin_ratio=0.62),),
        positions, tiers, markets={BTC: MarketInfo(BTC, amount_step=0.001)},
    )  # fmt: skip
    return AccountBook(snapshot)


POLICY = advice_policy(ActionsConfig(), AlertsConfig())


def test_defenses_match_hand_arithmetic():
    book = small_book()
    sol = isolated_defense(book, SOL_T, POLICY, {})
    assert sol.lines == (
        "transfer 2,790.75 USDT from spot, then add 2,790.75 USDT margin to SOL → distance 15.0 %",
    )
    pool = pool_defense(book, "USDT", POLICY, {})
    assert pool.lines[0] == "transfer 1,572.60 USDT from spot → pool distance 12.0 %"
    # or cuts: neither leg alone can be cut without pulling a threat below 12 %, so the
    # whole pool is cut pro rata
    assert pool.lines[1].startswith("or reduce BTC long by 0.4 ")
    assert "reduce ETH short by 4" in pool.lines[1]
    assert pool.lines[1].endswith("→ pool distance 12.2 %")
    assert (
        pool_defense(
            book,
            "USDT",
            POLICY.model_copy(
                update={"cross": POLICY.cross.model_copy(update={"target_distance": 0.005})}
            ),
            {},
        )
        is None
    )


def test_no_advice_for_a_position_that_is_gone_or_already_past_liquidation():
    book = small_book()
    assert isolated_defense(book, "XRP/USDT:USDT long isolated", POLICY, {}) is None
    snapshot = book.snapshot
    sol = next(p for p in snapshot.positions if p.symbol == SOL)
    broke = tuple(replace(p, isolated_margin=100) if p is sol else p for p in snapshot.positions)
    past = AccountBook(replace(snapshot, positions=broke))  # equity 100 - 500 < 0
    assert isolated_defense(past, SOL_T, POLICY, {}) is None


def test_defenses_say_why_they_cannot_be_sized():
    book = small_book()
    snapshot = book.snapshot
    blind = AccountBook(
        AccountSnapshot(snapshot.name, snapshot.exchange, snapshot.pools, snapshot.positions, {})
    )
    assert "no maintenance tiers" in pool_defense(blind, "USDT", POLICY, {}).problem
    assert isolated_defense(blind, SOL_T, POLICY, {}).problem


def items_of(book: AccountBook) -> list[Item]:
    pool, members = book.evaluate_pool("USDT")
    btc = next(m for m in members if m.position.symbol == BTC)
    sol = book.evaluate_isolated(book.isolated[0])
    return [
        Item(AlertKey("a", SOL_T, Rule.PRICE), Reason.ALERT, "warn", None,
             Figures.from_position(sol, None), None, None, "",
             isolated_defense(book, SOL_T, POLICY, {})),
        Item(AlertKey("a", "pool USDT", Rule.PRICE), Reason.ALERT, "critical", "warn",
             Figures.from_pool(pool), 0.5, 0.2, "", pool_defense(book, "USDT", POLICY, {})),
        Item(AlertKey("a", BTC_T, Rule.PRICE), Reason.REPEAT, "critical", "critical",
             Figures.from_position(btc, "USDT"), 0.6, None, ""),
    ]  # fmt: skip


def test_an_alert_message_shows_both_figures_the_change_and_the_defense():
    book = small_book()
    text = render_alert("a", items_of(book), {})
    lines = text.splitlines()
    assert lines[0] == "🔴 a · CRITICAL"
    assert lines[2] == "🔴 pool USDT · cross · CRITICAL (was WARN)"  # most dangerous first
    assert "ratio 62.50% · exch 62.00% (+12.50 pts)" in lines
    assert "▶ transfer 1,572.60 USDT from spot → pool distance 12.0 %" in lines
    assert any(line.startswith("▶ or reduce BTC long by 0.4 ") for line in lines)
    assert f"• 🔴 {BTC} long · CRITICAL (still)" in lines
    btc_line = lines[lines.index(f"• 🔴 {BTC} long · CRITICAL (still)") + 1]
    assert btc_line.startswith("  liq ") and "· exch 21,000.00 ·" in btc_line
    assert f"⚠️ {SOL} long · isolated · WARN (new)" in lines
    assert "ratio 65.00% · exch unknown" in lines
    assert (
        "▶ transfer 2,790.75 USDT from spot, then add 2,790.75 USDT margin to SOL → "
        "distance 15.0 %" in lines
    )
    assert "liquidat" not in text.lower()  # our levels are never called a liquidation
    assert lines.index("🔴 pool USDT · cross · CRITICAL (was WARN)") < lines.index(
        f"⚠️ {SOL} long · isolated · WARN (new)"
    )


def test_only_a_vanished_position_says_probable_liquidation_and_it_comes_first():
    book = small_book()
    gone = Event(
        EventKind.PROBABLE_LIQUIDATION, "a", "XRP/USDT:USDT long cross", TargetKind.POSITION,
        "critical", mark_price=0.5, message="position disappeared while critical: "
        "probable liquidation or ADL",
    )  # fmt: skip
    item = Item(
        AlertKey("a", gone.target, Rule.LIQUIDATION), Reason.ONCE, "critical", None,
        Figures.from_event(gone), None, None, gone.message,
    )  # fmt: skip
    text = render_alert("a", [*items_of(book), item], {})
    assert text.splitlines()[2] == "💥 PROBABLE LIQUIDATION · XRP/USDT:USDT long cross"
    assert "last mark 0.5 · exch liq unknown" in text


def test_unknown_figures_read_unknown_with_the_reason():
    figures = Figures("cross", "USDT", None, None, None, None, None, None, "no tiers for X")
    item = Item(
        AlertKey("a", "pool USDT", Rule.PRICE), Reason.ALERT, "unknown", "ok", figures,
        None, None, "",
    )  # fmt: skip
    text = render_alert("a", [item], {})
    assert "❔ pool USDT · cross · UNKNOWN (was OK)" in text
    assert "ratio unknown · exch unknown" in text and "(no tiers for X)" in text


def test_an_okx_position_shows_okx_maintenance_margin_and_the_fees_apart():
    """OKX BTC-USDT isolated long, value 30,000: OKX's MM 30,000 x 0.004 = 120 and the
    liquidation fees it keeps apart 30,000 x 0.0005 = 15; equity 3,900, ratio 135 / 3,900."""
    okx = Position(
        "BTC/USDT:USDT", Side.LONG, MarginMode.ISOLATED, 50, 0.01, 58_000, 60_000, "USDT",
        isolated_margin=2_900,
    )  # fmt: skip
    snapshot = AccountSnapshot(
        "o", "okx", (), (okx,), {okx.symbol: TierTable.flat(0.004)}, taker_fee_rate=0.0005
    )
    [risk] = AccountBook(snapshot).evaluate().positions
    item = Item(
        AlertKey("o", "BTC/USDT:USDT long isolated", Rule.PRICE), Reason.ALERT, "warn", "ok",
        Figures.from_position(risk, None), None, None, "",
    )  # fmt: skip
    text = render_alert("o", [item], {})
    assert f"ratio {135 / 3_900:.2%}" in text
    assert "MM 120.00 + liq fees 15.00" in text


def test_no_fee_line_where_the_exchange_keeps_nothing_apart():
    text = render_alert("a", items_of(small_book()), {})
    assert "liq fees" not in text


def test_a_huge_burst_is_cut_at_the_limit_and_says_how_much_is_left_out():
    figures = Figures("cross", "USDT", 0.8, None, 100.0, None, 0.05, 105.0)
    items = [
        Item(AlertKey("a", f"C{i:03d}/USDT:USDT long cross", Rule.PRICE), Reason.ALERT,
             "critical", "warn", figures, 0.7, 0.1, "")
        for i in range(200)
    ]  # fmt: skip
    text = render_alert("a", items, {})
    assert len(text) <= MAX_CHARS
    shown = text.count("• 🔴")
    assert text.endswith(f"… and {200 - shown} more targets: send /status")


def test_amounts_are_rounded_up_so_the_target_is_really_reached():
    assert amount(90.001) == "90.01"
    assert amount(1234.5) == "1,234.50"
    assert amount(90.00000000000006) == "90.00"  # float noise is not a cent
    assert amount(0.0123451) == "0.012346"


# --- the live daemon, through RunnerView ---------------------------------------------------


def fake_runner(book: AccountBook) -> SimpleNamespace:
    """Just the attributes RunnerView reads, with figures evaluated by the real engine."""
    tracker = LevelTracker()
    risk = book.evaluate()
    for pool in risk.pools:
        tracker.pool("a", pool, Thresholds())
    for position in risk.positions:
        tracker.position("a", position, Thresholds())
    monitor = SimpleNamespace(
        name="a", account=SimpleNamespace(exchange="binanceusdm"), book=book, marks={},
        latest_pools={p.asset: p for p in risk.pools},
        latest_positions={
            f"{p.position.symbol} {p.position.side.value} {p.position.margin_mode.value}": p
            for p in risk.positions
        },
        current=lambda: risk, last_ok=None,
    )  # fmt: skip
    group = SimpleNamespace(
        target="feed binanceusdm", monitors=[monitor], blind=False,
        feed=SimpleNamespace(status=FeedStatus.LIVE),
    )  # fmt: skip
    config = Config.model_validate({"accounts": [{"name": "a", "exchange": "binanceusdm"}]})
    daemon = SimpleNamespace(monitors=[monitor], groups={"binanceusdm": group})
    return SimpleNamespace(daemon=daemon, tracker=tracker, config=config)


def test_status_lists_every_pool_and_the_riskiest_positions():
    runner = fake_runner(small_book())
    text = render_status(runner)
    lines = text.splitlines()
    assert lines[0].startswith("a · binanceusdm · ", 2)
    assert lines[1].startswith("pool USDT: ratio 62.50% · exch 62.00% · dist ")
    assert any(line.startswith(f"{SOL} long isolated: liq ") for line in lines)
    assert lines[-1] == "feeds: binanceusdm live"


def test_the_pipeline_sizes_defenses_from_the_live_book():
    runner = fake_runner(small_book())
    sent: list[Notification] = []
    now = [1_000.0]
    pipeline = AlertPipeline(lambda: runner.config, RunnerView(runner), lambda: now[0], sent.append)
    pipeline.emit(Event(EventKind.LEVEL, "a", "pool USDT", TargetKind.POOL, "warn", "ok"))
    pipeline.emit(Event(EventKind.LEVEL, "a", SOL_T, TargetKind.POSITION, "warn", "ok"))
    for _ in range(6):
        now[0] += 0.5
        pipeline.tick(now[0])
    assert len(sent) == 1
    text = sent[0].text
    assert "▶ transfer 1,572.60 USDT from spot → pool distance 12.0 %" in text
    assert "▶ or reduce BTC long by 0.4 " in text
    assert "then add 2,790.75 USDT margin to SOL → distance 15.0 %" in text
    assert "ratio 62.50% · exch 62.00%" in text  # current figures, not the event's
    # why each is at its level, against the default thresholds: SOL 0.54 % from its
    # liquidation (above) is past isolated imminent (1 %), the pool past cross critical (8 %)
    assert "IMMINENT (new)\nratio 65.00% · exch unknown\nwhy: distance 0.54% ≤ 1%" in text
    assert "why: distance 4.00% ≤ 8%" in text
