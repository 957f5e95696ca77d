"""A live terminal view of the running daemon: figures per target and the latest events.

Used by `marginwatch demo`; a person watching it should see at once which pool or
position is in danger, why (the figure and threshold that set its level), how far from
liquidation, and whether the monitor can see. A frame is cut to the terminal, never
by the terminal: a status line (clock, scenario phase), the targets worst first as one
line each, and an events pane that always keeps some lines, however many targets there
are. A position that closed or was liquidated keeps its row, saying so.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import replace

from rich.console import Console, Group, RenderableType
from rich.rule import Rule
from rich.table import Table
from rich.text import Text

from monitor.daemon.account import AccountState
from monitor.daemon.service import Daemon
from monitor.domain import MarginMode
from monitor.engine.levels import Level, LevelLimits, level_for
from monitor.events import Event, EventKind
from monitor.formatting import (
    NOT_APPLICABLE,
    SHORT_LEVEL,
    UNKNOWN,
    level_reason,
    price,
    short_symbol,
)
from monitor.render import (
    LEVEL_STYLES,
    WIDEST,
    Layout,
    Row,
    build_table,
    fit_layout,
    pool_row,
    position_row,
)

EVENT_STYLES = {
    EventKind.BLIND: "bold magenta",
    EventKind.RECOVERED: "green",
    EventKind.PROBABLE_LIQUIDATION: "bold white on red",
    EventKind.CLOSED_BY_US: "bold yellow",
    EventKind.ERROR: "bold red",
    EventKind.ACTION: "cyan",
}
ENDED_STYLES = {"liquidated": "bold white on red", "closed": "dim"}
MIN_EVENT_LINES = 5
"""The events pane keeps at least this many lines, whatever the number of targets."""
FIXED_LINES = 5
"""Status line, daemon summary, table header, caption, events rule."""
KEEP_EVENTS = 200
RATIO_CAPTION = "ratio 100% = liquidation; "
CAPTION = "distance = move to liquidation; levels are our thresholds"

Key = tuple[str, str]


def target_label(target: str) -> str:
    """ "BTC/USDT:USDT long cross" -> "BTC/USDT long"; pools and feeds as they are."""
    symbol, _, rest = target.partition(" ")
    if symbol in ("pool", "feed", "account") or not rest:
        return target
    return f"{short_symbol(symbol)} {rest.split()[0]}"


def clock(at: float) -> str:
    return time.strftime("%H:%M:%S", time.localtime(at))


def _caption(layout: Layout, width: int) -> Text:
    """One line: the ratio's meaning where a ratio is shown and there is room."""
    text = RATIO_CAPTION + CAPTION if "ratio" in layout.columns else CAPTION
    if len(text) > width:
        text = CAPTION
    caption = Text(text, style="dim")
    caption.truncate(width)
    return caption


def _note_as_reason(row: Row) -> Row:
    """No room for notes under a live table: a row whose level has no reason (unknown,
    or OK) gives its note in its place ("no price liquidates this position")."""
    return replace(row, reason=row.note) if row.note and not row.reason else row


