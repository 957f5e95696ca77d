"""`/stress [account]`: the uniform shocks on the live book, as held, all cross and all
isolated, and the ratio-against-move chart.

The book is the daemon's latest snapshot priced at its latest marks; nothing is read
from or sent to the exchange. Beta, sigma and replayed-day shocks need the venue's
candles: `marginwatch stress` on the command line has them.
"""

from __future__ import annotations

from monitor.domain import AccountSnapshot
from monitor.engine.book import AccountBook
from monitor.formatting import money, pct, short_symbol
from monitor.stress.curve import Curve, ratio_curves
from monitor.stress.play import Outcome
from monitor.stress.report import DEFAULT_SURVIVE, AccountStress, stress_account
from monitor.stress.shocks import UNIFORM_MOVES, uniform


def stress_now(snapshot: AccountSnapshot) -> tuple[AccountStress, dict[str, Curve]]:
    """The report and the chart's curves: pure arithmetic, for a worker thread."""
    symbols = sorted({p.symbol for p in snapshot.positions})
    shocks = [uniform(symbols, move) for move in UNIFORM_MOVES]
    report = stress_account(snapshot, shocks, survive=DEFAULT_SURVIVE)
    return report, ratio_curves(AccountBook(snapshot))


def _goes(outcome: Outcome) -> str:
    names = [
        f"{' '.join(short_symbol(s) for s in item.target.symbols)} at {pct(item.move)}"
        for item in outcome.liquidations
    ]
    return "; ".join(names) or "nothing goes"


def _total(outcome: Outcome) -> str:
    return ", ".join(f"{money(v)} {k}" for k, v in sorted(outcome.losses.items())) or "0"


def stress_lines(report: AccountStress) -> list[str]:
    """Phone-width lines: a shock, what goes as held, and the two architectures' loss."""
    lines = [f"📉 {report.name}: uniform moves on the live book (loss; − is a gain)"]
    for row in report.rows:
        lines.append(f"{row.held.shock.name}: {_goes(row.held)} · loss {_total(row.held)}")
        lines.append(
            f"   all cross: {len(row.as_cross.liquidated)} go, {_total(row.as_cross)} · "
            f"all isolated: {len(row.as_isolated.liquidated)} go, {_total(row.as_isolated)}"
        )
    if report.survive is not None and report.remedies:
        lines.append(f"To survive {report.survive}:")
        for r in report.remedies:
            ways = [f"add {money(r.add_margin)}"]
            if r.isolate is not None:
                ways.append(f"isolate {short_symbol(r.isolate)}")
            ways.append(f"cut {pct(1 - r.keep)}")
            lines.append(f"• {short_symbol(r.target)}: " + " or ".join(ways))
    elif report.survive is not None:
        lines.append(f"Survives {report.survive} as it is.")
    return lines
