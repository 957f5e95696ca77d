"""`marginwatch sim`: the simulated exchange as a command, to try the monitor (and its
alerts) against a crash without an exchange account or real money.

It prints where it serves and a config snippet to paste into the monitor's YAML, then
plays the scenario until it ends or Ctrl-C.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import textwrap
from typing import TextIO

import yaml

from monitor.cli_args import EXIT_CONFIG, EXIT_INTERRUPTED
from monitor.simulator.binance_usdm.events import LIQUIDATION
from monitor.simulator.binance_usdm.state import SimAccount
from monitor.simulator.dialects import DIALECTS
from monitor.simulator.prices import Tick
from monitor.simulator.repath import with_paths
from monitor.simulator.runner import SimulatedVenue
from monitor.simulator.scenario import (
    MARKETS,
    Scenario,
    ScenarioError,
    load_scenario,
)

EXIT_UNAVAILABLE = 69  # EX_UNAVAILABLE: the port could not be bound


def run(args: argparse.Namespace) -> int:
    try:
        scenario = load_scenario(args.scenario)
        if args.paths is not None:
            scenario = with_paths(scenario, load_scenario(args.paths))
        DIALECTS[args.venue].check(scenario)
    except ScenarioError as exc:
        print(f"marginwatch sim: invalid scenario {args.scenario}:\n{exc}", file=sys.stderr)
        return EXIT_CONFIG
    try:
        asyncio.run(serve(scenario, args.speed, args.port, sys.stdout, venue=args.venue))
    except KeyboardInterrupt:
        print("marginwatch sim: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except OSError as exc:
        print(f"marginwatch sim: cannot serve on port {args.port}: {exc}", file=sys.stderr)
        return EXIT_UNAVAILABLE
    return 0


async def serve(
    scenario: Scenario, speed: float, port: int, out: TextIO, *, venue: str = "binance"
) -> None:
    """Serve until the scenario's last tick: the banner first, then a line per phase and
    per liquidation as they happen, and a summary last."""
    progress = Progress(scenario, out)
    served = SimulatedVenue(scenario, speed, port, on_tick=progress.tick, venue=venue)
    async with served as venue:
        progress.venue = venue
        out.write(banner(venue))
        progress.start()
        await venue.finished.wait()
        progress.finish()
        out.write(summary(venue))
        out.flush()


class Progress:
    """Says what the market is doing while it plays: a line when a phase begins (each
    symbol's mark and its move since the start), and one per liquidation, at once."""

    def __init__(self, scenario: Scenario, out: TextIO) -> None:
        self.scenario = scenario
        self.out = out
        self.venue: SimulatedVenue | None = None
        self._phase_number = 0
        self._liquidations_seen: dict[str, int] = {}

    def start(self) -> None:
        """The first phase, at the start prices, before any tick."""
        self.out.write(f"\nPlaying {self.scenario.duration:g}s simulated:\n")
        self._phase(0.0, {s: spec.start for s, spec in self.scenario.symbols.items()})

    def finish(self) -> None:
        """Where every mark ended."""
        assert self.venue is not None
        marks = [self._mark(s, self.venue.exchange.mark(s)) for s in self.scenario.symbols]
        self.out.write(_wrap(f"{self.venue.elapsed:5.0f}s  end:", marks))

    def tick(self, tick: Tick) -> None:
        if self.scenario.phase_at(tick.time).number != self._phase_number:
            self._phase(tick.time, tick.marks)
        if self.venue is not None:
            self._report_liquidations(tick.time)
        self.out.flush()

    def _phase(self, at: float, marks: dict[str, float]) -> None:
        """The phase as the demo's status line names it (Scenario.phase_at), then marks."""
        phase = self.scenario.phase_at(at)
        self._phase_number = phase.number
        last = phase.number == phase.count
        until = f"to the end at {phase.end:g}s" if last else f"to {phase.end:g}s"
        head = f"{at:5.0f}s  phase {phase.number}/{phase.count}, {phase.summary} ({until}):"
        self.out.write(_wrap(head, [self._mark(symbol, price) for symbol, price in marks.items()]))

    def _mark(self, symbol: str, price: float) -> str:
        text = f"{symbol} {price:,.{MARKETS[symbol].price_precision}f}"
        change = price / self.scenario.symbols[symbol].start - 1.0
        return f"{text} ({change:+.1%})" if abs(change) >= 0.0005 else text

    def _report_liquidations(self, at: float) -> None:
        assert self.venue is not None
        for credentials in self.venue.credentials.values():
            account = self.venue.exchange.accounts[credentials.api_key]
            seen = self._liquidations_seen.get(credentials.name, 0)
            for order in account.orders[seen:]:
                if order.type == LIQUIDATION:
                    price = f"{order.avg_price:,.{MARKETS[order.symbol].price_precision}f}"
                    self.out.write(
                        f"{at:5.0f}s  {credentials.name}: LIQUIDATED {order.symbol} "
                        f"{order.executed_qty:g} at {price}\n"
                    )
            self._liquidations_seen[credentials.name] = len(account.orders)


def _wrap(head: str, items: list[str], width: int = 79) -> str:
    """`head` (wrapped at spaces if it must be) then the items, wrapped under it without
    splitting an item."""
    lines = textwrap.wrap(head, width, subsequent_indent=" " * 8) or [""]
    line = lines.pop()
    first = True
    for item in items:
        separator = " " if first else "  "
        first = False
        if len(line) + len(separator) + len(item) > width:
            lines.append(line)
            line = " " * 8 + item
        else:
            line += separator + item
    lines.append(line)
    return "\n".join(lines) + "\n"


def banner(venue: SimulatedVenue) -> str:
    lines = [
        f"Simulated {venue.dialect.label} on {venue.base_url}",
        f"  REST: {venue.base_url}",
        f"  WS:   {venue.ws_url}",
        f"  scenario: {venue.scenario.duration:g}s simulated at {venue.speed:g}x",
        *([f"  {venue.scenario.description}"] if venue.scenario.description else []),
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
                "exchange": venue.dialect.exchange_id,
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
