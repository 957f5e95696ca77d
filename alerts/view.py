"""What the alert pipeline may read of the running daemon, and nothing more.

The pipeline is pure; `StateView` is the narrow window it looks through (current
figures, books for sizing defenses, which accounts a feed prices), so tests hand it a
fake and the daemon can be rebuilt on reload underneath it. `HostView` is the real one,
over the daemon's typed plugin boundary (monitor/daemon/plugins.py).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Protocol

from monitor.daemon.plugins import DaemonState
from monitor.domain import MarginMode, Position
from monitor.engine.book import AccountBook, Marks
from monitor.engine.levels import Level
from monitor.engine.results import AccountRisk, PoolRisk, PositionRisk
from monitor.events import Event, pool_target, position_target


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


class HostView:
    """`StateView` over the daemon's plugin boundary (monitor/daemon/plugins.py), which
    always answers for the daemon running now."""

    def __init__(self, daemon: DaemonState) -> None:
        self._daemon = daemon

    def accounts(self) -> tuple[str, ...]:
        return self._daemon.accounts()

    def exchange(self, account: str) -> str | None:
        return self._daemon.exchange(account)

    def risk(self, account: str) -> AccountRisk | None:
        return self._daemon.risk(account)

    def levels(self, account: str) -> dict[str, Level] | None:
        daemon = self._daemon
        if daemon.exchange(account) is None:
            return {}
        if daemon.book(account) is None:
            return None
        targets = [pool_target(asset) for asset in daemon.pools(account)]
        targets += list(daemon.positions(account))
        return {t: daemon.level(account, t) or Level.UNKNOWN for t in targets}

    def figures(self, account: str, target: str) -> Figures | None:
        book = self._daemon.book(account)
        if book is None:
            return None
        if target.startswith("pool "):
            pool = self._daemon.pools(account).get(target.removeprefix("pool "))
            return Figures.from_pool(pool) if pool is not None else None
        risk = self._daemon.positions(account).get(target)
        if risk is None:
            return None
        return Figures.from_position(risk, pool_of(book, risk.position))

    def book(self, account: str) -> AccountBook | None:
        return self._daemon.book(account)

    def marks(self, account: str) -> Marks:
        return self._daemon.marks(account)

    def feed_accounts(self) -> dict[str, tuple[str, ...]]:
        return {feed.target: feed.accounts for feed in self._daemon.feeds()}

    def sees(self, account: str | None, target: str) -> bool:
        if account is None:
            return all(f.live and not f.blind for f in self._daemon.feeds() if f.target == target)
        if self._daemon.exchange(account) is None:
            return True
        last = self._daemon.last_read(account)
        limit = self._daemon.config.daemon.account_stale_after
        return last is not None and time.monotonic() - last < limit
