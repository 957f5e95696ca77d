"""The console's commands: read-only views, and silences behind a confirmation button.

Every view reads the running daemon at the moment of the command (`runner.daemon` is
swapped on reload), and a chat sees only the accounts its configuration entry lists.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable

from telegram import InlineKeyboardMarkup, Update
from telegram.ext import ContextTypes

from alerts.console.chart import render_chart, render_stress_chart, series_from
from alerts.console.confirm import Confirmations, Outcome
from alerts.console.ports import HistorySource, SilenceBook, SilenceView
from alerts.console.stress import stress_lines, stress_now
from alerts.console.targets import parse_duration, resolve
from alerts.console.views import (
    Firing,
    ScopedView,
    chunks,
    duration,
    firing_lines,
    position_lines,
)
from alerts.messages import status_text
from alerts.rules import Rule
from alerts.silence import ANY_ACCOUNT
from monitor.daemon.account import AccountMonitor
from monitor.daemon.runner import Runner
from monitor.engine.levels import Level
from monitor.stress.curve import at_marks

log = logging.getLogger(__name__)

CHART_WINDOW = 86400.0
MAX_CHOICES = 6

HELP = """\
/status — every account's pools and positions
/positions [account] — positions with mark and liquidation prices
/alerts — what is firing, and the silences
/silence <account|target> <30m|2h|1d> — mute alerts (asks to confirm)
/unsilence <id|account|target> — lift a silence (asks to confirm)
/chart <account> [6h|3d] — margin-ratio history (default 24h)
/stress [account] — what uniform moves would liquidate, cross vs isolated, with a chart
/actions [account] — recent auto-deleverage decisions and their results
/pause — stop every automatic action now (kill switch)
/resume — allow automatic actions again (asks to confirm)
A target can be a fragment ("btc"); put the account first to narrow it ("main btc")."""

COMMANDS = {
    "status": "pools and positions",
    "positions": "positions with prices",
    "alerts": "what is firing",
    "silence": "mute alerts for a while",
    "unsilence": "lift a silence",
    "chart": "margin-ratio history",
    "stress": "what a market move would liquidate",
    "actions": "recent auto-deleverage decisions",
    "pause": "stop automatic actions now",
    "resume": "allow automatic actions again",
    "help": "how to use this bot",
}


class Commands:
    """Handlers bound to the daemon, the silence book and the history store."""

    def __init__(
        self,
        runner: Runner,
        silences: SilenceBook,
        store: HistorySource,
        confirmations: Confirmations,
    ) -> None:
        self.runner = runner
        self.silences = silences
        self.store = store
        self.confirmations = confirmations

    # --- scope -------------------------------------------------------------------

    def visible(self, chat_id: int) -> list[str]:
        """Accounts this chat may see, in configuration order."""
        names = [a.name for a in self.runner.config.accounts]
        telegram = self.runner.config.notifiers.telegram
        chat = next((c for c in telegram.chats if c.chat_id == chat_id), None) if telegram else None
        if chat is None:
            return []
        return names if chat.accounts is None else [n for n in names if n in chat.accounts]

    def _monitors(self, chat_id: int) -> list[AccountMonitor]:
        visible = set(self.visible(chat_id))
        return [m for m in self.runner.daemon.monitors if m.name in visible]

    async def _chosen(
        self, update: Update, context: ContextTypes.DEFAULT_TYPE
    ) -> list[AccountMonitor] | None:
        """The accounts this chat sees, or the one its argument names; None (and said so)
        when it names one the chat cannot see."""
        monitors = self._monitors(_chat(update))
        if not context.args:
            return monitors
        chosen = [m for m in monitors if m.name == context.args[0]]
        if not chosen:
            await _reply(update, [f"no account {context.args[0]!r} here"])
            return None
        return chosen

    def _levels(self, account: str) -> dict[str, Level]:
        return {t: level for (a, t), level in self.runner.daemon.tracker.items() if a == account}

    def _silences(self, chat_id: int) -> list[SilenceView]:
        """Silences this chat may see and lift: those of its accounts (one of every
        account only where every account is visible)."""
        visible = set(self.visible(chat_id))
        everything = visible == {a.name for a in self.runner.config.accounts}
        return [
            s for s in self.silences.active()
            if s.account in visible or (s.account == ANY_ACCOUNT and everything)
        ]  # fmt: skip

    # --- views -------------------------------------------------------------------

    async def status(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        visible = self.visible(_chat(update))
        text = status_text(ScopedView(self.runner, visible)) if visible else None
        await _reply(update, (text or "no accounts visible in this chat").splitlines())

    async def positions(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        monitors = await self._chosen(update, context)
        if monitors is None:
            return
        lines: list[str] = []
        for monitor in monitors:
            risk = monitor.current()
            if lines:
                lines.append("")
            if risk is None:
                lines.append(f"{monitor.name}: not read yet")
            else:
                lines.extend(position_lines(risk, self._levels(monitor.name)))
        await _reply(update, lines or ["no accounts visible in this chat"])

    async def alerts(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        chat_id = _chat(update)
        visible = set(self.visible(chat_id))
        silences = self._silences(chat_id)
        active = list(self.silences.active())  # one of every account mutes here too
        firing = [
            (f"{account}: {target}", level, _silenced_until(active, account, target))
            for (account, target), level in self.runner.daemon.tracker.items()
            if account in visible and level is not Level.OK
        ]
        lines = firing_lines(firing + self._blind(visible))
        if silences:
            now = time.time()
            lines += ["", "Silences:"] + [
                f"🔕 {s.id} {_silence_name(s)} — {duration(s.ends - now)} left" for s in silences
            ]
        await _reply(update, lines)

    def _blind(self, visible: set[str]) -> list[Firing]:
        """Feeds and accounts the daemon cannot see: never to read as a calm market."""
        daemon = self.runner.daemon
        limit = self.runner.config.daemon.account_stale_after
        now = time.monotonic()
        feeds = [
            (g.target, Rule.BLIND, None) for g in daemon.groups.values()
            if g.blind and any(m.name in visible for m in g.monitors)
        ]  # fmt: skip
        accounts = [
            (f"{m.name}: no fresh read", Rule.BLIND, None) for m in daemon.monitors
            if m.name in visible and m.last_ok is not None and now - m.last_ok > limit
        ]  # fmt: skip
        return feeds + accounts

    async def chart(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        args = context.args or []
        window = parse_duration(args[1]) if len(args) > 1 else CHART_WINDOW
        if not args or args[0] not in self.visible(_chat(update)) or window is None:
            await _reply(update, ["usage: /chart <account> [6h|3d] (at most 7d)"])
            return
        account = args[0]
        series = series_from(self.store.history_series(account, time.time() - window))
        if not series:
            await _reply(update, [f"no history for {account} in the last {duration(window)}"])
            return
        title = f"{account} · margin ratio · last {duration(window)}"
        thresholds = self.runner.config.thresholds_for(account)
        # drawing takes a few hundred ms: off the loop, which keeps evaluating marks
        png = await asyncio.to_thread(render_chart, title, series, thresholds)
        message = update.effective_message
        assert message is not None  # commands always arrive in a message
        await message.reply_photo(png, caption=title)

    async def stress(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        monitors = await self._chosen(update, context)
        if monitors is None:
            return
        message = update.effective_message
        assert message is not None  # commands always arrive in a message
        for monitor in monitors or []:
            if monitor.snapshot is None:
                await _reply(update, [f"{monitor.name}: not read yet"])
                continue
            snapshot = at_marks(monitor.snapshot, monitor.marks)
            # the shocks and the chart take a moment: off the loop, which keeps evaluating
            report, curves = await asyncio.to_thread(stress_now, snapshot)
            await _reply(update, stress_lines(report))
            if curves:
                title = f"{monitor.name} · margin ratio if every price moves"
                thresholds = self.runner.config.thresholds_for(monitor.name)
                png = await asyncio.to_thread(render_stress_chart, title, curves, thresholds)
                await message.reply_photo(png, caption=title)
        if not monitors:
            await _reply(update, ["no accounts visible in this chat"])

    async def help(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        await _reply(update, HELP.splitlines())

    # --- changes, confirmed ------------------------------------------------------

    async def silence(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        args = context.args or []
        seconds = parse_duration(args[-1]) if len(args) > 1 else None
        if seconds is None:
            await _reply(update, ["usage: /silence <account|target> <30m|2h|1d> (at most 7d)"])
            return
        chat_id = _chat(update)
        visible = self.visible(chat_id)
        targets = [(a, t) for (a, t), _ in self.runner.daemon.tracker.items()]
        choices = resolve(args[:-1], visible, targets)
        if len(choices) != 1:
            await _reply(update, _not_one(" ".join(args[:-1]), [str(c) for c in choices]))
            return
        choice, user = choices[0], _user(update)

        def act() -> str:
            made = self.silences.add(
                choice.account, seconds, choice.target, exact=True, created_by=f"telegram:{user}"
            )
            log.info(
                "telegram console: user %s silenced %s for %s", user, choice, duration(seconds)
            )
            return f"🔕 {choice} silenced for {duration(seconds)} (id {made.id})"

        markup = self.confirmations.ask(chat_id, _user(update), act)
        await _reply(update, [f"Silence {choice} for {duration(seconds)}?"], markup)

    async def unsilence(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        args = context.args or []
        if not args:
            await _reply(update, ["usage: /unsilence <id|account|target> (ids: /alerts)"])
            return
        silences = self._silences(_chat(update))
        wanted = " ".join(args).lower()
        matches = [s for s in silences if s.id == args[0]] or [
            s for s in silences if wanted in f"{s.id} {_silence_name(s)}".lower()
        ]
        if len(matches) != 1:
            names = [f"{s.id} {_silence_name(s)}" for s in matches]
            await _reply(update, _not_one(" ".join(args), names, kind="silence"))
            return
        silence, user = matches[0], _user(update)
        name = _silence_name(silence)

        def act() -> str:
            if not self.silences.remove(silence.id):
                return f"silence {silence.id} had already ended"
            log.info("telegram console: user %s lifted silence %s (%s)", user, silence.id, name)
            return f"🔔 {name} alerts again (silence {silence.id} lifted)"

        markup = self.confirmations.ask(_chat(update), user, act)
        await _reply(update, [f"Lift silence {silence.id} ({_silence_name(silence)})?"], markup)

    # --- auto-deleverage ------------------------------------------------------------

    async def actions(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        journal = self.runner.daemon.journal
        visible = self.visible(_chat(update))
        wanted = [a for a in (context.args or visible) if a in visible]
        if journal is None:
            await _reply(update, ["auto-deleverage is off for every account"])
            return
        rows = sorted(
            (row for account in wanted for row in journal.recent(account, limit=10)),
            key=lambda row: row.created_at, reverse=True,
        )[:10]  # fmt: skip
        lines = [
            f"{time.strftime('%H:%M:%S', time.gmtime(row.created_at))} {row.account} "
            f"{row.status.upper()} {row.description}" + (f" — {row.detail}" if row.detail else "")
            for row in rows
        ]
        paused = self.runner.daemon.kill_switch.reason(self.runner.config.actions)
        head = [f"⏸ paused: {paused}"] if paused else []
        await _reply(update, head + (lines or ["no decisions yet"]))

    async def pause(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """At once, no confirmation: stopping is never the dangerous direction."""
        user = _user(update)
        self.runner.daemon.kill_switch.pause(f"/pause by telegram user {user}")
        log.warning("telegram console: user %s paused automatic actions", user)
        await _reply(update, ["⏸ automatic actions paused; /resume to allow them again"])

    async def resume(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        user = _user(update)

        def act() -> str:
            self.runner.daemon.kill_switch.resume()
            log.warning("telegram console: user %s resumed automatic actions", user)
            still = self.runner.daemon.kill_switch.reason(self.runner.config.actions)
            return f"▶️ resumed{f' — but still paused: {still}' if still else ''}"

        markup = self.confirmations.ask(_chat(update), user, act)
        await _reply(update, ["Allow automatic actions again?"], markup)

    async def button(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        query = update.callback_query
        assert query is not None  # registered as a CallbackQueryHandler
        outcome, text = self.confirmations.resolve(query.data or "", _chat(update), _user(update))
        if outcome is Outcome.DONE:
            await query.answer("done")
            await query.edit_message_text(text or "done")
        elif outcome is Outcome.CANCELLED:
            await query.answer("cancelled")
            await query.edit_message_text("cancelled: nothing changed")
        elif outcome is Outcome.EXPIRED:
            await query.answer("expired: send the command again", show_alert=True)
            await query.edit_message_text("⌛ expired: nothing changed")
        elif outcome is Outcome.NOT_YOURS:
            await query.answer("only the person who asked can confirm", show_alert=True)
        else:
            await query.answer("this button is no longer valid", show_alert=True)


def _chat(update: Update) -> int:
    assert update.effective_chat is not None  # the gate let only chat updates through
    return update.effective_chat.id


def _user(update: Update) -> int:
    assert update.effective_user is not None  # the gate let only user updates through
    return update.effective_user.id


async def _reply(
    update: Update, lines: list[str], markup: InlineKeyboardMarkup | None = None
) -> None:
    message = update.effective_message
    assert message is not None  # commands always arrive in a message
    parts = chunks(lines)
    for i, part in enumerate(parts):
        last = i == len(parts) - 1
        await message.reply_text(part, reply_markup=markup if last else None)


def _not_one(words: str, names: list[str], kind: str = "account or target") -> list[str]:
    if not names:
        return [f"no {kind} matches {words!r}: see /alerts and /status"]
    shown = [f"• {n}" for n in names[:MAX_CHOICES]]
    more = [f"… and {len(names) - MAX_CHOICES} more"] if len(names) > MAX_CHOICES else []
    return [f"{words!r} matches {len(names)}; be more specific:", *shown, *more]


def _silence_name(silence: SilenceView) -> str:
    account = "every account" if silence.account == ANY_ACCOUNT else silence.account
    return account if silence.target is None else f"{account}: {silence.target}"


def _silenced_until(silences: Iterable[SilenceView], account: str, target: str) -> float | None:
    return max((s.ends for s in silences if s.matches(account, target)), default=None)
