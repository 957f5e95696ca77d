"""The vectorised engine against the scalar one, which stays the reference.

Both engines take the same snapshots; every figure the vectorised engine reports must be
the scalar engine's to 1e-9 (relative), on every exchange model, and every unknown must
be the same unknown with the same note. The few fixed cases at the end check the
vectorised engine against the exchanges' published examples directly.
"""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from monitor.domain import AccountSnapshot, CrossPool, MarginMode, Position, Side, TierTable
from monitor.engine.book import AccountBook
from monitor.engine.models import BybitModel, MarginModel
from monitor.engine.results import AccountRisk
from monitor.engine.vector import Note, VectorEngine, account_risk, newton
from tests.strategies import model_accounts
from tests.test_engine_binance import TIERS, WALLET, faq_positions

REL = 1e-9

ENTRY_RULE = BybitModel(isolated_mm_at_entry=True)


def scale_of(snapshot: AccountSnapshot) -> float:
    """The size of the account's money: what rounding in a sum is relative to."""
    values = [
        p.size / p.mark_price if p.inverse else p.size * p.mark_price for p in snapshot.positions
    ]
    wallets = [abs(p.wallet_balance) for p in snapshot.pools]
    return max([1.0, *values, *wallets])


def close(vector: float | None, scalar: float | None, absolute: float) -> bool:
    if vector is None or scalar is None:
        return vector is None and scalar is None
    if math.isnan(scalar) or math.isinf(scalar):
        return math.isnan(vector) if math.isnan(scalar) else vector == scalar
    return math.isclose(vector, scalar, rel_tol=REL, abs_tol=absolute)


def assert_same(vector: AccountRisk, scalar: AccountRisk, money: float) -> None:
    """Field by field. Sums are compared relative to the account's money (`money`), as
    a sum's rounding is; fractions (moves, distances) to 1e-12 absolute besides 1e-9."""
    assert vector[:4] == scalar[:4]
    assert len(vector.pools) == len(scalar.pools)
    assert len(vector.positions) == len(scalar.positions)
    for ours, theirs in zip(vector.pools, scalar.pools, strict=True):
        assert ours.asset == theirs.asset and ours.note == theirs.note, (ours, theirs)
        for field in ("wallet_balance", "unrealized_pnl", "margin_balance",
                      "maintenance_margin", "liquidation_fees"):  # fmt: skip
            assert close(getattr(ours, field), getattr(theirs, field), REL * money), field
        for field in ("liquidation_move", "liquidation_distance"):
            assert close(getattr(ours, field), getattr(theirs, field), 1e-12), (field, ours, theirs)
        assert ours.exchange_margin_ratio == theirs.exchange_margin_ratio
        assert_ratio(ours.margin_ratio, theirs.margin_ratio, theirs.margin_balance, money)
    for ours, theirs in zip(vector.positions, scalar.positions, strict=True):
        assert ours.position is theirs.position
        assert ours.note == theirs.note, (ours, theirs)
        assert ours.mark_price == theirs.mark_price
        for field in ("notional", "unrealized_pnl", "maintenance_margin", "liquidation_fees"):
            assert close(getattr(ours, field), getattr(theirs, field), REL * money), field
        assert close(ours.liquidation_price, theirs.liquidation_price, 1e-12 * ours.mark_price), (
            ours,
            theirs,
        )
        assert close(ours.liquidation_distance, theirs.liquidation_distance, 1e-12), (ours, theirs)
        assert (ours.margin_ratio is None) == (theirs.margin_ratio is None)


def assert_ratio(ours: float | None, theirs: float | None, balance: float, money: float) -> None:
    """A ratio divides by the equity: where that is a small difference of large sums, its
    rounding is relative to the sums, not to the equity."""
    if ours is None or theirs is None or math.isinf(theirs) or math.isnan(balance):
        assert close(ours, theirs, 0.0)
        return
    assert math.isclose(ours, theirs, rel_tol=REL + 1e-12 * money / max(abs(balance), 1e-300))


def evaluate_both(
    snapshots: list[tuple[AccountSnapshot, MarginModel | None]], marks: dict[str, float]
) -> None:
    engine = VectorEngine()
    for snapshot, model in snapshots:
        engine.load(snapshot, model)
    frame = engine.update(marks)
    for snapshot, model in snapshots:
        scalar = AccountBook(snapshot, model).evaluate(marks)
        assert_same(account_risk(frame, snapshot.name), scalar, scale_of(snapshot))


