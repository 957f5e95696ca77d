"""What the alert pipeline may read of the running daemon, and nothing more.

The pipeline is pure; `StateView` is the narrow window it looks through (current
figures, books for sizing defenses, which accounts a feed prices), so tests hand it a
fake and the daemon can be rebuilt on reload underneath it. `RunnerView` is the real one:
it re-reads `runner.daemon` on every call because a reload swaps the daemon.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Protocol

from monitor.domain import MarginMode, Position
from monitor.engine.book import AccountBook, Marks
from monitor.engine.levels import Level
from monitor.engine.results import AccountRisk, PoolRisk, PositionRisk
from monitor.events import Event, pool_target, position_target
from monitor.feeds import FeedStatus


@dataclass(frozen=True, slots=True)
class Figures:
    """One target's numbers as a message shows them; None = unknown, never zero."""

    margin_mode: str | None
    pool: str | None
    """The pool asset a cross target draws on; None for isolated (or not known)."""
    margin_ratio: float | None
    exchange_ratio: float | None
    liquidation_price: float | None
    exchange_liquidation_price: float | None
    distance: float | None
    mark_price: float | None
    note: str | None = None
    maintenance_margin: float | None = None
    """The exchange's own quantity as it defines it."""
    liquidation_fees: float | None = None
    """What the exchange keeps apart from it but counts in liquidation (OKX's fees)."""

    @classmethod
    def from_event(cls, event: Event) -> Figures:
        """The figures an event carried: all we have once a target is gone."""
        pool = event.target.removeprefix("pool ") if event.target.startswith("pool ") else None
        return cls(
            event.margin_mode, pool, event.margin_ratio, None, event.liquidation_price,
            event.exchange_liquidation_price, event.liquidation_distance, event.mark_price,
            event.message or None,
        )  # fmt: skip

    @classmethod
    def from_pool(cls, risk: PoolRisk) -> Figures:
        return cls(
            "cross", risk.asset, risk.margin_ratio, risk.exchange_margin_ratio, None, None,
            risk.liquidation_distance, None, risk.note, risk.maintenance_margin,
            risk.liquidation_fees,
        )  # fmt: skip

    @classmethod
    def from_position(cls, risk: PositionRisk, pool: str | None) -> Figures:
        p = risk.position
        return cls(
            p.margin_mode.value, pool, risk.margin_ratio, p.exchange_margin_ratio,
            risk.liquidation_price, p.exchange_liquidation_price, risk.liquidation_distance,
            risk.mark_price, risk.note, risk.maintenance_margin, risk.liquidation_fees,
        )  # fmt: skip


class StateView(Protocol):
    def accounts(self) -> tuple[str, ...]: ...

    def exchange(self, account: str) -> str | None: ...

    def risk(self, account: str) -> AccountRisk | None:
        """The latest figures of every target; None until the account was first read."""

    def levels(self, account: str) -> dict[str, Level] | None:
        """Open target -> its level now; None until the account was first read, {} when
        the account is no longer configured."""

    def figures(self, account: str, target: str) -> Figures | None:
        """Current figures of an open target; None when it is not open."""

    def book(self, account: str) -> AccountBook | None: ...

    def marks(self, account: str) -> Marks: ...

    def feed_accounts(self) -> dict[str, tuple[str, ...]]:
        """Feed target ("feed binanceusdm") -> the accounts it prices."""

    def sees(self, account: str | None, target: str) -> bool:
        """Positive evidence that the source of a BLIND alert sees again (or is gone):
        catches the recovery a reload's fresh daemon never reports."""


def target_of(position: Position) -> str:
    return position_target(
        position.symbol, position.side.value, position.margin_mode.value, position.position_side
    )


def pool_of(book: AccountBook, position: Position) -> str | None:
    """The pool asset a cross position draws on; None for an isolated one."""
    if position.margin_mode is MarginMode.ISOLATED:
        return None
    return book.snapshot.unified_pool or book.model.pool_asset(position)


class RunnerView:
    """`StateView` over a live `monitor.daemon.runner.Runner`."""

    def __init__(self, runner: Any) -> None:
        self._runner = runner

    def _monitor(self, account: str) -> Any:
        return next((m for m in self._runner.daemon.monitors if m.name == account), None)

    def accounts(self) -> tuple[str, ...]:
        return tuple(m.name for m in self._runner.daemon.monitors)

    def exchange(self, account: str) -> str | None:
        monitor = self._monitor(account)
        return monitor.account.exchange if monitor else None

    def risk(self, account: str) -> AccountRisk | None:
        monitor = self._monitor(account)
        return monitor.current() if monitor else None

    def levels(self, account: str) -> dict[str, Level] | None:
        monitor = self._monitor(account)
        if monitor is None:
            return {}
        if monitor.book is None:
            return None
        targets = [pool_target(asset) for asset in monitor.latest_pools]
        targets += list(monitor.latest_positions)
        tracker = self._runner.tracker
        return {t: tracker.last(account, t) or Level.UNKNOWN for t in targets}

    def figures(self, account: str, target: str) -> Figures | None:
        monitor = self._monitor(account)
        if monitor is None or monitor.book is None:
            return None
        if target.startswith("pool "):
            pool = monitor.latest_pools.get(target.removeprefix("pool "))
            return Figures.from_pool(pool) if pool is not None else None
        risk = monitor.latest_positions.get(target)
        if risk is None:
            return None
        return Figures.from_position(risk, pool_of(monitor.book, risk.position))

    def book(self, account: str) -> AccountBook | None:
        monitor = self._monitor(account)
        return monitor.book if monitor else None

    def marks(self, account: str) -> Marks:
        monitor = self._monitor(account)
        return monitor.marks if monitor else {}

    def feed_accounts(self) -> dict[str, tuple[str, ...]]:
        return {
            group.target: tuple(m.name for m in group.monitors)
            for group in self._runner.daemon.groups.values()
        }

    def sees(self, account: str | None, target: str) -> bool:
        if account is None:
            groups = [g for g in self._runner.daemon.groups.values() if g.target == target]
            return all(
                g.feed is not None and g.feed.status is FeedStatus.LIVE and not g.blind
                for g in groups
            )
        monitor = self._monitor(account)
        if monitor is None:
            return True
        limit = self._runner.config.daemon.account_stale_after
        return monitor.last_ok is not None and time.monotonic() - monitor.last_ok < limit
