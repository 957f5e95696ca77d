"""The pure parts of auto-deleverage: the policy's decisions, the journal's rules, how
an exchange reply or failure becomes an outcome, and how key permissions are read."""

from __future__ import annotations

import math
import re
from dataclasses import replace
from pathlib import Path
from typing import Any

import ccxt
import pytest

from monitor.actions.decision import decision_id, describe_plan
from monitor.actions.guards import Guards, KillSwitch
from monitor.actions.journal import ActionRow, Journal, JournalError, Outcome
from monitor.actions.permissions import KeyPermissions, refusal
from monitor.actions.policy import Budget, Decision, decide
from monitor.config.schema import ActionsConfig, CrossPolicy
from monitor.domain import MarketInfo
from monitor.engine.book import AccountBook
from monitor.engine.levels import Level
from monitor.simulator.binance_usdm.trading import CLIENT_ORDER_ID
from monitor.simulator.build import build_exchange
from monitor.simulator.scenario import parse_scenario
from monitor.venues.binance import permissions as binance_permissions
from monitor.venues.binance.executor import BinanceUsdmExecutor
from monitor.venues.bybit import permissions as bybit_permissions
from monitor.venues.okx import permissions as okx_permissions
from tests.sim_snapshot import account_snapshot

# Cross: BTC and ETH longs bought 10 % higher, a SOL short from below: a 1,000 USDT
# pool equity (wallet 8,000) against ~500 of MM is a ratio near 0.5. The isolated DOGE
# bet has 200 of equity against 125 of MM (ratio 0.62).
BOOK = """
seed: 1
symbols:
  BTCUSDT: {{start: 60000}}
  ETHUSDT: {{start: 3000}}
  SOLUSDT: {{start: 150}}
  DOGEUSDT: {{start: 0.2}}
segments: [{{duration: 10s}}]
accounts:
  - name: u
    balances: {{USDT: {wallet}}}
    positions:
      - {{symbol: BTCUSDT, side: long, size: 0.5, leverage: 20, entry: 66000}}
      - {{symbol: ETHUSDT, side: long, size: 10, leverage: 20, entry: 3300}}
      - {{symbol: SOLUSDT, side: short, size: 100, leverage: 20, entry: 140}}
      - {{symbol: DOGEUSDT, side: long, size: 50000, margin_mode: isolated, leverage: 5,
          isolated_margin: 1200, entry: 0.22}}
"""
STEPS = {"BTCUSDT": 0.001, "ETHUSDT": 0.001, "SOLUSDT": 1.0, "DOGEUSDT": 1.0}
DOGE = "DOGEUSDT long isolated"
ROOMY = Budget(per_action=1e9, window_left=1e9, actions_left=100, reserve_left=1e9)


def book(wallet: float) -> AccountBook:
    exchange = build_exchange(parse_scenario(BOOK.format(wallet=wallet)))
    snapshot = account_snapshot(exchange, next(iter(exchange.accounts.values())))
    markets = {s: MarketInfo(s, step, step, 5.0) for s, step in STEPS.items()}
    return AccountBook(replace(snapshot, markets=markets, fetched_at=1_000.0))


ISOLATED = {"trigger": "critical", "target_distance": 0.10}


def config(reserve: dict[str, Any] | None = None, **cross: Any) -> ActionsConfig:
    return ActionsConfig.model_validate(
        {"mode": "auto", "cross": cross, "isolated": ISOLATED, "reserve": reserve}
    )


def isolated(reserve: dict[str, Any] | None = None, **policy: Any) -> ActionsConfig:
    return ActionsConfig.model_validate(
        {"mode": "auto", "isolated": {**ISOLATED, **policy}, "reserve": reserve}
    )


RESERVE = {"from": "spot", "max_per_action": 5_000, "max_per_day": 20_000}


def levels(level: Level = Level.CRITICAL) -> dict[str, Level]:
    return {"pool USDT": level, DOGE: level}


def whole_lots(quantity: float, step: float) -> bool:
    return math.isclose(quantity / step, round(quantity / step), abs_tol=1e-6)


