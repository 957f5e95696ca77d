"""The cross ladder: collateral from the reserve first, then reduce-only cuts chosen by
their exact effect on the pool's liquidation distance.

The pool is defended against every way the market can move against it (engine/sizing.py
`Threat`): all marks together, and each symbol alone with the others held (one leg of a
hedge gapping). Its nearest threat is the way the market is moving against it now.
Every candidate cut is evaluated with the engine on the book as it would be after it,
so a cut that lowers the distance against that threat, or pulls any other threat's
below the target, such as the hedge short of a long book during a fall, is never made;
each cut is the smallest whole number of lots that reaches the target.

A coin-margined (inverse) pool is defended the same way: its cuts are whole contracts,
counted against the caps at their USD face value, and its collateral is in the coin.
Inverse contracts in a USD-valued unified pool (Bybit UTA 2.0 cross) leave the pool's
figures unknown (engine/book.py, MIXED_POOL), so nothing is sized there.
"""

from __future__ import annotations

from monitor.actions.allowance import Allowance, Context, make_decision
from monitor.actions.decision import Decision, Note, ceil_money, floor_money, quantum_for
from monitor.config.schema import CrossPolicy
from monitor.engine.book import Marks
from monitor.engine.legs import Leg
from monitor.engine.levels import Level
from monitor.engine.sizing import Goal, collateral_for, mark_of, plan_cuts, pool_state
from monitor.events import TargetKind, pool_target


def defend_pool(
    ctx: Context, asset: str, allowance: Allowance
) -> tuple[list[Decision], Note | None]:
    policy = ctx.config.cross
    target = pool_target(asset)

    def note(message: str, level: Level = Level.CRITICAL) -> tuple[list[Decision], Note]:
        return [], Note(target, TargetKind.POOL, message, level)

    pool, _ = ctx.book.evaluate_pool(asset, ctx.marks)
    legs = ctx.book.cross.get(asset, [])
    if pool.maintenance_margin is None:
        return note(f"pool figures unknown ({pool.note}): nothing sized")
    goal = Goal(policy.target_distance, policy.target_ratio)
    try:
        state = pool_state(ctx.book, asset, ctx.marks)
    except ValueError as exc:
        return note(f"cannot evaluate the pool: {exc}")
    if state.meets(goal) or state.threat is None:
        return [], None
    if allowance.actions_left < 1:
        return note("action count cap reached (per hour or per day)")
    before = (state.ratio, state.nearest)
    decisions: list[Decision] = []
    collateral = 0.0
    reserve = ctx.reserve_for(asset)
    if reserve is not None and not allowance.refuses(target, "reserve"):
        quantum = quantum_for(any(leg.inverse for leg in legs))  # a coin pool: coin
        needed = ceil_money(collateral_for(ctx.book, asset, ctx.marks, goal), quantum)
        collateral = min(
            needed,
            floor_money(reserve.max_per_action, quantum),
            floor_money(allowance.reserve_left, quantum),
        )
        if collateral >= quantum:
            after = pool_state(ctx.book, asset, ctx.marks, collateral=collateral)
            decisions.append(make_decision(
                ctx, target=target, target_kind=TargetKind.POOL, kind="transfer", asset=asset,
                quantity=collateral, notional=collateral, leg=None, before=before,
                after=(after.ratio, after.nearest),
                reaches_target=after.meets(goal), source=reserve.from_,
            ))  # fmt: skip
            if after.meets(goal):
                return decisions, None
        else:
            collateral = 0.0
    cuts = plan_cuts(
        ctx.book, asset, ctx.marks, goal,
        order=preference(legs, ctx.marks, policy),
        max_share=policy.max_fraction_per_action,
        max_value=allowance.per_action,
        budget=allowance.window_left,
        max_cuts=allowance.actions_left - len(decisions),
        collateral=collateral,
    )  # fmt: skip
    by_key = {(leg.symbol, leg.position.side.value): leg for leg in legs}
    for cut in cuts:
        decisions.append(make_decision(
            ctx, target=target, target_kind=TargetKind.POOL, kind="reduce", asset=asset,
            quantity=cut.contracts, notional=cut.notional, leg=by_key[cut.symbol, cut.side],
            before=before, after=(cut.after.ratio, cut.after.nearest),
            reaches_target=cut.reaches,
        ))  # fmt: skip
    if not decisions:
        return note("no cut within the caps raises the pool's distance")
    if not decisions[-1].reaches_target:
        return decisions, Note(
            target, TargetKind.POOL,
            "this step does not reach the target distance (per-action limits); "
            "the next follows the fresh read", Level.WARN,
        )  # fmt: skip
    return decisions, None


def preference(legs: list[Leg], marks: Marks, policy: CrossPolicy) -> list[Leg] | None:
    """The configured order of the legs to cut, or None for `effect` (the planner picks
    the cheapest cut that reaches the target). Whatever the order, a cut that lowers
    the distance is skipped.

    mm_contribution: the biggest maintenance margin first (the most freed per order);
    worst_upnl: the biggest loss first; smallest_losers: losing positions first, the
    smallest first (cheap to close, and they free their margin); priority: the listed
    symbols first, in order."""
    if policy.order == "effect":
        return None

    def mm(leg: Leg) -> float:
        return -leg.maintenance_margin(mark_of(leg, marks))

    def pnl(leg: Leg) -> float:
        return leg.unrealized_pnl(mark_of(leg, marks))

    if policy.order == "worst_upnl":
        return sorted(legs, key=pnl)
    if policy.order == "smallest_losers":
        return sorted(legs, key=lambda leg: (pnl(leg) >= 0, leg.value(mark_of(leg, marks))))
    if policy.order == "priority":
        rank = {symbol: i for i, symbol in enumerate(policy.priority)}
        return sorted(legs, key=lambda leg: (rank.get(leg.symbol, len(rank)), mm(leg)))
    return sorted(legs, key=mm)
