"""The isolated ladder: add margin (from the futures wallet, else from the reserve) up to
the position's budget; once nothing more can be added, or with `defense: contain`,
close the position reduce-only just before the exchange would liquidate it.

Why a full close and not a part: Binance charges a partial close's loss to the isolated
wallet and releases margin in proportion to the size closed, so the rest of a losing
position keeps (or worsens) its liquidation price; only added margin or a full close
changes the outcome. Closing ourselves at `close_before` keeps the liquidation fee and
whatever margin is left, which the exchange's liquidation would take.

A coin-margined (inverse) position's margin is added in its coin, to eight decimals (or
the venue's coarser step: Bybit's four, `MarginModel.coin_margin_step`); the caps
(`max_add_per_*`, the notional windows) stay in USD and are converted at the mark.
That holds in a unified account too (Bybit's UTA): an isolated inverse position's margin
is its coin, drawn from the coin's balance (or moved in from a reserve of that coin),
never from the USD-valued pool. Where the venue checks the margin coin's own balance
rather than the pool's (`AccountSnapshot.margin_available`, OKX), the add and its
transfer are sized in that coin, within both.
"""

from __future__ import annotations

from typing import NamedTuple

from monitor.actions.allowance import Allowance, Context, make_decision
from monitor.actions.decision import (
    Decision,
    Note,
    ceil_money,
    floor_money,
    money,
    quantum_for,
    target_of,
)
from monitor.domain import AddLimit
from monitor.engine.legs import Leg
from monitor.engine.levels import Level
from monitor.engine.results import PositionRisk
from monitor.engine.sizing import (
    Goal,
    cut_value,
    isolated_distance,
    margin_for,
    mark_of,
    required_wallet,
)
from monitor.events import TargetKind

CLOSE_AHEAD = 2.0
"""An unfunded position is closed once its distance falls below this many times
`close_before`. `close_before` is the move the policy allows between deciding and the
exchange acting (the transfer's headroom is sized on it too); a close decided only once
the distance is below it can land after that move has liquidated the position, and a
plan looks at it once a mark tick. Closing one such move early keeps a move of
`close_before` for the close to land in, whichever tick it is decided on (drill
crash-revert: AVAX at 5.2 %, unfundable, then a -5.35 % tick)."""


def defend_isolated(
    ctx: Context, leg: Leg, allowance: Allowance
) -> tuple[list[Decision], Note | None]:
    policy = ctx.config.isolated
    target = target_of(leg.position)

    def note(message: str, level: Level = Level.CRITICAL) -> tuple[list[Decision], Note]:
        return [], Note(target, TargetKind.POSITION, message, level)

    risk = ctx.book.evaluate_isolated(leg, ctx.marks)
    wallet = leg.position.isolated_margin
    if risk.liquidation_distance is None or wallet is None or not leg.has_margin_terms:
        return note(f"liquidation distance unknown ({risk.note}): nothing sized")
    if allowance.actions_left < 1:
        return note("action count cap reached (per hour or per day)")
    mark = mark_of(leg, ctx.marks)
    distance = risk.liquidation_distance
    before = (risk.margin_ratio, distance)
    goal = Goal(policy.target_distance, policy.target_ratio)
    needed = margin_for(leg, mark, wallet, goal)
    if needed <= 0:
        return [], None
    why_not = "defense: contain"
    if policy.defense == "add_margin":
        quantum = quantum_for(leg.inverse, ctx.book.model.coin_margin_step)
        found, why_not = _add(ctx, leg, allowance, target, ceil_money(needed, quantum), before)
        if found and (
            distance >= policy.close_before or found[-1].distance_after >= policy.close_before
        ):
            short = found[-1].quantity < ceil_money(needed, quantum) - quantum / 2
            return found, Note(target, TargetKind.POSITION, why_not, Level.WARN) if short else None
    close_at = CLOSE_AHEAD * policy.close_before
    if distance < close_at:
        return _close(ctx, leg, allowance, target, before, why_not)
    return note(
        f"{why_not}: it will be closed reduce-only once its distance falls below {close_at:.1%}",
        Level.WARN,
    )