def test_ids_are_deterministic_and_client_ids_fit_binance() -> None:
    first = decision_id("acct", "pool USDT", "reduce", "BTC/USDT:USDT", 0.123, 1_000.5)
    assert first == decision_id("acct", "pool USDT", "reduce", "BTC/USDT:USDT", 0.123, 1_000.5)
    assert first != decision_id("acct", "pool USDT", "reduce", "BTC/USDT:USDT", 0.123, 1_001.5)
    plan = decide("u", book(8000), {}, levels(), config(), ROOMY)
    cut = next(d for d in plan.decisions if d.kind == "reduce")
    assert cut.client_order_id is not None and CLIENT_ORDER_ID.match(cut.client_order_id)
    assert len(cut.client_order_id) <= 36
    again = decide("u", book(8000), {}, levels(), config(), ROOMY)
    assert [d.id for d in again.decisions] == [d.id for d in plan.decisions]


@pytest.mark.parametrize("per_action", [1e9, 4_000.0, 700.0])
def test_pool_cuts_only_reduce_in_whole_lots_within_the_caps(per_action: float) -> None:
    b = book(8000)
    budget = replace(ROOMY, per_action=per_action, window_left=9_000.0, actions_left=2)
    plan = decide("u", b, {}, {"pool USDT": Level.CRITICAL}, config(), budget)
    positions = {p.symbol: p for p in b.snapshot.positions}
    assert 1 <= len(plan.decisions) <= 2
    for d in plan.decisions:
        held = positions[d.symbol]
        assert d.kind == "reduce" and d.side == held.side.value
        assert d.order_side == ("sell" if held.side.value == "long" else "buy")
        assert 0 < d.quantity <= held.contracts and whole_lots(d.quantity, STEPS[d.symbol])
        assert d.notional <= per_action + 1e-6
    assert sum(d.notional for d in plan.decisions) <= 9_000.0 + 1e-6


@pytest.mark.parametrize(
    ("order", "first"),
    [("mm_contribution", "SOLUSDT"), ("worst_upnl", "BTCUSDT"), ("priority", "ETHUSDT"),
     ("smallest_losers", "SOLUSDT"), ("effect", "ETHUSDT")],
)  # fmt: skip
def test_cuts_start_where_the_policy_says(order: str, first: str) -> None:
    # SOL's 1.5 % bracket makes its short cost the pool more MM than it hedges at these
    # marks: cutting it raises the distance a little, so it is acceptable, and the
    # orders that put it first cut it. `effect` cuts what gains the most per USDT.
    plan = decide(
        "u", book(8000), {}, {"pool USDT": Level.CRITICAL},
        config(order=order, priority=("ETHUSDT",)), ROOMY,
    )  # fmt: skip
    assert plan.decisions[0].symbol == first


# DOGE, isolated: 50,000 long from 0.22 at a mark of 0.2 with 1,200 of margin.
# Target distance 10 %: it must survive 0.18, where its notional is 9,000 (bracket 2:
# 1.5 %, cum 25, MM 110) and its PnL -2,000, so it needs 110 + 2,000 - 1,200 = 910.
NEEDED = 910.0


def test_an_isolated_bet_gets_margin_from_the_balance_when_the_pool_can_spare_it() -> None:
    plan = decide("u", book(20_000), {}, {DOGE: Level.CRITICAL}, isolated(), ROOMY)
    (add,) = plan.decisions
    assert (add.kind, add.target, add.client_order_id) == ("add_margin", DOGE, None)
    assert add.quantity == pytest.approx(NEEDED) and add.reaches_target
    assert add.distance_after == pytest.approx(0.10, abs=1e-9)
    assert add.describe() == "add 910.00 USDT margin to DOGEUSDT → distance 10.0 %"
    capped = decide("u", book(20_000), {}, {DOGE: Level.CRITICAL}, isolated(max_add_per_action=500),
                    ROOMY).decisions  # fmt: skip
    assert capped[0].quantity == 500 and not capped[0].reaches_target


