"""Everything that may stop a decision between the policy and the exchange.

The policy sizes within the budget these guards compute, and the guards check again at
the last moment, because time passes between deciding and acting (a confirmation, a
slow exchange): the kill switch is read right before sending, and the position is read
afresh from the exchange and must still be the one decided on.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from monitor.actions.decision import Budget, Decision, Rung, money
from monitor.actions.executor import fetch_positions, find_position
from monitor.actions.journal import Journal
from monitor.config.schema import ActionsConfig
from monitor.domain import AccountSnapshot, Position
from monitor.engine.sizing import DEFAULT_STEP
from monitor.exchange.adapters.base import ExchangeAdapter

COOLED = ("failed", "refused", "aborted")
"""Rows that start a target's cooldown (a filled action does not; see `acted`)."""
HOUR = 3600.0
DAY = 24 * HOUR
PAUSE_FILE = "PAUSE"
REFUSALS_TO_SKIP = 2
"""Refusals of one rung within the cooldown after which it is skipped even on a fresh
read (see `Guards.refused`)."""


class KillSwitch:
    """Stops every action of every account: `touch <state_dir>/PAUSE`, `pause()` at
    runtime (for /pause), or `actions.paused` in the configuration.

    `resume()` lifts only the runtime pause: the file and the configuration stay under
    the control of whoever set them.
    """

    def __init__(self, state_dir: Path) -> None:
        self.file = state_dir / PAUSE_FILE
        self._runtime: str | None = None

    def pause(self, reason: str = "paused at runtime") -> None:
        self._runtime = reason

    def resume(self) -> None:
        self._runtime = None

    def reason(self, config: ActionsConfig) -> str | None:
        """Why actions are stopped now, or None."""
        if config.paused:
            return "actions.paused is set in the configuration"
        if self.file.exists():
            return f"kill switch file {self.file} exists"
        return self._runtime


