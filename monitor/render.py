"""The human view of a status report, and the table machinery the live view shares.

Ours and the exchange's figures stand side by side; a figure nobody could compute reads
"unknown" (its reason as a numbered note under the table), never blank; our thresholds
are labelled levels, with the figure and threshold that set each one, not liquidation.

The table fits the terminal instead of folding: a figure is never split across lines.
It starts with every column and gives up the least important ones (then shorter cell
variants) until it fits: 80 columns show target, size, mark, liquidation price, distance
and level; 140 add the ratios, the exchange's liquidation price and the margin mode;
about 200 show every figure, ours beside the exchange's. The first line is a
monitoring-plugin summary, so `status | head -1` (or a Nagios-style check) reads the
verdict.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Literal

from rich.console import Console, RenderableType
from rich.measure import Measurement
from rich.table import Table
from rich.text import Text

from monitor.config import Thresholds
from monitor.domain import MarginMode
from monitor.engine.book import UNREACHABLE
from monitor.engine.levels import Level, LevelLimits
from monitor.engine.results import PoolRisk, PositionRisk
from monitor.formatting import (
    NOT_APPLICABLE,
    SHORT_LEVEL,
    level_reason,
    money,
    pct,
    price,
    short_symbol,
    size,
)
from monitor.report import (
    EXIT_CRITICAL,
    EXIT_OK,
    EXIT_UNKNOWN,
    EXIT_WARN,
    Assessed,
    exit_status,
    unbounded_note,
)

LEVEL_STYLES = {
    Level.OK: "green",
    Level.WARN: "yellow",
    Level.UNKNOWN: "magenta",
    Level.CRITICAL: "bold red",
    Level.IMMINENT: "bold white on red",
}
PLUGIN_STATES = {EXIT_OK: "OK", EXIT_WARN: "WARNING", EXIT_CRITICAL: "CRITICAL",
                 EXIT_UNKNOWN: "UNKNOWN"}  # fmt: skip
RATIO_CAPTION = "ratio = maintenance margin / margin balance, 100% = liquidation. "
CAPTION = (
    "distance = the move of the mark (of every price, for a pool) that liquidates; "
    "levels are our thresholds, not the exchange's liquidation."
)


NO_PRICE = "none"
"""The liquidation price of a position no price can liquidate (not an unknown one)."""

Justify = Literal["left", "right"]


@dataclass(frozen=True, slots=True)
class Row:
    """One target as a screen shows it: every cell already a string."""

    target: str
    mode: str
    size: str
    size_short: str
    mark: str
    liq: str
    exch_liq: str
    dist: str
    ratio: str
    exch_ratio: str
    equity: str
    maint: str
    exch_maint: str
    upnl: str
    exch_upnl: str
    level: Level | str
    """The level (a LEVEL_STYLES key), or what ended a closed row ("closed")."""
    level_text: str
    reason: str
    reason_compact: str
    rank: tuple[int, float]
    """Sort key, higher is worse: severity, then nearness to liquidation."""
    note: str | None = None
    account: str = ""
    style: str = ""
    footnote: int | None = None


def _rank(level: Level, distance: float | None, note: str | None) -> tuple[int, float]:
    """Worst first: by severity (unknown outranks warn: a monitor that cannot see is not
    calmer), then an unknown distance as the nearest (not seeing is not safe), a proven
    unreachable one as the farthest."""
    if distance is None:
        distance = math.inf if note == UNREACHABLE else 0.0
    return level.severity, -distance


def _distance(distance: float | None, note: str | None) -> str:
    """Unknown, unless the engine proved that no price liquidates: then no move does (∞)."""
    return "∞" if distance is None and note == UNREACHABLE else pct(distance)


def _level_cells(
    level: Level, ratio: float | None, distance: float | None, limits: LevelLimits
) -> dict[str, str]:
    return {
        "level": level,
        "level_text": SHORT_LEVEL[level],
        "reason": level_reason(level, ratio, distance, limits),
        "reason_compact": level_reason(level, ratio, distance, limits, compact=True),
    }


def pool_row(pool: PoolRisk, level: Level, limits: LevelLimits, *, account: str = "") -> Row:
    """A cross pool: no single mark or liquidation price (its distance is the uniform move
    of every price in it), so those read "—"."""
    return Row(
        target=f"pool {pool.asset}", mode="cross", size=NOT_APPLICABLE,
        size_short=NOT_APPLICABLE, mark=NOT_APPLICABLE, liq=NOT_APPLICABLE,
        exch_liq=NOT_APPLICABLE, dist=_distance(pool.liquidation_distance, pool.note),
        ratio=pct(pool.margin_ratio), exch_ratio=pct(pool.exchange_margin_ratio),
        equity=f"{money(pool.margin_balance)} {pool.asset}",
        maint=money(pool.maintenance_margin), exch_maint=NOT_APPLICABLE,
        upnl=money(pool.unrealized_pnl), exch_upnl=NOT_APPLICABLE,
        rank=_rank(level, pool.liquidation_distance, pool.note),
        note=pool.note or unbounded_note(pool.margin_ratio), account=account,
        **_level_cells(level, pool.margin_ratio, pool.liquidation_distance, limits),
    )  # fmt: skip


def position_row(
    item: PositionRisk,
    level: Level,
    limits: LevelLimits,
    *,
    pool_exchange_ratio: float | None = None,
    account: str = "",
) -> Row:
    """`pool_exchange_ratio`: for a cross position the exchange's ratio is its pool's
    (as ours is), when the exchange gives none for the position itself."""
    p = item.position
    exchange_ratio = p.exchange_margin_ratio
    if exchange_ratio is None and p.margin_mode is MarginMode.CROSS:
        exchange_ratio = pool_exchange_ratio
    short = f"{short_symbol(p.symbol)} {p.side.value}"
    return Row(
        target=short, mode=p.margin_mode.value, size=size(p),
        size_short=size(p, contracts=False),
        mark=price(item.mark_price),
        liq=NO_PRICE if item.note == UNREACHABLE else price(item.liquidation_price),
        exch_liq=price(p.exchange_liquidation_price),
        dist=_distance(item.liquidation_distance, item.note),
        ratio=pct(item.margin_ratio), exch_ratio=pct(exchange_ratio),
        equity=NOT_APPLICABLE, maint=money(item.maintenance_margin),
        exch_maint=money(p.exchange_maintenance_margin), upnl=money(item.unrealized_pnl),
        exch_upnl=money(p.exchange_unrealized_pnl),
        rank=_rank(level, item.liquidation_distance, item.note),
        note=item.note or unbounded_note(item.margin_ratio), account=account,
        **_level_cells(level, item.margin_ratio, item.liquidation_distance, limits),
    )  # fmt: skip


# --- fitting a table to the width ------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Column:
    key: str
    header: str
    justify: Justify = "right"


COLUMNS = {
    c.key: c
    for c in (
        Column("account", "account", "left"),
        Column("target", "target", "left"),
        Column("mode", "mode", "left"),
        Column("size", "size"),
        Column("mark", "mark"),
        Column("liq", "liq. price"),
        Column("exch_liq", "exch. liq."),
        Column("dist", "distance"),
        Column("ratio", "ratio"),
        Column("exch_ratio", "exch. ratio"),
        Column("equity", "equity"),
        Column("maint", "maint."),
        Column("exch_maint", "exch. maint."),
        Column("upnl", "uPnL"),
        Column("exch_upnl", "exch. uPnL"),
        Column("level", "level", "left"),
    )
}
WIDEST = tuple(COLUMNS)


@dataclass(frozen=True, slots=True)
class Layout:
    """Which columns, and how much the level and size cells say."""

    columns: tuple[str, ...]
    reason: Literal["full", "compact", "none"] = "full"
    contracts: bool = True
    """Whether sizes carry the contract count beside the base amount."""

    def without(self, *keys: str) -> Layout:
        return replace(self, columns=tuple(k for k in self.columns if k not in keys))


Step = Callable[[Layout], Layout]
STEPS: tuple[Step, ...] = (
    lambda lay: lay.without("exch_upnl", "upnl"),
    lambda lay: lay.without("exch_maint", "maint"),
    lambda lay: lay.without("equity"),
    lambda lay: replace(lay, reason="compact"),
    lambda lay: lay.without("exch_ratio"),
    lambda lay: lay.without("mode"),
    lambda lay: replace(lay, contracts=False),
    lambda lay: lay.without("exch_liq"),
    lambda lay: lay.without("ratio"),
    lambda lay: lay.without("size"),
    lambda lay: replace(lay, reason="none"),
    lambda lay: lay.without("mark"),
)
"""Given up in this order, least important first, until the table fits."""


def layouts(first: Layout) -> Iterable[Layout]:
    layout = first
    yield layout
    for step in STEPS:
        layout = step(layout)
        yield layout


def _level_cell(row: Row, layout: Layout) -> Text:
    reason = {"full": row.reason, "compact": row.reason_compact, "none": ""}[layout.reason]
    text = Text(row.level_text, style=LEVEL_STYLES.get(row.level, row.style))
    if reason:
        text.append((": " if layout.reason == "full" else " ") + reason)
    if row.footnote is not None:
        text.append(f" [{row.footnote}]")
    return text


def _cell(row: Row, key: str, layout: Layout) -> Text | str:
    if key == "level":
        return _level_cell(row, layout)
    if key == "size" and not layout.contracts:
        return row.size_short
    return getattr(row, key)


def build_table(rows: Sequence[Row], layout: Layout) -> Table:
    table = Table(box=None, pad_edge=False, padding=(0, 1), header_style="bold")
    for key in layout.columns:
        column = COLUMNS[key]
        table.add_column(column.header, justify=column.justify, no_wrap=True)
    for row in rows:
        table.add_row(*(_cell(row, key, layout) for key in layout.columns), style=row.style)
    return table


def caption(layout: Layout) -> Text:
    """What the figures mean; the ratio's definition only where a ratio is shown."""
    return Text((RATIO_CAPTION if "ratio" in layout.columns else "") + CAPTION, style="dim")


