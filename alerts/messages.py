"""Messages a trader reads on a phone: short lines, the most dangerous target first.

Plain text (no markup, so nothing to escape and any channel can carry it). Every figure
is ours beside the exchange's, "unknown" when nobody could compute it, and what changed
since the last message for that target. Our levels are thresholds of our own: nothing
here calls one a liquidation; only a vanished position says "probable liquidation", and
one that marginwatch's own orders closed says "closed by marginwatch" instead.

A cross pool's positions share its ratio and its defense, so they are listed under one
pool block; a message that would pass Telegram's limit ends with how many targets it
left out rather than being split into a burst of pages.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from alerts.defense import Defense
from alerts.rules import AlertKey, Reason, Rule
from alerts.silence import Silence
from alerts.view import Figures, RunnerView, StateView, target_of
from monitor.engine.levels import Level
from monitor.engine.results import PositionRisk
from monitor.formatting import money, pct, price

MAX_CHARS = 3800
"""Below Telegram's 4,096 (counted in UTF-16 units, where each emoji takes two)."""
GONE = "no longer open"
"""The resolution of a target that closed between two reads (no level event said so)."""
STATUS_POSITIONS = 8
"""Positions listed per account by /status and the summary; the rest are counted."""

ICONS = {
    Level.OK: "✅",
    Level.WARN: "⚠️",
    Level.UNKNOWN: "❔",
    Level.CRITICAL: "🔴",
    Level.IMMINENT: "🚨",
}
RULE_ICONS = {
    Rule.BLIND: "🙈",
    Rule.ERROR: "❗",
    Rule.LIQUIDATION: "💥",
    Rule.CLOSED: "🛡️",
}
"""The one-shot and blind messages' marks, beside the levels' own."""


@dataclass(frozen=True, slots=True)
class Item:
    """One alert to say, with everything the message needs about it."""

    key: AlertKey
    reason: Reason
    level: Level
    previous: Level | None
    """The level the user last heard; None when this is the first word on it."""
    figures: Figures
    sent_ratio: float | None
    sent_distance: float | None
    message: str
    defense: Defense | None = None
    peak: Level | None = None
    """Set when the target touched a worse level than it shows now, unannounced."""
    why: str = ""
    """Which figure put the target at its level, against which threshold ("distance
    4.10% ≤ 5%"): a 10 % ratio reads fine, a distance under 5 % does not."""


# --- numbers -----------------------------------------------------------------------


def amount(value: float) -> str:
    """Rounded up (cents, or 6 decimals below 1 for coin pools): adding the figure shown
    must reach the target, not fall short by a rounding; float noise is not rounded up."""
    decimals = 2 if value >= 1 else 6
    scale = 10**decimals
    return f"{math.ceil(value * scale - 1e-6) / scale:,.{decimals}f}"


def _delta(now: float | None, before: float | None) -> str:
    if now is None or before is None or not (math.isfinite(now) and math.isfinite(before)):
        return ""
    return f" ({(now - before) * 100:+.2f} pts)"


def _name(target: str) -> str:
    """ "BTC/USDT:USDT long cross" reads as "BTC/USDT:USDT long": the mode has its own slot."""
    for mode in (" cross", " isolated"):
        head, found, tail = target.partition(mode)
        if found:
            return head + tail
    return target


# --- alert messages ------------------------------------------------------------------


def _peak(item: Item) -> str:
    return f", peaked at {item.peak.upper()}" if item.peak else ""


def _state(item: Item) -> str:
    level = item.level.upper() + _peak(item)
    match item.reason:
        case Reason.REPEAT:
            return f"{level} (still)"
        case Reason.REANNOUNCE:
            return f"{level} (re-announced after a restart)"
    if item.previous is None:
        return f"{level} (new)"
    return f"{level} (was {item.previous.upper()})"


def _defense(defense: Defense | None) -> list[str]:
    if defense is None:
        return []
    if defense.problem is not None:
        return [f"▶ defense unknown: {defense.problem}"]
    return [f"▶ {line}" for line in defense.lines]


def _ratio_lines(item: Item) -> list[str]:
    f = item.figures
    ratio = f"ratio {pct(f.margin_ratio)} · exch {pct(f.exchange_ratio)}"
    lines = [ratio + _delta(f.margin_ratio, item.sent_ratio)]
    if item.why:
        lines.append(f"why: {item.why}")
    if f.liquidation_fees:  # kept apart by the exchange (OKX): show its MM and the fees
        lines.append(f"MM {money(f.maintenance_margin)} + liq fees {money(f.liquidation_fees)}")
    if f.margin_ratio is None and f.note:
        lines.append(f"({f.note})")
    return lines


