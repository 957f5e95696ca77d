"""The Telegram console end to end: unmodified PTB against the local Bot API server,
answering from a real daemon that watches the simulated exchange over loopback."""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from alerts.console import Console
from alerts.console.confirm import Confirmations, Outcome
from alerts.console.targets import Choice, parse_duration, resolve
from alerts.console.views import chunks
from alerts.silence import Silences
from alerts.store import HistoryRow, Store
from monitor.config import Config
from monitor.daemon.runner import Runner
from monitor.simulator.runner import SimulatedVenue
from tests.servers.telegram import FIXTURE_TOKEN, BotApiState, telegram_server

CHAT = 1001
USER = 42
STRANGER = 666
STRANGE_CHAT = 2002
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@dataclass
class Setup:
    state: BotApiState
    console: Console
    runner: Runner
    silences: Silences
    store: Store
    clock: list[float]


def config_for(venue: SimulatedVenue, state_dir: Path, api_url: str) -> Config:
    accounts = [
        {"name": name, "exchange": "binanceusdm", "api_key": c.api_key, "secret": c.secret,
         "rest_url": venue.base_url, "ws_url": venue.ws_url}
        for name, c in venue.credentials.items()
    ]  # fmt: skip
    telegram = {
        "bot_token": FIXTURE_TOKEN, "api_url": api_url,
        "chats": [{"chat_id": CHAT}], "allowed_users": [USER],
    }  # fmt: skip
    return Config.model_validate(
        {
            "state_dir": str(state_dir),
            "daemon": {"poll_interval": 1, "poll_jitter": 0},
            # the calm book's pool sits near 5 %: a 3 % warn makes the cross targets fire
            "thresholds": {"cross": {"warn": 0.03}},
            "notifiers": {"console": False, "telegram": telegram},
            "accounts": accounts,
        }
    )


@asynccontextmanager
async def console_over_calm_venue(tmp_path: Path, outage: bool = False) -> AsyncIterator[Setup]:
    """Bot API server, simulated venue, daemon, console; the console connected unless
    `outage` (then the server answers 502 until the test clears it)."""
    clock = [0.0]
    async with telegram_server() as (state, base_url), SimulatedVenue("calm") as venue:
        state.outage = outage
        runner = Runner(tmp_path / "unused.yaml", config_for(venue, tmp_path, base_url),
                        use_plugins=False)  # fmt: skip
        store = Store.open(tmp_path)
        silences = Silences(time.time)
        console = Console(runner.host, silences, store, clock=lambda: clock[0], retry=(0.05, 0.2))
        await runner.daemon.start()
        await console.start()
        try:
            if not outage:
                await asyncio.wait_for(console.serving.wait(), 10)
            yield Setup(state, console, runner, silences, store, clock)
        finally:
            await console.stop()
            await runner.daemon.stop()
            store.close()


async def until(predicate: Callable[[], Any], timeout: float = 10.0) -> Any:
    deadline = time.monotonic() + timeout
    while not (result := predicate()):
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.02)
    return result


async def command(state: BotApiState, text: str, chat: int = CHAT, user: int = USER) -> dict:
    """Send `text` as the user; the bot's next message in that chat."""
    before = len(state.sent)
    state.push_message(chat, user, text)
    return await until(lambda: next((m for m in state.sent[before:] if m["chat_id"] == chat), None))


async def evaluated(runner: Runner) -> None:
    await asyncio.wait_for(runner.daemon.first_evaluation.wait(), 15)


def confirm_data(message: dict) -> str:
    buttons = message["reply_markup"]["inline_keyboard"][0]
    return next(b["callback_data"] for b in buttons if b["text"] == "Confirm")


async def press(state: BotApiState, message: dict, data: str) -> dict:
    """Press a button on `message`; the callback answer the bot gave."""
    before = len(state.answered_callbacks)
    state.push_callback(CHAT, USER, data, message["message_id"])
    await until(lambda: len(state.answered_callbacks) > before)
    return state.answered_callbacks[before]


# --- over the wire ----------------------------------------------------------------------