def test_without_free_balance_the_reserve_funds_the_add() -> None:
    # The pool's margin balance is 8,000 - 7,000 = 1,000 against 75,000 / 20 = 3,750 of
    # initial margin: Binance's available balance is -2,750, so it accepts no add until
    # 2,750 more is in the wallet. The add must still be accepted after a move of
    # close_before (here 0.3 %) either way before it lands. 0.3 % lower: PnL falls by
    # 0.003 x (30,000 + 30,000 - 15,000) = 135, IM by 0.003 x 75,000 / 20 = 11.25, so the
    # available balance is -2,873.75 (0.3 % higher it rises; wallet - MM is ~7,500 either
    # way). The transfer brings 2,873.75 + the 910 for DOGE = 3,783.75. DOGE is 0.76 %
    # from liquidation: at least two close buffers (0.6 %), so a transfer may still go.
    near = isolated(RESERVE, close_before=0.003)
    plan = decide("u", book(8000), {}, {DOGE: Level.CRITICAL}, near, ROOMY)
    transfer, add = plan.decisions
    assert (transfer.kind, transfer.quantity, transfer.source) == ("transfer", 3_783.75, "spot")
    assert (add.kind, add.quantity) == ("add_margin", NEEDED)
    assert describe_plan(plan.decisions) == (
        "transfer 3,783.75 USDT from spot, then add 910.00 USDT margin to DOGEUSDT → "
        "distance 10.0 %"
    )
    # with the default 3 % buffer the add must outlast a 3 % move: 3 % lower, PnL falls by
    # 0.03 x 45,000 = 1,350 and IM by 0.03 x 75,000 / 20 = 112.50, so the available
    # balance is -2,750 - 1,237.50 = -3,987.50 and the transfer 3,987.50 + 910 = 4,897.50
    plan = decide("u", book(8000), {}, {DOGE: Level.CRITICAL}, isolated(RESERVE), ROOMY)
    assert [d.quantity for d in plan.decisions] == [4_897.5, NEEDED]
    # a reserve capped below the shortfall (or spent) cannot fund any add: DOGE, 0.76 %
    # from liquidation, waits for the 0.3 % close, or is closed at once below 3 %
    small = {**RESERVE, "max_per_action": 2_000}
    plan = decide("u", book(8000), {}, {DOGE: Level.CRITICAL}, isolated(small, close_before=0.003),
                  ROOMY)  # fmt: skip
    assert not plan.decisions and "reserve caps cannot fund" in plan.notes[0].message
    spent = replace(ROOMY, reserve_left=0.0)
    (close,) = decide(
        "u", book(8000), {}, {DOGE: Level.CRITICAL}, isolated(RESERVE), spent
    ).decisions
    assert close.kind == "reduce" and close.closes


def test_a_refused_rung_goes_to_the_next_at_once() -> None:
    refused = replace(ROOMY, refused={DOGE: frozenset({"balance"})})
    near = isolated(RESERVE, close_before=0.003)  # DOGE, 0.76 % away, may still be funded
    plan = decide("u", book(20_000), {}, {DOGE: Level.CRITICAL}, near, refused)
    assert [d.kind for d in plan.decisions] == ["transfer", "add_margin"]
    both = replace(ROOMY, refused={DOGE: frozenset({"balance", "reserve"})})
    (close,) = decide(
        "u", book(20_000), {}, {DOGE: Level.CRITICAL}, isolated(RESERVE), both
    ).decisions
    assert (close.kind, close.quantity, close.order_side) == ("reduce", 50_000, "sell")


def test_budget_spent_or_contain_closes_whole_only_below_close_before() -> None:
    # DOGE liquidates at 0.1985 (margin 1,200 + PnL -1,075 = MM 123.9): 0.76 % away. An
    # unfunded position closes below CLOSE_AHEAD (2) x close_before: at 0.3 %, 0.6 %.
    spent = replace(ROOMY, added={DOGE: 2_000.0})
    for policy, budget in ((isolated(), spent), (isolated(defense="contain"), ROOMY)):
        (close,) = decide("u", book(20_000), {}, {DOGE: Level.CRITICAL}, policy, budget).decisions
        assert (close.kind, close.quantity, close.closes) == ("reduce", 50_000, True)
        assert close.describe().startswith("close DOGEUSDT long by 50,000 ")
        later = decide("u", book(20_000), {}, {DOGE: Level.CRITICAL},
                       policy.model_copy(update={"isolated": policy.isolated.model_copy(
                           update={"close_before": 0.003})}), budget)  # fmt: skip
        assert not later.decisions and "closed reduce-only once" in later.notes[0].message
    tight = replace(spent, per_action=5_000.0)  # closing 10,000 of DOGE is not allowed
    plan = decide("u", book(20_000), {}, {DOGE: Level.CRITICAL}, isolated(), tight)
    assert not plan.decisions and "caps do not allow" in plan.notes[0].message


