"""Run the `marginwatch` command against servers living in the test's event loop.

`run_cli` runs the command in this process: its parsing, its own ccxt clients and
sockets, its own event loop (in a thread), its stdout and stderr; `spawn_cli` runs it as
a real process, for tests whose subject is the process itself (its exit status as the
shell sees it, signals, a fresh interpreter). Either way the test's loop keeps serving
the exchange dialect on 127.0.0.1: real parts, real wires.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TextIO

import orjson
import yaml

from monitor.cli import main


def write_config(path: Path, accounts: list[dict[str, Any]], **top: Any) -> Path:
    """A config file with `accounts` and a state directory beside it."""
    document = {"state_dir": str(path.parent / "state"), **top, "accounts": accounts}
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return path


async def run_cli(*args: str, timeout: float = 60.0) -> tuple[int, str, str]:
    """(exit status, stdout, stderr) of `marginwatch ARGS`, run in this process.

    A `marginwatch` process spends about 1.3 s of CPU importing ccxt and the rest before
    it reads its config; in process those modules are loaded once per test worker. The
    command starts its own event loop (asyncio.run), so it runs in a thread while this
    loop serves the exchange. One command at a time: the process's streams and logging
    are swapped for its run."""
    return await asyncio.wait_for(asyncio.to_thread(_main_captured, args), timeout)


async def spawn_cli(*args: str, timeout: float = 60.0) -> tuple[int, str, str]:
    """(exit status, stdout, stderr) of `python -m monitor.cli ARGS`, a real process."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "monitor.cli", *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(process.communicate(), timeout)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def status_json(config: Path, *, spawn: bool = False) -> tuple[int, dict[str, Any], str]:
    """(exit status, parsed JSON document, stderr) of `marginwatch status --json`, in
    process or, with `spawn`, as a real process."""
    run = spawn_cli if spawn else run_cli
    code, out, err = await run("status", "--config", str(config), "--json")
    assert out.strip(), f"no JSON on stdout; stderr:\n{err}"
    return code, orjson.loads(out), err


def by_symbol(account: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {p["symbol"]: p for p in account["positions"]}


_ONE_COMMAND = threading.Lock()


def _main_captured(args: tuple[str, ...]) -> tuple[int, str, str]:
    """`main(args)` with what it writes to stdout and stderr, and its exit status as a
    process would have it (a SystemExit's code included)."""
    out, err = io.StringIO(), io.StringIO()
    with _ONE_COMMAND, _own_output(out, err), _logging_restored():
        try:
            code = main(list(args))
        except SystemExit as exc:  # argparse and the config loader exit this way
            code = _exit_status(exc, err)
    return code, out.getvalue(), err.getvalue()


def _exit_status(exc: SystemExit, err: TextIO) -> int:
    """The status `python` exits with for `exc`: a message exits 1, after printing it."""
    if exc.code is None or isinstance(exc.code, int):
        return exc.code or 0
    print(exc.code, file=err)
    return 1


class _ThreadStream(io.TextIOBase):
    """sys.stdout or sys.stderr while a command runs: writes from the command's thread
    are its output; other threads (the test's servers, their logs) keep the stream they
    had, so nothing of theirs lands in what the command is said to have printed."""

    def __init__(self, own: TextIO, other: TextIO) -> None:
        super().__init__()
        self._thread = threading.get_ident()
        self._own, self._other = own, other

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return "utf-8"  # a pipe's, as `python -m monitor.cli | ...` has it here

    def _target(self) -> TextIO:
        return self._own if threading.get_ident() == self._thread else self._other

    def write(self, text: str) -> int:
        return self._target().write(text)

    def flush(self) -> None:
        self._target().flush()

    def writable(self) -> bool:
        return True

    def isatty(self) -> bool:
        return False


@contextlib.contextmanager
def _own_output(out: TextIO, err: TextIO) -> Iterator[None]:
    saved = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = _ThreadStream(out, saved[0]), _ThreadStream(err, saved[1])
    try:
        yield
    finally:
        sys.stdout, sys.stderr = saved


@contextlib.contextmanager
def _logging_restored() -> Iterator[None]:
    """The command configures logging for its process (root handlers, levels of noisy
    libraries); in a test worker, later tests keep theirs."""
    root = logging.getLogger()
    handlers = list(root.handlers)
    levels = {logger: logger.level for logger in _loggers()}
    try:
        yield
    finally:
        root.handlers[:] = handlers
        for logger in _loggers():
            logger.setLevel(levels.get(logger, logging.NOTSET))


def _loggers() -> list[logging.Logger]:
    root = logging.getLogger()
    known = root.manager.loggerDict.values()
    return [root, *(x for x in known if isinstance(x, logging.Logger))]
