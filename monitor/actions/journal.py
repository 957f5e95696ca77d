"""Every auto-deleverage decision, written down before anything is sent.

SQLite at `<state_dir>/actions.sqlite3`, one durable transaction per change, so that
after a crash (even SIGKILL between two lines of code) the file says exactly how far each
decision got:

    planned -> sent -> filled | failed | unknown -> filled | failed
    planned -> aborted | refused           (nothing was sent)
    dry_run, refused                       (recorded as such; nothing was sent)

`sent` is committed *before* the request leaves, so a `planned` row was never sent and a
`sent` or `unknown` row may have been: those are looked up on the exchange and settled
(`reconcile`) before the account may act again. The caps read their rolling windows
from here, so a restart does not reset them.
"""

from __future__ import annotations

import math
import sqlite3
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, NamedTuple, Protocol

import orjson

from monitor.actions.policy import Decision

Status = Literal["planned", "sent", "filled", "failed", "aborted", "unknown", "dry_run", "refused"]
PENDING: tuple[Status, ...] = ("planned", "sent", "unknown")
"""Not settled: the account may not act until each is."""
COMMITTED: tuple[Status, ...] = ("sent", "filled", "unknown")
"""May have moved money: counted in full by the notional caps."""
ATTEMPTED: tuple[Status, ...] = (*COMMITTED, "failed")
"""Counted by the action-count caps and the cooldown: a rejected order is not retried
on every tick."""

_NEXT: dict[Status, tuple[Status, ...]] = {
    "sent": ("planned",),
    "aborted": ("planned",),
    "refused": ("planned",),
    "unknown": ("sent", "unknown"),
    "filled": ("planned", "sent", "unknown"),
    "failed": ("planned", "sent", "unknown"),
}
"""Allowed previous statuses of each status. `planned -> filled | failed` happens only in
reconciliation, for an order found on the exchange although it was never marked sent."""

_SCHEMA = """
CREATE TABLE IF NOT EXISTS decisions (
    id TEXT PRIMARY KEY,
    account TEXT NOT NULL,
    target TEXT NOT NULL,
    kind TEXT NOT NULL,
    symbol TEXT NOT NULL,
    client_order_id TEXT,
    mode TEXT NOT NULL,
    status TEXT NOT NULL,
    notional REAL NOT NULL,
    quantity REAL NOT NULL,
    description TEXT NOT NULL,
    request TEXT NOT NULL,
    result TEXT,
    detail TEXT NOT NULL DEFAULT '',
    ratio_before REAL,
    ratio_expected REAL,
    ratio_after REAL,
    liquidation_price REAL,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    distance_before REAL,
    distance_expected REAL,
    distance_after REAL
);
CREATE INDEX IF NOT EXISTS decisions_by_account ON decisions (account, created_at);
"""
_ADDED_COLUMNS = ("distance_before", "distance_expected", "distance_after")
"""Columns newer than the first journal files: added in place to an older file."""


class JournalError(Exception):
    """A transition the journal does not allow: a bug, never to be ignored."""


@dataclass(frozen=True, slots=True)
class ActionRow:
    """One journaled decision as stored."""

    id: str
    account: str
    target: str
    kind: str
    symbol: str
    client_order_id: str | None
    mode: str
    status: Status
    notional: float
    quantity: float
    description: str
    request: dict[str, Any]
    result: dict[str, Any] | None
    detail: str
    ratio_before: float | None
    ratio_expected: float | None
    ratio_after: float | None
    liquidation_price: float | None
    created_at: float
    updated_at: float
    distance_before: float | None = None
    distance_expected: float | None = None
    """The target's liquidation distance the planner predicted after this decision."""
    distance_after: float | None = None
    """The distance measured by the fresh read after it filled."""


class Totals(NamedTuple):
    """One account's use of the caps over a window. Transfers from the reserve have
    caps of their own and are not in `notional` (the add or cut they fund is)."""

    actions: int
    notional: float
    transferred: float


class Outcome(NamedTuple):
    """What became of a request, as the exchange tells it."""

    status: Status
    detail: str
    result: dict[str, Any] | None = None


class Lookup(Protocol):
    async def lookup(self, row: ActionRow) -> Outcome: ...