def test_a_pool_takes_collateral_from_the_reserve_before_any_cut() -> None:
    # 12 % lower every mark: BTC 52,800 (26,400: 0.4 % = 105.6, PnL -6,600), ETH 2,640
    # (26,400: 0.65 % - 15 = 156.6, PnL -6,600), SOL 132 (13,200: 1.5 % - 25 = 173,
    # PnL +800). The wallet must cover MM - PnL = 435.2 + 12,400 = 12,835.2: 4,835.20
    # more than its 8,000.
    roomy = {**RESERVE, "max_per_action": 1e6}
    (transfer,) = decide("u", book(8000), {}, {"pool USDT": Level.CRITICAL}, config(roomy),
                         ROOMY).decisions  # fmt: skip
    assert transfer.kind == "transfer" and transfer.quantity == pytest.approx(4_835.20)
    assert transfer.reaches_target and transfer.distance_after == pytest.approx(0.12)
    capped = {**RESERVE, "max_per_action": 2_000}
    plan = decide("u", book(8000), {}, {"pool USDT": Level.CRITICAL}, config(capped), ROOMY)
    first, *cuts = plan.decisions
    assert first.kind == "transfer" and first.quantity == 2_000
    assert cuts and all(c.kind == "reduce" and c.symbol != "SOLUSDT" for c in cuts)


def test_nothing_is_decided_below_the_trigger_on_unknown_or_without_budget() -> None:
    b = book(8000)
    for level in (Level.OK, Level.WARN, Level.UNKNOWN):
        assert decide("u", b, {}, levels(level), config(), ROOMY) == ([], [])
    plan = decide("u", b, {}, levels(), config(), replace(ROOMY, actions_left=0))
    assert not plan.decisions
    assert {n.level for n in plan.notes} == {"critical"}


def test_severest_target_is_served_first_and_the_budget_is_shared() -> None:
    b = book(8000)
    budget = replace(ROOMY, actions_left=1)
    plan = decide("u", b, {}, {"pool USDT": Level.CRITICAL, DOGE: Level.IMMINENT}, config(), budget)
    assert [d.target for d in plan.decisions] == [DOGE]


# --- journal ------------------------------------------------------------------------


def a_decision(**changes: Any) -> Decision:
    plan = decide("u", book(8000), {}, {"pool USDT": Level.CRITICAL}, config(), ROOMY)
    return replace(plan.decisions[0], **changes)


def test_journal_allows_only_forward_transitions(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "j.sqlite3", now=lambda: 5_000.0)
    decision = a_decision()
    assert journal.record(decision, "auto", "planned", {"params": {}})
    assert not journal.record(decision, "auto", "planned", {})  # the same decision twice
    with pytest.raises(JournalError):
        journal.advance(decision.id, "unknown")  # planned -> unknown skips "sent"
    journal.advance(decision.id, "sent")
    journal.settle(decision.id, Outcome("unknown", "timeout"))
    journal.settle(decision.id, Outcome("filled", "found", {"id": 7}))
    with pytest.raises(JournalError):
        journal.advance(decision.id, "sent")
    row = journal.get(decision.id)
    assert row is not None
    assert (row.status, row.detail, row.result) == ("filled", "found", {"id": 7})


def test_journal_totals_read_the_rolling_window(tmp_path: Path) -> None:
    clock = [1_000.0]
    journal = Journal(tmp_path / "j.sqlite3", now=lambda: clock[0])
    sent = a_decision(id="a" * 32, notional=100.0)
    rejected = a_decision(id="b" * 32, notional=200.0)
    dry = a_decision(id="c" * 32, notional=400.0)
    for d in (sent, rejected):
        journal.record(d, "auto", "planned", {})
        journal.advance(d.id, "sent")
    journal.settle(rejected.id, Outcome("failed", "rejected: -2019"))
    journal.record(dry, "dry_run", "dry_run", {})
    clock[0] = 2_000.0
    # attempts count (a rejection too); only what may have moved money counts as notional
    assert journal.totals("u", 0.0) == (2, 100.0, 0.0)
    assert journal.totals("u", 1_500.0) == (0, 0.0, 0.0)
    assert set(journal.last_acted("u", ("sent", "failed"))) == {"pool USDT"}


