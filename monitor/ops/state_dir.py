"""Whether `state_dir` can hold marginwatch's state, checked before anything else runs.

The daemon keeps its alert outbox, action journal, markets cache and kill switch there.
Found unusable halfway through start-up, it used to end in a traceback and exit 1, which
systemd answers with a restart every few seconds, for ever. Checked first, it is one line
naming `state_dir` and the cause, and exit 78, which systemd does not restart.
"""

from __future__ import annotations

import contextlib
import errno
import os
import sqlite3
from pathlib import Path

_PROBE = ".marginwatch-probe"


def state_dir_problem(path: Path) -> str | None:
    """Why `path` cannot hold the state (a sentence naming the cause), or None.

    A missing directory is created when its parent exists (systemd's StateDirectory=
    creates it anyway); a missing parent is more likely a typo than a wish. Usable means
    a file can be created there and SQLite can write a database in WAL mode, as the
    alert store does.
    """
    try:
        if path.exists() and not path.is_dir():
            return f"{path} exists but is not a directory"
        if not path.exists():
            if not path.parent.is_dir():
                return f"its parent directory {path.parent} does not exist"
            path.mkdir()
    except OSError as exc:
        return f"cannot create {path}: {_reason(exc)}"
    probe = path / f"{_PROBE}-{os.getpid()}.sqlite3"
    try:
        os.close(os.open(probe, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
        probe.unlink()
    except OSError as exc:
        return f"cannot create files in {path}: {_reason(exc)}"
    try:
        return _sqlite_problem(probe)
    finally:
        for suffix in ("", "-wal", "-shm", "-journal"):
            with contextlib.suppress(OSError):
                Path(f"{probe}{suffix}").unlink()


def _sqlite_problem(probe: Path) -> str | None:
    try:
        db = sqlite3.connect(probe, isolation_level=None)
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("CREATE TABLE probe (x)")
            db.execute("INSERT INTO probe VALUES (1)")
        finally:
            db.close()
    except sqlite3.Error as exc:
        return f"SQLite cannot write a database in {probe.parent}: {exc}"
    return None


def _reason(exc: OSError) -> str:
    if exc.errno == errno.EROFS:
        return "read-only file system"
    if exc.errno in (errno.EACCES, errno.EPERM):
        return "permission denied"
    return exc.strerror or type(exc).__name__
