"""What auto-deleverage would do now: pure decisions from a book, its levels and marks.

No I/O and no clock: the same inputs always give the same decisions with the same ids,
which is what makes a decision safe to journal, retry and reconcile. The policy only
ever moves margin into an isolated position or closes part of a position (reduce-only);
it never opens or increases exposure, and every quantity respects the market's lot step
and minimum. Caps come in as a `Budget` (computed by the guards from the journal), so a
decision is already sized within them rather than clipped after the fact.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal, NamedTuple

from monitor.config.schema import ActionsConfig, CrossPolicy
from monitor.daemon.events import TargetKind, pool_target, position_target
from monitor.domain import Position
from monitor.engine.book import AccountBook, Marks
from monitor.engine.legs import Leg
from monitor.engine.levels import Level
from monitor.engine.results import PositionRisk, margin_ratio
from monitor.engine.sizing import DEFAULT_STEP, ReducePlan, margin_to_add, plan_pool_reduction
from monitor.formatting import fraction, size_of

Kind = Literal["add_margin", "reduce"]

CLIENT_ID_PREFIX = "mw-"
"""Marks our orders on the exchange; Binance allows 36 characters in all."""
ID_LENGTH = 32
MARGIN_QUANTUM = 0.01
"""Margin transfers are sized in cents of the settlement asset (USDT)."""


def target_of(position: Position) -> str:
    return position_target(
        position.symbol, position.side.value, position.margin_mode.value, position.position_side
    )


def decision_id(
    account: str, target: str, kind: Kind, symbol: str, quantity: float, snapshot_at: float
) -> str:
    """Same account, target, action, size and snapshot -> same id: an evaluation repeated
    on the same snapshot can never produce a second, different-looking action."""
    text = f"{account}|{target}|{kind}|{symbol}|{quantity:.12g}|{snapshot_at:.6f}"
    return hashlib.sha256(text.encode()).hexdigest()[:ID_LENGTH]


@dataclass(frozen=True, slots=True)
class Decision:
    """One exchange request: a margin transfer into an isolated position, or one
    reduce-only order. `notional` is what the caps count (margin moved, or the value
    closed at the mark); `position_contracts` is the size decided on, re-checked on the
    exchange right before acting."""

    id: str
    account: str
    target: str
    target_kind: TargetKind
    kind: Kind
    symbol: str
    side: str
    """The position's side (long/short); a reduce order trades the other way."""
    position_side: str
    margin_mode: str
    asset: str
    position_contracts: float
    quantity: float
    """Margin to add (in `asset`) or contracts to close."""
    notional: float
    mark: float
    ratio_before: float
    ratio_after: float | None
    """Expected ratio of the target afterwards; None when sizing cannot tell."""
    reaches_target: bool
    snapshot_at: float
    contract_size: float = 1.0
    inverse: bool = False
    """What a contract is, so a reduction reads in base units."""

    @property
    def client_order_id(self) -> str | None:
        """Deterministic, so a lookup after a timeout or a restart finds exactly this
        order; None for a margin transfer, which the exchange gives no id."""
        return CLIENT_ID_PREFIX + self.id if self.kind == "reduce" else None

    @property
    def order_side(self) -> str:
        return "sell" if self.side == "long" else "buy"

    def describe(self) -> str:
        after = f" -> {fraction(self.ratio_after)}" if self.ratio_after is not None else ""
        ratio = f"ratio {fraction(self.ratio_before)}{after}"
        if self.kind == "add_margin":
            return f"add {self.quantity:,.2f} {self.asset} margin to {self.target} ({ratio})"
        amount = size_of(self.symbol, self.quantity, self.contract_size, self.inverse)
        return (
            f"reduce-only {self.order_side} {amount} {self.symbol} "
            f"(~{self.notional:,.0f} {self.asset}) for {self.target} ({ratio})"
        )


@dataclass(frozen=True, slots=True)
class Budget:
    """What the caps still allow, in the account's quote currency."""

    per_action: float
    window_left: float
    """Notional left in both the rolling hour and the rolling day."""
    actions_left: int
    isolated_add_left: float
    """Margin `isolated.max_add_per_hour` still allows this hour."""


class Note(NamedTuple):
    """Something to tell about a target the policy wanted to defend: why it could not,
    or not fully ("critical": the target stays undefended)."""

    target: str
    target_kind: TargetKind
    message: str
    level: str = "warn"


class Plan(NamedTuple):
    decisions: list[Decision]
    notes: list[Note]