def test_a_transfer_stranded_by_a_refused_add_rules_the_reserve_out(tmp_path: Path) -> None:
    """Transfer filled, then the add it funded refused: the reserve is ruled out for the
    target, by the journal (a fresh Guards, as after a restart), until an add of it fills;
    and for a day at most."""
    clock = [1_000.0]
    journal = Journal(tmp_path / "j.sqlite3", now=lambda: clock[0])
    target = "AVAX/USDT:USDT long isolated"
    made = a_decision(target=target)

    def settled(name: str, kind: str, status: str) -> None:
        row = replace(made, id=name.ljust(32, "0"), kind=kind)
        journal.record(row, "auto", "planned", {})
        journal.advance(row.id, "sent")
        journal.settle(row.id, Outcome(status, ""))  # type: ignore[arg-type]

    def reserve_refused() -> bool:
        guards = Guards("u", config(), journal, KillSwitch(tmp_path), now=lambda: clock[0])
        return "reserve" in guards.budget().refused.get(target, frozenset())

    settled("t1", "transfer", "filled")
    assert not reserve_refused()  # its add has not been tried yet
    settled("a1", "add_margin", "failed")
    assert journal.stranded("u", 0.0) == {target} and reserve_refused()
    clock[0] += 90_000  # past the reserve's daily window
    assert not reserve_refused()
    clock[0] = 1_000.0
    settled("a2", "add_margin", "filled")  # the stranded money went in
    assert not reserve_refused()


async def test_reconcile_settles_what_the_exchange_can_tell(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "j.sqlite3")
    rows = {}
    for name in ("found", "unsure", "never"):
        d = a_decision(id=name.ljust(32, "0"))
        journal.record(d, "auto", "planned", {})
        if name != "never":
            journal.advance(d.id, "sent")
        rows[name] = d.id

    class Exchange:
        async def lookup(self, row: ActionRow) -> Outcome:
            return {
                rows["found"]: Outcome("filled", "filled 0.1"),
                rows["unsure"]: Outcome("unknown", "lookup failed"),
                rows["never"]: Outcome("aborted", "interrupted before sending"),
            }[row.id]

    still = await journal.reconcile("u", Exchange())
    assert [r.id for r in still] == [rows["unsure"]]
    status = {name: journal.get(i).status for name, i in rows.items()}  # type: ignore[union-attr]
    assert status == {"found": "filled", "unsure": "unknown", "never": "aborted"}


# --- executor outcomes --------------------------------------------------------------


class FakeClient:
    """Raises what it is told, as ccxt would."""

    def __init__(self, failure: BaseException | None = None, order: dict | None = None) -> None:
        self.failure = failure
        self.order = order or {}

    async def create_order(self, *args: Any) -> dict[str, Any]:
        if self.failure is not None:
            raise self.failure
        return self.order


@pytest.mark.parametrize(
    ("failure", "status"),
    [
        (ccxt.RequestTimeout("binanceusdm POST http://x/fapi/v1/order?signature=abc"), "unknown"),
        (ccxt.ExchangeNotAvailable("503"), "unknown"),
        (ccxt.ExchangeError('{"code":-1007,"msg":"Timeout waiting for response"}'), "unknown"),
        (OSError("connection reset"), "unknown"),
        (ccxt.ExchangeError('{"code":-2022,"msg":"ReduceOnly Order is rejected."}'), "failed"),
        (ccxt.RateLimitExceeded("429"), "failed"),
        (ccxt.InsufficientFunds("-2019"), "failed"),
    ],
)
async def test_a_failed_call_is_unknown_unless_the_exchange_said_no(failure, status) -> None:
    executor = BinanceUsdmExecutor(FakeClient(failure), None, CrossPolicy(), secrets=["abc"])  # type: ignore[arg-type]
    request = {"kind": "reduce", "symbol": "BTC/USDT:USDT", "type": "market", "side": "sell",
               "amount": 0.1, "price": None, "params": {}}  # fmt: skip
    outcome = await executor.send(request)
    assert outcome.status == status
    assert "signature=abc" not in outcome.detail and "abc" not in outcome.detail