def _add(
    ctx: Context,
    leg: Leg,
    allowance: Allowance,
    target: str,
    needed: float,
    before: tuple[float | None, float | None],
) -> tuple[list[Decision], str]:
    """Margin toward `needed`: from the futures wallet's free balance first, the rest by a
    transfer from the reserve; nothing when the position's budget is spent. The reason
    string says why the add falls short (or why there is none)."""
    policy = ctx.config.isolated
    mark = mark_of(leg, ctx.marks)
    quantum = quantum_for(leg.inverse, ctx.book.model.coin_margin_step)
    usd = mark if leg.inverse else 1.0  # caps are in USD; coin-margined margin is in coin
    spent = allowance.added.get(target, 0.0)
    budget_left = policy.max_add_per_position / usd - spent
    if budget_left < quantum:
        return [], f"its margin budget is spent ({money(spent)} of isolated.max_add_per_position)"
    cap = min(policy.max_add_per_action, allowance.per_action, allowance.window_left) / usd
    amount = min(needed, floor_money(min(cap, budget_left), quantum))
    if amount < quantum:
        return [], "the notional caps are used up (per hour or per day)"
    pool = margin_asset(ctx, leg)
    # where the venue checks the margin coin itself (OKX), the add and its transfer are
    # sized in that coin, within the pool's estimate and the coin's own availability
    coin = leg.position.settle
    asset = coin if coin in ctx.book.snapshot.margin_available else pool
    if asset not in allowance.headroom:  # what this plan moved already comes on top
        now, allowance.headroom[asset] = addable(ctx, pool, coin)
        allowance.free[asset] = now + allowance.free.get(asset, 0.0)
    free = allowance.free[asset]  # signed: a pool short of its own needs is below zero
    if allowance.refuses(target, "balance"):
        free = min(free, 0.0)
    safe = free - allowance.headroom[asset]  # what is still addable after the move
    from_balance = max(0.0, min(amount, floor_money(free, quantum)))
    transfer = 0.0
    reserve = ctx.reserve_for(asset)
    reserve_usable = reserve is not None and not allowance.refuses(target, "reserve")
    if safe < amount and reserve_usable and allowance.actions_left >= 2:
        assert reserve is not None
        # enough to lift what may leave the wallet once the add lands from `safe` to the
        # amount: below zero, Binance's max addable is short by that much before any add
        # is accepted, and the headroom keeps it accepted after the move
        transfer = min(
            ceil_money(amount - safe, quantum),
            floor_money(reserve.max_per_action, quantum),
            floor_money(allowance.reserve_left, quantum),
        )
        transfer = max(0.0, transfer)
        # a transfer capped below the headroom funds a smaller add that still lands
        fundable = safe + transfer if safe + transfer >= quantum else free + transfer
        from_balance = max(0.0, min(amount, floor_money(fundable, quantum))) - transfer
    total = floor_money(from_balance + transfer, quantum)
    if total < quantum:
        if not reserve_usable:
            return [], f"no free {asset} in the futures wallet to add and no usable reserve"
        return [], "the reserve caps cannot fund an add (reserve.max_per_action or max_per_day)"
    wallet = leg.position.isolated_margin or 0.0
    after_distance = isolated_distance(leg, mark, wallet + total)
    mm = leg.maintenance_margin(mark)
    equity = wallet + total + leg.unrealized_pnl(mark)
    after = (mm / equity if equity > 0 else None, after_distance)
    reaches = total >= needed - quantum / 2
    decisions = []
    if transfer >= quantum:
        assert reserve is not None
        decisions.append(make_decision(
            ctx, target=target, target_kind=TargetKind.POSITION, kind="transfer", asset=asset,
            quantity=transfer, notional=transfer, leg=None, before=before, after=before,
            reaches_target=False, source=reserve.from_,
        ))  # fmt: skip
    decisions.append(make_decision(
        ctx, target=target, target_kind=TargetKind.POSITION, kind="add_margin", asset=asset,
        quantity=total, notional=total * usd, leg=leg, before=before, after=after,
        reaches_target=reaches, variant="funded" if decisions else "",
    ))  # fmt: skip
    return (
        decisions,
        ""
        if reaches
        else f"only {money(total)} of the {money(needed)} {asset} needed can be added",
    )


def addable(ctx: Context, pool: str, coin: str) -> Free:
    """What an isolated add in `coin` may take from `pool`: the pool's estimate
    (`free_balance`), and where the venue also checks the coin itself
    (`AccountSnapshot.margin_available`), no more than the coin's own availability."""
    estimate = free_balance(ctx, pool)
    reported = ctx.book.snapshot.margin_available.get(coin)
    if reported is None:
        return estimate
    own = coin_available(ctx, coin, reported)
    return Free(min(estimate.now, own.now), max(estimate.headroom, own.headroom))


def coin_available(ctx: Context, coin: str, reported: float) -> Free:
    """The venue's figure for a coin (read at the snapshot's marks) at the current marks,
    and what a move of `isolated.close_before` either way may take from it: it moves with
    the unrealised PnL of the cross positions margined in the coin, less the initial
    margin their notional holds (OKX's availEq, or availBal once a profit is realised)."""
    legs = [leg for legs in ctx.book.cross.values() for leg in legs if leg.position.settle == coin]

    def change(factor: float) -> float:
        total = 0.0
        for leg in legs:
            then, mark = leg.position.mark_price, mark_of(leg, ctx.marks) * factor
            total += leg.unrealized_pnl(mark) - leg.unrealized_pnl(then)
            if leg.position.leverage:
                total -= (leg.value(mark) - leg.value(then)) / leg.position.leverage
        return total

    move = ctx.config.isolated.close_before
    now = reported + change(1.0)
    after = min(reported + change(1.0 + side * move) for side in (-1, 1))
    return Free(now, max(0.0, now - after))


def margin_asset(ctx: Context, leg: Leg) -> str:
    """What an isolated position's margin is in: its coin for an inverse contract, else
    the unified pool where there is one, else its settlement asset."""
    if leg.inverse:
        return leg.position.settle
    return ctx.book.snapshot.unified_pool or leg.position.settle


