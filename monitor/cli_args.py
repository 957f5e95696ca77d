"""Argument types and exit statuses shared by every `marginwatch` subcommand.

A bad flag must fail in argparse, before anything starts, with the flag named and
exit status 2; the same value reaching a simulator or a daemon would end in a
traceback or, worse, run with a meaningless setting (a speed of 0 never advances).
"""

from __future__ import annotations

import argparse
import importlib
import math
from collections.abc import Callable
from pathlib import Path

EXIT_CONFIG = 78
"""EX_CONFIG: an invalid configuration; systemd's RestartPreventExitStatus keys on it."""
EXIT_INTERRUPTED = 130
"""128 + SIGINT, what a shell reports for a command stopped with Ctrl-C."""
EXIT_SOFTWARE = 70
"""EX_SOFTWARE: a failure nobody anticipated, i.e. a bug."""


def deferred(target: str) -> Callable[[argparse.Namespace], int]:
    """The handler `module:function`, imported when its command runs rather than when the
    parser is built: `marginwatch --help` must not pay for ccxt, aiohttp or Telegram, and
    every command's parser is built on every run."""
    module, _, function = target.partition(":")

    def handler(args: argparse.Namespace) -> int:
        run: Callable[[argparse.Namespace], int] = getattr(
            importlib.import_module(module), function
        )
        return run(args)

    return handler


def positive_float(text: str) -> float:
    """A finite number above zero (speeds, durations)."""
    value = _finite(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive number, not {text}")
    return value


def amount(text: str) -> float:
    """A finite amount of money, zero or more (a simulated reserve)."""
    value = _finite(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be zero or more, not {text}")
    return value


def _finite(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number, not {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a finite number, not {text}")
    return value


def port_number(text: str) -> int:
    """A TCP port, or 0 for any free one."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number, not {text!r}") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"must be between 0 and 65535, not {text}")
    return value


def writable_file(text: str) -> Path:
    """A file we can append to (created, with its directories, if missing): checked when
    the command starts, not after the work whose result it was meant to keep."""
    path = Path(text)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("ab"):
            pass
    except OSError as exc:
        raise argparse.ArgumentTypeError(f"cannot write {text}: {exc.strerror}") from None
    return path