@pytest.mark.parametrize(
    ("order", "status"),
    [
        ({"status": "closed", "amount": 0.1, "filled": 0.1, "average": 100.0}, "filled"),
        ({"status": "expired", "amount": 0.1, "filled": 0.04, "average": 100.0}, "filled"),
        ({"status": "expired", "amount": 0.1, "filled": 0.0}, "failed"),
        ({"status": "open", "amount": 0.1, "filled": 0.0}, "unknown"),
    ],
)
async def test_an_order_reply_becomes_an_outcome(order, status) -> None:
    executor = BinanceUsdmExecutor(FakeClient(order=order), None, CrossPolicy())  # type: ignore[arg-type]
    request = {"kind": "reduce", "symbol": "S", "type": "market", "side": "sell",
               "amount": 0.1, "price": None, "params": {}}  # fmt: skip
    outcome = await executor.send(request)
    assert outcome.status == status
    assert ("partial" in outcome.detail) == (status == "filled" and order["filled"] < 0.1)


class MarketClient:
    def market(self, symbol: str) -> dict[str, Any]:
        return {"id": symbol.replace("/", ""), "precision": {"price": 0.1}}

    def price_to_precision(self, symbol: str, price: float) -> str:
        return f"{price:.1f}"


def test_requests_are_reduce_only_and_bounded() -> None:
    b = book(8000)
    plan = decide("u", b, {}, {"pool USDT": Level.CRITICAL}, config(order="worst_upnl"), ROOMY)
    cut = replace(plan.decisions[0], mark=60_000.04)  # the BTC long
    position = next(p for p in b.snapshot.positions if p.symbol == cut.symbol)
    market = BinanceUsdmExecutor(MarketClient(), None, CrossPolicy())  # type: ignore[arg-type]
    request = market.request(cut, position)
    assert (request["type"], request["side"], request["price"]) == ("market", "sell", None)
    assert request["params"]["reduceOnly"] is True
    assert request["params"]["clientOrderId"] == cut.client_order_id
    hedged = market.request(replace(cut, position_side="LONG"), position)
    assert "reduceOnly" not in hedged["params"] and hedged["params"]["positionSide"] == "LONG"

    limit = BinanceUsdmExecutor(
        MarketClient(), None, CrossPolicy(order_type="limit_ioc", max_slippage=0.005)
    )  # type: ignore[arg-type]
    request = limit.request(cut, position)
    assert (request["type"], request["params"]["timeInForce"]) == ("limit", "IOC")
    assert 60_000.04 * 0.995 <= request["price"] < 60_000.04 * 0.995 + 0.1  # within the bound

    add = decide("u", book(20_000), {}, {DOGE: Level.CRITICAL}, config(), ROOMY).decisions[0]
    doge = next(p for p in b.snapshot.positions if p.symbol == "DOGEUSDT")
    request = market.request(add, doge)
    assert request["params"]["type"] == 1 and request["params"]["amount"] == "910.00"
    assert request["isolated_margin_before"] == 1200


# --- permissions ----------------------------------------------------------------------


class KeyInfo:
    def __init__(self, reply: dict[str, Any]) -> None:
        self.reply = reply

    async def sapi_get_account_apirestrictions(self) -> dict[str, Any]:
        return self.reply

    async def private_get_v5_user_query_api(self) -> dict[str, Any]:
        return self.reply

    async def private_get_account_config(self) -> dict[str, Any]:
        return self.reply


@pytest.mark.parametrize(
    ("exchange", "reply", "expected"),
    [
        ("binanceusdm", {"enableFutures": True, "enableWithdrawals": False}, (True, False)),
        ("binanceusdm", {"enableFutures": True, "enableWithdrawals": True}, (True, True)),
        ("binanceusdm", {"enableFutures": True, "permitsUniversalTransfer": True},
         (True, False, True)),
        ("bybit", {"result": {"readOnly": 0, "permissions": {"ContractTrade": ["Order"]}}},
         (True, False)),
        ("bybit", {"result": {"readOnly": 1, "permissions": {"Wallet": ["Withdraw"]}}},
         (False, True)),
        ("okx", {"data": [{"perm": "read_only,trade"}]}, (True, False, True)),
        ("okx", {"data": [{"perm": "read_only,withdraw,trade"}]}, (True, True, True)),
    ],
)  # fmt: skip
async def test_key_permissions_are_read_from_each_exchange(exchange, reply, expected) -> None:
    readers = {
        "binanceusdm": binance_permissions.read_permissions,
        "bybit": bybit_permissions.read_permissions,
        "okx": okx_permissions.read_permissions,
    }
    assert await readers[exchange](KeyInfo(reply)) == KeyPermissions(*expected)


