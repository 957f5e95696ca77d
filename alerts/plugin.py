"""Alerting attached to the running daemon: rules → outbox → notifiers, and the console.

Registered as the `marginwatch.plugins` entry point `alerts`, so `monitor` never imports
`alerts`. Monitoring never waits for any of it: the pipeline's sink only records events,
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
from typing import Any

from alerts.console import Console
from alerts.console.approvals import Approvals
from alerts.notification import Notification
from alerts.notifiers import build_destinations
from alerts.outbox import Outbox
from alerts.pipeline import AlertPipeline
from alerts.store import STORAGE_ERRORS, HistoryRow, Store
from alerts.view import RunnerView

log = logging.getLogger(__name__)

STATE_KEY = "alert_pipeline"
PERSIST_PERIOD = 5.0
"""How often firing alerts and silences are saved: a crash loses at most this much."""
HISTORY_PERIOD = 30.0
HISTORY_DAYS = 14


class AlertsPlugin:
    """Owns the alert pipeline, the outbox, the console and their background tasks."""

    def __init__(self, runner: Any) -> None:
        self.runner = runner
        config = runner.config
        self.store = Store.open(config.state_dir)
        self.outbox = Outbox(
            self.store,
            build_destinations(config.notifiers, {a.name: a.exchange for a in config.accounts}),
            config.alerts.expire_after,
        )
        self.pipeline = AlertPipeline(
            lambda: self.runner.config, RunnerView(runner), time.time, self._deliver
        )
        self.console = Console(runner, self.pipeline.silences, self.store)
        self.approvals = Approvals(runner, self.console, self.console.confirmations)
        self._tasks: list[asyncio.Task[None]] = []
        runner.add_sink(self.pipeline)

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
        self._plug_confirmers()
        self._tasks = [
            asyncio.create_task(self.pipeline.run(), name="alert-pipeline"),
            asyncio.create_task(self._persist(), name="alert-state"),
            asyncio.create_task(self._record_history(), name="ratio-history"),
        ]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._save()
        await self.console.stop()
        await self.outbox.stop()
        self.store.close()

    async def reloaded(self) -> None:
        await self.console.reloaded()
        self._plug_confirmers()

    def _plug_confirmers(self) -> None:
        """confirm mode asks through Telegram; each (re)built daemon gets the bridge."""
        for controller in self.runner.daemon.controllers.values():
            controller.confirmer = self.approvals

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
            self.runner.metrics.alert_delivery(
                storage_failing=self.outbox.storage.failing, pending=len(self.outbox.pending())
            )

    async def _record_history(self) -> None:
        """Sample every pool's and isolated position's figures for `/chart`."""
        while True:
            await asyncio.sleep(HISTORY_PERIOD)
            now = time.time()
            rows = []
            for monitor in self.runner.daemon.monitors:
                await asyncio.sleep(0)  # one account at a time: ticks never wait for all
                risk = monitor.current()
                if risk is None:
                    continue
                rows.extend(
                    HistoryRow(now, monitor.name, f"pool {p.asset}", p.margin_ratio,
                               p.liquidation_distance)
                    for p in risk.pools
                )  # fmt: skip
                rows.extend(
                    HistoryRow(now, monitor.name, target, p.margin_ratio, p.liquidation_distance)
                    for target, p in monitor.latest_positions.items()
                )
            try:
                self.store.history_add(rows)
                self.store.history_prune(HISTORY_DAYS, now)
            except STORAGE_ERRORS as exc:
                self.outbox.storage_failed("recording the ratio history", exc)
            except Exception:
                log.exception("could not record the ratio history")


def install(runner: Any) -> AlertsPlugin:
    """The entry point: `[project.entry-points."marginwatch.plugins"] alerts = ...`."""
    return AlertsPlugin(runner)