async def test_strangers_are_ignored_and_counted(tmp_path):
    async with console_over_calm_venue(tmp_path) as s:
        s.state.push_message(CHAT, STRANGER, "/status")  # allowed chat, unknown user
        s.state.push_message(STRANGE_CHAT, USER, "/status")  # allowed user, unknown chat
        s.state.push_callback(STRANGE_CHAT, STRANGER, "y:whatever", 1)
        reply = await command(s.state, "/help")  # handled after the three above
        assert "/silence" in reply["text"]
        assert [m["chat_id"] for m in s.state.sent] == [CHAT]  # only the /help answer
        assert s.state.answered_callbacks == []
        assert s.console.refused == 3

        telegram = s.runner.config.notifiers.telegram
        allowed = telegram.model_copy(update={"allowed_users": (USER, STRANGER)})
        notifiers = s.runner.config.notifiers.model_copy(update={"telegram": allowed})
        s.runner.config = s.runner.config.model_copy(update={"notifiers": notifiers})
        await s.console.reloaded()  # a reload that changes the allow-list rebuilds the bot
        await asyncio.wait_for(s.console.serving.wait(), 10)
        assert "/silence" in (await command(s.state, "/help", user=STRANGER))["text"]


async def test_status_shows_each_pool_and_position(tmp_path):
    async with console_over_calm_venue(tmp_path) as s:
        await evaluated(s.runner)  # READY comes with the first poll, the feed may follow
        await until(
            lambda: all(g.feed.status.value == "live" for g in s.runner.daemon.groups.values())
        )
        reply = (await command(s.state, "/status"))["text"]
        risk = s.runner.daemon.monitors[0].current()
        assert reply.startswith("⚠️ hybrid · binanceusdm · WARN")  # warn at 3 %, see config
        shown = float(re.search(r"pool USDT: ratio ([\d.]+)%", reply).group(1)) / 100
        assert abs(shown - risk.pools[0].margin_ratio) < 0.2 * risk.pools[0].margin_ratio
        for target in ("BTC/USDT:USDT long cross", "AVAX/USDT:USDT long isolated"):
            assert target in reply
        assert reply.endswith("feeds: binanceusdm live")
        positions = (await command(s.state, "/positions hybrid"))["text"].splitlines()
        assert positions[0] == "hybrid · binanceusdm · binance-usdm model (exact)"
        assert len(positions) == 1 + 5 * 3  # five positions, three lines each
        assert "✅ DOGE/USDT long 40,000 DOGE isolated" in positions  # base units, separators


async def test_silence_needs_a_fresh_confirmation_used_once(tmp_path):
    async with console_over_calm_venue(tmp_path) as s:
        await evaluated(s.runner)
        question = await command(s.state, "/silence hybrid 30m")
        assert question["text"] == "Silence hybrid for 30m?"
        assert s.silences.active() == []  # nothing happens before the button
        data = confirm_data(question)
        assert len(data.encode()) <= 64

        edited = len(s.state.edits)
        answer = await press(s.state, question, data)
        assert answer["text"] == "done"
        [silence] = s.silences.active()
        assert (silence.account, silence.target) == ("hybrid", None)
        assert silence.ends - time.time() == pytest.approx(1800, abs=5)
        await until(lambda: len(s.state.edits) > edited)  # edited after the answer
        assert "silenced for 30m" in s.state.edits[-1]["plain"]

        replay = await press(s.state, question, data)
        assert replay["show_alert"] and "no longer valid" in replay["text"]
        assert len(s.silences.active()) == 1

        late = await command(s.state, "/silence btc 1h")  # a unique fragment of a target
        assert late["text"] == "Silence hybrid: BTC/USDT:USDT long cross for 1h?"
        s.clock[0] += 61  # past the 60 s a confirmation lives
        edited = len(s.state.edits)
        expired = await press(s.state, late, confirm_data(late))
        assert "expired" in expired["text"]
        assert len(s.silences.active()) == 1
        await until(lambda: len(s.state.edits) > edited)
        assert "expired" in s.state.edits[-1]["plain"]

        listed = (await command(s.state, "/alerts"))["text"].splitlines()
        firing = listed[: listed.index("")]
        assert len(firing) == 4  # the pool and its three positions; isolated ones are ok
        assert all(re.fullmatch(r"⚠️ hybrid: (pool USDT|.+ cross) WARN 🔕 29m.*", f) for f in firing)
        assert listed[-1].startswith(f"🔕 {silence.id} hybrid — 29m")

        lift = await command(s.state, f"/unsilence {silence.id}")
        assert (await press(s.state, lift, confirm_data(lift)))["text"] == "done"
        assert s.silences.active() == []


async def test_chart_is_a_png_of_the_stored_history(tmp_path):
    async with console_over_calm_venue(tmp_path) as s:
        now = time.time()
        s.store.history_add(
            HistoryRow(now - 3600 + 60 * i, "hybrid", target, ratio + 0.004 * i, 0.2)
            for i in range(60)
            for target, ratio in (("pool USDT", 0.3), ("AVAX/USDT:USDT long isolated", 0.5))
        )
        before = len(s.state.sent)
        s.state.push_message(CHAT, USER, "/chart hybrid 2h")
        photo = await until(lambda: next(
            (m for m in s.state.sent[before:] if m["method"] == "sendPhoto"), None))  # fmt: skip
        assert photo["photo_bytes"].startswith(PNG_SIGNATURE)
        assert photo["photo_size"] > 10_000
        assert "hybrid" in photo["plain"]
        empty = await command(s.state, "/chart hybrid 30s")
        assert empty["text"].startswith("no history for hybrid")