def moved(snapshot: AccountSnapshot, factors: list[float]) -> dict[str, float]:
    """Marks moved by the factors, symbol by symbol (a symbol past the list keeps its
    snapshot mark: the engine must fall back to it)."""
    symbols = sorted({p.symbol for p in snapshot.positions})
    return {
        s: next(p.mark_price for p in snapshot.positions if p.symbol == s) * f
        for s, f in zip(symbols, factors, strict=False)
    }


def models(snapshot: AccountSnapshot, entry_rule: bool) -> MarginModel | None:
    return ENTRY_RULE if entry_rule and snapshot.exchange == "bybit" else None


FACTORS = st.lists(st.floats(0.3, 2.0), min_size=0, max_size=5)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(model_accounts(), FACTORS, st.booleans())
def test_every_model_matches_the_scalar_engine(snapshot, factors, entry_rule):
    evaluate_both([(snapshot, models(snapshot, entry_rule))], moved(snapshot, factors))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(model_accounts(), min_size=2, max_size=5, unique_by=lambda s: s.name),
    st.lists(FACTORS, min_size=1, max_size=4),
)
def test_many_accounts_over_many_frames_match(snapshots, frames):
    """One layout of several accounts (row offsets), frame after frame (warm starts).
    Accounts share symbol names: the last account's moved mark is everyone's, and a
    symbol without one falls back to each position's own snapshot mark, in both engines."""
    engine = VectorEngine()
    for snapshot in snapshots:
        engine.load(snapshot)
    for factors in frames:
        marks: dict[str, float] = {}
        for snapshot in snapshots:
            marks.update(moved(snapshot, factors))
        frame = engine.update(marks)
        for snapshot in snapshots:
            scalar = AccountBook(snapshot).evaluate(marks)
            assert_same(account_risk(frame, snapshot.name), scalar, scale_of(snapshot))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(model_accounts(), min_size=2, max_size=4, unique_by=lambda s: s.name), model_accounts()
)
def test_reloading_one_account_leaves_the_others_as_they_were(snapshots, replacement):
    engine = VectorEngine()
    for snapshot in snapshots:
        engine.load(snapshot)
    before = engine.update()
    changed = AccountSnapshot(
        snapshots[0].name, replacement.exchange, replacement.pools, replacement.positions,
        replacement.tiers, taker_fee_rate=replacement.taker_fee_rate,
        unified_pool=replacement.unified_pool,
    )  # fmt: skip
    engine.load(changed)
    after = engine.update()
    assert_same(
        account_risk(after, changed.name), AccountBook(changed).evaluate(), scale_of(changed)
    )
    for snapshot in snapshots[1:]:  # to the last bit (repr: NaN wallets compare equal)
        assert repr(account_risk(after, snapshot.name)) == repr(account_risk(before, snapshot.name))
    engine.remove(changed.name)
    assert changed.name not in engine.layout.accounts


def test_binance_faq_cross_and_isolated_prices():
    """Binance's FAQ worked example (reference/margin-models.md), straight from the
    vectorised engine: cross BTC 26,316.89 and ETH 1,153.26; isolated BTC 18,778.73 and
    ETH 1,114.78."""
    cross = AccountSnapshot(
        "cross", "binanceusdm", (CrossPool("USDT", WALLET),), faq_positions(MarginMode.CROSS), TIERS
    )
    isolated = AccountSnapshot(
        "isolated", "binanceusdm", (CrossPool("USDT", 0.0),),
        faq_positions(MarginMode.ISOLATED, isolated=WALLET), TIERS,
    )  # fmt: skip
    engine = VectorEngine()
    engine.load(cross)
    engine.load(isolated)
    frame = engine.update()
    prices = {
        (account, position.symbol): frame.liquidation_price[row]
        for row, (account, position) in enumerate(frame.layout.position_rows)
    }
    assert prices["cross", "BTC/USDT:USDT"] == pytest.approx(26_316.89, abs=0.005)
    assert prices["cross", "ETH/USDT:USDT"] == pytest.approx(1_153.26, abs=0.005)
    assert prices["isolated", "BTC/USDT:USDT"] == pytest.approx(18_778.73, abs=0.005)
    assert prices["isolated", "ETH/USDT:USDT"] == pytest.approx(1_114.78, abs=0.005)


