"""Durable delivery: the outbox and notifiers against unmodified PTB and a local Bot API.

What must hold for a trader's phone to be paged reliably: order per chat, nothing lost
or doubled across an outage or a restart, one flood-limited chat never holding back
another, expired pages closed loudly, and the bot token never in a log line.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from aiohttp import web

from alerts.notification import Notification
from alerts.notifiers import build_destinations
from alerts.notifiers import telegram as telegram_notifier
from alerts.notifiers.base import Destination, notification_from_payload, notification_payload
from alerts.notifiers.console import ConsoleDestination
from alerts.notifiers.telegram import TelegramBot, TelegramChatDestination, split_html
from alerts.notifiers.webhook import WebhookDestination
from alerts.outbox import Outbox
from alerts.store import SCHEMA_VERSION, HistoryRow, Store
from monitor.config.schema import NotifiersConfig, TelegramChat, TelegramConfig, WebhookConfig
from monitor.config.secrets import Secret
from monitor.engine.levels import Level
from monitor.simulator.http import LocalServer
from tests.ports import refused_port
from tests.servers.telegram import FIXTURE_TOKEN, BotApiState, telegram_server

CHAT_A = 1001
CHAT_B = 1002
_ids = itertools.count(1)


def note(text: str, account: str | None = "main", level: Level = Level.CRITICAL) -> Notification:
    return Notification(
        id=f"n{next(_ids)}",
        account=account,
        accounts=(account,) if account else (),
        level=level,
        text=text,
        created=time.time(),
        kind="alert",
        targets=("BTC/USDT:USDT long isolated",),
    )


async def until(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.01)


@pytest.fixture
async def server() -> AsyncIterator[tuple[BotApiState, str]]:
    async with telegram_server() as served:
        yield served


@pytest.fixture
def store(tmp_path: Path):
    opened = Store.open(tmp_path)
    yield opened
    opened.close()


def chats(base_url: str, *chat_ids: int, token: str = FIXTURE_TOKEN) -> list[Destination]:
    bot = TelegramBot(token, base_url)
    return [TelegramChatDestination(bot, chat_id) for chat_id in chat_ids]


def outbox(store: Store, destinations: list[Destination], expire_after: float = 60.0) -> Outbox:
    return Outbox(store, destinations, expire_after, backoff_base=0.05, backoff_cap=0.2)


async def test_messages_arrive_in_order(server, store: Store) -> None:
    state, base_url = server
    box = outbox(store, chats(base_url, CHAT_A))
    await box.start()
    texts = [f"BTC margin {i}% <below> & falling" for i in range(8)]
    for text in texts:
        assert box.enqueue(note(text)) == 1
    assert await box.drain(5)
    await box.stop()
    assert state.texts(CHAT_A) == [
        t.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;") for t in texts
    ]
    assert [m["plain"] for m in state.sent] == texts  # shown exactly as written
    assert all(row.delivered_at is not None and row.attempts == 1 for row in store.outbox_all())


@pytest.mark.parametrize("mode", ["502", "drop"])
async def test_outage_then_recovery_loses_and_doubles_nothing(server, store: Store, mode) -> None:
    state, base_url = server
    state.outage, state.outage_mode = True, mode
    box = outbox(store, chats(base_url, CHAT_A))
    await box.start()
    texts = [f"page {i}" for i in range(6)]
    for text in texts[:3]:
        box.enqueue(note(text))
    await until(lambda: box.stats.retried >= 4)
    for text in texts[3:]:
        box.enqueue(note(text))  # queued behind the stuck head, in order
    await asyncio.sleep(0.2)
    assert state.sent == []
    state.outage = False
    assert await box.drain(5)
    await box.stop()
    assert [m["plain"] for m in state.sent] == texts
    rows = store.outbox_all()
    assert all(r.delivered_at is not None for r in rows)
    assert rows[0].attempts > 1 and rows[0].last_error is None


async def test_flood_on_one_chat_does_not_stall_another(server, store: Store) -> None:
    state, base_url = server
    state.flood[CHAT_A] = 1
    box = outbox(store, chats(base_url, CHAT_A, CHAT_B))
    await box.start()
    started = time.monotonic()
    for i in range(3):
        assert box.enqueue(note(f"page {i}")) == 2  # both chats hear about "main"
    await until(lambda: len(state.texts(CHAT_B)) == 3, timeout=0.8)
    assert state.texts(CHAT_A) == []  # still honouring retry_after
    assert await box.drain(5)
    await box.stop()
    assert time.monotonic() - started >= 1.0
    assert [m["plain"] for m in state.sent if m["chat_id"] == CHAT_A] == [
        "page 0",
        "page 1",
        "page 2",
    ]
    first_a = next(m["time"] for m in state.sent if m["chat_id"] == CHAT_A)
    last_b = max(m["time"] for m in state.sent if m["chat_id"] == CHAT_B)
    assert last_b < first_a


async def test_restart_resumes_undelivered_rows(server, tmp_path: Path) -> None:
    state, base_url = server
    state.outage = True
    first_store = Store.open(tmp_path)
    first = outbox(first_store, chats(base_url, CHAT_A))
    pages = [note(f"before restart {i}") for i in range(3)]
    await first.start()
    for page in pages:
        first.enqueue(page)
    await until(lambda: first.stats.retried >= 2)
    await first.stop()  # "crash": rows stay pending in SQLite
    first_store.close()

    state.outage = False
    second_store = Store.open(tmp_path)
    second = outbox(second_store, chats(base_url, CHAT_A))
    assert second.enqueue(pages[0]) == 0  # idempotent on (notification id, destination)
    await second.start()
    assert await second.drain(5)
    await second.stop()
    assert [m["plain"] for m in state.sent] == [p.text for p in pages]
    assert [r.notification_id for r in second_store.outbox_all()] == [p.id for p in pages]
    second_store.close()


async def test_expired_rows_are_marked_and_logged(server, store: Store, caplog) -> None:
    state, base_url = server
    state.outage = True
    box = outbox(store, chats(base_url, CHAT_A), expire_after=0.4)
    await box.start()
    with caplog.at_level(logging.ERROR, logger="alerts.outbox"):
        box.enqueue(note("liquidation in 2%"))
        assert await box.drain(3)
    await box.stop()
    (row,) = store.outbox_all()
    assert row.expired_at is not None and row.delivered_at is None
    assert row.attempts >= 1 and "Bad Gateway" in (row.last_error or "")
    expired = [r for r in caplog.records if "EXPIRED" in r.getMessage()]
    assert len(expired) == 1 and "liquidation in 2%" in expired[0].getMessage()
    assert box.stats.expired == 1


async def test_permanent_failure_is_closed_and_next_row_goes_on(server, store, caplog) -> None:
    state, base_url = server
    state.fail[CHAT_A] = (403, "Forbidden: bot was blocked by the user")
    box = outbox(store, chats(base_url, CHAT_A))
    await box.start()
    box.enqueue(note("refused"))
    await until(lambda: box.stats.failed == 1)
    del state.fail[CHAT_A]
    box.enqueue(note("accepted"))
    assert await box.drain(5)
    await box.stop()
    assert [m["plain"] for m in state.sent] == ["accepted"]
    refused, accepted = store.outbox_all()
    assert refused.failed_at is not None and "blocked" in (refused.last_error or "")
    assert refused.attempts == 1  # permanent: never retried
    assert accepted.delivered_at is not None
    assert any("UNDELIVERED" in r.getMessage() for r in caplog.records)


async def test_long_message_is_split_under_the_limit(server, store: Store) -> None:
    state, base_url = server
    lines = [f"{i:04d} BTC/USDT:USDT long isolated ratio 0.{i:03d} <&>" for i in range(300)]
    box = outbox(store, chats(base_url, CHAT_A))
    await box.start()
    box.enqueue(note("\n".join(lines)))
    assert await box.drain(5)
    await box.stop()
    assert len(state.sent) >= 3
    assert all(len(m["plain"]) <= 4096 for m in state.sent)
    assert "".join(m["plain"] for m in state.sent) == "\n".join(lines)
    assert all(m["plain"].endswith("\n") for m in state.sent[:-1])  # cut at line ends


def test_split_html_keeps_tags_balanced() -> None:
    text = "<b>" + "word " * 2000 + "</b>\n<i>tail</i>"
    parts = split_html(text, limit=1000)
    assert len(parts) > 5
    for part in parts:
        assert part.count("<b>") == part.count("</b>")
    assert split_html("short") == ["short"]
    emoji = "🚨" * 3000  # two UTF-16 units each: Telegram counts 6000
    assert len(split_html(emoji)) == 2


async def test_unparseable_html_is_resent_as_plain_text(server, store, monkeypatch) -> None:
    state, base_url = server
    monkeypatch.setattr(telegram_notifier, "TEXT_FORMAT", "html")
    box = outbox(store, chats(base_url, CHAT_A))
    await box.start()
    box.enqueue(note("<b>critical</b> <unknown>tag"))
    assert await box.drain(5)
    await box.stop()
    assert [m["parse_mode"] for m in state.sent] == [None]
    assert state.sent[0]["plain"] == "critical tag"


async def test_routing_by_account(server, store: Store) -> None:
    state, base_url = server
    bot = TelegramBot(FIXTURE_TOKEN, base_url)
    box = outbox(
        store,
        [
            TelegramChatDestination(bot, CHAT_A, ["main"]),
            TelegramChatDestination(bot, CHAT_B, ["hedge"]),
        ],
    )
    await box.start()
    box.enqueue(note("main only", account="main"))
    box.enqueue(note("hedge only", account="hedge"))
    box.enqueue(note("everyone: feed blind", account=None))
    assert await box.drain(5)
    await box.stop()
    assert [m["plain"] for m in state.sent if m["chat_id"] == CHAT_A] == [
        "main only",
        "everyone: feed blind",
    ]
    assert [m["plain"] for m in state.sent if m["chat_id"] == CHAT_B] == [
        "hedge only",
        "everyone: feed blind",
    ]


async def test_daemon_starts_while_telegram_is_unreachable(store: Store, unused_port) -> None:
    config = NotifiersConfig(
        console=True,
        telegram=TelegramConfig(
            bot_token=Secret(FIXTURE_TOKEN),
            api_url=f"http://127.0.0.1:{unused_port}",
            chats=(TelegramChat(chat_id=CHAT_A),),
        ),
    )
    box = outbox(store, build_destinations(config))
    async with asyncio.timeout(1):
        await box.start()  # no getMe, nothing awaited on the network
    box.enqueue(note("nobody home"))
    await until(lambda: box.stats.retried >= 2 and box.stats.delivered == 1)
    await box.stop()
    telegram_row = next(r for r in store.outbox_all() if r.destination == f"telegram:{CHAT_A}")
    assert telegram_row.delivered_at is None and "NetworkError" in (telegram_row.last_error or "")


@pytest.fixture
def unused_port() -> int:
    return refused_port()


async def test_bot_token_never_appears_in_logs(server, tmp_path: Path, caplog) -> None:
    state, base_url = server
    caplog.set_level(logging.DEBUG)
    store = Store.open(tmp_path)
    wrong_token = "987654321:AAWrongTokenWrongTokenWrongToken_0"
    destinations = [
        *chats(base_url, CHAT_A, CHAT_B),
        *chats(base_url, 1003, token=wrong_token),
    ]
    box = outbox(store, destinations, expire_after=1.5)
    state.flood[CHAT_A] = 1
    state.fail[CHAT_B] = (403, "Forbidden: bot was blocked by the user")
    await box.start()
    box.enqueue(note("first", account=None))
    await until(lambda: box.stats.failed >= 1 and box.stats.retried >= 3)
    state.outage, state.outage_mode = True, "drop"
    box.enqueue(note("second", account=None))
    await until(lambda: box.stats.retried >= 6)
    state.outage = False
    assert await box.drain(5)
    await box.stop()
    logged = "\n".join(
        f"{r.name} {r.getMessage()} {r.exc_text or ''} {r.exc_info or ''}" for r in caplog.records
    )
    assert "telegram.ext.ExtBot" in logged  # PTB's own debug logging was captured
    for token in (FIXTURE_TOKEN, wrong_token, FIXTURE_TOKEN.split(":")[1]):
        assert token not in logged
        assert all(token not in (r.last_error or "") for r in store.outbox_all())
    assert any("EXPIRED" in r.getMessage() for r in caplog.records)  # the wrong-token chat
    store.close()


# -- webhook -----------------------------------------------------------------------------


@pytest.fixture
async def receiver() -> AsyncIterator[tuple[list, list[int], str]]:
    received: list[dict] = []
    statuses: list[int] = []  # answers to give, in order; 200 when empty

    async def hook(request: web.Request) -> web.Response:
        body = await request.json()
        status = statuses.pop(0) if statuses else 200
        if status == 200:
            received.append(body)
        headers = {"Retry-After": "0"} if status == 429 else {}
        return web.Response(status=status, text="x", headers=headers)

    app = web.Application()
    app.router.add_post("/hooks/secret-path-token", hook)
    async with LocalServer(app) as server:
        yield received, statuses, f"{server.base_url}/hooks/secret-path-token"


async def test_webhook_delivers_retries_and_refuses(receiver, store: Store, caplog) -> None:
    received, statuses, url = receiver
    statuses.extend([503, 429, 200, 400])
    box = outbox(store, [WebhookDestination(url)])
    await box.start()
    first = note("<b>not html</b>: plain & simple")
    box.enqueue(first)
    box.enqueue(note("rejected"))
    assert await box.drain(5)
    await box.stop()
    assert received == [
        {
            "id": first.id,
            "account": "main",
            "accounts": ["main"],
            "level": "critical",
            "kind": "alert",
            "text": "<b>not html</b>: plain & simple",
            "targets": ["BTC/USDT:USDT long isolated"],
            "created": first.created,
        }
    ]
    delivered, rejected = store.outbox_all()
    assert delivered.attempts == 3 and delivered.delivered_at is not None
    assert rejected.failed_at is not None and "HTTP 400" in (rejected.last_error or "")
    assert "secret-path-token" not in caplog.text
    assert all("secret-path-token" not in (r.last_error or "") for r in store.outbox_all())


async def test_webhook_connection_refused_retries(store: Store, unused_port) -> None:
    box = outbox(store, [WebhookDestination(f"http://127.0.0.1:{unused_port}/x")], 0.5)
    await box.start()
    box.enqueue(note("nobody listening"))
    assert await box.drain(3)
    await box.stop()
    (row,) = store.outbox_all()
    assert row.expired_at is not None and row.attempts >= 2


# -- console, config, store --------------------------------------------------------------


async def test_console_logs_one_line_per_notification(store: Store, caplog) -> None:
    box = outbox(store, [ConsoleDestination()])
    await box.start()
    with caplog.at_level(logging.INFO, logger="marginwatch.notify"):
        box.enqueue(note("line one\nline two", level="imminent"))
        assert await box.drain(2)
    await box.stop()
    (record,) = [r for r in caplog.records if r.name == "marginwatch.notify"]
    assert record.levelno == logging.CRITICAL
    assert record.getMessage() == "[alert imminent] main: line one | line two"


def test_build_destinations_from_config() -> None:
    config = NotifiersConfig(
        console=False,
        telegram=TelegramConfig(
            bot_token=Secret(FIXTURE_TOKEN),
            chats=(TelegramChat(chat_id=5), TelegramChat(chat_id=6, accounts=("hedge",))),
        ),
        webhooks=(WebhookConfig(url="https://example.invalid/hook?key=s3cret"),),
    )
    destinations = build_destinations(config)
    keys = [d.key for d in destinations]
    assert keys[:2] == ["telegram:5", "telegram:6"] and keys[2].startswith("webhook:")
    assert "s3cret" not in destinations[2].label and "s3cret" not in keys[2]
    assert not destinations[1].wants(note("x", account="main"))
    assert destinations[1].wants(note("x", account="hedge"))


async def test_unconfigured_destination_rows_are_closed_loudly(store: Store, caplog) -> None:
    store.outbox_add("old", notification_payload(note("for a removed chat")), ["telegram:9"], 1.0)
    box = outbox(store, [ConsoleDestination()])
    await box.start()
    await box.stop()
    (row,) = store.outbox_all()
    assert row.failed_at is not None
    assert "no longer configured" in caplog.text and "for a removed chat" in caplog.text


def test_store_schema_kv_history_and_prune(tmp_path: Path) -> None:
    store = Store.open(tmp_path)
    assert store.schema_version == SCHEMA_VERSION
    store.kv_set("pipeline", {"open": ["main"], "seq": 3})
    assert store.kv_get("pipeline") == {"open": ["main"], "seq": 3}
    assert store.kv_get("missing", default={}) == {}
    now = 10 * 86400.0
    store.history_add(
        [
            HistoryRow(now - 3 * 86400, "main", "pool USDT", 0.2, 0.3),
            HistoryRow(now - 60, "main", "pool USDT", 0.5, 0.1),
            HistoryRow(now - 30, "main", "BTC/USDT:USDT long isolated", None, None),
            HistoryRow(now - 30, "hedge", "pool USDT", 0.1, 0.9),
        ]
    )
    assert [r.margin_ratio for r in store.history("main", now - 4 * 86400)] == [0.2, 0.5, None]
    assert store.history_series("main", now - 120) == [
        (now - 60, "pool USDT", 0.5),
        (now - 30, "BTC/USDT:USDT long isolated", None),
    ]
    assert store.history_prune(keep_days=2, now=now) == 1
    payload = notification_payload(note("x"))
    assert store.outbox_add("a", payload, ["console", "telegram:1"], 1.0) != []
    assert store.outbox_add("a", payload, ["console", "telegram:1"], 2.0) == []
    loaded = notification_from_payload(store.outbox_all()[0].payload)
    assert loaded.targets == payload["targets"]
    assert type(loaded.level) is Level and loaded.level is Level.CRITICAL  # "critical" stored
    store.close()
    reopened = Store.open(tmp_path)  # migrations are not re-run
    assert reopened.schema_version == SCHEMA_VERSION and reopened.kv_get("pipeline")["seq"] == 3
    reopened.close()