def fit_layout(
    console: Console, width: int, tables: Callable[[Layout], Sequence[Table]], first: Layout
) -> Layout:
    """The first layout (widest first) whose every table fits `width` unwrapped; the
    narrowest when none does (then the terminal, not we, decides)."""
    options = console.options.update_width(10_000)
    chosen = first
    for layout in layouts(first):
        chosen = layout
        widest = max(
            (Measurement.get(console, options, t).maximum for t in tables(layout)), default=0
        )
        if widest <= width:
            break
    return chosen


def number_notes(rows: Sequence[Row]) -> tuple[list[Row], list[str]]:
    """Each distinct note gets a number shown beside its rows' level: the reason an
    unknown is unknown, in one line under the table rather than a column of blanks."""
    notes: list[str] = []
    numbered = []
    for row in rows:
        if row.note:
            if row.note not in notes:
                notes.append(row.note)
            row = replace(row, footnote=notes.index(row.note) + 1)
        numbered.append(row)
    return numbered, notes


# --- the status report --------------------------------------------------------------


def _pool_exchange_ratios(assessed: Assessed) -> Callable[[PositionRisk], float | None]:
    result = assessed.result
    assert result.risk is not None
    by_asset = {p.asset: p.exchange_margin_ratio for p in result.risk.pools}
    unified = result.snapshot.unified_pool if result.snapshot else None
    return lambda item: by_asset.get(unified or item.position.settle)


