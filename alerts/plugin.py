"""Alerting attached to the running daemon: rules → outbox → notifiers, and the console.

Registered as the `marginwatch.plugins` entry point `alerts`, so `monitor` never imports
`alerts`. It sees the daemon only through the typed boundary monitor declares
(monitor/daemon/plugins.py: a read-only state view, a few commands, the bus), subscribes
once, and keeps working across configuration reloads without re-attaching: the host and
its bus outlive every daemon a reload builds, and a `ConfigReloaded` message tells the
console to pick up a changed Telegram section.

Monitoring never waits for any of it: the pipeline's subscriber only records events,
notifications are written to SQLite before anything is sent, and the Telegram console
connects in the background, retrying while Telegram is unreachable.

Each notification is committed together with the pipeline's state as it stands after
the notification (what the user now knows), so a crash can never leave a page queued
that the restarted pipeline believes unsaid. A storage failure costs no page (the outbox
then delivers from memory) and is reported, never at INFO.
"""

from __future__ import annotations

import asyncio
import logging
import time

from alerts.console import Console
from alerts.console.approvals import Approvals
from alerts.notification import Notification
from alerts.notifiers import build_destinations
from alerts.outbox import Outbox
from alerts.pipeline import AlertPipeline
from alerts.store import STORAGE_ERRORS, HistoryRow, Store
from alerts.view import HostView
from monitor.bus import ConfigReloaded
from monitor.daemon.plugins import PluginHost
from monitor.events import Event

log = logging.getLogger(__name__)

STATE_KEY = "alert_pipeline"
PERSIST_PERIOD = 5.0
"""How often firing alerts and silences are saved: a crash loses at most this much."""
HISTORY_PERIOD = 30.0
HISTORY_DAYS = 14


class AlertsPlugin:
    """Owns the alert pipeline, the outbox, the console and their background tasks."""

    def __init__(self, host: PluginHost) -> None:
        self.host = host
        config = host.config
        self.store = Store.open(config.state_dir)
        self.outbox = Outbox(
            self.store,
            build_destinations(config.notifiers, {a.name: a.exchange for a in config.accounts}),
            config.alerts.expire_after,
        )
        self.pipeline = AlertPipeline(
            lambda: self.host.config, HostView(host), time.time, self._deliver
        )
        self.console = Console(host, self.pipeline.silences, self.store)
        self.approvals = Approvals(host, self.console, self.console.confirmations)
        self._tasks: list[asyncio.Task[None]] = []
        self._reloads: set[asyncio.Task[None]] = set()
        host.subscribe(Event, self.pipeline.emit)
        host.subscribe(ConfigReloaded, self._reloaded)
        host.answer_confirmations(self.approvals)  # confirm mode asks through Telegram

    async def start(self) -> None:
        try:
            saved = self.store.kv_get(STATE_KEY)
        except STORAGE_ERRORS as exc:
            self.outbox.storage_failed("reading the alert state", exc)
            saved = None
        if saved:
            self.pipeline.restore_state(saved, time.time())
        await self.outbox.start()
        await self.console.start()
        self._tasks = [
            asyncio.create_task(self.pipeline.run(), name="alert-pipeline"),
            asyncio.create_task(self._persist(), name="alert-state"),
            asyncio.create_task(self._record_history(), name="ratio-history"),
        ]

    async def stop(self) -> None:
        tasks = [*self._tasks, *self._reloads]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._save()
        await self.console.stop()
        await self.outbox.stop()
        self.store.close()

    def _reloaded(self, _news: ConfigReloaded) -> None:
        """A reload may change the bot's token, chats or users: the console rebuilds
        itself then, in the background (the bus delivers on the runner's stack)."""
        task = asyncio.create_task(self.console.reloaded(), name="telegram-console-reload")
        self._reloads.add(task)
        task.add_done_callback(self._reloads.discard)

    def _deliver(self, notification: Notification) -> None:
        self.outbox.enqueue(notification, state={STATE_KEY: self.pipeline.export_state()})

    def _save(self) -> None:
        try:
            self.store.kv_set(STATE_KEY, self.pipeline.export_state(), time.time())
        except STORAGE_ERRORS as exc:
            self.outbox.storage_failed("saving the alert state", exc)
        except Exception:
            log.exception("could not save the alert state")
        else:
            self.outbox.storage_ok()

    async def _persist(self) -> None:
        while True:
            await asyncio.sleep(PERSIST_PERIOD)
            self._save()
            self.host.report_alert_delivery(
                storage_failing=self.outbox.storage.failing, pending=len(self.outbox.pending())
            )

    async def _record_history(self) -> None:
        """Sample every pool's and isolated position's figures for `/chart`."""
        while True:
            await asyncio.sleep(HISTORY_PERIOD)
            now = time.time()
            rows = []
            for account in self.host.accounts():
                await asyncio.sleep(0)  # one account at a time: ticks never wait for all
                risk = self.host.risk(account)
                if risk is None:
                    continue
                rows.extend(
                    HistoryRow(now, account, f"pool {p.asset}", p.margin_ratio,
                               p.liquidation_distance)
                    for p in risk.pools
                )  # fmt: skip
                rows.extend(
                    HistoryRow(now, account, target, p.margin_ratio, p.liquidation_distance)
                    for target, p in self.host.positions(account).items()
                )
            try:
                self.store.history_add(rows)
                self.store.history_prune(HISTORY_DAYS, now)
            except STORAGE_ERRORS as exc:
                self.outbox.storage_failed("recording the ratio history", exc)
            except Exception:
                log.exception("could not record the ratio history")


def install(host: PluginHost) -> AlertsPlugin:
    """The entry point: `[project.entry-points."marginwatch.plugins"] alerts = ...`."""
    return AlertsPlugin(host)
