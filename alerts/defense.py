"""The defense a message proposes: the auto-deleverage planner's own plan, in words.

An alert that says only "critical" leaves the trader doing arithmetic on a phone at the
worst moment. The steps come from the same ladders auto mode executes
(monitor/actions/isolated.py and cross.py), so advice and action never disagree, and
each step says what it brings: "transfer 1,500.00 USDT from spot, then add 1,500.00
USDT margin to AVAX → distance 10.0 %".

Advice is not bound by the auto-mode caps (a person decides), and it assumes money can
come from outside the futures wallet: the configured reserve's wallet, else spot.
A cross pool gets two alternatives: collateral, or reduce-only cuts.
"""

from __future__ import annotations

import math
from typing import NamedTuple

from alerts.view import target_of
from monitor.actions.allowance import Allowance, Context
from monitor.actions.cross import defend_pool
from monitor.actions.decision import describe_plan
from monitor.actions.isolated import defend_isolated
from monitor.config.schema import ActionsConfig, AlertsConfig, ReserveConfig
from monitor.engine.book import AccountBook, Marks
from monitor.engine.levels import Level

UNBOUNDED = math.inf
ADVICE_STEPS = 8


class Defense(NamedTuple):
    """What to do, one alternative per line; or why nothing could be sized."""

    lines: tuple[str, ...] = ()
    problem: str | None = None


def advice_policy(actions: ActionsConfig, alerts: AlertsConfig) -> ActionsConfig:
    """The account's policy with the advice targets (if set) and without the auto-mode
    caps; a reserve in the configured wallet, else in spot."""
    isolated = {"max_add_per_action": UNBOUNDED, "max_add_per_position": UNBOUNDED}
    cross: dict[str, object] = {"max_fraction_per_action": 1.0}
    if alerts.defense_target_distance is not None:
        isolated["target_distance"] = cross["target_distance"] = alerts.defense_target_distance
    if alerts.defense_target_ratio is not None:
        isolated["target_ratio"] = cross["target_ratio"] = alerts.defense_target_ratio
    source = actions.reserve.from_ if actions.reserve else "spot"
    asset = actions.reserve.asset if actions.reserve else "USDT"
    reserve = ReserveConfig.model_validate(
        {"from": source, "asset": asset, "max_per_action": UNBOUNDED, "max_per_day": UNBOUNDED}
    )
    return actions.model_copy(
        update={
            "isolated": actions.isolated.model_copy(update=isolated),
            "cross": actions.cross.model_copy(update=cross),
            "reserve": reserve,
        }
    )


def _allowance(reserve: bool) -> Allowance:
    return Allowance(
        per_action=UNBOUNDED, window_left=UNBOUNDED, actions_left=ADVICE_STEPS,
        reserve_left=UNBOUNDED if reserve else 0.0, added={}, refused={},
    )  # fmt: skip


def isolated_defense(
    book: AccountBook, target: str, policy: ActionsConfig, marks: Marks
) -> Defense | None:
    """The isolated ladder for one position; None when it needs nothing, or is gone
    (no advice for a position the exchange already took)."""
    leg = next((leg for leg in book.isolated if target_of(leg.position) == target), None)
    if leg is None:
        return None
    risk = book.evaluate_isolated(leg, marks)
    if risk.margin_ratio is not None and risk.margin_ratio >= 1.0:
        return None  # past liquidation: being liquidated, nothing left to defend
    ctx = Context(book.snapshot.name, book, marks, policy)
    decisions, note = defend_isolated(ctx, leg, _allowance(reserve=True))
    if decisions:
        return Defense((describe_plan(decisions),))
    if note is not None and risk.liquidation_distance is None:
        return Defense(problem=note.message)
    return None


def pool_defense(
    book: AccountBook, asset: str, policy: ActionsConfig, marks: Marks
) -> Defense | None:
    """Collateral, or the cuts the planner would make; None when the pool needs none."""
    pool, _ = book.evaluate_pool(asset, marks)
    if pool.maintenance_margin is None:
        return Defense(problem=pool.note or "maintenance margin unknown")
    if pool.margin_ratio is not None and pool.margin_ratio >= 1.0:
        return None
    ctx = Context(book.snapshot.name, book, marks, policy)
    funded, _ = defend_pool(ctx, asset, _allowance(reserve=True))
    no_reserve = Context(ctx.account, book, marks, policy.model_copy(update={"reserve": None}))
    cuts, note = defend_pool(no_reserve, asset, _allowance(reserve=False))
    lines = [describe_plan(plan) for plan in (funded, cuts) if plan]
    if len(lines) == 2:
        lines[1] = "or " + lines[1]
    if lines:
        return Defense(tuple(lines))
    if note is not None and note.level is Level.CRITICAL:
        return Defense(problem=note.message)
    return None