@dataclass(slots=True)
class _Allowance:
    """The budget as it is used up by one plan's decisions, in order."""

    per_action: float
    window_left: float
    actions_left: int
    isolated_add_left: float
    spendable: dict[str, float] = field(default_factory=dict)

    def take(self, decision: Decision) -> None:
        self.window_left -= decision.notional
        self.actions_left -= 1
        if decision.kind == "add_margin":
            self.isolated_add_left -= decision.quantity
            self.spendable[decision.asset] -= decision.quantity


@dataclass(frozen=True, slots=True)
class _Context:
    account: str
    book: AccountBook
    marks: Marks
    config: ActionsConfig

    @property
    def snapshot_at(self) -> float:
        return self.book.snapshot.fetched_at


_RANKS = {level.name.lower(): level for level in Level}


def at_or_above(level: str | None, trigger: str) -> bool:
    """`unknown` (or no level yet) never triggers: the policy acts only on figures."""
    rank = _RANKS.get(level) if level is not None else None
    return rank is not None and rank >= _RANKS[trigger]


def decide(
    account: str,
    book: AccountBook,
    marks: Marks,
    levels: Mapping[str, str],
    config: ActionsConfig,
    budget: Budget,
) -> Plan:
    """Decisions for every target whose level is at or above its policy's trigger.

    `levels` maps target -> level for the targets that may be acted on now (the caller
    leaves out those cooling down). The most severe targets are served first, since they
    get the budget first.
    """
    ctx = _Context(account, book, marks, config)
    allowance = _Allowance(
        budget.per_action, budget.window_left, budget.actions_left, budget.isolated_add_left
    )
    work: list[tuple[int, str]] = []
    for leg in book.isolated:
        target = target_of(leg.position)
        if at_or_above(levels.get(target), config.isolated.trigger):
            work.append((Level[levels[target].upper()], target))
    for asset in book.cross:
        target = pool_target(asset)
        if at_or_above(levels.get(target), config.cross.trigger):
            work.append((Level[levels[target].upper()], target))
    decisions: list[Decision] = []
    notes: list[Note] = []
    for _, target in sorted(work, key=lambda item: -item[0]):
        if target.startswith("pool "):
            found, note = _defend_pool(ctx, target.removeprefix("pool "), allowance)
        else:
            leg = next(leg for leg in book.isolated if target_of(leg.position) == target)
            found, note = _defend_isolated(ctx, leg, allowance)
        for decision in found:
            allowance.take(decision)
        decisions.extend(found)
        if note is not None:
            notes.append(note)
    return Plan(decisions, notes)


# --- isolated -------------------------------------------------------------------


def _defend_isolated(
    ctx: _Context, leg: Leg, allowance: _Allowance
) -> tuple[list[Decision], Note | None]:
    """Add margin from the cross wallet; when none can be added (no free balance, or the
    add caps used up) and `fallback_reduce` is on, close the position instead."""
    policy = ctx.config.isolated
    target = target_of(leg.position)

    def note(message: str) -> tuple[list[Decision], Note]:
        return [], Note(target, TargetKind.POSITION, message, "critical")

    if leg.inverse:
        return note("coin-margined (inverse) positions are not defended automatically")
    risk = ctx.book.evaluate_isolated(leg, ctx.marks)
    if risk.margin_ratio is None:
        return note(f"margin ratio unknown ({risk.note}): nothing sized")
    try:
        needed = margin_to_add(ctx.book, leg, policy.target_ratio, ctx.marks)
    except ValueError as exc:
        return note(f"cannot size the margin to add: {exc}")
    if needed <= 0:
        return [], None
    if allowance.actions_left < 1:
        return note("action count cap reached (per hour or per day)")
    asset = ctx.book.snapshot.unified_pool or leg.position.settle
    if asset not in allowance.spendable:
        allowance.spendable[asset] = _spendable(ctx, asset)
    cap = min(policy.max_add_per_action, allowance.isolated_add_left, allowance.per_action,
              allowance.window_left)  # fmt: skip
    amount = min(_ceil(needed), _floor(cap))
    spendable = _floor(allowance.spendable[asset])
    if MARGIN_QUANTUM <= amount <= spendable:
        return [_add_margin(ctx, leg, risk, asset, amount)], None
    if policy.fallback_reduce:
        return _close_isolated(ctx, leg, risk, asset, allowance)
    if amount < MARGIN_QUANTUM:
        return note("margin caps used up (isolated.max_add_per_hour or the notional caps)")
    if spendable >= MARGIN_QUANTUM:
        return [_add_margin(ctx, leg, risk, asset, spendable)], Note(
            target,
            TargetKind.POSITION,
            f"not enough free {asset} for the whole margin needed and fallback_reduce is off",
        )
    return note(f"no free {asset} balance to add and fallback_reduce is off")