async def test_console_retries_through_an_outage_without_blocking_monitoring(tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    async with console_over_calm_venue(tmp_path, outage=True) as s:
        await evaluated(s.runner)  # monitoring runs while the Bot API is down
        await until(lambda: s.console.connect_failures >= 3)
        assert not s.console.serving.is_set()
        s.state.outage = False
        await asyncio.wait_for(s.console.serving.wait(), 10)
        reply = await command(s.state, "/status")
        assert "pool USDT" in reply["text"]
    assert FIXTURE_TOKEN.split(":")[1] not in caplog.text  # the token stays out of the logs


async def test_console_stops_at_once_while_still_retrying(tmp_path):
    async with console_over_calm_venue(tmp_path, outage=True) as s:
        await until(lambda: s.console.connect_failures >= 1)
        started = time.monotonic()
        await s.console.stop()
        assert time.monotonic() - started < 1.0


# --- pieces -------------------------------------------------------------------------------


def test_targets_resolve_exactly_or_by_unique_fragment():
    accounts = ["main", "alt"]
    targets = [("main", "pool USDT"), ("main", "BTC/USDT:USDT long cross"),
               ("alt", "BTC/USDT:USDT short isolated")]  # fmt: skip
    assert resolve(["main"], accounts, targets) == [Choice("main", None)]
    assert len(resolve(["btc"], accounts, targets)) == 2  # ambiguous: both are offered
    assert resolve(["alt", "btc"], accounts, targets) == [
        Choice("alt", "BTC/USDT:USDT short isolated")
    ]
    assert resolve(["pool", "usdt"], accounts, targets) == [Choice("main", "pool USDT")]
    assert resolve(["other"], accounts, targets) == []
    assert [parse_duration(t) for t in ("30m", "2h", "1d", "90s")] == [1800, 7200, 86400, 90]
    assert [parse_duration(t) for t in ("0m", "8d", "soon", "30")] == [None] * 4


def test_confirmation_is_bound_to_its_chat_and_user():
    confirmations = Confirmations(ttl=60, clock=lambda: 0.0)
    markup = confirmations.ask(CHAT, USER, lambda: "applied")
    data = markup.inline_keyboard[0][0].callback_data
    assert confirmations.resolve(data, STRANGE_CHAT, USER) == (Outcome.UNKNOWN, None)
    assert confirmations.resolve(data, CHAT, STRANGER) == (Outcome.NOT_YOURS, None)
    assert confirmations.resolve("y:forged", CHAT, USER) == (Outcome.UNKNOWN, None)
    assert confirmations.resolve(data, CHAT, USER) == (Outcome.DONE, "applied")
    cancel = confirmations.ask(CHAT, USER, lambda: "applied").inline_keyboard[0][1]
    assert confirmations.resolve(cancel.callback_data, CHAT, USER) == (Outcome.CANCELLED, None)


def test_long_replies_split_at_line_ends():
    parts = chunks([f"⚠️ line {i:04d} " + "x" * 90 for i in range(100)])
    assert len(parts) == 3 and all(len(p.encode("utf-16-le")) <= 8000 for p in parts)
    assert parts[1].startswith("⚠️ line 0038")


async def test_stress_answers_with_the_table_and_a_chart(tmp_path):
    async with console_over_calm_venue(tmp_path) as s:
        await evaluated(s.runner)
        before = len(s.state.sent)
        s.state.push_message(CHAT, USER, "/stress hybrid")
        photo = await until(lambda: next(
            (m for m in s.state.sent[before:] if m["method"] == "sendPhoto"), None))  # fmt: skip
        texts = [m["text"] for m in s.state.sent[before:] if m["method"] == "sendMessage"]
        table = "\n".join(texts)
        assert table.startswith("📉 hybrid: uniform moves on the live book")
        for move in ("-5%", "-10%", "-20%", "-30%", "+5%", "+30%"):
            assert f"uniform {move}: " in table
        assert "all cross:" in table and "all isolated:" in table
        assert photo["photo_bytes"].startswith(PNG_SIGNATURE) and photo["photo_size"] > 10_000
        assert "margin ratio if every price moves" in photo["plain"]
        unknown = await command(s.state, "/stress nosuch")
        assert unknown["text"] == "no account 'nosuch' here"