def _price_line(item: Item) -> str:
    f = item.figures
    return (
        f"liq {price(f.liquidation_price)} · exch {price(f.exchange_liquidation_price)} · "
        f"dist {pct(f.distance)}" + _delta(f.distance, item.sent_distance)
    )


def _isolated_block(item: Item) -> list[str]:
    f = item.figures
    head = f"{ICONS[item.level]} {_name(item.key.target)} · {f.margin_mode or '?'} · {_state(item)}"
    return [head, *_ratio_lines(item), _price_line(item), *_defense(item.defense)]


def _pool_block(asset: str, items: list[Item]) -> list[tuple[str, AlertKey | None]]:
    pool = next((i for i in items if i.key.target.startswith("pool ")), None)
    members = [i for i in items if i is not pool]
    if pool is not None:
        head = f"{ICONS[pool.level]} pool {asset} · cross · {_state(pool)}"
        lines = [(head, pool.key), *((line, None) for line in _ratio_lines(pool))]
        distance = pool.figures.distance
        lines.append((f"dist {pct(distance)}" + _delta(distance, pool.sent_distance), None))
    else:
        ratio = members[0].figures.margin_ratio
        lines = [(f"pool {asset} · cross · ratio {pct(ratio)}", None)]
    defense = next((i.defense for i in items if i.defense is not None), None)
    lines += [(line, None) for line in _defense(defense)]
    for member in members:
        head = f"• {ICONS[member.level]} {_name(member.key.target)} · {_state(member)}"
        lines += [(head, member.key), ("  " + _price_line(member), None)]
    return lines


def _event_block(item: Item, feed_accounts: Mapping[str, Iterable[str]]) -> list[str]:
    target = item.key.target
    if item.key.rule is Rule.LIQUIDATION:
        f = item.figures
        return [
            f"{RULE_ICONS[Rule.LIQUIDATION]} PROBABLE LIQUIDATION · {target}",
            item.message,
            f"last mark {price(f.mark_price)} · exch liq {price(f.exchange_liquidation_price)}",
        ]
    if item.key.rule is Rule.CLOSED:
        f = item.figures
        return [
            f"{RULE_ICONS[Rule.CLOSED]} CLOSED BY MARGINWATCH · {_name(target)}",
            item.message,
            f"last mark {price(f.mark_price)} · exch liq {price(f.exchange_liquidation_price)}",
        ]
    if item.key.rule is Rule.ERROR:
        return [f"{RULE_ICONS[Rule.ERROR]} ERROR · {item.message}"]
    lines = [f"{RULE_ICONS[Rule.BLIND]} BLIND · {target}", item.message]
    held = sorted(feed_accounts.get(target, ()))
    if held:
        lines.append(f"price alerts of {', '.join(held)} held until it sees again")
    return lines


def _resolved_line(item: Item) -> str:
    """Back to ok, a blind source that sees again, or a target that closed meanwhile."""
    ok, target = ICONS[Level.OK], item.key.target
    if item.key.rule is Rule.BLIND:
        return f"{ok} {target}: {item.message} (was BLIND)"
    if item.previous is None and item.peak:  # a spike nobody heard of: say it loudly
        return (
            f"{ICONS[item.peak]} {target} touched {item.peak.upper()} and is back to OK · "
            f"ratio {pct(item.figures.margin_ratio)}"
        )
    was = f"was {(item.previous or '?').upper()}"
    if item.message == GONE:
        return f"{ok} {target}: {GONE} ({was})"
    return f"{ok} {target} back to OK ({was}{_peak(item)}) · ratio {pct(item.figures.margin_ratio)}"


def danger(item: Item) -> tuple[int, float]:
    """Sort key, most dangerous first: probable liquidations, then level, then ratio."""
    if item.reason is Reason.RESOLVED:
        return (-1, 0.0)
    rank = len(Level) if item.key.rule is Rule.LIQUIDATION else item.level.severity  # above all
    ratio = item.figures.margin_ratio
    return (rank, ratio if ratio is not None and math.isfinite(ratio) else math.inf)


def worst_level(items: Iterable[Item]) -> Level:
    return max((i.level for i in items if i.reason is not Reason.RESOLVED), default=Level.OK)