def _spendable(ctx: _Context, asset: str) -> float:
    """Margin that may leave the cross pool without endangering it.

    Never so much that the pool itself would rise above the cross target ratio: rescuing
    an isolated bet must not push the rest of the account toward liquidation. When every
    leverage is known, also the exchange's own limit (wallet + cross PnL - cross initial
    margin); otherwise (Binance's v3 position rows carry none) the exchange is the judge
    of that and refuses a transfer it cannot fund. An unknown pool spends nothing.
    """
    if ctx.book.snapshot.pool(asset) is None:
        return 0.0
    pool, members = ctx.book.evaluate_pool(asset, ctx.marks)
    if pool.requirement is None:
        return 0.0
    spendable = pool.margin_balance - pool.requirement / ctx.config.cross.target_ratio
    leverages = [member.position.leverage for member in members]
    if all(leverages):
        initial = sum(m.notional / (lev or 1.0) for m, lev in zip(members, leverages, strict=True))
        spendable = min(spendable, pool.margin_balance - initial)
    return max(0.0, spendable)


def _add_margin(ctx: _Context, leg: Leg, risk: PositionRisk, asset: str, amount: float) -> Decision:
    mark = risk.mark_price
    wallet = leg.position.isolated_margin or 0.0
    mm = leg.maintenance_margin(mark)
    after = margin_ratio(mm, wallet + leg.unrealized_pnl(mark) + amount)
    return _decision(
        ctx, leg, target_of(leg.position), TargetKind.POSITION, "add_margin", asset,
        amount, amount, risk.margin_ratio or 0.0, after,
        after <= ctx.config.isolated.target_ratio,
    )  # fmt: skip


def _close_isolated(
    ctx: _Context, leg: Leg, risk: PositionRisk, asset: str, allowance: _Allowance
) -> tuple[list[Decision], Note | None]:
    """Close the whole position, reduce-only, when no margin can be added.

    The close is bounded by the notional caps like any order, not by the add caps.

    Deliberately not a partial close: the exchange charges the closed part's loss to the
    isolated wallet before it releases margin pro rata, so the rest of a losing position
    keeps (or worsens) its liquidation price. Only the full close removes the risk; if
    the caps do not allow it, nothing is sent and the position stays undefended, loudly.
    """
    target = target_of(leg.position)
    notional = leg.contracts * _unit_value(leg, risk.mark_price)
    if notional > min(allowance.per_action, allowance.window_left) + 1e-9:
        return [], Note(
            target,
            TargetKind.POSITION,
            "no margin can be added, and the notional caps do not allow closing it",
            "critical",
        )
    decision = _decision(
        ctx, leg, target, TargetKind.POSITION, "reduce", asset, leg.contracts, notional,
        risk.margin_ratio or 0.0, 0.0, True,
    )  # fmt: skip
    return [decision], Note(target, TargetKind.POSITION, "no margin can be added: closing")


# --- cross ----------------------------------------------------------------------


def _defend_pool(
    ctx: _Context, asset: str, allowance: _Allowance
) -> tuple[list[Decision], Note | None]:
    """Reduce-only cuts in the configured order, each at most a fraction of its position.

    The notional caps enter as a smaller fraction: every leg is cut by at most
    `fraction` of its size, so no order exceeds the per-action cap and all of them
    together stay within what the rolling windows have left. Dropping the last cuts for
    the count cap keeps every remaining cut's expected ratio exact (each is computed on
    the book after the cuts before it).
    """
    policy = ctx.config.cross
    target = pool_target(asset)

    def note(message: str) -> tuple[list[Decision], Note]:
        return [], Note(target, TargetKind.POOL, message, "critical")

    pool, members = ctx.book.evaluate_pool(asset, ctx.marks)
    if pool.margin_ratio is None:
        return note(f"margin ratio unknown ({pool.note}): nothing sized")
    if pool.margin_ratio <= policy.target_ratio:
        return [], None
    legs = ctx.book.cross.get(asset, [])
    if any(leg.inverse for leg in legs):
        return note("coin-margined (inverse) positions are not defended automatically")
    if allowance.actions_left < 1:
        return note("action count cap reached (per hour or per day)")
    values = [risk.notional for risk in members]
    if not values or max(values) <= 0:
        return [], None
    fraction = min(
        policy.max_fraction_per_action,
        allowance.per_action / max(values),
        allowance.window_left / sum(values),
    )
    if fraction <= 0:
        return note("notional caps used up (per hour or per day)")
    order = _order(legs, members, policy)
    try:
        plans = plan_pool_reduction(
            ctx.book, asset, order, policy.target_ratio, ctx.marks, fraction
        )
    except ValueError as exc:
        return note(f"cannot size the cuts: {exc}")
    decisions = []
    for plan in plans[: allowance.actions_left]:
        decision = _cut(ctx, asset, target, pool.margin_ratio, plan, members)
        if decision is not None:
            decisions.append(decision)
    if not decisions:
        return note("the caps allow no order of the minimum size")
    if not decisions[-1].reaches_target:
        return decisions, Note(
            target,
            TargetKind.POOL,
            "this step's cuts do not reach the target ratio (per-action limits); "
            "more follow after the cooldown",
        )
    return decisions, None


