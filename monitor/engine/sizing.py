"""How much to add or cut to bring a position or a pool back to a target: defenses, sized.

Targets are liquidation distances (the unit the alert levels fire on), optionally with a
margin ratio as well; a defense sized here meets every target it is given. Every answer
is the engine's own exact evaluation of the book as it would be after the defense, not
an estimate: the auto-deleverage actions execute these sizes and the alerts quote them.

Two conventions keep them conservative:
- a cut closes at the mark and pays the taker fee out of the pool when the fee is known;
- added margin or collateral never changes maintenance margin (that follows notional).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import NamedTuple

from monitor.domain import MarketInfo
from monitor.engine.book import AccountBook, Marks
from monitor.engine.legs import Leg
from monitor.engine.results import margin_ratio
from monitor.engine.solver import MovingLeg, liquidation_move, single_leg_move

DEFAULT_STEP = 1e-8
NONE_LEFT = 1e-12
"""Contracts below this are a closed position."""
LegKey = tuple[str, str]
"""(symbol, side): one position of a pool (hedge-mode legs differ by side)."""


@dataclass(frozen=True, slots=True)
class Goal:
    """What a defense must reach: a liquidation distance of at least `distance` against
    every threat (see `Threat`) and, when given, a margin ratio at or below `ratio`."""

    distance: float | None
    ratio: float | None = None


Threat = tuple[str | None, int]
"""A way the market can move against a pool: (symbol, direction) moves that symbol
alone with the others held at their marks (how each member's liquidation price is
defined, and how one leg of a hedge gaps); (None, direction) moves every mark by the
same fraction (the pool's own distance). Direction -1 is a fall, +1 a rise."""


def key_of(leg: Leg) -> LegKey:
    return leg.symbol, leg.position.side.value


def mark_of(leg: Leg, marks: Marks | None) -> float:
    return (marks.get(leg.symbol) if marks else None) or leg.position.mark_price


# --- isolated -------------------------------------------------------------------


def isolated_distance(leg: Leg, mark: float, wallet: float) -> float:
    """Distance to an isolated position's liquidation with `wallet` as its margin;
    inf when no price liquidates it, 0 when it is already past liquidation."""
    index = leg.tier_index(mark) if leg.tiers is not None else 0
    move = single_leg_move(leg, mark, index, wallet)
    if move is None:
        return math.inf
    return max(0.0, -leg.sign * move)


def margin_for(leg: Leg, mark: float, wallet: float, goal: Goal) -> float:
    """Margin to add to an isolated position so that it meets `goal` (0 if it does).

    Distance: the position must survive the price `mark x (1 - side x d)`, where its
    equity equals its MM: add = MM(P) - PnL(P) - wallet. A single leg's equity - MM falls
    monotonically in its adverse direction, so P is then exactly its liquidation price.
    Ratio: MM / target - equity at the mark.
    """
    needed = 0.0
    if goal.distance is not None:
        price = mark * (1.0 - leg.sign * goal.distance)
        if price > 0:
            needed = leg.maintenance_margin(price) - leg.unrealized_pnl(price) - wallet
    if goal.ratio is not None:
        equity = wallet + leg.unrealized_pnl(mark)
        needed = max(needed, leg.maintenance_margin(mark) / goal.ratio - equity)
    return max(0.0, needed)


def margin_to_add(
    book: AccountBook, leg: Leg, target_ratio: float, marks: Marks | None = None
) -> float:
    """Margin to move into an isolated position so its ratio falls to `target_ratio`."""
    if not 0.0 < target_ratio < 1.0:
        raise ValueError(f"target ratio must be > 0 and < 1, got {target_ratio}")
    wallet = leg.position.isolated_margin
    if wallet is None or not leg.has_margin_terms:
        raise ValueError(f"{leg.symbol}: isolated margin or tiers unknown")
    return margin_for(leg, mark_of(leg, marks), wallet, Goal(None, target_ratio))


# --- cross ----------------------------------------------------------------------


class PoolState(NamedTuple):
    """A pool as it would be after some cuts and some collateral: exact figures."""

    wallet: float
    ratio: float
    distances: dict[Threat, float]
    """Distance to liquidation under each threat that can liquidate it."""

    def distance(self, threat: Threat) -> float:
        return self.distances.get(threat, math.inf)

    @property
    def threat(self) -> Threat | None:
        """The nearest threat; None when no move liquidates the pool."""
        if not self.distances:
            return None
        threat = min(self.distances, key=self.distances.__getitem__)
        return threat if math.isfinite(self.distances[threat]) else None

    @property
    def nearest(self) -> float:
        return min(self.distances.values(), default=math.inf)

    def meets(self, goal: Goal) -> bool:
        return (goal.distance is None or self.nearest >= goal.distance) and (
            goal.ratio is None or self.ratio <= goal.ratio
        )


def resized(book: AccountBook, leg: Leg, contracts: float) -> Leg:
    """The same position with fewer contracts, priced by the same model."""
    return book.model.compile(replace(leg.position, contracts=contracts), book.snapshot)


def cut_value(leg: Leg, mark: float, contracts: float) -> float:
    """What closing `contracts` is counted as against the caps: the quote value at `mark`
    of a linear leg; the USD face value of an inverse one (its value in coin would make
    a cap in dollars meaningless)."""
    return (leg.qty if leg.inverse else leg.value(mark)) * contracts / leg.contracts


def pool_state(
    book: AccountBook,
    asset: str,
    marks: Marks | None = None,
    *,
    cuts: Mapping[LegKey, float] | None = None,
    collateral: float = 0.0,
) -> PoolState:
    """The pool after closing `cuts` (contracts per leg, at the mark) and adding
    `collateral` to its wallet. A closed part's PnL becomes wallet balance; the taker
    fee, when known, is paid from it. ValueError when the pool cannot be evaluated."""
    reported = book.snapshot.pool(asset)
    if reported is None:
        raise ValueError(f"pool {asset}: no cross wallet reported")
    taker = book.snapshot.taker_fee_rate or 0.0
    wallet = reported.wallet_balance + collateral
    moving: list[MovingLeg] = []
    for leg in book.cross.get(asset, []):
        if not leg.has_margin_terms:
            raise ValueError(f"{leg.symbol}: maintenance tiers unknown")
        mark = mark_of(leg, marks)
        cut = min((cuts or {}).get(key_of(leg), 0.0), leg.contracts)
        if cut > 0:
            share = cut / leg.contracts
            wallet += leg.unrealized_pnl(mark) * share - leg.value(mark) * share * taker
            left = leg.contracts - cut
            if left <= NONE_LEFT:
                continue
            leg = resized(book, leg, left)
        moving.append((leg, mark))
    return _state(moving, wallet)


def _state(moving: list[MovingLeg], wallet: float) -> PoolState:
    states = [(leg.unrealized_pnl(mark), leg.maintenance_margin(mark)) for leg, mark in moving]
    pnl = sum(p for p, _ in states)
    mm = sum(m for _, m in states)
    ratio = margin_ratio(mm, wallet + pnl)
    distances: dict[Threat, float] = {}
    for threat in threats(moving):
        symbol, direction = threat
        if symbol is None:
            legs, constant = moving, wallet
        else:
            legs = [(leg, mark) for leg, mark in moving if leg.symbol == symbol]
            held = sum(p - m for (leg, _), (p, m) in zip(moving, states, strict=True)
                       if leg.symbol != symbol)  # fmt: skip
            constant = wallet + held
        move = liquidation_move(legs, constant, direction)
        distances[threat] = math.inf if move is None else abs(move)
    return PoolState(wallet, ratio, distances)


def threats(moving: list[MovingLeg]) -> list[Threat]:
    """The moves that can hurt: a fall if any leg is long, a rise if any is short, for
    all symbols together and for each symbol alone (a lone symbol's own move is the
    uniform one)."""
    found: list[Threat] = []
    symbols: dict[str, set[int]] = {}
    for leg, _ in moving:
        symbols.setdefault(leg.symbol, set()).add(leg.sign)
    signs = {sign for held in symbols.values() for sign in held}
    found += [(None, -sign) for sign in sorted(signs)]
    if len(symbols) > 1:
        found += [(symbol, -sign) for symbol, held in symbols.items() for sign in sorted(held)]
    return found


def required_wallet(book: AccountBook, asset: str, marks: Marks | None, goal: Goal) -> float:
    """The smallest wallet with which the pool meets `goal` against every threat.

    Under a threat's move of `goal.distance` the wallet must cover MM - PnL of every leg
    (the moved ones at their moved prices, the others at their marks). The nearest root
    may lie before that move in a pool whose equity - MM is not monotone, so the figure
    is checked with the solver and raised until the pool really meets the goal."""
    legs = [(leg, mark_of(leg, marks)) for leg in book.cross.get(asset, [])]
    reported = book.snapshot.pool(asset)
    if reported is None:
        raise ValueError(f"pool {asset}: no cross wallet reported")
    if not legs:
        return 0.0
    required = -math.inf
    if goal.distance is not None:
        for symbol, direction in threats(legs):
            factor = 1.0 + direction * goal.distance
            required = max(required, sum(
                leg.maintenance_margin(price) - leg.unrealized_pnl(price)
                for leg, mark in legs
                for price in (mark * factor if symbol in (None, leg.symbol) else mark,)
            ))  # fmt: skip
    if goal.ratio is not None:
        pnl = sum(leg.unrealized_pnl(mark) for leg, mark in legs)
        mm = sum(leg.maintenance_margin(mark) for leg, mark in legs)
        required = max(required, mm / goal.ratio - pnl)
    if not math.isfinite(required):
        return 0.0
    step = 1e-6 * (1.0 + abs(required))
    for _ in range(60):
        if pool_state(book, asset, marks, collateral=required - reported.wallet_balance).meets(
            goal
        ):
            break
        required += step
        step *= 2
    return required


def collateral_for(book: AccountBook, asset: str, marks: Marks | None, goal: Goal) -> float:
    """Collateral that brings the pool to `goal` against every threat; 0 if it meets it."""
    reported = book.snapshot.pool(asset)
    wallet = reported.wallet_balance if reported is not None else 0.0
    return max(0.0, required_wallet(book, asset, marks, goal) - wallet)


# --- cutting a pool -------------------------------------------------------------


class Cut(NamedTuple):
    """One reduce-only cut, and the pool as the engine computes it after this cut and
    every cut planned before it."""

    symbol: str
    side: str
    contracts: float
    notional: float
    """Value closed, as the caps count it (`cut_value`)."""
    after: PoolState
    reaches: bool
    """The pool meets the goal after this cut."""


class _Limits(NamedTuple):
    max_share: float
    max_value: float
    collateral: float


class _Candidate(NamedTuple):
    leg: Leg
    contracts: float
    value: float
    after: PoolState
    reaches: bool


def lot_step(book: AccountBook, leg: Leg) -> float:
    market = book.snapshot.markets.get(leg.symbol)
    return (market.amount_step if market and market.amount_step else None) or DEFAULT_STEP


def min_lots(market: MarketInfo | None, step: float, unit_value: float) -> int:
    """The market's minimum order size and notional, in lots (at least one)."""
    lots = 1
    if market is not None:
        if market.min_amount:
            lots = max(lots, math.ceil(market.min_amount / step - 1e-9))
        if market.min_notional and unit_value > 0:
            lots = max(lots, math.ceil(market.min_notional / (step * unit_value) - 1e-9))
    return lots


def acceptable(before: PoolState, after: PoolState, goal: Goal) -> bool:
    """A cut must raise the distance against the nearest threat (the way the market is
    moving against the pool), and must not pull any other threat's distance below what
    it was (or below the goal, if it was beyond it): cutting the hedge of a long book
    in a fall lowers the very distance it is meant to raise, and is refused here."""
    threat = before.threat
    if threat is None or after.distance(threat) <= before.distance(threat):
        return False
    for other, was in before.distances.items():
        floor = was if goal.distance is None else min(was, goal.distance)
        if after.distance(other) < floor - 1e-12:
            return False
    return True


def plan_cuts(
    book: AccountBook,
    asset: str,
    marks: Marks | None,
    goal: Goal,
    *,
    order: Sequence[Leg] | None = None,
    max_share: float = 1.0,
    budget: float = math.inf,
    max_value: float = math.inf,
    max_cuts: int | None = None,
    collateral: float = 0.0,
) -> list[Cut]:
    """Reduce-only cuts, each the smallest number of lots that reaches `goal`, until the
    pool meets it or no acceptable cut is left.

    Every candidate (leg, size) is evaluated with the engine before it is chosen, and
    only cuts that `acceptable` allows are considered. `order` is a preference (the
    first acceptable leg in it is cut); without one, the leg whose smallest reaching cut
    closes the least value is chosen, or, when none reaches, the leg that gains the most
    distance per unit of value. A leg is cut at most once, by at most `max_share` of it
    and `max_value` of value; `budget` bounds the value closed by all cuts together.
    `collateral` is money that reaches the pool's wallet before the cuts. When no single
    leg can be cut acceptably (a hedged book: cutting either leg alone exposes the
    other side), every leg is cut by the same share: the pool's leverage, reduced.
    """
    cuts: dict[LegKey, float] = {}
    plan: list[Cut] = []
    state = pool_state(book, asset, marks, collateral=collateral)
    legs = list(order if order is not None else book.cross.get(asset, []))
    limits = _Limits(max_share, max_value, collateral)
    while not state.meets(goal) and (max_cuts is None or len(plan) < max_cuts):
        candidates = []
        for leg in legs:
            if key_of(leg) in cuts:
                continue
            found = _candidate(book, asset, marks, goal, leg, cuts, state, limits, budget)
            if found is not None:
                candidates.append(found)
                if order is not None:
                    break  # a preference: the first acceptable leg is the one cut
        if not candidates:
            if not plan:  # no single leg helps alone: the whole pool, pro rata
                plan = _pro_rata(book, asset, marks, goal, legs, state, limits, budget)
                plan = plan if max_cuts is None or len(plan) <= max_cuts else []
            break
        chosen = candidates[_best(candidates, state) if order is None else 0]
        leg = chosen.leg
        cuts[key_of(leg)] = chosen.contracts
        budget -= chosen.value
        plan.append(
            Cut(leg.symbol, leg.position.side.value, chosen.contracts, chosen.value,
                chosen.after, chosen.reaches)
        )  # fmt: skip
        state = chosen.after
    return plan


def _candidate(
    book: AccountBook,
    asset: str,
    marks: Marks | None,
    goal: Goal,
    leg: Leg,
    cuts: dict[LegKey, float],
    state: PoolState,
    limits: _Limits,
    budget: float,
) -> _Candidate | None:
    """This leg's best cut on top of `cuts`: the fewest lots reaching the goal, else
    the most it may cut; None when no allowed size is acceptable."""
    step = lot_step(book, leg)
    mark = mark_of(leg, marks)
    unit = cut_value(leg, mark, step)
    total = round(leg.contracts / step)
    share = limits.max_share
    allowed = total if share >= 1.0 else math.floor(leg.contracts * share / step + 1e-9)
    most_value = min(budget, limits.max_value)
    if unit > 0 and math.isfinite(most_value):
        allowed = min(allowed, math.floor(most_value / unit + 1e-9))
    market = book.snapshot.markets.get(leg.symbol)
    smallest = min(min_lots(market, step, unit / step), total)  # a full close is allowed
    if allowed < smallest or allowed < 1:
        return None

    def size(lots: int) -> float:
        return _tidy(lots * step, step, leg.contracts)

    def after(lots: int) -> PoolState:
        return pool_state(
            book, asset, marks, cuts={**cuts, key_of(leg): size(lots)}, collateral=limits.collateral
        )

    def candidate(lots: int, state_after: PoolState, reaches: bool) -> _Candidate:
        contracts = size(lots)
        return _Candidate(leg, contracts, cut_value(leg, mark, contracts), state_after, reaches)

    most = after(allowed)
    if not acceptable(state, most, goal):
        return None
    if not most.meets(goal):
        return candidate(allowed, most, False)
    lo, hi = smallest, allowed
    if after(lo).meets(goal):
        hi = lo
    while lo < hi:
        mid = (lo + hi) // 2
        if after(mid).meets(goal):
            hi = mid
        else:
            lo = mid + 1
    return candidate(hi, after(hi), True)


PRO_RATA_STEPS = 256
"""Shares tried for a pro-rata cut: max_share / 256 apart (then whole lots per leg)."""


def _pro_rata(
    book: AccountBook,
    asset: str,
    marks: Marks | None,
    goal: Goal,
    legs: list[Leg],
    state: PoolState,
    limits: _Limits,
    budget: float,
) -> list[Cut]:
    """Every leg cut by the same share, the smallest (on a grid of `PRO_RATA_STEPS`, in
    whole lots per leg) that reaches the goal, else the largest allowed if acceptable."""

    def sizes(k: int) -> dict[LegKey, float]:
        share = limits.max_share * k / PRO_RATA_STEPS
        out = {}
        for leg in legs:
            step = lot_step(book, leg)
            lots = math.floor(leg.contracts * share / step + 1e-9)
            mark = mark_of(leg, marks)
            market = book.snapshot.markets.get(leg.symbol)
            unit = cut_value(leg, mark, 1.0)
            if lots >= min(min_lots(market, step, unit), round(leg.contracts / step)):
                out[key_of(leg)] = _tidy(lots * step, step, leg.contracts)
        return out

    def value(cut: dict[LegKey, float]) -> tuple[float, float]:
        values = [cut_value(leg, mark_of(leg, marks), cut[key_of(leg)])
                  for leg in legs if key_of(leg) in cut]  # fmt: skip
        return sum(values), max(values, default=0.0)

    def allowed(k: int) -> bool:
        total, largest = value(sizes(k))
        return total <= budget + 1e-9 and largest <= limits.max_value + 1e-9

    def after(k: int) -> PoolState:
        return pool_state(book, asset, marks, cuts=sizes(k), collateral=limits.collateral)

    top = PRO_RATA_STEPS
    while top > 0 and not allowed(top):
        top -= 1
    if top == 0 or not sizes(top) or not acceptable(state, after(top), goal):
        return []
    lo, hi = 1, top
    if after(top).meets(goal):
        while lo < hi:
            mid = (lo + hi) // 2
            if sizes(mid) and after(mid).meets(goal):
                hi = mid
            else:
                lo = mid + 1
    chosen = sizes(hi)
    final = after(hi)
    reaches = final.meets(goal)
    cuts = []
    for leg in legs:
        size = chosen.get(key_of(leg))
        if size:
            value = cut_value(leg, mark_of(leg, marks), size)
            cuts.append(Cut(leg.symbol, leg.position.side.value, size, value, final, reaches))
    return cuts


def _best(candidates: list[_Candidate], before: PoolState) -> int:
    """The cheapest reaching cut, else the most distance gained per unit of value
    against the nearest threat."""
    reaching = [i for i, c in enumerate(candidates) if c.reaches]
    if reaching:
        return min(reaching, key=lambda i: candidates[i].value)
    threat = before.threat
    start = before.nearest

    def gain(i: int) -> float:
        chosen = candidates[i]
        after = min(chosen.after.distance(threat) if threat else chosen.after.nearest, 1e9)
        return (after - start) / max(chosen.value, 1e-12)

    return max(range(len(candidates)), key=gain)


def _tidy(size: float, step: float, whole: float) -> float:
    """A whole number of lots without float dust (0.30000000000000004 -> 0.3); a
    position's last lot is its exact size."""
    if size >= whole - step / 2:
        return whole
    decimals = max(0, -math.floor(math.log10(step))) if step < 1 else 0
    return round(round(size / step) * step, decimals + 2)
