"""`marginwatch sim`: the simulated exchange as a command, to try the monitor (and its
alerts) against a crash without an exchange account or real money.

It prints where it serves and a config snippet to paste into the monitor's YAML, then
plays the scenario until it ends or Ctrl-C.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Any, TextIO

import yaml

from monitor.simulator.binance_usdm.events import LIQUIDATION
from monitor.simulator.binance_usdm.state import SimAccount
from monitor.simulator.runner import SimulatedVenue
from monitor.simulator.scenario import Scenario, ScenarioError, builtin_names, load_scenario

EXIT_CONFIG = 78  # EX_CONFIG, as `marginwatch` uses for a bad configuration
EXIT_UNAVAILABLE = 69  # EX_UNAVAILABLE: the port could not be bound


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register `sim` on the `marginwatch` subcommands (argparse's add_subparsers result)."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "sim",
        help="run a simulated Binance USD-M exchange playing a market scenario",
        description="Serve a simulated Binance USD-M exchange (REST and websocket streams) "
        "on 127.0.0.1, play a scenario's price path against its accounts, and liquidate "
        "them as Binance would. Prints the URLs and test credentials to configure.",
    )
    parser.add_argument(
        "--scenario",
        required=True,
        metavar="NAME|FILE",
        help=f"a built-in scenario ({', '.join(builtin_names())}) or a scenario YAML file",
    )
    parser.add_argument(
        "--port", type=int, default=0, help="TCP port on 127.0.0.1 (default: any free port)"
    )
    parser.add_argument(
        "--speed",
        type=_positive,
        default=1.0,
        help="simulated seconds per wall-clock second (default 1)",
    )
    parser.set_defaults(handler=run)
    return parser


def _positive(text: str) -> float:
    value = float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be positive, not {text}")
    return value


def run(args: argparse.Namespace) -> int:
    try:
        scenario = load_scenario(args.scenario)
    except ScenarioError as exc:
        print(f"marginwatch sim: invalid scenario {args.scenario}:\n{exc}", file=sys.stderr)
        return EXIT_CONFIG
    try:
        asyncio.run(serve(scenario, args.speed, args.port, sys.stdout))
    except KeyboardInterrupt:
        print("marginwatch sim: stopped", file=sys.stderr)
    except OSError as exc:
        print(f"marginwatch sim: cannot serve on port {args.port}: {exc}", file=sys.stderr)
        return EXIT_UNAVAILABLE
    return 0


async def serve(scenario: Scenario, speed: float, port: int, out: TextIO) -> None:
    """Serve until the scenario's last tick, printing the banner first and a summary last."""
    async with SimulatedVenue(scenario, speed, port) as venue:
        out.write(banner(venue))
        out.flush()
        await venue.finished.wait()
        out.write(summary(venue))
        out.flush()


def banner(venue: SimulatedVenue) -> str:
    lines = [
        f"Simulated Binance USD-M on {venue.base_url}",
        f"  REST: {venue.base_url}",
        f"  WS:   {venue.ws_url}",
        f"  scenario: {venue.scenario.duration:g}s simulated at {venue.speed:g}x",
    ]
    for c in venue.credentials.values():
        lines.append(f"  account {c.name}: api_key={c.api_key} secret={c.secret}")
        account = venue.exchange.accounts[c.api_key]
        if account.spot or account.funding:
            may = "may" if account.can_transfer else "may NOT"
            lines.append(f"    reserve {_reserve(account)}; the key {may} transfer it in")
    snippet = {
        "accounts": [
            {
                "name": f"sim-{c.name}",
                "exchange": "binanceusdm",
                "api_key": c.api_key,
                "secret": c.secret,
                "rest_url": venue.base_url,
                "ws_url": venue.ws_url,
            }
            for c in venue.credentials.values()
        ]
    }
    lines += ["", "Paste into the monitor's configuration:", ""]
    return "\n".join(lines) + "\n" + yaml.safe_dump(snippet, sort_keys=False) + "\n"


def summary(venue: SimulatedVenue) -> str:
    lines = [f"Scenario finished after {venue.elapsed:g}s simulated."]
    for credentials in venue.credentials.values():
        account = venue.exchange.accounts[credentials.api_key]
        liquidated = [o.symbol for o in account.orders if o.type == LIQUIDATION]
        lines.append(f"  {credentials.name}: liquidated {', '.join(liquidated) or 'nothing'}")
        if account.transfers or account.spot or account.funding:
            moved = len(account.transfers)
            lines.append(f"    {moved} transfer(s); reserve left {_reserve(account) or 'none'}")
    return "\n".join(lines) + "\n"


def _reserve(account: SimAccount) -> str:
    """The wallets outside futures, e.g. "5,000 USDT in spot"."""
    return ", ".join(
        f"{f'{amount:,.2f}'.removesuffix('.00')} {asset} in {wallet}"
        for wallet, balances in (("spot", account.spot), ("funding", account.funding))
        for asset, amount in balances.items()
    )