def render_alert(
    account: str | None, items: list[Item], feed_accounts: Mapping[str, Iterable[str]]
) -> str:
    """One message for one account's burst of alerts (account None: blind feeds)."""
    blocks: list[tuple[tuple[int, float], list[tuple[str, AlertKey | None]]]] = []
    pools: dict[str, list[Item]] = {}
    for item in items:
        if item.reason is Reason.RESOLVED:
            continue
        pool = item.figures.pool
        if item.key.rule is Rule.PRICE and pool is not None:
            pools.setdefault(pool, []).append(item)
            continue
        if item.key.rule is Rule.PRICE:
            lines = _isolated_block(item)
        else:
            lines = _event_block(item, feed_accounts)
        blocks.append((danger(item), [(lines[0], item.key), *((x, None) for x in lines[1:])]))
    for asset, members in pools.items():
        members.sort(key=danger, reverse=True)
        blocks.append((danger(members[0]), _pool_block(asset, members)))
    blocks.sort(key=lambda block: block[0], reverse=True)
    resolved = sorted((i for i in items if i.reason is Reason.RESOLVED), key=lambda i: i.key.target)
    if resolved:
        blocks.append(((-1, 0.0), [(_resolved_line(i), i.key) for i in resolved]))

    level = worst_level(items)
    header = f"{ICONS[level]} {account or 'feeds'} · {level.upper()}"
    lines = [header]
    for _, block in blocks:
        lines.append("")
        lines.extend(line for line, _ in block)
    text = "\n".join(lines)
    if len(text) <= MAX_CHARS:
        return text
    return _truncate(header, [line for _, block in blocks for line in [("", None), *block]])


def _truncate(header: str, lines: list[tuple[str, AlertKey | None]]) -> str:
    """Keep whole lines up to the limit and say how many targets did not fit."""
    kept = [header]
    size = len(header)
    for index, (line, _) in enumerate(lines):
        if size + len(line) + 1 > MAX_CHARS - 60:
            left = {key for _, key in lines[index:] if key is not None}
            kept.append(f"… and {len(left)} more targets: send /status")
            break
        kept.append(line)
        size += len(line) + 1
    return "\n".join(kept)


# --- status and daily summary ------------------------------------------------------------


def account_lines(view: StateView, account: str) -> list[str]:
    """A compact picture of one account: every pool, the riskiest positions first."""
    risk = view.risk(account)
    levels = view.levels(account) or {}
    exchange = view.exchange(account) or "?"
    if risk is None:
        return [f"{ICONS[Level.UNKNOWN]} {account} · {exchange} · not read yet"]
    worst = max(levels.values(), default=Level.OK)
    lines = [f"{ICONS[worst]} {account} · {exchange} · {worst.upper()}"]
    for pool in risk.pools:
        level = levels.get(f"pool {pool.asset}", Level.UNKNOWN)
        lines.append(
            f"pool {pool.asset}: ratio {pct(pool.margin_ratio)} · exch "
            f"{pct(pool.exchange_margin_ratio)} · dist {pct(pool.liquidation_distance)} · "
            f"{level.upper()}"
        )

    def rank(p: PositionRisk) -> tuple[int, float]:
        distance = p.liquidation_distance
        level = levels.get(target_of(p.position), Level.UNKNOWN)
        return level.severity, -(distance if distance is not None else 0.0)

    ranked = sorted(risk.positions, key=rank, reverse=True)
    for p in ranked[:STATUS_POSITIONS]:
        target = target_of(p.position)
        lines.append(
            f"{target}: liq {price(p.liquidation_price)} · dist {pct(p.liquidation_distance)} "
            f"· {levels.get(target, Level.UNKNOWN).upper()}"
        )
    if len(ranked) > STATUS_POSITIONS:
        lines.append(f"… {len(ranked) - STATUS_POSITIONS} more positions")
    return lines


def status_text(view: StateView) -> str:
    """/status: every account and every feed, worst first within each account."""
    lines: list[str] = []
    for account in view.accounts():
        lines += [*account_lines(view, account), ""]
    feeds = [
        f"{feed.removeprefix('feed ')} {'live' if view.sees(None, feed) else 'NOT LIVE'}"
        for feed in sorted(view.feed_accounts())
    ]
    lines.append("feeds: " + (", ".join(feeds) if feeds else "none yet"))
    return "\n".join(lines)


def render_status(runner: Any) -> str:
    """/status for the console: the running daemon as it is now."""
    return status_text(RunnerView(runner))


def render_summary(view: StateView, account: str, at: str, silences: Iterable[Silence]) -> str:
    """The daily summary of one account (one per account, so each chat gets only its own)."""
    lines = [f"📋 Daily summary · {at} UTC", "", *account_lines(view, account)]
    for silence in silences:
        what = silence.target or "everything"
        lines.append(f"🔕 silenced: {what} ({silence.id}) {silence.comment}".rstrip())
    return "\n".join(lines)
