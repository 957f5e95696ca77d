"""`marginwatch sim`'s arguments, apart from the simulator (monitor/simulator/command.py)
so that building the CLI's parser loads neither aiohttp nor pydantic."""

from __future__ import annotations

import argparse
from typing import Any

from monitor.cli_args import deferred, port_number, positive_float
from monitor.simulator.catalogue import VENUES, builtin_names


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register `sim` on the `marginwatch` subcommands (argparse's add_subparsers result)."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "sim",
        help="serve a simulated exchange (Binance or Bybit) playing a scenario",
        description="Serve a simulated exchange (Binance USD-M, or Bybit v5 with --venue "
        "bybit: REST and websocket streams) on 127.0.0.1, play a scenario's price path "
        "against its accounts, and liquidate them as that exchange would. Prints the URLs "
        "and test credentials to configure.",
    )
    parser.add_argument(
        "--scenario",
        required=True,
        metavar="NAME|FILE",
        help=f"a built-in scenario ({', '.join(builtin_names())}) or a scenario YAML file",
    )
    parser.add_argument(
        "--port", type=port_number, default=0, help="TCP port on 127.0.0.1 (default: any free)"
    )
    parser.add_argument(
        "--paths",
        metavar="NAME|FILE",
        help="play the accounts of --scenario on this scenario's price paths, rescaled to "
        "--scenario's start prices",
    )
    parser.add_argument(
        "--speed",
        type=positive_float,
        default=1.0,
        metavar="X",
        help="simulated seconds per wall-clock second (default 1)",
    )
    add_venue_argument(parser)
    parser.set_defaults(handler=deferred("monitor.simulator.command:run"))
    return parser


def add_venue_argument(parser: argparse.ArgumentParser) -> None:
    """`--venue`: which exchange the simulator speaks (sim, demo and drill alike)."""
    parser.add_argument(
        "--venue",
        choices=VENUES,
        default=VENUES[0],
        help="the simulated exchange's dialect: binance (USD-M, the default) or bybit "
        "(v5 unified account)",
    )
