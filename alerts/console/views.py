"""Plain-text views sized for a phone, in the alert messages' own words and icons.

`/status` is the alert side's `status_text`, seen through a view narrowed to the
chat's accounts; what is here covers the console's other commands. Plain text, no parse
mode: exchange symbols and notes need no escaping and cannot inject markup.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence

from alerts.messages import ICONS, RULE_ICONS
from alerts.rules import BLIND_LEVEL, Rule
from alerts.view import RunnerView, target_of
from monitor.engine.levels import Level
from monitor.engine.results import AccountRisk
from monitor.formatting import pct, price, short_symbol, size


class ScopedView(RunnerView):
    """The running daemon as one chat may see it: only its configured accounts."""

    def __init__(self, runner: object, accounts: Iterable[str]) -> None:
        super().__init__(runner)
        self._visible = frozenset(accounts)

    def accounts(self) -> tuple[str, ...]:
        return tuple(a for a in super().accounts() if a in self._visible)

    def feed_accounts(self) -> dict[str, tuple[str, ...]]:
        return {
            feed: accounts
            for feed, accounts in super().feed_accounts().items()
            if self._visible.intersection(accounts)
        }


def duration(seconds: float) -> str:
    """`1d 2h`, `45m`, `30s`: the two largest units, enough on a phone."""
    seconds = max(0, int(seconds))
    parts = []
    for unit, span in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if seconds >= span or (unit == "s" and not parts):
            parts.append(f"{seconds // span}{unit}")
            seconds %= span
    return " ".join(parts[:2])


Firing = tuple[str, Level | Rule, float | None]
"""(what, its level, or Rule.BLIND for a source the daemon cannot see, silenced until)."""


def position_lines(risk: AccountRisk, level_of: dict[str, Level]) -> list[str]:
    """Every position, riskiest first, with the prices a trader acts on."""
    model = "exact" if risk.exact else "approximate"
    lines = [f"{risk.name} · {risk.exchange} · {risk.model} model ({model})"]
    for item in sorted(risk.positions, key=lambda i: i.liquidation_distance or 0.0):
        p = item.position
        level = level_of.get(target_of(p), Level.UNKNOWN)
        leverage = f" {p.leverage:g}x" if p.leverage else ""
        lines += [
            f"{ICONS[level]} {short_symbol(p.symbol)} {p.side.value} {size(p)} "
            f"{p.margin_mode.value}{leverage}",
            f"   mark {price(item.mark_price)} · liq {price(item.liquidation_price)} "
            f"(exch {price(p.exchange_liquidation_price)}) · dist {pct(item.liquidation_distance)}",
            f"   ratio {pct(item.margin_ratio)} · uPnL {item.unrealized_pnl:+,.2f}"
            + (f" · {item.note}" if item.note else ""),
        ]
    if not risk.positions:
        lines.append("no open positions")
    return lines


def firing_lines(firing: Sequence[Firing]) -> list[str]:
    """Most severe first (a blind source weighs as BLIND_LEVEL); a silenced one shows its
    time left."""
    now = time.time()
    lines = []
    for what, state, until in sorted(firing, key=lambda f: _severity(f[1]), reverse=True):
        hush = f" 🔕 {duration(until - now)}" if until is not None else ""
        icon = RULE_ICONS[state] if isinstance(state, Rule) else ICONS[state]
        lines.append(f"{icon} {what} {state.upper()}{hush}")
    return lines or [f"{ICONS[Level.OK]} nothing firing"]


def _severity(state: Level | Rule) -> int:
    return (BLIND_LEVEL if state is Rule.BLIND else state).severity


def chunks(lines: Iterable[str], limit: int = 4000) -> list[str]:
    """Split at line ends under Telegram's 4,096 UTF-16 units (an emoji counts two)."""
    out: list[str] = []
    current, size = "", 0
    for line in lines:
        line = line[: limit // 2]  # a line alone always fits, whatever it holds
        units = _utf16(line)
        if current and size + 1 + units > limit:
            out.append(current)
            current, size = "", 0
        current, size = (f"{current}\n{line}", size + 1 + units) if current else (line, units)
    if current:
        out.append(current)
    return out


def _utf16(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2