def account_rows(assessed: Assessed) -> list[Row]:
    """Every pool and position of one account, worst first."""
    risk, thresholds = assessed.result.risk, assessed.thresholds or Thresholds()
    if risk is None:
        return []
    pool_ratio = _pool_exchange_ratios(assessed)
    rows = [
        pool_row(pool, level, thresholds.cross)
        for pool, level in zip(risk.pools, assessed.pool_levels, strict=True)
    ]
    for item, level in zip(risk.positions, assessed.position_levels, strict=True):
        isolated = item.position.margin_mode is MarginMode.ISOLATED
        limits = thresholds.isolated if isolated else thresholds.cross
        rows.append(position_row(item, level, limits, pool_exchange_ratio=pool_ratio(item)))
    return sorted(rows, key=lambda r: r.rank, reverse=True)


def account_title(assessed: Assessed) -> str:
    result = assessed.result
    title = f"{result.account.name} · {result.account.exchange}"
    if result.risk is not None:
        exact = "exact" if result.risk.exact else "generic, approximate"
        title += f" · model {result.risk.model} ({exact})"
    return title


def error_line(assessed: Assessed) -> Text:
    """A failed account in one line: who, UNKNOWN, and the exchange's own words (without
    the exchange id ccxt repeats in front of them)."""
    result = assessed.result
    error = result.error
    message = error.message if error is not None else "not read"
    message = message.removeprefix(f"{result.account.exchange} ")
    kind = f"{error.kind.value}: " if error is not None else ""
    line = Text(f"{result.account.name} · {result.account.exchange} · ")
    line.append(SHORT_LEVEL[Level.UNKNOWN], style=LEVEL_STYLES[Level.UNKNOWN])
    line.append(f" · {kind}{message}")
    return line