def test_unknowns_are_nan_with_the_reason_never_zero():
    """A symbol without tiers (a venue that publishes no MM rate) and a cross pool the
    exchange reported no wallet for: every figure that needs them is NaN, and says why."""
    no_tiers = Position("W/USDT:USDT", Side.LONG, MarginMode.ISOLATED, 1, 1, 100, 100, "USDT",
                        isolated_margin=10.0)  # fmt: skip
    no_wallet = Position("K/USDT:USDT", Side.SHORT, MarginMode.CROSS, 1, 1, 100, 100, "USDT")
    snapshot = AccountSnapshot(
        "weex", "weex", (), (no_tiers, no_wallet), {"K/USDT:USDT": TierTable.flat(0.01)}
    )
    engine = VectorEngine()
    engine.load(snapshot)
    frame = engine.update({"W/USDT:USDT": 90.0})
    by_symbol = {p.symbol: row for row, (_, p) in enumerate(frame.layout.position_rows)}
    row = by_symbol["W/USDT:USDT"]
    assert frame.unrealized_pnl[row] == -10.0  # still known: 1 x (90 - 100)
    for figures in (frame.maintenance_margin, frame.margin_ratio, frame.liquidation_price):
        assert np.isnan(figures[row])
    assert frame.note[row] == Note.NO_TIERS
    assert frame.position_note(row) == "no maintenance tiers published for W/USDT:USDT"
    row = by_symbol["K/USDT:USDT"]
    assert np.isnan(frame.margin_ratio[row]) and frame.note[row] == Note.POOL
    assert frame.position_note(row) == "exchange did not report a USDT cross wallet"
    assert np.isnan(frame.pool_margin_ratio[0])
    assert_same(
        account_risk(frame, "weex"), AccountBook(snapshot).evaluate({"W/USDT:USDT": 90.0}), 100.0
    )


def test_an_empty_engine_and_an_account_without_positions():
    engine = VectorEngine()
    assert engine.update({"X": 1.0}).notional.size == 0
    engine.load(AccountSnapshot("idle", "binanceusdm", (CrossPool("USDT", 50.0),), (), {}))
    frame = engine.update()
    assert frame.pool_margin_ratio.tolist() == [0.0]  # nothing held against 50 USDT
    assert np.isnan(frame.pool_liquidation_move[0]) and frame.pool_note_text(0) is None


def test_a_mark_exactly_on_a_tier_floor_takes_the_upper_tier():
    """Binance's bracket rule, floor <= notional < cap: 1 BTC at 50,000 is in the 0.5 %
    bracket (cum 50), so MM = 50,000 x 0.005 - 50 = 200; a tick lower, 49,999 x 0.004
    = 199.996 in the first bracket. MM is continuous across the floor, as cum makes it."""
    long = Position("BTC/USDT:USDT", Side.LONG, MarginMode.CROSS, 1.0, 1.0, 50_000, 50_000, "USDT")
    snapshot = AccountSnapshot(
        "a",
        "binanceusdm",
        (CrossPool("USDT", 10_000.0),),
        (long,),
        {long.symbol: TIERS[long.symbol]},
    )
    engine = VectorEngine()
    engine.load(snapshot)
    at_floor = engine.update({long.symbol: 50_000.0})
    assert at_floor.tier[0] == 1 and at_floor.maintenance_margin[0] == pytest.approx(200.0)
    below = engine.update({long.symbol: 49_999.0})
    assert below.tier[0] == 0 and below.maintenance_margin[0] == pytest.approx(199.996)
    for marks in ({long.symbol: 50_000.0}, {long.symbol: 49_999.0}):
        evaluate_both([(snapshot, None)], marks)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(model_accounts(), FACTORS)
