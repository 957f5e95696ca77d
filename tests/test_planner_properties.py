"""The cross cut planner on random books, checked by a brute-force liquidation search
written here (no solver, no engine sizing): a price scan for the first move at which
equity falls to maintenance margin, with MM and PnL summed by hand.

- A chosen cut never lowers the pool's distance against the way the market is moving
  against it (its nearest threat), nor pulls any other threat's distance below the
  target (or below where it was): a hedge is never cut to the pool's harm.
- A cut that reaches the target is minimal: one lot less misses it.
"""

from __future__ import annotations

import math
from dataclasses import replace
from itertools import groupby

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from monitor.domain import AccountSnapshot, MarketInfo, Position
from monitor.engine.book import AccountBook
from monitor.engine.sizing import Cut, Goal, plan_cuts
from tests.strategies import cross_accounts
from tests.test_engine_properties import mm_by_hand, pnl_by_hand

SCAN = 0.01
"""Coarse step of the price scan; the crossing is then bisected to 1e-12."""
TOLERANCE = 1e-6


def value_gap(snapshot: AccountSnapshot, wallet: float, symbol: str | None, x: float) -> float:
    """Equity - MM with `symbol`'s mark (every mark, for None) moved by the fraction x."""
    gap = wallet
    for p in snapshot.positions:
        mark = p.mark_price * (1 + x) if symbol in (None, p.symbol) else p.mark_price
        gap += pnl_by_hand(p, mark) - mm_by_hand(p, mark, snapshot.tiers[p.symbol])
    return gap


def distance_by_hand(
    snapshot: AccountSnapshot, wallet: float, threat: tuple, within: float = math.inf
) -> float:
    """The first move against `threat` that takes equity to maintenance margin. With
    `within`, the scan stops at the step that holds that move: the result is exact below
    `within` and infinite (or exact) past it, which is all a filter on it needs."""
    symbol, direction = threat
    if value_gap(snapshot, wallet, symbol, 0.0) <= 0:
        return 0.0
    previous = 0.0
    steps = int((0.999 if direction < 0 else 4.0) / SCAN)
    if math.isfinite(within):
        steps = min(steps, math.ceil(within / SCAN))
    for i in range(1, steps + 1):
        x = i * SCAN
        if value_gap(snapshot, wallet, symbol, direction * x) <= 0:
            lo, hi = previous, x
            for _ in range(45):
                mid = (lo + hi) / 2
                if value_gap(snapshot, wallet, symbol, direction * mid) <= 0:
                    hi = mid
                else:
                    lo = mid
            return hi
        previous = x
    return math.inf


def threats_by_hand(snapshot: AccountSnapshot) -> list[tuple]:
    """A fall hurts longs, a rise shorts: all symbols together, and each alone."""
    signs = {p.side.sign for p in snapshot.positions}
    found = [(None, -sign) for sign in signs]
    found += list({(p.symbol, -p.side.sign) for p in snapshot.positions})
    return found


def after_cuts(snapshot: AccountSnapshot, cuts: dict[str, float]) -> tuple[AccountSnapshot, float]:
    """The positions after closing `cuts` at the mark; the wallet gains the closed PnL
    (the strategies' books carry no taker fee)."""
    wallet = snapshot.pools[0].wallet_balance
    kept: list[Position] = []
    for p in snapshot.positions:
        cut = cuts.get(p.symbol, 0.0)
        wallet += pnl_by_hand(p, p.mark_price) * cut / p.contracts
        if p.contracts - cut > 1e-12:
            kept.append(replace(p, contracts=p.contracts - cut))
    return replace(snapshot, positions=tuple(kept)), wallet


def distances(
    snapshot: AccountSnapshot, cuts: dict[str, float], threats: list, within: float = math.inf
) -> dict:
    after, wallet = after_cuts(snapshot, cuts)
    if not after.positions:
        return dict.fromkeys(threats, math.inf)
    return {t: distance_by_hand(after, wallet, t, within) for t in threats}


def nearest_is_inside(snapshot: AccountSnapshot, threats: list, target: float) -> bool:
    """0 < the nearest threat's distance < target: the books the properties are about.
    Most drawn books are not, so this scans only as far as `target` (a full scan runs
    to a 400 % rise); the properties then scan in full."""
    nearest = min(distances(snapshot, {}, threats, within=target).values())
    return 0 < nearest < target


def with_lots(snapshot: AccountSnapshot, step: float) -> AccountSnapshot:
    positions = tuple(
        replace(p, contracts=round(p.contracts / step) * step or step) for p in snapshot.positions
    )
    markets = {p.symbol: MarketInfo(p.symbol, amount_step=step) for p in positions}
    return replace(snapshot, positions=positions, markets=markets)


def steps_of(plan: list[Cut]) -> list[list[Cut]]:
    """Cuts made as one step (a pro-rata cut of every leg shares its result)."""
    return [list(group) for _, group in groupby(plan, key=lambda cut: id(cut.after))]


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.filter_too_much])
@given(cross_accounts(), st.floats(0.02, 0.3), st.sampled_from([0.001, 0.01, 0.1]))
def test_a_chosen_cut_never_lowers_the_distance_against_the_move(snapshot, target, step):
    snapshot = with_lots(snapshot, step)
    threats = threats_by_hand(snapshot)
    assume(nearest_is_inside(snapshot, threats, target))
    before = distances(snapshot, {}, threats)
    nearest = min(before, key=before.__getitem__)
    assert 0 < before[nearest] < target  # the filter's scan agrees with the full one
    plan = plan_cuts(AccountBook(snapshot), "USDT", None, Goal(target))
    cuts: dict[str, float] = {}
    for group in steps_of(plan):
        for cut in group:
            cuts[cut.symbol] = cut.contracts
        after = distances(snapshot, cuts, threats)
        assert after[nearest] > before[nearest] - TOLERANCE, (nearest, before, after)
        for threat, was in before.items():
            assert after[threat] >= min(was, target) - TOLERANCE, (threat, before, after)
        before = after
        nearest = min(before, key=before.__getitem__)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.filter_too_much])
@given(cross_accounts(), st.floats(0.02, 0.3), st.sampled_from([0.001, 0.01, 0.1]))
def test_a_cut_that_reaches_the_target_is_minimal(snapshot, target, step):
    snapshot = with_lots(snapshot, step)
    threats = threats_by_hand(snapshot)
    assume(nearest_is_inside(snapshot, threats, target))
    start = distances(snapshot, {}, threats)
    assert 0 < min(start.values()) < target  # the filter's scan agrees with the full one
    plan = plan_cuts(AccountBook(snapshot), "USDT", None, Goal(target))
    cuts: dict[str, float] = {}
    for group in steps_of(plan):
        earlier = dict(cuts)
        for cut in group:
            cuts[cut.symbol] = cut.contracts
        last = group[-1]
        if not last.reaches:
            continue
        assert min(distances(snapshot, cuts, threats).values()) >= target - TOLERANCE
        if len(group) == 1 and last.contracts - step > 1e-9:
            one_less = {**earlier, last.symbol: last.contracts - step}
            assert min(distances(snapshot, one_less, threats).values()) < target + TOLERANCE
