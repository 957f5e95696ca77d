"""`marginwatch stress` as a person reads it: at 80 columns, no number split.

Per account: the shocks on the book as held (who goes, in order, at what BTC move; the
loss; the worst pool's ratio and distance after the move), the same shocks on the book
as all cross and as all isolated, the smallest changes that survive the chosen shock,
and the next funding payment. Names wrap at spaces; figures never wrap.
"""

from __future__ import annotations

from collections.abc import Sequence

from rich import box
from rich.console import Console, RenderableType
from rich.table import Table
from rich.text import Text

from monitor.formatting import SHORT_LEVEL, money, pct, short_symbol
from monitor.stress.play import Outcome
from monitor.stress.report import AccountStress
from monitor.stress.shocks import WORST_DAYS

NONE = "—"


def _names(symbols: Sequence[str]) -> str:
    return " ".join(short_symbol(s) for s in symbols)


def goes(outcome: Outcome) -> str:
    """One line per liquidation: BTC's move then (first, so it is never wrapped away from
    its line) and the positions that go together."""
    lines = [f"{pct(item.move)} {_names(item.target.symbols)}" for item in outcome.liquidations]
    if outcome.peak is not None:
        move, pool = outcome.peak
        lines.append(f"{pct(move)} peak {pct(pool.ratio)}")
    return "\n".join(lines) or NONE


def loss(outcome: Outcome) -> str:
    if len(outcome.losses) <= 1:
        return money(next(iter(outcome.losses.values()), 0.0))
    return "\n".join(f"{money(v)} {k}" for k, v in sorted(outcome.losses.items()))


def _table(*headers: tuple[str, str]) -> Table:
    table = Table(box=box.SIMPLE_HEAD, padding=(0, 1), show_edge=False, pad_edge=False)
    for header, justify in headers:
        numeric = justify == "right"
        table.add_column(header, justify=justify, no_wrap=numeric, overflow="fold")  # type: ignore[arg-type]
    return table


def held_table(report: AccountStress) -> Table:
    table = _table(
        ("shock", "left"), ("BTC", "right"), ("at BTC move: goes", "left"),
        ("loss", "right"), ("pool\nratio", "right"), ("pool\ndist.", "right"),
    )  # fmt: skip
    for row in report.rows:
        held = row.held
        pool = held.pool
        table.add_row(
            held.shock.name, pct(held.shock.move), goes(held), loss(held),
            _pool_ratio(held), pct(pool.distance) if pool else NONE,
        )  # fmt: skip
    return table


def _pool_ratio(outcome: Outcome) -> str:
    if outcome.pool is None:
        return NONE
    if any(item.target.is_pool for item in outcome.liquidations):
        return "gone"
    return pct(outcome.pool.ratio)


def modes_table(report: AccountStress) -> Table:
    table = _table(
        ("shock", "left"), ("as held\nloss", "right"), ("all cross\ngoes", "left"),
        ("loss", "right"), ("all isolated\ngoes", "left"), ("loss", "right"),
    )  # fmt: skip
    for row in report.rows:
        table.add_row(
            row.held.shock.name, loss(row.held),
            _names(row.as_cross.liquidated) or NONE, loss(row.as_cross),
            _names(row.as_isolated.liquidated) or NONE, loss(row.as_isolated),
        )  # fmt: skip
    return table


def remedy_lines(report: AccountStress) -> list[str]:
    if report.survive is None:
        return []
    if not report.remedies:
        return [f"Survives {report.survive} as it is."]
    out = [f"To survive {report.survive}, for each that goes, any one of:"]
    for r in report.remedies:
        name = short_symbol(r.target)
        ways = [f"add {money(r.add_margin)} of margin"]
        if r.isolate is not None:
            ways.append(
                f"move {short_symbol(r.isolate)} to isolated (loss then {money(r.isolate_loss)})"
            )
        ways.append(f"cut its positions by {pct(1 - r.keep)}" if r.keep > 0 else "close it")
        out.append(f"  {name}: {ways[0]}")
        out += [f"  {' ' * len(name)}  or {way}" for way in ways[1:]]
    return out


def funding_lines(report: AccountStress) -> list[tuple[str, str]]:
    """(line, style): a payment that alone crosses a level is a warning."""
    if not report.funding:
        return []
    out = [("Next funding at the current rates (paid from the pool or isolated margin):", "")]
    for e in report.funding:
        verb = "pays" if e.pays >= 0 else "receives"
        line = (
            f"  {short_symbol(e.target)} {verb} {money(abs(e.pays))}: ratio "
            f"{pct(e.ratio_before)} → {pct(e.ratio_after)}, distance "
            f"{pct(e.distance_before)} → {pct(e.distance_after)}"
        )
        out.append((line, ""))
        if e.crosses_level:
            levels = f"{SHORT_LEVEL[e.level_before]} to {SHORT_LEVEL[e.level_after]}"
            out.append((f"    ⚠ this payment alone takes it from {levels}", "bold red"))
    return out


def account_lines(report: AccountStress, title: str) -> list[RenderableType]:
    out: list[RenderableType] = [Text(title, style="bold"), held_table(report), Text()]
    out += [
        Text("The same book as all cross, and as all isolated", style="bold"),
        modes_table(report),
    ]
    out += [Text()] + [Text(line) for line in remedy_lines(report)]
    out += [Text(line, style=style) for line, style in funding_lines(report)]
    out += [Text(f"note: {n}", style="dim") for n in report.notes]
    return out


def worst_days_text() -> str:
    return "\n".join(f"  {d.day}  {d.what} (source: {d.source})" for d in WORST_DAYS)


def print_stress(
    reports: Sequence[tuple[AccountStress | None, str]], console: Console | None = None
) -> None:
    """(report, title) per account; a failed account has no report and its title says why."""
    console = console or Console()
    for i, (report, title) in enumerate(reports):
        if i:
            console.print()
        if report is None:
            console.print(Text(title, style="bold red"))
            continue
        for renderable in account_lines(report, title):
            console.print(renderable)
    if all(report is None for report, _ in reports):
        return
    console.print(
        Text("Liquidation takes all of a pool's or position's margin balance; fees and "
             "slippage of the exchange's close are not modelled.", style="dim")
    )  # fmt: skip