def test_a_newton_row_that_does_not_settle_goes_to_the_scalar_walk(snapshot, factors):
    """The safeguard path: with a single Newton step allowed, rows that need more are
    answered by the scalar walk, and every figure is still the scalar engine's."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(newton, "MAX_STEPS", 1)
        evaluate_both([(snapshot, None)], moved(snapshot, factors))


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(model_accounts(), min_size=1, max_size=4, unique_by=lambda s: s.name),
    st.floats(0.5, 2.0),
    st.floats(0.8, 1.25),
    FACTORS,
)
def test_a_new_snapshot_of_the_same_positions_is_written_over_its_rows(
    snapshots, wallet_factor, size_factor, factors
):
    """The common reload (a poll: new wallet, sizes and entries, the same positions)
    keeps every row where it was, and the figures are the new snapshot's."""
    engine = VectorEngine()
    for snapshot in snapshots:
        engine.load(snapshot)
    marks = moved(snapshots[0], factors)
    earlier = engine.update(marks)
    earlier_figures = repr(account_risk(earlier, snapshots[0].name))
    rows_before = engine.layout.accounts
    first = snapshots[0]
    polled = replace(
        first,
        pools=tuple(
            replace(p, wallet_balance=p.wallet_balance * wallet_factor) for p in first.pools
        ),
        positions=tuple(
            replace(p, contracts=p.contracts * size_factor, entry_price=p.entry_price * size_factor)
            for p in first.positions
        ),
    )
    engine.load(polled)
    frame = engine.update(marks)
    assert_same(
        account_risk(frame, polled.name), AccountBook(polled).evaluate(marks), scale_of(polled)
    )
    for snapshot in snapshots[1:]:
        scalar = AccountBook(snapshot).evaluate(marks)
        assert_same(account_risk(frame, snapshot.name), scalar, scale_of(snapshot))
    assert engine.layout.accounts is rows_before  # written over, not re-joined
    assert repr(account_risk(earlier, first.name)) == earlier_figures  # a frame keeps its own


def scaled(table: TierTable, factor: float) -> TierTable:
    """The same brackets at `factor` times the floors and deductions (rates kept): a
    venue's table after a change that keeps its shape."""
    return replace(
        table,
        tiers=tuple(
            replace(t, floor=t.floor * factor, cap=t.cap * factor,
                    maintenance_amount=t.maintenance_amount * factor)
            for t in table.tiers
        ),
    )  # fmt: skip


def polled(snapshot: AccountSnapshot, factor: float) -> AccountSnapshot:
    """A poll of the same positions: wallets, sizes, entries and tier tables changed."""
    return replace(
        snapshot,
        pools=tuple(replace(p, wallet_balance=p.wallet_balance * factor) for p in snapshot.pools),
        positions=tuple(
            replace(p, contracts=p.contracts * factor, entry_price=p.entry_price / factor)
            for p in snapshot.positions
        ),
        tiers={symbol: scaled(table, factor) for symbol, table in snapshot.tiers.items()},
    )


STEPS = st.lists(
    st.tuples(
        st.one_of(st.floats(-0.002, 0.002), st.floats(-0.3, 0.3)),  # calm or a crash
        st.booleans(),
        st.floats(0.5, 2.0),
    ),
    min_size=2,
    max_size=8,
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(model_accounts(), min_size=1, max_size=4, unique_by=lambda s: s.name), STEPS)
def test_a_walk_of_marks_with_polls_between_frames_matches(snapshots, steps):
    """Frame after frame, marks walking in calm and crash-sized steps (symbols apart),
    a poll of the first account before some frames (new wallets, sizes, entries and
    tier tables of the same shape): what the engine carries from frame to frame (tiers,
    brackets and roots, and the tables' entries there) never shows in a figure."""
    engine = VectorEngine()
    for snapshot in snapshots:
        engine.load(snapshot)
    marks = {p.symbol: p.mark_price for s in snapshots for p in s.positions}
    for step, poll, factor in steps:
        marks = {
            symbol: mark * (1.0 + (step if i % 2 else -0.5 * step))
            for i, (symbol, mark) in enumerate(sorted(marks.items()))
        }
        if poll:
            snapshots[0] = polled(snapshots[0], factor)
            engine.load(snapshots[0])
        frame = engine.update(marks)
        for snapshot in snapshots:
            scalar = AccountBook(snapshot).evaluate(marks)
            assert_same(account_risk(frame, snapshot.name), scalar, scale_of(snapshot))
