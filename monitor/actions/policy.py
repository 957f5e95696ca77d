"""What auto-deleverage would do now: pure decisions from a book, its levels and marks.

No I/O and no clock: the same inputs always give the same decisions with the same ids,
which is what makes a decision safe to journal, retry and reconcile. The policy only
moves money toward risk (a transfer from the reserve, margin into an isolated position)
or closes part of a position (reduce-only); it never opens or increases exposure, and
every quantity respects the market's lot step and minimum. Caps come in as a `Budget`
(computed by the guards from the journal), so a decision is already sized within them.

The ladders themselves, cheapest rung first, live in isolated.py and cross.py; the
alerts' advice is made by the same `decide` (alerts/defense.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from operator import itemgetter

from monitor.actions.allowance import Allowance, Context
from monitor.actions.cross import defend_pool
from monitor.actions.decision import (
    CLIENT_ID_PREFIX,
    Budget,
    Decision,
    Note,
    Plan,
    target_of,
)
from monitor.actions.isolated import defend_isolated
from monitor.config.schema import ActionsConfig
from monitor.engine.book import AccountBook, Marks
from monitor.engine.levels import Level
from monitor.events import pool_target


def at_or_above(level: Level | None, trigger: str) -> bool:
    """Whether `level` reached the policy's `trigger` (its configured name). UNKNOWN (or
    no level yet) never triggers, however it ranks: the policy acts only on figures."""
    return level is not None and level is not Level.UNKNOWN and level >= Level(trigger)


def decide(
    account: str,
    book: AccountBook,
    marks: Marks,
    levels: Mapping[str, Level],
    config: ActionsConfig,
    budget: Budget,
) -> Plan:
    """Decisions for every target whose level is at or above its policy's trigger (a
    cross pool's, or any of its members').

    `levels` maps target -> level for the targets that may be acted on now (the caller
    leaves out those cooling down). The most severe targets are served first, since they
    get the budget first.
    """
    ctx = Context(account, book, marks, config)
    allowance = Allowance.of(budget)
    work: list[tuple[Level, str]] = []
    for leg in book.isolated:
        target = target_of(leg.position)
        if at_or_above(levels.get(target), config.isolated.trigger):
            work.append((levels[target], target))
    for asset, legs in book.cross.items():
        # a member's level (its symbol moving alone) calls for its pool's defense too
        names = [pool_target(asset), *(target_of(leg.position) for leg in legs)]
        reached = [levels[n] for n in names if at_or_above(levels.get(n), config.cross.trigger)]
        if reached:
            work.append((max(reached), pool_target(asset)))
    decisions: list[Decision] = []
    notes: list[Note] = []
    for _, target in sorted(work, key=itemgetter(0), reverse=True):  # stable: ties in order
        if target.startswith("pool "):
            found, note = defend_pool(ctx, target.removeprefix("pool "), allowance)
        else:
            leg = next(leg for leg in book.isolated if target_of(leg.position) == target)
            found, note = defend_isolated(ctx, leg, allowance)
        for decision in found:
            allowance.take(decision)
        decisions.extend(found)
        if note is not None:
            notes.append(note)
    return Plan(decisions, notes)


__all__ = ["CLIENT_ID_PREFIX", "Budget", "Decision", "Note", "Plan", "at_or_above", "decide",
           "target_of"]  # fmt: skip