def _order(legs: list[Leg], members: list[PositionRisk], policy: CrossPolicy) -> list[Leg]:
    """Which positions to cut first: the biggest maintenance margin frees the most per
    order; the worst PnL cuts the losers; `priority` lists symbols first, in order."""
    risks = dict(zip((id(leg) for leg in legs), members, strict=True))

    def mm(leg: Leg) -> float:
        return -(risks[id(leg)].maintenance_margin or 0.0)

    if policy.order == "worst_upnl":
        return sorted(legs, key=lambda leg: risks[id(leg)].unrealized_pnl)
    if policy.order == "priority":
        rank = {symbol: i for i, symbol in enumerate(policy.priority)}
        return sorted(legs, key=lambda leg: (rank.get(leg.symbol, len(rank)), mm(leg)))
    return sorted(legs, key=mm)


def _cut(
    ctx: _Context,
    asset: str,
    target: str,
    ratio_before: float,
    plan: ReducePlan,
    members: list[PositionRisk],
) -> Decision | None:
    """One planned cut as a decision, its size floored to the lot step (sizing caps a
    cut at a fraction of the position, which need not be a whole number of lots)."""
    leg = next(
        leg
        for leg in ctx.book.cross[asset]
        if leg.symbol == plan.symbol and leg.position.side.value == plan.side
    )
    step = _step(ctx, leg)
    contracts = _tidy(math.floor(plan.contracts / step + 1e-9) * step, step)
    market = ctx.book.snapshot.markets.get(leg.symbol)
    if contracts <= 0 or (market and market.min_amount and contracts < market.min_amount - 1e-12):
        return None
    floored = contracts < plan.contracts - step / 2
    mark = next(m.mark_price for m in members if m.position is leg.position)
    return _decision(
        ctx, leg, target, TargetKind.POOL, "reduce", asset, contracts,
        contracts * _unit_value(leg, mark), ratio_before, plan.ratio_after,
        plan.reaches_target and not floored,
    )  # fmt: skip


# --- shared ---------------------------------------------------------------------


def _decision(
    ctx: _Context,
    leg: Leg,
    target: str,
    target_kind: TargetKind,
    kind: Kind,
    asset: str,
    quantity: float,
    notional: float,
    ratio_before: float,
    ratio_after: float | None,
    reaches_target: bool,
) -> Decision:
    position = leg.position
    if kind == "reduce" and not 0 < quantity <= position.contracts + 1e-12:
        raise AssertionError(f"{position.symbol}: a reduction of {quantity} is not reduce-only")
    return Decision(
        id=decision_id(ctx.account, target, kind, position.symbol, quantity, ctx.snapshot_at),
        account=ctx.account,
        target=target,
        target_kind=target_kind,
        kind=kind,
        symbol=position.symbol,
        side=position.side.value,
        position_side=position.position_side,
        margin_mode=position.margin_mode.value,
        asset=asset,
        position_contracts=position.contracts,
        quantity=quantity,
        notional=notional,
        mark=_mark(ctx, leg),
        ratio_before=ratio_before,
        ratio_after=ratio_after,
        reaches_target=reaches_target,
        snapshot_at=ctx.snapshot_at,
        contract_size=position.contract_size,
        inverse=position.inverse,
    )


def _step(ctx: _Context, leg: Leg) -> float:
    market = ctx.book.snapshot.markets.get(leg.symbol)
    return (market.amount_step if market and market.amount_step else None) or DEFAULT_STEP


def _unit_value(leg: Leg, mark: float) -> float:
    """Quote value of one contract at `mark` (linear contracts only reach here)."""
    return leg.position.contract_size * mark


def _tidy(size: float, step: float) -> float:
    """A whole number of lots without float dust (0.30000000000000004 -> 0.3)."""
    decimals = max(0, -math.floor(math.log10(step))) if step < 1 else 0
    return round(round(size / step) * step, decimals + 2)


def _ceil(amount: float) -> float:
    return round(math.ceil(amount / MARGIN_QUANTUM - 1e-9) * MARGIN_QUANTUM, 2)


def _floor(amount: float) -> float:
    return max(0.0, round(math.floor(amount / MARGIN_QUANTUM + 1e-9) * MARGIN_QUANTUM, 2))


def _mark(ctx: _Context, leg: Leg) -> float:
    return ctx.marks.get(leg.symbol) or leg.position.mark_price
