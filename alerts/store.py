"""The alerting side's one durable file: `state_dir/alerts.sqlite3`.

Why SQLite and why one connection: a page that was decided but not yet delivered must
survive a restart (the outbox), and so must the pipeline's memory of what it already
said (kv), or a restart re-pages every open alert. Stdlib sqlite3 in WAL mode, used only
from the event loop thread, with short autocommit-sized transactions: each call is a
few hundred microseconds on a local disk, far below a mark-price tick, so monitoring is
never made to wait on an executor hop or a lock held by another thread.

`synchronous=FULL`: a row acknowledged by `outbox_add` must be on disk before anything
is sent, otherwise a power cut could forget a page the trader never received.

Tables:
    outbox   one row per (notification, destination), delivered in `id` order
    kv       pipeline state, one JSON document per key
    history  margin-ratio samples for /chart, pruned to a few days
    actions  reserved for the console's audit of commands (schema only for now)
Schema version lives in `PRAGMA user_version`; `_MIGRATIONS[i]` upgrades i -> i+1.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import orjson

__all__ = ["FILENAME", "STORAGE_ERRORS", "HistoryRow", "OutboxRow", "Store"]

FILENAME = "alerts.sqlite3"

LOCK_TIMEOUT = 1.0
"""Seconds a write waits for another process's lock on the file."""
STORAGE_ERRORS: tuple[type[Exception], ...] = (sqlite3.Error, OSError)
"""What a failing disk or file looks like from here: SQLITE_FULL, SQLITE_IOERR, a locked,
read-only or corrupt file (all sqlite3.Error), or the OS refusing outright."""

_MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE outbox (
        id              INTEGER PRIMARY KEY AUTOINCREMENT,
        notification_id TEXT    NOT NULL,
        destination     TEXT    NOT NULL,
        payload         TEXT    NOT NULL,
        created         REAL    NOT NULL,
        attempts        INTEGER NOT NULL DEFAULT 0,
        next_attempt    REAL    NOT NULL,
        delivered_at    REAL,
        expired_at      REAL,
        failed_at       REAL,
        last_error      TEXT,
        UNIQUE (notification_id, destination)
    );
    CREATE INDEX outbox_pending ON outbox (destination, id)
        WHERE delivered_at IS NULL AND expired_at IS NULL AND failed_at IS NULL;
    CREATE TABLE kv (
        key     TEXT PRIMARY KEY,
        value   TEXT NOT NULL,
        updated REAL NOT NULL
    );
    CREATE TABLE history (
        time                  REAL NOT NULL,
        account               TEXT NOT NULL,
        target                TEXT NOT NULL,
        margin_ratio          REAL,
        liquidation_distance  REAL
    );
    CREATE INDEX history_account_time ON history (account, time);
    CREATE INDEX history_time ON history (time);
    CREATE TABLE actions (
        id      INTEGER PRIMARY KEY AUTOINCREMENT,
        time    REAL NOT NULL,
        chat_id INTEGER,
        user_id INTEGER,
        account TEXT,
        action  TEXT NOT NULL,
        payload TEXT
    );
    """,
)
SCHEMA_VERSION = len(_MIGRATIONS)


@dataclass(frozen=True, slots=True)
class OutboxRow:
    """One notification bound for one destination, as stored."""

    id: int
    notification_id: str
    destination: str
    payload: dict[str, Any]
    created: float
    attempts: int
    next_attempt: float
    delivered_at: float | None = None
    expired_at: float | None = None
    failed_at: float | None = None
    last_error: str | None = None


class HistoryRow(NamedTuple):
    time: float
    account: str
    target: str
    margin_ratio: float | None
    liquidation_distance: float | None


_OUTBOX_COLUMNS = (
    "id, notification_id, destination, payload, created, attempts, next_attempt, "
    "delivered_at, expired_at, failed_at, last_error"
)


def _outbox_row(row: tuple[Any, ...]) -> OutboxRow:
    values = list(row)
    values[3] = orjson.loads(values[3])
    return OutboxRow(*values)


class Store:
    """The SQLite file; open with `Store.open(state_dir)`, close with `close()`."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        # isolation_level=None: we issue BEGIN ourselves, so a transaction's extent is
        # visible in the code rather than implied by the sqlite3 module.
        # timeout: how long a write waits for a lock held by another process (a reader's
        # checkpoint, an operator's sqlite3 shell) before failing; the wait blocks the event
        # loop, so it is short: a page that cannot be stored is delivered from memory.
        self._db = sqlite3.connect(path, isolation_level=None, timeout=LOCK_TIMEOUT)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute("PRAGMA foreign_keys=ON")
        self._migrate()

    @classmethod
    def open(cls, state_dir: Path) -> Store:
        return cls(Path(state_dir) / FILENAME)

    def close(self) -> None:
        self._db.close()

    @property
    def schema_version(self) -> int:
        return int(self._db.execute("PRAGMA user_version").fetchone()[0])

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield self._db
        except BaseException:
            if self._db.in_transaction:  # SQLITE_FULL and some I/O errors roll back already
                self._db.execute("ROLLBACK")
            raise
        try:
            self._db.execute("COMMIT")
        except BaseException:
            if self._db.in_transaction:  # a failed COMMIT leaves it open: end it, or the
                self._db.execute("ROLLBACK")  # next BEGIN fails "within a transaction"
            raise

    def _migrate(self) -> None:
        version = self.schema_version
        if version > SCHEMA_VERSION:
            raise RuntimeError(
                f"{self.path} has schema version {version}, newer than this program's "
                f"{SCHEMA_VERSION}: refusing to touch it (downgrade?)"
            )
        for target in range(version, SCHEMA_VERSION):
            with self._transaction() as db:
                for statement in _MIGRATIONS[target].split(";"):
                    if statement.strip():
                        db.execute(statement)
                db.execute(f"PRAGMA user_version = {target + 1}")

    # -- outbox ------------------------------------------------------------------------

    def outbox_add(
        self,
        notification_id: str,
        payload: dict[str, Any],
        destinations: Iterable[str],
        at: float,
        *,
        state: Mapping[str, Any] | None = None,
    ) -> list[OutboxRow]:
        """Insert one row per destination in one transaction; the rows inserted.

        Idempotent: a (notification_id, destination) already present is left alone, so
        re-enqueueing after a restart never doubles a page. `state` (kv key -> value) is
        written in the same transaction: the pipeline's memory of what it said then can
        never disagree with the outbox after a crash, which is what kept a restarted
        daemon from saying a page a second time.
        """
        body = orjson.dumps(payload).decode()
        rows: list[OutboxRow] = []
        with self._transaction() as db:
            for destination in destinations:
                cursor = db.execute(
                    "INSERT OR IGNORE INTO outbox "
                    "(notification_id, destination, payload, created, next_attempt) "
                    "VALUES (?, ?, ?, ?, ?)",
                    (notification_id, destination, body, at, at),
                )
                if cursor.rowcount:
                    row_id = int(cursor.lastrowid or 0)
                    rows.append(OutboxRow(row_id, notification_id, destination, payload, at, 0, at))
            for key, value in (state or {}).items():
                self._kv_write(db, key, value, at)
        return rows

    def outbox_pending(self, destination: str | None = None) -> list[OutboxRow]:
        """Rows neither delivered, expired nor failed, oldest first."""
        where = "delivered_at IS NULL AND expired_at IS NULL AND failed_at IS NULL"
        args: tuple[Any, ...] = ()
        if destination is not None:
            where += " AND destination = ?"
            args = (destination,)
        rows = self._db.execute(
            f"SELECT {_OUTBOX_COLUMNS} FROM outbox WHERE {where} ORDER BY id", args
        ).fetchall()
        return [_outbox_row(r) for r in rows]

    def outbox_all(self) -> list[OutboxRow]:
        rows = self._db.execute(f"SELECT {_OUTBOX_COLUMNS} FROM outbox ORDER BY id").fetchall()
        return [_outbox_row(r) for r in rows]

    def outbox_attempt(self, row_id: int) -> None:
        """Count an attempt BEFORE sending: after a crash mid-send the row shows it was tried."""
        self._db.execute("UPDATE outbox SET attempts = attempts + 1 WHERE id = ?", (row_id,))

    def outbox_delivered(self, row_id: int, at: float) -> None:
        self._db.execute(
            "UPDATE outbox SET delivered_at = ?, last_error = NULL WHERE id = ?", (at, row_id)
        )

    def outbox_retry(self, row_id: int, next_attempt: float, error: str) -> None:
        self._db.execute(
            "UPDATE outbox SET next_attempt = ?, last_error = ? WHERE id = ?",
            (next_attempt, error, row_id),
        )

    def outbox_expired(self, row_id: int, at: float, error: str | None = None) -> None:
        self._db.execute(
            "UPDATE outbox SET expired_at = ?, last_error = COALESCE(?, last_error) WHERE id = ?",
            (at, error, row_id),
        )

    def outbox_failed(self, row_id: int, at: float, error: str) -> None:
        self._db.execute(
            "UPDATE outbox SET failed_at = ?, last_error = ? WHERE id = ?", (at, error, row_id)
        )

    def outbox_prune(self, before: float) -> int:
        """Forget finished rows (delivered, expired or failed) created before `before`."""
        cursor = self._db.execute(
            "DELETE FROM outbox WHERE created < ? AND (delivered_at IS NOT NULL "
            "OR expired_at IS NOT NULL OR failed_at IS NOT NULL)",
            (before,),
        )
        return cursor.rowcount

    # -- kv ----------------------------------------------------------------------------

    def kv_get(self, key: str, default: Any = None) -> Any:
        row = self._db.execute("SELECT value FROM kv WHERE key = ?", (key,)).fetchone()
        return default if row is None else orjson.loads(row[0])

    def kv_set(self, key: str, value: Any, at: float | None = None) -> None:
        """Store a JSON-serialisable value (orjson: dataclasses and datetimes work too)."""
        self._kv_write(self._db, key, value, time.time() if at is None else at)

    @staticmethod
    def _kv_write(db: sqlite3.Connection, key: str, value: Any, at: float) -> None:
        db.execute(
            "INSERT INTO kv (key, value, updated) VALUES (?, ?, ?) "
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated = excluded.updated",
            (key, orjson.dumps(value).decode(), at),
        )

    def probe(self, size: int = 64 * 1024) -> None:
        """Write `size` bytes and take them back, in one transaction: proof there is room
        again after a failure (a small update in place can succeed on a full disk)."""
        with self._transaction() as db:
            self._kv_write(db, "storage_probe", "x" * size, time.time())
            db.execute("DELETE FROM kv WHERE key = 'storage_probe'")

    # -- history -----------------------------------------------------------------------

    def history_add(self, rows: Iterable[HistoryRow]) -> None:
        """Append samples in one transaction (one per evaluated target).

        Written with synchronous=NORMAL: samples arrive every evaluation and losing the
        last few to a power cut costs nothing, so they skip the fsync; the next FULL
        commit (an outbox row) syncs them along with it.
        """
        self._db.execute("PRAGMA synchronous=NORMAL")
        try:
            with self._transaction() as db:
                db.executemany(
                    "INSERT INTO history "
                    "(time, account, target, margin_ratio, liquidation_distance) "
                    "VALUES (?, ?, ?, ?, ?)",
                    [tuple(r) for r in rows],
                )
        finally:
            self._db.execute("PRAGMA synchronous=FULL")

    def history(self, account: str, since: float, until: float | None = None) -> list[HistoryRow]:
        """One account's samples in [since, until], oldest first."""
        rows = self._db.execute(
            "SELECT time, account, target, margin_ratio, liquidation_distance FROM history "
            "WHERE account = ? AND time >= ? AND time <= ? ORDER BY time, target",
            (account, since, float("inf") if until is None else until),
        ).fetchall()
        return [HistoryRow(*r) for r in rows]

    def history_series(
        self, account: str, since: float, until: float | None = None
    ) -> list[tuple[float, str, float | None]]:
        """(time, target, margin_ratio): the shape `alerts.console.chart.series_from` reads."""
        return [(r.time, r.target, r.margin_ratio) for r in self.history(account, since, until)]

    def history_prune(self, keep_days: float, now: float | None = None) -> int:
        """Delete samples older than `keep_days`; returns how many."""
        cutoff = (time.time() if now is None else now) - keep_days * 86400.0
        return self._db.execute("DELETE FROM history WHERE time < ?", (cutoff,)).rowcount