class LiveView:
    """Remembers the daemon's recent events (it subscribes to its bus) and renders the
    daemon's state.

    `status` gives the caller's part of the status line (the demo's scenario phase)."""

    def __init__(
        self, daemon: Daemon, keep: int = KEEP_EVENTS, status: Callable[[], str] | None = None
    ) -> None:
        self.daemon = daemon
        self.status = status or (lambda: "")
        self.events: deque[tuple[float, Event]] = deque(maxlen=keep)
        self.counts: dict[str, int] = {}
        self._seen: dict[Key, Row] = {}
        self._ended: dict[Key, tuple[Row, float]] = {}
        self._liquidated: dict[Key, tuple[float, Event]] = {}
        daemon.bus.subscribe(Event, self.emit)

    def emit(self, event: Event) -> None:
        self.events.append((time.time(), event))
        level = event.level if event.kind is EventKind.LEVEL else None
        key = event.kind.value if level is None else level.value  # a word, as shown
        self.counts[key] = self.counts.get(key, 0) + 1
        if event.kind is EventKind.PROBABLE_LIQUIDATION and event.account:
            self._liquidated.setdefault((event.account, event.target), (time.time(), event))

    # --- rows --------------------------------------------------------------------

    def _level(
        self,
        monitor: AccountState,
        target: str,
        ratio: float | None,
        distance: float | None,
        limits: LevelLimits,
    ) -> Level:
        """The level the daemon reported (held by hysteresis); computed when not yet."""
        reported = self.daemon.tracker.last(monitor.name, target)
        return reported if reported is not None else level_for(ratio, distance, limits)

    def _rows_of(self, monitor: AccountState, account: str) -> list[tuple[Key, Row]]:
        risk = monitor.current()
        if risk is None:
            error = self.daemon.pollers[monitor.name].last_error
            waiting = Row(
                "not read yet", *[UNKNOWN] * 14, level=Level.UNKNOWN,
                level_text=SHORT_LEVEL[Level.UNKNOWN],
                reason=str(error) if error else "waiting for the first read",
                reason_compact=error.kind.value if error else "",
                rank=(Level.UNKNOWN.severity, 0.0),
                account=account,
            )  # fmt: skip
            return [((monitor.name, "(account)"), waiting)]
        thresholds = monitor.thresholds
        rows = []
        exchange_ratios = {p.asset: p.exchange_margin_ratio for p in risk.pools}
        unified = monitor.book.snapshot.unified_pool if monitor.book else None
        for pool in risk.pools:
            target = f"pool {pool.asset}"
            limits = thresholds.cross
            level = self._level(
                monitor, target, pool.margin_ratio, pool.liquidation_distance, limits
            )
            row = pool_row(pool, level, limits, account=account)
            rows.append(((monitor.name, target), _note_as_reason(row)))
        for target, item in monitor.latest_positions.items():
            isolated = item.position.margin_mode is MarginMode.ISOLATED
            limits = thresholds.isolated if isolated else thresholds.cross
            level = self._level(
                monitor, target, item.margin_ratio, item.liquidation_distance, limits
            )
            pool_ratio = exchange_ratios.get(unified or item.position.settle)
            row = position_row(item, level, limits, pool_exchange_ratio=pool_ratio, account=account)
            rows.append(((monitor.name, target), _note_as_reason(row)))
        return rows

    def _ended_row(self, key: Key, row: Row, at: float) -> Row:
        """The last figures of a position that is gone, and how it went: liquidated when
        the exchange or the daemon said so (the events pane has the details), else closed."""
        liquidated = self._liquidated.get(key)
        how = "liquidated" if liquidated else "closed"
        if liquidated and liquidated[1].mark_price is not None:  # the mark it went at
            row = replace(row, mark=price(liquidated[1].mark_price))
        return replace(
            row, dist=NOT_APPLICABLE, ratio=NOT_APPLICABLE, exch_ratio=NOT_APPLICABLE,
            level=how, level_text=how.upper(),
            reason=f"at {clock(liquidated[0] if liquidated else at)}",
            reason_compact="", rank=(-1, -at), note=None, style=ENDED_STYLES[how],
        )  # fmt: skip

    @staticmethod
    def _row_of_event(event: Event, several: bool) -> Row:
        """What a liquidation event says of a position the view never showed."""
        return Row(
            target_label(event.target), event.margin_mode or UNKNOWN, UNKNOWN, UNKNOWN,
            price(event.mark_price), price(event.liquidation_price),
            price(event.exchange_liquidation_price), *[NOT_APPLICABLE] * 8,
            level=Level.UNKNOWN, level_text=SHORT_LEVEL[Level.UNKNOWN], reason="",
            reason_compact="",
            rank=(-1, 0.0), account=(event.account or "") if several else "",
        )  # fmt: skip

    def rows(self) -> list[Row]:
        """Open targets worst first, then those that ended, latest first."""
        several = len(self.daemon.monitors) > 1
        now = time.time()
        current: dict[Key, Row] = {}
        for monitor in self.daemon.monitors:
            current.update(self._rows_of(monitor, monitor.name if several else ""))
        for key, row in self._seen.items():
            if key not in current and key not in self._ended and key[1] != "(account)":
                self._ended[key] = (row, now)
        for key, (at, event) in self._liquidated.items():
            if key not in current and key not in self._ended:  # gone before it was shown
                self._ended[key] = (self._row_of_event(event, several), at)
        for key in current:
            self._ended.pop(key, None)
        self._seen = current
        live = sorted(current.values(), key=lambda r: r.rank, reverse=True)
        ended = [self._ended_row(key, row, at) for key, (row, at) in self._ended.items()]
        return live + sorted(ended, key=lambda r: r.rank, reverse=True)

    # --- events ------------------------------------------------------------------

    def _limits(self, event: Event) -> LevelLimits | None:
        monitor = next((m for m in self.daemon.monitors if m.name == event.account), None)
        if monitor is None:
            return None
        thresholds = monitor.thresholds
        return thresholds.isolated if event.margin_mode == "isolated" else thresholds.cross

    def event_line(self, event: Event) -> Text:
        """One event in a line of its own words: what, which target, and why."""
        who = target_label(event.target)
        if event.account and len(self.daemon.monitors) > 1:
            who = f"{event.account} {who}"
        if event.kind is EventKind.LEVEL:
            held = event.level or Level.UNKNOWN
            level = SHORT_LEVEL[held]
            was = "new" if event.previous_level is None else SHORT_LEVEL[event.previous_level]
            limits = self._limits(event)
            why = (
                level_reason(held, event.margin_ratio, event.liquidation_distance, limits)
                if limits is not None
                else ""
            )
            text = f"{level:<4} {who} ({was}→{level})" + (f" {why}" if why else "")
            if event.message:
                text += f": {event.message}"
            style = LEVEL_STYLES[held]
        else:
            kind = {EventKind.PROBABLE_LIQUIDATION: "LIQUIDATED"}.get(
                event.kind, event.kind.value.upper()
            )
            text = f"{kind} {who}" + (f": {event.message}" if event.message else "")
            style = EVENT_STYLES.get(event.kind, "")
        return Text(text, style=style)

    # --- the frame -----------------------------------------------------------------

    def _status_line(self, width: int) -> Text:
        line = Text(clock(time.time()), style="bold")
        extra = self.status()
        if extra:
            line.append(f"  {extra}")
        line.truncate(width)
        return line

    def _events(self, console: Console, width: int, lines: int) -> Table:
        """The newest events that fit `lines`: an event wraps at spaces under its own
        text (never mid-figure), its time alone in the first column. The newest
        liquidation is kept on screen first, however much was said after it: at 80x24 a
        burst of actions would otherwise push it out of the pane within a second."""
        grid = Table.grid(padding=(0, 1))
        grid.add_column(no_wrap=True, style="dim")
        grid.add_column()
        entries = list(self.events)
        liquidations = [
            i
            for i, (_, event) in enumerate(entries)
            if event.kind is EventKind.PROBABLE_LIQUIDATION
        ]
        pinned = liquidations[-1:]
        newest_first = [i for i in reversed(range(len(entries))) if i not in pinned]
        kept: dict[int, Text] = {}
        used = 0
        for i in pinned + newest_first:
            at, event = entries[i]
            text = self.event_line(event)
            height = len(text.wrap(console, width - len(clock(at)) - 1, overflow="fold"))
            if used + height > lines:
                if i in pinned:
                    continue
                break
            kept[i] = text
            used += height
        for i in sorted(kept):
            grid.add_row(clock(entries[i][0]), kept[i])
        if not kept:
            grid.add_row("", Text("no events yet", style="dim"))
        return grid

    def render(
        self, console: Console, width: int | None = None, height: int | None = None
    ) -> Group:
        """One frame of exactly the terminal's size (or `width` x `height`)."""
        width = width or console.width
        height = height or console.height
        rows = self.rows()
        first = Layout(("account", *WIDEST[1:]) if len(self.daemon.monitors) > 1 else WIDEST[1:])
        room = max(1, height - FIXED_LINES - MIN_EVENT_LINES)
        shown = rows if len(rows) <= room else rows[: room - 1]
        hidden = len(rows) - len(shown)

        def tables(layout: Layout) -> Sequence[Table]:
            return [build_table(shown, layout)]

        layout = fit_layout(console, width, tables, first)
        table = build_table(shown, layout)
        summary = Text(self.daemon.summary())
        summary.truncate(width)
        parts: list[RenderableType] = [self._status_line(width), summary]
        parts.append(table)
        if hidden:
            worst = rows[len(shown)]
            parts.append(Text(f"+{hidden} more, the worst of them {worst.level_text}", style="dim"))
        parts.append(_caption(layout, width))
        parts.append(Rule("events", align="left", style="dim"))
        used = FIXED_LINES + len(shown) + bool(hidden)
        parts.append(self._events(console, width, max(MIN_EVENT_LINES, height - used)))
        return Group(*parts)