def summary_line(assessed: Sequence[Assessed]) -> str:
    """`MARGINWATCH CRITICAL - 3 accounts; worst: binance-main pool USDT CRIT distance
    4.10% ≤ 5%`: the monitoring-plugin convention, state word matching the exit status."""
    state = PLUGIN_STATES[exit_status(assessed)]
    count = len(assessed)
    parts = [f"MARGINWATCH {state} - {count} account{'s' if count != 1 else ''}"]
    worst: tuple[tuple[int, float], str] | None = None
    unknown = 0
    for item in assessed:
        for row in account_rows(item):
            unknown += row.level is Level.UNKNOWN
            if worst is None or row.rank > worst[0]:
                why = f" {row.reason or f'distance {row.dist}'}"
                worst = (row.rank, f"{item.result.account.name} {row.target} {row.level_text}{why}")
    if worst is not None:
        parts.append(f"worst: {worst[1]}")
    failed = [a.result.account.name for a in assessed if a.result.error is not None]
    if failed:
        parts.append(f"unreadable: {', '.join(failed)}")
    if unknown:
        parts.append(f"{unknown} target{'s' if unknown != 1 else ''} unknown")
    return "; ".join(parts)


def status_lines(
    assessed: Sequence[Assessed], console: Console
) -> list[tuple[RenderableType, bool]]:
    """The summary, one table per readable account (all in one layout, so columns mean
    the same everywhere), one line per failed account, the notes and the caption; each
    with whether it is one line that must not be wrapped (the terminal may, we do not:
    a monitoring plugin reads the first line, grep reads an error's)."""
    readable = [a for a in assessed if a.result.risk is not None]
    rows_of = {id(a): number_notes(account_rows(a)) for a in readable}

    def tables(layout: Layout) -> list[Table]:
        return [build_table(rows_of[id(a)][0], layout) for a in readable]

    layout = fit_layout(console, console.width, tables, Layout(WIDEST[1:]))
    out: list[tuple[RenderableType, bool]] = [(Text(summary_line(assessed)), True)]
    for item in assessed:
        out.append((Text(), False))
        if item.result.risk is None:
            out.append((error_line(item), True))
            continue
        rows, notes = rows_of[id(item)]
        out.append((Text(account_title(item), style="bold"), False))
        out.append((build_table(rows, layout) if rows else Text("no pools or positions"), False))
        out += [(Text(f"[{n}] {note}", style="dim"), False) for n, note in enumerate(notes, 1)]
        if (fees := fees_table(item)) is not None:
            out.append((fees, False))
    out += [(Text(), False), (caption(layout), False)]
    return out


def fees_table(assessed: Assessed) -> Table | None:
    """Where the exchange keeps liquidation fees apart from its maintenance margin (OKX):
    its MM as it defines it (comparable with its app) and the fees, which our ratio adds.
    None for an account where nothing is kept apart."""
    risk = assessed.result.risk
    if risk is None:
        return None
    rows = [(f"pool {p.asset}", p.maintenance_margin, p.liquidation_fees, None) for p in risk.pools]
    rows += [
        (
            f"{p.position.symbol} {p.position.side.value}",
            p.maintenance_margin,
            p.liquidation_fees,
            p.position.exchange_maintenance_margin,
        )
        for p in risk.positions
    ]
    if not any(fees for _, _, fees, _ in rows):
        return None
    table = Table(
        title="maintenance margin and the fees kept apart",
        title_justify="left",
        caption="margin ratio = (maintenance margin + liq. fees) / margin balance",
        caption_justify="left",
    )
    table.add_column("target", no_wrap=True)
    for column in ("maint. margin", "liq. fees", "exch. maint."):
        table.add_column(column, justify="right", no_wrap=True)
    for target, mm, fees, exchange_mm in rows:
        exchange = money(exchange_mm) if exchange_mm is not None else NOT_APPLICABLE
        table.add_row(target, money(mm), money(fees), exchange)
    return table


def print_status(assessed: Sequence[Assessed], console: Console | None = None) -> None:
    """Piped, the summary and error lines stay one line each (for grep and plugins); on a
    terminal they wrap at word boundaries, since the terminal would cut mid-figure."""
    console = console or Console()
    for renderable, one_line in status_lines(assessed, console):
        console.print(renderable, soft_wrap=one_line and not console.is_terminal)
