"""Pages survive a store that cannot be written: a real SQLite file refusing writes.

The outbox is given a real file and SQLite itself is made to refuse, by the limits it
enforces on the daemon's own connection: `PRAGMA max_page_count` at the file's current
size (every insert that needs a page fails with SQLITE_FULL, "database or disk is full",
exactly what a full disk returns) and `PRAGMA query_only` ("attempt to write a readonly
database", what a read-only mount returns). Delivery is PTB to the local Bot API server.
The full-disk case with a real filesystem filling up is in tests/test_alerts_full_disk.py;
the dry-run action step with an unwritable journal is here too.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from pathlib import Path

from alerts.notifiers.console import ConsoleDestination
from alerts.outbox import Outbox
from alerts.store import FILENAME, LOCK_TIMEOUT, Store
from monitor.daemon.service import Daemon
from monitor.events import Event, EventKind
from monitor.simulator.runner import SimulatedVenue
from monitor.simulator.scenario import parse_scenario
from tests.servers.telegram import telegram_server
from tests.test_actions_sim import STILL, config_for
from tests.test_actions_sim import until as until_sim
from tests.test_alerts_delivery import CHAT_A, chats, note, until


def fill(store: Store) -> None:
    """The file may not grow past its size now: the next insert fails as on a full disk."""
    pages = store._db.execute("PRAGMA page_count").fetchone()[0]
    store._db.execute(f"PRAGMA max_page_count = {pages}")


def unfill(store: Store) -> None:
    store._db.execute("PRAGMA max_page_count = 1073741823")


async def test_pages_are_delivered_from_memory_when_the_file_is_full(
    tmp_path: Path, caplog
) -> None:
    caplog.set_level(logging.INFO)
    store = Store.open(tmp_path)
    async with telegram_server() as (state, api_url):
        destinations = [*chats(api_url, CHAT_A), ConsoleDestination()]
        box = Outbox(store, destinations, 60.0, backoff_base=0.05, mend_interval=0.05)
        await box.start()
        # The Bot API server has a text as soon as the request arrives, before the outbox
        # reads the reply and closes the row; each step waits for both, or the next
        # would race the close: a page still in memory when the file heals is written
        # back (then closed as delivered), as it must be, and is in the file after all.
        box.enqueue(note("before the disk filled"))
        await until(lambda: len(state.texts(CHAT_A)) == 1 and not box.pending())
        fill(store)
        for i in range(3):
            box.enqueue(note(f"page {i} while full" + " padding" * 450))
        await until(lambda: len(state.texts(CHAT_A)) == 5 and not box.pending())
        assert box.storage.failing  # the mender keeps failing while the file is full
        unfill(store)
        await until(lambda: len(state.texts(CHAT_A)) == 6)
        assert await box.drain(5)
        await box.stop()
    texts = [t.splitlines()[0] for t in state.texts(CHAT_A)]
    assert texts == [
        "before the disk filled",
        "🔴 marginwatch · STORAGE FAILING",
        *(f"page {i} while full" + " padding" * 450 for i in range(3)),
        "✅ marginwatch · storage OK",
    ]
    assert "database or disk is full" in state.texts(CHAT_A)[1]
    assert box.stats.unstored == 2 * 4  # three pages and the failure page, two destinations
    stored = [r.payload["text"].splitlines()[0] for r in store.outbox_all()]
    assert stored == 2 * ["before the disk filled"] + 2 * ["✅ marginwatch · storage OK"]
    # The log copy: every page said by the console notifier too, failures never at INFO.
    said = [r.getMessage() for r in caplog.records if r.name == "marginwatch.notify"]
    assert len(said) == 6 and "STORAGE FAILING" in said[1]
    storage = [r for r in caplog.records if "cannot write" in r.getMessage()]
    assert storage and all(r.levelno >= logging.WARNING for r in storage)
    assert [r.levelno for r in storage].count(logging.ERROR) == 1  # the start, once
    store.close()


async def test_a_delivered_mark_that_could_not_be_written_is_written_when_the_file_heals(
    tmp_path: Path,
) -> None:
    """Telegram accepted the page but the file refused `delivered_at`: without the held
    mark a restart would page it again."""
    store = Store.open(tmp_path)
    async with telegram_server() as (state, api_url):
        state.outage = True
        box = Outbox(store, chats(api_url, CHAT_A), 60.0, backoff_base=0.05, backoff_cap=0.1)
        box.mend_interval = 3600.0  # healing is driven by hand below
        await box.start()
        box.enqueue(note("queued during the outage"))
        await until(lambda: box.stats.retried >= 1)
        store._db.execute("PRAGMA query_only = ON")  # the file turns read-only
        state.outage = False
        await until(lambda: box.stats.delivered >= 2)  # the page and the failure page
        (row,) = store.outbox_pending()
        assert row.delivered_at is None  # Telegram has it; the file does not know yet
        store._db.execute("PRAGMA query_only = OFF")
        box.storage_ok()  # what the plugin's next successful save does
        assert await box.drain(5)
        await box.stop()
        store.close()

        restarted_store = Store.open(tmp_path)
        restarted = Outbox(restarted_store, chats(api_url, CHAT_A), 60.0)
        await restarted.start()
        assert await restarted.drain(5)
        await restarted.stop()
        restarted_store.close()
    heads = [t.splitlines()[0] for t in state.texts(CHAT_A)]
    assert heads == [
        "queued during the outage",
        "🔴 marginwatch · STORAGE FAILING",
        "✅ marginwatch · storage OK",
    ]
    assert "readonly database" in state.texts(CHAT_A)[1]


async def test_a_dry_run_whose_journal_cannot_be_written_still_says_what_it_would_do(
    tmp_path: Path, caplog
) -> None:
    """The audit's "dry-run action step failed, logged at INFO only": the journal's file
    refusing writes must neither stop the step nor hide it."""
    events: list[Event] = []
    async with SimulatedVenue(parse_scenario(STILL.format(wallet=200)), speed=1) as venue:
        daemon = Daemon(config_for(venue, tmp_path, None), events.append)
        assert daemon.journal is not None
        daemon.journal._db.execute("PRAGMA query_only = ON")  # the file turns read-only
        await daemon.start()
        try:
            await until_sim(lambda: any(e.kind is EventKind.ACTION for e in events), 15)
            await asyncio.sleep(0.5)
        finally:
            await daemon.stop()
    (event,) = [e for e in events if e.kind is EventKind.ACTION]
    assert event.message.startswith("dry run, would reduce BTC long by")
    assert "not journaled" in event.message and "readonly database" in event.message
    (record,) = [r for r in caplog.records if "could not journal the dry run" in r.getMessage()]
    assert record.levelno == logging.ERROR


async def test_a_file_locked_by_another_process_delays_no_page(tmp_path: Path) -> None:
    """Another connection holds the write lock (an operator's sqlite3 shell, say): the page
    goes out from memory after at most the lock timeout, and is stored once it lifts."""
    store = Store.open(tmp_path)
    other = sqlite3.connect(tmp_path / FILENAME, isolation_level=None)
    async with telegram_server() as (state, api_url):
        box = Outbox(store, chats(api_url, CHAT_A), 60.0, mend_interval=0.1)
        await box.start()
        # a write waits out the lock for LOCK_TIMEOUT at most (SQLite's busy timeout, not
        # a clock read here), then fails and the page goes from memory while it is held
        assert store._db.execute("PRAGMA busy_timeout").fetchone() == (LOCK_TIMEOUT * 1000,)
        other.execute("BEGIN IMMEDIATE")
        box.enqueue(note("while locked"))
        await until(lambda: len(state.texts(CHAT_A)) == 2)
        other.execute("ROLLBACK")
        await until(lambda: len(state.texts(CHAT_A)) == 3)
        assert await box.drain(5)
        await box.stop()
    heads = [t.splitlines()[0] for t in state.texts(CHAT_A)]
    assert heads == [
        "🔴 marginwatch · STORAGE FAILING",
        "while locked",
        "✅ marginwatch · storage OK",
    ]
    assert "database is locked" in state.texts(CHAT_A)[0]
    other.close()
    store.close()
