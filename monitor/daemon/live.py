"""A live terminal view of the running daemon: figures per target and the latest events.

Used by `marginwatch demo`; a person watching it should see at once which pool or
position is in danger, how far from liquidation, and whether the monitor can see.
"""

from __future__ import annotations

import time
from collections import deque

from rich.console import Group
from rich.table import Table
from rich.text import Text

from monitor.daemon.events import Event, EventKind
from monitor.daemon.service import Daemon
from monitor.daemon.sinks import describe
from monitor.formatting import pct, price
from monitor.render import LEVEL_STYLES

EVENT_STYLES = {
    EventKind.BLIND: "bold magenta",
    EventKind.RECOVERED: "green",
    EventKind.PROBABLE_LIQUIDATION: "bold white on red",
    EventKind.CLOSED_BY_US: "bold yellow",
    EventKind.ERROR: "bold red",
}


class LiveView:
    """An event sink that remembers recent events and renders the daemon's state."""

    def __init__(self, daemon: Daemon, keep: int = 12) -> None:
        self.daemon = daemon
        self.events: deque[tuple[float, Event]] = deque(maxlen=keep)
        self.counts: dict[str, int] = {}

    def emit(self, event: Event) -> None:
        self.events.append((time.time(), event))
        key = event.level if event.kind is EventKind.LEVEL and event.level else event.kind.value
        self.counts[key] = self.counts.get(key, 0) + 1

    def _level(self, account: str, target: str) -> Text:
        level = self.daemon.tracker.last(account, target) or "ok"
        return Text(level.upper(), style=LEVEL_STYLES.get(level, ""))

    def figures(self) -> Table:
        table = Table(title=self.daemon.summary(), title_justify="left", expand=False)
        for column in ("account", "target", "mark", "margin ratio", "liq. price (ours)",
                       "liq. price (exch.)", "distance", "level"):  # fmt: skip
            table.add_column(column)
        for monitor in self.daemon.monitors:
            risk = monitor.current()
            if risk is None:
                table.add_row(monitor.name, "(waiting for first read)", *[""] * 5, Text("UNKNOWN"))
                continue
            for pool in risk.pools:
                target = f"pool {pool.asset}"
                table.add_row(
                    monitor.name, target, "", pct(pool.margin_ratio), "", "",
                    pct(pool.liquidation_distance), self._level(monitor.name, target),
                )  # fmt: skip
            for key, item in monitor.latest_positions.items():
                table.add_row(
                    monitor.name, key, price(item.mark_price), pct(item.margin_ratio),
                    price(item.liquidation_price),
                    price(item.position.exchange_liquidation_price),
                    pct(item.liquidation_distance), self._level(monitor.name, key),
                )  # fmt: skip
        return table

    def render(self) -> Group:
        lines = [
            Text(f"{time.strftime('%H:%M:%S', time.localtime(at))}  {describe(event)}",
                 style=EVENT_STYLES.get(event.kind, LEVEL_STYLES.get(event.level or "", "")))
            for at, event in self.events
        ]  # fmt: skip
        caption = Text(
            "margin ratio = maintenance margin / margin balance; 100% = liquidation. "
            "Levels are our thresholds, not the exchange's liquidation.",
            style="dim",
        )
        return Group(self.figures(), caption, Text("events:", style="bold"), *lines)
