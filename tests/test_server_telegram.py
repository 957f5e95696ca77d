"""Unmodified python-telegram-bot 22 talks to the local Bot API server.

The point is to prove the test server speaks the Bot API closely enough that PTB's own
request encoding, parsing and error mapping work against it, so the delivery and console
tests exercise the real library rather than a mock.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import aiohttp
import pytest
from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup
from telegram.error import BadRequest, Forbidden, InvalidToken, NetworkError, RetryAfter
from telegram.ext import Application, ApplicationBuilder, CallbackQueryHandler, CommandHandler

from tests.servers.telegram import FIXTURE_TOKEN, BotApiState, telegram_server

CHAT = 1001
OTHER_CHAT = 1002
USER = 42


@pytest.fixture
async def server() -> AsyncIterator[tuple[BotApiState, str]]:
    async with telegram_server() as served:
        yield served


@pytest.fixture
async def bot(server: tuple[BotApiState, str]) -> AsyncIterator[Bot]:
    _, base_url = server
    async with Bot(FIXTURE_TOKEN, base_url=f"{base_url}/bot") as client:
        yield client


async def test_get_me_and_send_message(server, bot: Bot) -> None:
    state, _ = server
    me = await bot.get_me()
    assert me.is_bot and me.username == state.username
    markup = InlineKeyboardMarkup([[InlineKeyboardButton("Ack", callback_data="ack:1")]])
    sent = await bot.send_message(
        CHAT, "<b>BTC</b> margin &lt; 10%", parse_mode="HTML", reply_markup=markup
    )
    assert sent.text == "BTC margin < 10%"
    assert sent.chat_id == CHAT and sent.message_id == 1
    assert sent.reply_markup == markup
    record = state.sent[-1]
    assert record["text"] == "<b>BTC</b> margin &lt; 10%"
    assert record["reply_markup"] == {
        "inline_keyboard": [[{"text": "Ack", "callback_data": "ack:1"}]]
    }
    second = await bot.send_message(CHAT, "again")
    assert second.message_id == 2


async def test_send_photo_and_chat_action(server, bot: Bot) -> None:
    state, _ = server
    png = b"\x89PNG\r\n\x1a\n" + b"0" * 500
    await bot.send_chat_action(CHAT, "upload_photo")
    message = await bot.send_photo(CHAT, png, caption="<i>chart</i>", parse_mode="HTML")
    assert message.caption == "chart"
    assert message.photo[-1].file_size == len(png)
    assert state.sent[-1]["photo_bytes"] == png
    assert state.chat_actions == [(CHAT, "upload_photo")]


async def test_updates_long_poll_and_callbacks(server, bot: Bot) -> None:
    state, _ = server
    poll = asyncio.create_task(bot.get_updates(timeout=5))
    await asyncio.sleep(0.1)
    assert not poll.done()  # genuinely long-polling
    state.push_message(CHAT, USER, "/status btc")
    updates = await asyncio.wait_for(poll, 2)
    assert [u.message.text for u in updates] == ["/status btc"]
    assert updates[0].message.entities[0].type == "bot_command"
    sent = await bot.send_message(CHAT, "pick")
    state.push_callback(CHAT, USER, "ack:1", sent.message_id)
    updates = await bot.get_updates(offset=updates[-1].update_id + 1, timeout=1)
    query = updates[0].callback_query
    assert query.data == "ack:1" and query.message.message_id == sent.message_id
    assert await bot.answer_callback_query(query.id, text="ok")
    assert state.answered_callbacks[-1]["text"] == "ok"
    assert await bot.get_updates(offset=updates[-1].update_id + 1, timeout=0) == ()


async def test_edit_delete_and_commands(server, bot: Bot) -> None:
    state, _ = server
    sent = await bot.send_message(CHAT, "one")
    edited = await bot.edit_message_text("<b>two</b>", CHAT, sent.message_id, parse_mode="HTML")
    assert edited.text == "two"
    with pytest.raises(BadRequest, match=r"(?i)not modified"):
        await bot.edit_message_text("two", CHAT, sent.message_id)
    markup = InlineKeyboardMarkup([[InlineKeyboardButton("x", callback_data="x")]])
    await bot.edit_message_reply_markup(CHAT, sent.message_id, reply_markup=markup)
    assert state.edits[-1]["method"] == "editMessageReplyMarkup"
    assert await bot.delete_message(CHAT, sent.message_id)
    with pytest.raises(BadRequest, match=r"(?i)not found"):
        await bot.delete_message(CHAT, sent.message_id)
    assert await bot.set_my_commands([("status", "Account status")])
    assert [c.command for c in await bot.get_my_commands()] == ["status"]
    assert await bot.delete_webhook()
    assert (await bot.get_webhook_info()).url == ""


async def test_errors_map_to_ptb_exceptions(server, bot: Bot) -> None:
    state, base_url = server
    with pytest.raises(BadRequest, match=r"(?i)can't parse entities"):
        await bot.send_message(CHAT, "<b>open", parse_mode="HTML")
    with pytest.raises(BadRequest, match=r"(?i)too long"):
        await bot.send_message(CHAT, "x" * 4097)
    state.flood[CHAT] = 7
    with pytest.raises(RetryAfter) as flood:
        await bot.send_message(CHAT, "flooded")
    assert flood.value._retry_after.total_seconds() == 7  # int|timedelta public attr
    await bot.send_message(OTHER_CHAT, "other chat unaffected")
    await bot.send_message(CHAT, "flood answered once")
    state.fail[CHAT] = (403, "Forbidden: bot was blocked by the user")
    with pytest.raises(Forbidden):
        await bot.send_message(CHAT, "blocked")
    with pytest.raises(InvalidToken):
        async with Bot("1:wrong", base_url=f"{base_url}/bot"):
            pass  # initialize() calls getMe, which the server refuses


@pytest.mark.parametrize("mode", ["502", "drop"])
async def test_outage_is_a_network_error(server, bot: Bot, mode: str) -> None:
    state, _ = server
    state.outage, state.outage_mode = True, mode
    with pytest.raises(NetworkError):
        await bot.send_message(CHAT, "lost")
    state.outage = False
    await bot.send_message(CHAT, "back")
    assert state.texts() == ["back"]


async def test_raw_http_answers(server) -> None:
    _, base_url = server
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{base_url}/botWRONG/getMe") as response:
            assert response.status == 401
            assert await response.json() == {
                "ok": False,
                "error_code": 401,
                "description": "Unauthorized",
            }
        async with session.post(f"{base_url}/bot{FIXTURE_TOKEN}/noSuchMethod") as response:
            assert response.status == 404
            assert (await response.json())["description"] == "Not Found"
        async with session.post(
            f"{base_url}/bot{FIXTURE_TOKEN}/sendMessage", json={"chat_id": CHAT, "text": "json"}
        ) as response:
            assert (await response.json())["result"]["text"] == "json"


async def test_application_polls_commands_and_callbacks(server) -> None:
    state, base_url = server
    seen: list[str] = []

    async def status(update, context) -> None:
        seen.append(" ".join(context.args))
        await update.message.reply_text("status ok")

    async def button(update, context) -> None:
        await update.callback_query.answer("done")
        seen.append(update.callback_query.data)

    app: Application = ApplicationBuilder().token(FIXTURE_TOKEN).base_url(f"{base_url}/bot").build()
    app.add_handler(CommandHandler("status", status))
    app.add_handler(CallbackQueryHandler(button))
    async with app:
        await app.start()
        await app.updater.start_polling(poll_interval=0.0, timeout=1)
        state.push_message(CHAT, USER, "/status btc")
        state.push_callback(CHAT, USER, "ack:9", 1)
        for _ in range(100):
            if len(seen) == 2:
                break
            await asyncio.sleep(0.05)
        await app.updater.stop()
        await app.stop()
    assert seen == ["btc", "ack:9"]
    assert state.texts(CHAT) == ["status ok"]
    assert state.answered_callbacks[-1]["text"] == "done"
