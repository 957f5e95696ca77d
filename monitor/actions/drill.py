"""`marginwatch drill`: rehearse the configured defense against a simulated crash.

The user's own thresholds and actions policy (of one configured account) are applied to
every account of a simulator scenario, and the scenario is played twice with the same
seed: once with actions as configured, once with actions off. A timeline of alerts,
actions and liquidations and the end state are printed side by side, so the policy's
effect (and its cost) is seen before it is trusted with money.

Nothing real is touched: the accounts are the simulator's, the state (journal, caches)
lives in a temporary directory, and no notifier runs (Telegram stays silent). In
`confirm` mode every confirmation is taken as given.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from monitor.actions.policy import CLIENT_ID_PREFIX, Decision
from monitor.config import AccountConfig, Config
from monitor.daemon.events import Event, EventKind
from monitor.daemon.service import Daemon
from monitor.formatting import fraction
from monitor.simulator.binance_usdm.accounting import account_assets, asset_summary
from monitor.simulator.binance_usdm.events import LIQUIDATION
from monitor.simulator.runner import SimulatedVenue
from monitor.simulator.scenario import Scenario

SHOWN = (EventKind.LEVEL, EventKind.ACTION, EventKind.PROBABLE_LIQUIDATION, EventKind.ERROR)
SETTLE_SECONDS = 3.0
"""After the last tick: one more read, so an end-of-scenario liquidation or action is
settled and reported."""


@dataclass(frozen=True, slots=True)
class Line:
    at: float
    """Simulated seconds since the scenario started."""
    text: str


@dataclass(frozen=True, slots=True)
class EndState:
    account: str
    equity: float
    positions: list[str]
    liquidated: list[str]
    our_orders: int


@dataclass(slots=True)
class Run:
    label: str
    lines: list[Line] = field(default_factory=list)
    end: list[EndState] = field(default_factory=list)


def policy_source(config: Config, account: str | None) -> AccountConfig:
    """The configured account whose thresholds and actions are rehearsed."""
    return config.account(account) if account else config.accounts[0]


def drill_config(
    source: AccountConfig, base: Config, venue: SimulatedVenue, state: Path, mode: str
) -> Config:
    """`source`'s thresholds and actions (mode replaced) on every simulated account."""
    actions = source.actions.model_dump(by_alias=True)
    actions["mode"] = mode
    accounts = [
        {"name": name, "exchange": "binanceusdm", "api_key": c.api_key, "secret": c.secret,
         "rest_url": venue.base_url, "ws_url": venue.ws_url}
        for name, c in venue.credentials.items()
    ]  # fmt: skip
    return Config.model_validate(
        {
            "state_dir": str(state),
            "daemon": base.daemon.model_dump(),
            "thresholds": source.thresholds.model_dump(),
            "actions": actions,
            "accounts": accounts,
        }
    )


async def _always(decisions: Sequence[Decision]) -> bool:
    return True


async def play(
    scenario: Scenario, speed: float, source: AccountConfig, base: Config, mode: str
) -> Run:
    """One pass of the scenario with actions in `mode`; the timeline and the end state."""
    run = Run(f"actions {mode}")
    events: list[Event] = []
    with tempfile.TemporaryDirectory(prefix="marginwatch-drill-") as state:
        async with SimulatedVenue(scenario, speed=speed) as venue:
            started = time.time()
            daemon = Daemon(drill_config(source, base, venue, Path(state), mode), events.append)
            for controller in daemon.controllers.values():
                controller.confirmer = _always
            await daemon.start()
            try:
                await venue.finished.wait()
                await asyncio.sleep(SETTLE_SECONDS)
            finally:
                await daemon.stop()
            for event in events:
                if event.kind in SHOWN:
                    text = f"{event.account}: {event.target}: {_describe(event)}"
                    run.lines.append(Line((event.time - started) * speed, text))
            for name, credentials in venue.credentials.items():
                account = venue.exchange.accounts[credentials.api_key]
                for order in account.orders:
                    if order.type == LIQUIDATION:
                        at = (order.time_ms / 1000 - started) * speed
                        text = f"{name}: LIQUIDATED {order.symbol} {order.orig_qty:g}"
                        run.lines.append(Line(at, text))
                run.end.append(_end_state(venue, name, account))
    run.lines.sort(key=lambda line: line.at)
    return run


def _describe(event: Event) -> str:
    if event.kind is EventKind.LEVEL:
        ratio = f" (ratio {fraction(event.margin_ratio)})" if event.margin_ratio is not None else ""
        return f"{event.previous_level or '-'} -> {event.level}{ratio}"
    return f"[{event.kind.value} {event.level or ''}] {event.message}"


def _end_state(venue: SimulatedVenue, name: str, account: Any) -> EndState:
    exchange = venue.exchange
    equity = sum(
        asset_summary(exchange, account, a).margin_balance
        for a in account_assets(exchange, account)
    )
    positions = [f"{p.symbol} {p.amount:+g}" for p in account.open_positions()]
    liquidated = sorted({o.symbol for o in account.orders if o.type == LIQUIDATION})
    ours = sum(1 for o in account.orders if o.client_order_id.startswith(CLIENT_ID_PREFIX))
    return EndState(name, equity, positions, liquidated, ours)


async def drill(
    config: Config,
    scenario: Scenario,
    speed: float,
    account: str | None = None,
    console: Console | None = None,
) -> int:
    """Play the scenario with actions as configured, then off; print both. Exit 0."""
    console = console or Console()
    source = policy_source(config, account)
    mode = source.actions.mode
    if mode == "off":
        console.print(f"[yellow]actions are off for {source.name!r}: rehearsing dry_run[/]")
        mode = "dry_run"
    console.print(
        f"[bold]marginwatch drill[/]: policy of {source.name!r} ({mode}) against "
        f"{scenario.description or 'the scenario'} at {speed:g}x, then with actions off"
    )
    runs = [await play(scenario, speed, source, config, m) for m in (mode, "off")]
    render(runs, console)
    return 0


def render(runs: list[Run], console: Console) -> None:
    timeline = Table(title="timeline (simulated seconds)", expand=True)
    timeline.add_column("t", justify="right", no_wrap=True)
    for run in runs:
        timeline.add_column(run.label, ratio=1)
    merged = sorted(
        ((line.at, i, line.text) for i, run in enumerate(runs) for line in run.lines),
        key=lambda item: (item[0], item[1]),
    )
    for at, column, text in merged:
        cells = [Text("") for _ in runs]
        cells[column] = Text(text)  # plain text: messages hold brackets, not markup
        timeline.add_row(f"{at:.1f}", *cells)
    console.print(timeline)
    end = Table(title="end state", expand=True)
    end.add_column("account")
    for run in runs:
        end.add_column(run.label, ratio=1)
    for i, state in enumerate(runs[0].end):
        cells = [
            Text(
                f"equity {s.equity:,.2f}\n"
                f"open: {', '.join(s.positions) or 'none'}\n"
                f"liquidated: {', '.join(s.liquidated) or 'none'}\n"
                f"our orders: {s.our_orders}"
            )
            for s in (run.end[i] for run in runs)
        ]
        end.add_row(Text(state.account), *cells)
    console.print(end)
