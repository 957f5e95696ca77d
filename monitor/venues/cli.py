"""`marginwatch venues`: what each exchange can do, printed from the venue registry."""

from __future__ import annotations

import argparse
from typing import Any

from monitor.cli_args import deferred


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register `venues` on the `marginwatch` subcommands (argparse's add_subparsers result)."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "venues",
        help="list the exchanges and what marginwatch can do on each",
        description="Each exchange marginwatch knows: whether its margin model is exact, how "
        "marks and account changes arrive, and whether defenses can act on it "
        "(actions.mode confirm/auto) and draw on a reserve (actions.reserve).",
    )
    parser.add_argument(
        "--markdown", action="store_true", help="print the README's table (markdown)"
    )
    parser.set_defaults(handler=deferred("monitor.venues.table:command"))
    return parser
