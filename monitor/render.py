"""The human view of a status report: one rich table per account.

Ours and the exchange's figures stand side by side; a figure nobody could compute
reads "unknown", never blank, and our thresholds are labelled levels, not liquidation.
"""

from __future__ import annotations

from collections.abc import Sequence

from rich.console import Console
from rich.table import Table
from rich.text import Text

from monitor.engine.levels import Level
from monitor.formatting import money, pct, price
from monitor.report import Assessed, level_name

LEVEL_STYLES = {
    "ok": "green",
    "warn": "yellow",
    "critical": "bold red",
    "imminent": "bold white on red",
    "unknown": "magenta",
}


def _level(level: Level | None) -> Text:
    name = level_name(level)
    return Text(name.upper(), style=LEVEL_STYLES[name])


def account_table(assessed: Assessed) -> Table:
    result = assessed.result
    risk = result.risk
    title = f"{result.account.name} · {result.account.exchange}"
    if risk is not None:
        title += f" · model {risk.model} ({'exact' if risk.exact else 'generic, approximate'})"
    table = Table(title=title, title_justify="left", expand=False)
    for column in (
        "target", "mode", "size", "mark", "margin ratio", "exch. ratio",
        "liq. price", "exch. liq.", "distance", "level", "note",
    ):  # fmt: skip
        table.add_column(column, overflow="fold")
    if risk is None:
        table.add_row("(account)", "", "", "", "", "", "", "", "", _level(None), str(result.error))
        return table
    for pool, level in zip(risk.pools, assessed.pool_levels, strict=True):
        table.add_row(
            f"pool {pool.asset}", "cross", "", "", pct(pool.margin_ratio),
            pct(pool.exchange_margin_ratio), "", "", pct(pool.liquidation_distance),
            _level(level), pool.note or "",
        )  # fmt: skip
    for item, level in zip(risk.positions, assessed.position_levels, strict=True):
        p = item.position
        table.add_row(
            f"{p.symbol} {p.side.value}", p.margin_mode.value, f"{p.contracts:g}",
            price(item.mark_price), pct(item.margin_ratio), "",
            price(item.liquidation_price), price(p.exchange_liquidation_price),
            pct(item.liquidation_distance), _level(level), item.note or "",
        )  # fmt: skip
    return table


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
        title=f"{assessed.result.account.name}: maintenance margin and the fees kept apart",
        title_justify="left",
        caption="margin ratio = (maintenance margin + liq. fees) / margin balance",
        caption_justify="left",
    )
    for column in ("target", "maint. margin", "liq. fees", "exch. maint."):
        table.add_column(column, overflow="fold", justify="left" if column == "target" else "right")
    for target, mm, fees, exchange_mm in rows:
        table.add_row(
            target, money(mm), money(fees), money(exchange_mm) if exchange_mm is not None else ""
        )
    return table


def print_status(assessed: Sequence[Assessed], console: Console | None = None) -> None:
    console = console or Console()
    for item in assessed:
        console.print(account_table(item))
        fees = fees_table(item)
        if fees is not None:
            console.print(fees)
    console.print(
        "margin ratio = maintenance margin / margin balance; 100% = liquidation. "
        "Levels are our thresholds, not the exchange's liquidation.",
        style="dim",
    )