class Guards:
    """One account's caps, cooldowns, kill switch and freshness checks."""

    def __init__(
        self,
        account: str,
        config: ActionsConfig,
        journal: Journal,
        kill_switch: KillSwitch,
        now: Callable[[], float] = time.time,
    ) -> None:
        self.account = account
        self.config = config
        self.journal = journal
        self.kill_switch = kill_switch
        self._now = now
        cooled = ("failed", "refused", "dry_run") if config.mode == "dry_run" else COOLED
        self._last: dict[str, float] = journal.last_acted(account, cooled)
        """target -> when it last started a cooldown (dry runs count in dry_run mode, so
        that the "would" messages come at the pace real actions would)."""
        self._refused: dict[str, dict[Rung, list[float]]] = {}
        """target -> rung -> when the exchange refused it, within the cooldown (`refuse`)."""

    def paused(self) -> str | None:
        return self.kill_switch.reason(self.config)

    # --- cooldown --------------------------------------------------------------

    def cooling(self, target: str) -> bool:
        last = self._last.get(target)
        return last is not None and self._now() - last < self.config.caps.cooldown

    def acted(self, target: str) -> None:
        """Start the target's cooldown: after a refusal, a failure or a dry run. A filled
        action starts none: the next waits only for the fresh read after it."""
        self._last[target] = self._now()

    def refuse(self, target: str, rung: Rung) -> None:
        """The exchange refused this rung for `target` (a -4050 on an add, a failed
        transfer): plans on the read it was sized on skip it and go to the next rung."""
        now, cooldown = self._now(), self.config.caps.cooldown
        rungs = self._refused.setdefault(target, {})
        rungs[rung] = [at for at in rungs.get(rung, []) if now - at < cooldown] + [now]

    def refused(self, read_at: float = math.inf) -> dict[str, frozenset[Rung]]:
        """target -> the rungs its plans on a read taken at `read_at` must skip.

        A rung refused once is tried again on a read taken after the refusal: in a fast
        market a -4050 usually means the add was sized on a balance the market has
        since moved, and the fresh read sizes it on what is there now. Refused twice
        within the cooldown, it is skipped for the cooldown: the exchange judges the
        balance otherwise than we do, and asking again would only cost the time the
        next rung (the close) needs."""
        now, cooldown = self._now(), self.config.caps.cooldown
        skipped: dict[str, frozenset[Rung]] = {}
        for target, rungs in self._refused.items():
            skip = set()
            for rung, times in rungs.items():
                recent = [at for at in times if now - at < cooldown]
                if len(recent) >= REFUSALS_TO_SKIP or any(at >= read_at for at in recent):
                    skip.add(rung)
            skipped[target] = frozenset(skip)
        return skipped

    # --- caps ------------------------------------------------------------------

    def budget(self, read_at: float = math.inf) -> Budget:
        """What the caps leave, from the journal's rolling hour and day, for a plan on
        a read taken at `read_at` (see `refused`)."""
        caps = self.config.caps
        now = self._now()
        hour = self.journal.totals(self.account, now - HOUR)
        day = self.journal.totals(self.account, now - DAY)
        reserve = self.config.reserve
        return Budget(
            per_action=caps.max_notional_per_action,
            window_left=max(
                0.0,
                min(
                    caps.max_notional_per_hour - hour.notional,
                    caps.max_notional_per_day - day.notional,
                ),
            ),
            actions_left=max(
                0,
                min(
                    caps.max_actions_per_hour - hour.actions, caps.max_actions_per_day - day.actions
                ),
            ),
            added=self.journal.added(self.account, now - DAY),
            reserve_left=max(0.0, reserve.max_per_day - day.transferred) if reserve else 0.0,
            refused=self._with_stranded(self.refused(read_at), now - DAY),
        )

    def _with_stranded(
        self, refused: dict[str, frozenset[Rung]], since: float
    ) -> dict[str, frozenset[Rung]]:
        """`refused`, with the reserve ruled out for targets whose last transfer funded an
        add the exchange refused (`Journal.stranded`): from the journal, so it holds
        across a restart, for as long as the reserve's own daily window. Their next add
        is sized on the balance the transfer left in the futures wallet."""
        for target in self.journal.stranded(self.account, since):
            refused[target] = refused.get(target, frozenset()) | {"reserve"}
        return refused

    def over_caps(self, decisions: list[Decision]) -> str | None:
        """The final check of decisions taken together against the caps as they stand."""
        budget = self.budget()
        moved = [d for d in decisions if d.kind != "transfer"]
        total = sum(d.notional for d in moved)
        transferred = sum(d.quantity for d in decisions if d.kind == "transfer")
        if len(decisions) > budget.actions_left:
            return "action count cap reached (per hour or per day)"
        if any(d.notional > budget.per_action + 1e-9 for d in moved):
            return "an order exceeds max_notional_per_action"
        if total > budget.window_left + 1e-9:
            return f"{total:,.2f} exceeds what the hourly/daily notional caps have left"
        limit = self.config.isolated.max_add_per_position
        for d in decisions:
            usd = d.mark if d.inverse else 1.0  # coin margin counts at its USD value
            if (
                d.kind == "add_margin"
                and (budget.added.get(d.target, 0.0) + d.quantity) * usd > limit + 1e-9
            ):
                return f"{money(d.quantity)} exceeds what isolated.max_add_per_position has left"
        reserve = self.config.reserve
        if transferred and reserve is None:
            return "a transfer without a configured reserve"
        if reserve is not None and any(
            d.quantity > reserve.max_per_action + 1e-9 for d in decisions if d.kind == "transfer"
        ):
            return "a transfer exceeds reserve.max_per_action"
        if transferred > budget.reserve_left + 1e-9:
            return f"{transferred:,.2f} exceeds what reserve.max_per_day has left"
        return None

    # --- freshness -------------------------------------------------------------

    def stale(
        self, snapshot: AccountSnapshot | None, mark_times: Callable[[str], float | None],
        symbols: Iterable[str],
    ) -> str | None:  # fmt: skip
        """Why the data is too old to act on, or None: the snapshot and the mark of every
        symbol the decisions depend on must be younger than `max_data_age`."""
        limit = self.config.max_data_age
        now = self._now()
        if snapshot is None:
            return "no account snapshot yet"
        if now - snapshot.fetched_at > limit:
            return f"account data is {now - snapshot.fetched_at:.1f} s old (max {limit:g} s)"
        for symbol in sorted(set(symbols)):
            at = mark_times(symbol)
            if at is None or now - at > limit:
                age = "unknown" if at is None else f"{now - at:.1f} s"
                return f"mark of {symbol} is {age} old (max {limit:g} s)"
        return None

    # --- the positions, once more ----------------------------------------------

    async def reread(
        self,
        adapter: ExchangeAdapter,
        client: Any,
        decisions: list[Decision],
        steps: Mapping[str, float],
        positions: list[Position] | tuple[Position, ...] | None = None,
    ) -> list[tuple[Position | None, str | None]]:
        """Per decision: (its position as the exchange reports it now, why acting must be
        aborted or None), from one fresh read of every position.

        Anything different from what was decided on (closed, flipped, resized, another
        margin mode) aborts: the decision's size was computed for that position only.
        `positions`: a read just taken, used instead of a new one.
        """
        if positions is None:
            positions = await fetch_positions(adapter, client)
        checked: list[tuple[Position | None, str | None]] = []
        for decision in decisions:
            if decision.kind == "transfer":  # moves money into the wallet, not a position
                checked.append((None, None))
                continue
            position = find_position(positions, decision.symbol, decision.position_side)
            step = steps.get(decision.symbol) or DEFAULT_STEP
            checked.append((position, _changed(decision, position, step)))
        return checked


def _changed(decision: Decision, position: Position | None, step: float) -> str | None:
    if position is None:
        return "the position is gone"
    if position.side.value != decision.side:
        return f"the position is now {position.side.value}"
    if position.margin_mode.value != decision.margin_mode:
        return f"the position is now {position.margin_mode.value}"
    if abs(position.contracts - decision.position_contracts) > step / 2:
        return f"the size changed from {decision.position_contracts:g} to {position.contracts:g}"
    return None