class Journal:
    """The decisions of every account of one daemon (one file, rows keyed by account).

    Calls are synchronous and short (one indexed statement each): they run on the event
    loop from the controllers' tasks, never from a tick.
    """

    def __init__(self, path: Path, now: Callable[[], float] = time.time) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._now = now
        self._db = sqlite3.connect(path, isolation_level=None)
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(_SCHEMA)
        present = {row[1] for row in self._db.execute("PRAGMA table_info(decisions)")}
        for column in _ADDED_COLUMNS:
            if column not in present:
                self._db.execute(f"ALTER TABLE decisions ADD COLUMN {column} REAL")

    def close(self) -> None:
        self._db.close()

    # --- writing ---------------------------------------------------------------

    def record(
        self,
        decision: Decision,
        mode: str,
        status: Literal["planned", "dry_run", "refused"],
        request: dict[str, Any],
        detail: str = "",
    ) -> bool:
        """Write a new decision; False (and nothing written) if its id is already there,
        i.e. this very decision was taken before and must not be taken again."""
        now = self._now()
        try:
            self._db.execute(
                "INSERT INTO decisions (id, account, target, kind, symbol, client_order_id,"
                " mode, status, notional, quantity, description, request, detail,"
                " ratio_before, ratio_expected, distance_before, distance_expected,"
                " created_at, updated_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    decision.id, decision.account, decision.target, decision.kind,
                    decision.symbol, decision.client_order_id, mode, status, decision.notional,
                    decision.quantity, decision.describe(), orjson.dumps(request).decode(),
                    detail, decision.ratio_before, decision.ratio_after,
                    _finite(decision.distance_before), _finite(decision.distance_after),
                    now, now,
                ),
            )  # fmt: skip
        except sqlite3.IntegrityError:
            return False
        return True

    def advance(
        self,
        decision_id: str,
        status: Status,
        detail: str | None = None,
        result: dict[str, Any] | None = None,
    ) -> None:
        """Move a row to `status`; JournalError if it is not in an allowed previous one."""
        previous = _NEXT.get(status)
        if previous is None:
            raise JournalError(f"{status!r} is only ever recorded, never reached")
        marks = ",".join("?" * len(previous))
        cursor = self._db.execute(
            f"UPDATE decisions SET status = ?, updated_at = ?,"
            f" detail = COALESCE(?, detail), result = COALESCE(?, result)"
            f" WHERE id = ? AND status IN ({marks})",
            (
                status, self._now(), detail,
                orjson.dumps(result).decode() if result is not None else None,
                decision_id, *previous,
            ),
        )  # fmt: skip
        if cursor.rowcount != 1:
            row = self.get(decision_id)
            found = row.status if row else "no such row"
            raise JournalError(f"{decision_id}: cannot go to {status!r} from {found!r}")

    def settle(self, decision_id: str, outcome: Outcome) -> None:
        self.advance(decision_id, outcome.status, outcome.detail, outcome.result)

    def observed(
        self,
        decision_id: str,
        ratio_after: float | None,
        liquidation_price: float | None,
        distance_after: float | None = None,
    ) -> None:
        """The target's figures as measured by the fresh read after acting."""
        self._db.execute(
            "UPDATE decisions SET ratio_after = ?, liquidation_price = ?, distance_after = ?"
            " WHERE id = ?",
            (ratio_after, liquidation_price, _finite(distance_after), decision_id),
        )

    # --- reading ---------------------------------------------------------------

    def get(self, decision_id: str) -> ActionRow | None:
        row = self._db.execute("SELECT * FROM decisions WHERE id = ?", (decision_id,)).fetchone()
        return _row(row) if row else None

    def pending(self, account: str) -> list[ActionRow]:
        return self._select(account, PENDING)

    def rows(self, account: str) -> list[ActionRow]:
        """Every row of the account, oldest first."""
        return self._select(account, None)

    def recent(self, account: str | None = None, limit: int = 10) -> list[ActionRow]:
        """The latest decisions, newest first (for /actions)."""
        where, args = ("WHERE account = ?", [account]) if account else ("", [])
        cursor = self._db.execute(
            f"SELECT * FROM decisions {where} ORDER BY created_at DESC, rowid DESC LIMIT ?",
            (*args, limit),
        )
        return [_row(r) for r in cursor]

    def totals(self, account: str, since: float) -> Totals:
        """Actions attempted, notional committed and reserve transferred since `since`."""
        committed = ",".join("?" * len(COMMITTED))
        attempted = ",".join("?" * len(ATTEMPTED))
        row = self._db.execute(
            f"SELECT"
            f" COUNT(CASE WHEN status IN ({attempted}) THEN 1 END),"
            f" COALESCE(SUM(CASE WHEN status IN ({committed}) AND kind != 'transfer'"
            f"   THEN notional END), 0),"
            f" COALESCE(SUM(CASE WHEN status IN ({committed}) AND kind = 'transfer'"
            f"   THEN quantity END), 0)"
            f" FROM decisions WHERE account = ? AND created_at >= ?",
            (*ATTEMPTED, *COMMITTED, *COMMITTED, account, since),
        ).fetchone()
        return Totals(row[0], row[1], row[2])

    def added(self, account: str, since: float) -> dict[str, float]:
        """target -> isolated margin committed to it since `since` (its budget used)."""
        marks = ",".join("?" * len(COMMITTED))
        cursor = self._db.execute(
            f"SELECT target, SUM(quantity) FROM decisions WHERE account = ?"
            f" AND kind = 'add_margin' AND status IN ({marks}) AND created_at >= ?"
            f" GROUP BY target",
            (account, *COMMITTED, since),
        )
        return {target: total for target, total in cursor}

    def transfers_since(self, account: str, since: float) -> list[ActionRow]:
        """Transfer rows created since `since` (a lookup must not match a transfer
        to a second row)."""
        cursor = self._db.execute(
            "SELECT * FROM decisions WHERE account = ? AND kind = 'transfer' AND created_at >= ?"
            " ORDER BY created_at, rowid",
            (account, since),
        )
        return [_row(r) for r in cursor]

    def stranded(self, account: str, since: float) -> set[str]:
        """Targets whose last reserve transfer (filled since `since`) funded an add the
        exchange refused, with no add of theirs filled after it: the money is in the
        futures wallet already, and another transfer for the same shortfall would only
        move more for nothing (see `Guards.budget`)."""
        cursor = self._db.execute(
            "SELECT t.target FROM decisions t WHERE t.account = ? AND t.kind = 'transfer'"
            " AND t.status = 'filled' AND t.created_at >= ?"
            " AND t.created_at = (SELECT MAX(created_at) FROM decisions WHERE account ="
            "   t.account AND target = t.target AND kind = 'transfer' AND status = 'filled')"
            " AND EXISTS (SELECT 1 FROM decisions a WHERE a.account = t.account"
            "   AND a.target = t.target AND a.kind = 'add_margin' AND a.status = 'failed'"
            "   AND a.created_at >= t.created_at)"
            " AND NOT EXISTS (SELECT 1 FROM decisions a WHERE a.account = t.account"
            "   AND a.target = t.target AND a.kind = 'add_margin' AND a.status = 'filled'"
            "   AND a.created_at >= t.created_at)",
            (account, since),
        )
        return {target for (target,) in cursor}

    def last_acted(self, account: str, statuses: Iterable[Status]) -> dict[str, float]:
        """target -> time of its latest row in `statuses` (the cooldowns after a restart)."""
        wanted = tuple(statuses)
        marks = ",".join("?" * len(wanted))
        cursor = self._db.execute(
            f"SELECT target, MAX(created_at) FROM decisions"
            f" WHERE account = ? AND status IN ({marks}) GROUP BY target",
            (account, *wanted),
        )
        return {target: at for target, at in cursor}

    def _select(self, account: str, statuses: tuple[Status, ...] | None) -> list[ActionRow]:
        if statuses is None:
            sql, args = "SELECT * FROM decisions WHERE account = ?", (account,)
        else:
            marks = ",".join("?" * len(statuses))
            sql = f"SELECT * FROM decisions WHERE account = ? AND status IN ({marks})"
            args = (account, *statuses)
        return [_row(r) for r in self._db.execute(sql + " ORDER BY created_at, rowid", args)]

    # --- recovery --------------------------------------------------------------

    async def reconcile(self, account: str, exchange: Lookup) -> list[ActionRow]:
        """Settle every pending row of `account` from what the exchange says; returns the
        rows that are still pending (the exchange could not tell yet)."""
        still: list[ActionRow] = []
        for row in self.pending(account):
            outcome = await exchange.lookup(row)
            if outcome.status != "unknown" or row.status == "sent":
                self.settle(row.id, outcome)
            if outcome.status == "unknown":
                still.append(row)
        return still


def _finite(value: float | None) -> float | None:
    """SQLite has no infinity: "nothing liquidates it" is stored as NULL."""
    return value if value is not None and math.isfinite(value) else None


def _row(row: sqlite3.Row) -> ActionRow:
    values = dict(row)
    values["request"] = orjson.loads(values["request"])
    values["result"] = orjson.loads(values["result"]) if values["result"] else None
    return ActionRow(**values)
