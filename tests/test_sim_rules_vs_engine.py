"""The simulated exchange and the monitor's engine, two implementations of Binance's
rules, agree on random hybrid books: one-way and hedge mode, longs and shorts, cross and
isolated, notionals across several brackets (so liquidation prices often sit in another
bracket than the mark).

Neither side is the expected value: the simulator's rules are checked against Binance's
worked example and hand derivations in test_sim_rules.py, the engine's in
test_engine_binance.py. Here a disagreement means one of them misreads the FAQ.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from monitor.domain import MarginMode
from monitor.engine.book import AccountBook
from monitor.engine.vector import VectorEngine, account_risk
from monitor.simulator.binance_usdm import SimAccount, SimExchange, SimPosition, usdm_markets
from monitor.simulator.binance_usdm.rules import isolated_key, liquidation_price, margin_pools
from tests.sim_snapshot import account_snapshot

START = {"BTCUSDT": 60_000.0, "ETHUSDT": 3_000.0, "SOLUSDT": 150.0, "AVAXUSDT": 35.0}


@st.composite
def hybrid_books(draw: st.DrawFn) -> tuple[SimExchange, SimAccount]:
    hedge = draw(st.booleans())
    marks = {s: price * draw(st.floats(0.8, 1.2)) for s, price in START.items()}
    exchange = SimExchange(markets=usdm_markets(extended=True), mark_prices=marks)
    legs: list[SimPosition] = []
    symbols = draw(st.lists(st.sampled_from(list(START)), min_size=1, max_size=4, unique=True))
    for symbol in symbols:
        isolated = draw(st.booleans())
        both = hedge and draw(st.booleans())
        sides = ["LONG", "SHORT"] if both else [draw(st.sampled_from(["LONG", "SHORT"]))]
        for side in sides:
            notional = 10 ** draw(st.floats(2.5, 6.5))  # 316 .. 3.2M: several brackets
            size = notional / START[symbol]
            legs.append(
                SimPosition(
                    symbol,
                    size if side == "LONG" else -size,
                    START[symbol] * draw(st.floats(0.85, 1.15)),
                    position_side=side if hedge else "BOTH",
                    margin_type="isolated" if isolated else "cross",
                    isolated_wallet=notional * draw(st.floats(0.03, 0.5)) if isolated else 0.0,
                )
            )
    wallet = 10 ** draw(st.floats(2.0, 6.0))
    account = SimAccount("prop", "s", {"USDT": wallet}, legs, dual_side_position=hedge)
    return exchange, exchange.add_account(account)


@settings(max_examples=300, deadline=None)
@given(hybrid_books())
def test_simulator_and_engine_agree_on_ratios_decisions_and_liquidation_prices(
    book: tuple[SimExchange, SimAccount],
) -> None:
    exchange, account = book
    risk = AccountBook(account_snapshot(exchange, account)).evaluate(exchange.mark_prices)
    engine_pools = {p.asset: p for p in risk.pools}
    engine_legs = {(p.position.symbol, p.position.position_side): p for p in risk.positions}
    for pool in margin_pools(exchange, account):
        if pool.cross:
            theirs = engine_pools[pool.key]
            assert pool.maint_margin == _approx(theirs.maintenance_margin)
            assert pool.margin_balance == _approx(theirs.margin_balance)
        else:
            (leg,) = pool.legs
            theirs = engine_legs[leg.symbol, leg.position_side]
            assert isolated_key(leg) == pool.key
            assert pool.maint_margin == _approx(theirs.maintenance_margin)
            assert theirs.position.margin_mode is MarginMode.ISOLATED
        assert pool.liquidating == (theirs.margin_ratio is not None and theirs.margin_ratio >= 1)
        if pool.liquidating:
            continue  # the exchange closes it now: no price to report
        assert pool.margin_ratio == _approx(theirs.margin_ratio)
        for leg in pool.legs:
            engine_price = engine_legs[leg.symbol, leg.position_side].liquidation_price
            simulator_price = liquidation_price(exchange, pool, leg)
            if engine_price is None or simulator_price is None:
                assert engine_price is simulator_price is None
            else:
                assert simulator_price == _approx(engine_price)


def _approx(value: float | None) -> object:
    return pytest.approx(value, rel=1e-9, abs=1e-9)


def test_a_hedged_pair_liquidated_exactly_at_a_bracket_floor() -> None:
    """A fully hedged AVAX pair in cross: the PnL cancels and only the MM grows with the
    price, so the account is liquidated on a rise, when 2 x 1 % x q x P reaches the 100
    USDT wallet: P = 5,000 / q, where each leg's notional is exactly the 5,000 floor of
    the second bracket (1.5 %, cum 25: the same 50 of MM on either side). The engines'
    search used to flip between the two brackets' lines there and report no price."""
    q = 9.035079029052513
    by_hand = 5_000 / q  # 553.39859052946...
    marks = {**START, "AVAXUSDT": 41.571960730124424}
    exchange = SimExchange(markets=usdm_markets(extended=True), mark_prices=marks)
    legs = [
        SimPosition("AVAXUSDT", size, 35.0, position_side=side, margin_type="cross")
        for size, side in ((q, "LONG"), (-q, "SHORT"))
    ]
    account = exchange.add_account(
        SimAccount("prop", "s", {"USDT": 100.0}, legs, dual_side_position=True)
    )
    snapshot = account_snapshot(exchange, account)
    scalar = AccountBook(snapshot).evaluate(exchange.mark_prices)
    engine = VectorEngine()
    engine.load(snapshot)
    vector = account_risk(engine.update(exchange.mark_prices), snapshot.name)
    (pool,) = margin_pools(exchange, account)
    for risk in (scalar, vector):
        for position, leg in zip(risk.positions, pool.legs, strict=True):
            assert position.liquidation_price == _approx_rel(by_hand)
            assert liquidation_price(exchange, pool, leg) == _approx_rel(by_hand)


def _approx_rel(value: float) -> object:
    return pytest.approx(value, rel=1e-9)
