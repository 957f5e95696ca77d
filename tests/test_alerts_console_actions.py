"""The Telegram side of auto-deleverage: /pause, /resume, /actions, and confirm mode.

Over the wire: unmodified PTB against the local Bot API server, the daemon against the
simulated exchange (see tests/test_alerts_console.py for the harness).
"""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

from alerts.console.approvals import Approvals
from tests.test_alerts_console import (
    CHAT,
    USER,
    command,
    confirm_data,
    console_over_calm_venue,
    evaluated,
    press,
    until,
)


async def test_pause_is_immediate_and_resume_asks_first(tmp_path):
    async with console_over_calm_venue(tmp_path) as s:
        await evaluated(s.runner)
        kill = s.runner.daemon.kill_switch
        actions = s.runner.config.actions
        reply = await command(s.state, "/pause")
        assert "paused" in reply["text"]
        assert kill.reason(actions) and str(USER) in kill.reason(actions)
        question = await command(s.state, "/resume")
        assert kill.reason(actions), "resume must not act before the button"
        answer = await press(s.state, question, confirm_data(question))
        assert answer["text"] == "done"
        assert kill.reason(actions) is None


async def test_actions_lists_the_journal_or_says_it_is_off(tmp_path):
    async with console_over_calm_venue(tmp_path) as s:
        await evaluated(s.runner)
        reply = await command(s.state, "/actions")
        # the default mode is dry_run: a journal exists; the calm book needs no action
        assert reply["text"] in ("no decisions yet",) or "DRY_RUN" in reply["text"]


async def test_confirm_mode_acts_only_on_an_explicit_yes(tmp_path):
    async with console_over_calm_venue(tmp_path) as s:
        await evaluated(s.runner)
        approvals = Approvals(s.runner.host, s.console, s.console.confirmations)
        account = s.runner.config.accounts[0].name
        decision = SimpleNamespace(account=account, describe=lambda: "add 100 USDT to BTC")

        asked = len(s.state.sent)
        pending = asyncio.create_task(approvals([decision]))
        question = await until(lambda: next((m for m in s.state.sent[asked:]), None))
        assert question["chat_id"] == CHAT and "add 100 USDT to BTC" in question["text"]
        await press(s.state, question, confirm_data(question))
        assert await asyncio.wait_for(pending, 5) is True

        asked = len(s.state.sent)
        pending = asyncio.create_task(approvals([decision]))
        question = await until(lambda: next((m for m in s.state.sent[asked:]), None))
        cancel = next(
            b["callback_data"]
            for b in question["reply_markup"]["inline_keyboard"][0]
            if b["text"] == "Cancel"
        )
        await press(s.state, question, cancel)
        assert await asyncio.wait_for(pending, 5) is False  # a Cancel is a no, at once


async def test_confirm_mode_without_telegram_is_no(tmp_path):
    async with console_over_calm_venue(tmp_path, outage=True) as s:
        approvals = Approvals(s.runner.host, s.console, s.console.confirmations)
        decision = SimpleNamespace(account="x", describe=lambda: "cut")
        assert await approvals([decision]) is False