class Free(NamedTuple):
    """The futures balance an isolated add may take (`free_balance`): `now`, at the
    marks, and `headroom`, by how much the move the add must outlast may shrink it."""

    now: float
    headroom: float


def free_balance(ctx: Context, asset: str) -> Free:
    """Futures balance an isolated add may take without endangering the cross pool, and
    what of it the market may take away before the add lands.

    The venue says how much (the snapshot's `add_limit`, set by its adapter): Binance
    lets at most min(cross wallet - the cross positions' MM, available balance) move
    into an isolated position (its -4050 otherwise), Bybit's unified account the
    available balance alone (its 110014); the available balance subtracts every cross
    position's initial margin (reported in Binance's v3 rows and as Bybit's positionIM)
    and moves with their unrealised PnL. An add (and the transfer that funds it) is sized
    on a read that is already a round trip old and lands one or two round trips later:
    in a fast market the cross PnL has moved by then, and an add sized to the last cent
    is refused while the position it was for runs to liquidation. The headroom is what a move of
    `isolated.close_before` either way would take from it (the move the policy already
    allows for between deciding and the exchange acting: an unfunded position is closed
    while that move is still ahead, `CLOSE_AHEAD`); a transfer brings it along with the
    add's amount.

    Never so much that the pool itself would fall short of its own target distance:
    rescuing one bet must not push the rest of the account toward liquidation (a pool
    already short of it gives nothing, and an add funded by a transfer then leaves it as
    it was). Signed: below zero, Binance would refuse any add until a transfer makes that
    up. An unknown pool spends nothing."""
    reported = ctx.book.snapshot.pool(asset)
    if reported is None:
        return Free(0.0, 0.0)
    policy = ctx.config.cross
    goal = Goal(policy.target_distance, policy.target_ratio)
    try:
        required = required_wallet(ctx.book, asset, ctx.marks, goal)
    except ValueError:
        return Free(0.0, 0.0)
    kept = max(0.0, reported.wallet_balance - required)
    move = ctx.config.isolated.close_before
    now = min(_max_addable(ctx, asset, reported.wallet_balance, 1.0), kept)
    after = min(
        [_max_addable(ctx, asset, reported.wallet_balance, 1.0 + side * move) for side in (-1, 1)]
        + [kept]
    )
    return Free(now, max(0.0, now - after))


def _max_addable(ctx: Context, asset: str, wallet: float, factor: float) -> float:
    """What the venue lets an isolated add take (the snapshot's `add_limit`: Binance's
    rule above, or Bybit's available balance alone) with every mark of the pool times
    `factor`. Without every member's IM only the wallet - MM bound is known."""
    legs = ctx.book.cross.get(asset, [])
    marks = {leg.symbol: mark_of(leg, ctx.marks) * factor for leg in legs}
    pool, members = ctx.book.evaluate_pool(asset, marks)
    addable = wallet - (pool.maintenance_margin or 0.0)
    initial = [_initial_margin(member) for member in members]
    if all(im is not None for im in initial):  # the venue's "available for order"
        available = pool.margin_balance - sum(im or 0.0 for im in initial)
        if ctx.book.snapshot.add_limit is AddLimit.AVAILABLE:
            return available
        addable = min(addable, available)
    return addable


def _initial_margin(risk: PositionRisk) -> float | None:
    """A cross position's initial margin at its evaluated mark: as the exchange reports
    it (Binance v3 rows, at the read's mark; it follows the notional), else its notional
    over its leverage; None when neither is known."""
    position = risk.position
    if position.initial_margin is not None:
        scale = risk.mark_price / position.mark_price if position.mark_price else 1.0
        if position.inverse and scale:  # a coin notional falls as the price rises
            scale = 1.0 / scale
        return position.initial_margin * scale
    return risk.notional / position.leverage if position.leverage else None


def _close(
    ctx: Context,
    leg: Leg,
    allowance: Allowance,
    target: str,
    before: tuple[float | None, float | None],
    why: str,
) -> tuple[list[Decision], Note]:
    """Close the whole position, reduce-only. Bounded by the notional caps like any
    order; if they do not allow it, nothing is sent and the position stays undefended,
    loudly."""
    asset = margin_asset(ctx, leg)
    notional = cut_value(leg, mark_of(leg, ctx.marks), leg.contracts)
    if notional > min(allowance.per_action, allowance.window_left) + 1e-9:
        message = f"{why}; and the notional caps do not allow closing it"
        return [], Note(target, TargetKind.POSITION, message, Level.CRITICAL)
    decision = make_decision(
        ctx, target=target, target_kind=TargetKind.POSITION, kind="reduce", asset=asset,
        quantity=leg.contracts, notional=notional, leg=leg, before=before, after=(None, None),
        reaches_target=True,
    )  # fmt: skip
    distance = before[1] or 0.0
    return [decision], Note(target, TargetKind.POSITION,
                            f"{why}: closing it {distance:.2%} before liquidation")  # fmt: skip