def test_refusals_name_the_account_and_what_to_change() -> None:
    assert refusal("main", "binanceusdm", KeyPermissions(True, False)) is None
    withdraw = refusal("main", "binanceusdm", KeyPermissions(True, True))
    assert withdraw and "'main'" in withdraw and "without the withdrawal permission" in withdraw
    read_only = refusal("main", "okx", KeyPermissions(False, False))
    assert read_only and "enable futures trading" in read_only
    unknown = refusal("main", "kraken", None)
    assert unknown and re.search(r"cannot verify .* kraken", unknown)
    # a reserve needs transfer permission; transfer is fine, withdrawal still is not
    assert refusal("main", "binanceusdm", KeyPermissions(True, False, True), reserve=True) is None
    no_transfer = refusal("main", "binanceusdm", KeyPermissions(True, False), reserve=True)
    assert no_transfer and "actions.reserve" in no_transfer and "cannot transfer" in no_transfer
    both = refusal("main", "binanceusdm", KeyPermissions(True, True, True), reserve=True)
    assert both and "WITHDRAW" in both


def test_a_journal_from_before_the_distance_columns_is_upgraded_in_place(tmp_path: Path) -> None:
    import sqlite3

    path = tmp_path / "old.sqlite3"
    old = sqlite3.connect(path)
    old.execute(
        "CREATE TABLE decisions (id TEXT PRIMARY KEY, account TEXT NOT NULL, target TEXT NOT NULL,"
        " kind TEXT NOT NULL, symbol TEXT NOT NULL, client_order_id TEXT, mode TEXT NOT NULL,"
        " status TEXT NOT NULL, notional REAL NOT NULL, quantity REAL NOT NULL,"
        " description TEXT NOT NULL, request TEXT NOT NULL, result TEXT,"
        " detail TEXT NOT NULL DEFAULT '', ratio_before REAL, ratio_expected REAL,"
        " ratio_after REAL, liquidation_price REAL, created_at REAL NOT NULL,"
        " updated_at REAL NOT NULL)"
    )
    old.commit()
    old.close()
    journal = Journal(path)
    decision = a_decision()
    assert journal.record(decision, "auto", "planned", {})
    journal.observed(decision.id, 0.1, 50_000.0, float("inf"))  # nothing liquidates it
    row = journal.get(decision.id)
    assert row is not None and row.distance_expected == pytest.approx(decision.distance_after)
    assert row.distance_after is None


def test_a_refused_rung_is_tried_once_more_on_a_fresh_read_then_skipped(tmp_path) -> None:
    clock = [1_000.0]
    journal = Journal(tmp_path / "j.sqlite3", now=lambda: clock[0])
    guards = Guards("u", isolated(), journal, KillSwitch(tmp_path), now=lambda: clock[0])
    guards.refuse(DOGE, "balance")
    assert guards.refused(read_at=999.0)[DOGE] == {"balance"}  # the read it was sized on
    assert guards.refused(read_at=1_000.5)[DOGE] == frozenset()  # a read after it
    clock[0] = 1_001.0
    guards.refuse(DOGE, "balance")  # refused again: the exchange judges otherwise
    assert guards.refused(read_at=1_001.5)[DOGE] == {"balance"}
    clock[0] = 1_001.0 + 60.0  # one cooldown (60 s by default) after the second
    assert guards.refused(read_at=1_061.5)[DOGE] == frozenset()


def test_a_pool_collateral_is_not_spent_on_an_isolated_add_in_the_same_plan() -> None:
    # The pool (served first, more severe) takes its 4,835.20 (above) from the reserve;
    # DOGE's add is then funded exactly as if the pool had asked for nothing (3,783.75,
    # above): the pool's collateral brings the pool to its target and is not DOGE's.
    near = isolated(RESERVE, close_before=0.003)
    levels_ = {"pool USDT": Level.IMMINENT, DOGE: Level.CRITICAL}
    pool, transfer, add = decide("u", book(8000), {}, levels_, near, ROOMY).decisions
    assert (pool.target, pool.kind, pool.quantity) == ("pool USDT", "transfer", 4_835.20)
    assert (transfer.target, transfer.quantity) == (DOGE, 3_783.75)
    assert (add.kind, add.quantity) == ("add_margin", NEEDED)
