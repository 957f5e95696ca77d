"""`marginwatch run`: the daemon's lifecycle under systemd (or a terminal).

Signals: SIGTERM/SIGINT stop cleanly (every ccxt session and socket closed); SIGHUP
reloads the configuration, validating it first (off the event loop) and keeping the
running one when the new one is invalid. systemd hears READY after the first successful
evaluation, WATCHDOG only while the loop and the data are healthy, STATUS with a one-line
summary. The same verdict feeds /healthz on the metrics port and the push heartbeat
(`daemon.heartbeat_url`), so a watcher outside the machine pages when marginwatch dies,
hangs or goes blind.

The runner owns what outlives a reload: the event bus (monitor/bus.py) with its
subscribers (log, audit file, metrics, plugins), the level tracker, the kill switch, and
the plugin host (monitor/daemon/host.py). Each daemon it builds publishes on that bus
and unsubscribes its own wiring when it stops, so nobody re-attaches after a reload.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import signal
import time
from collections.abc import Callable
from pathlib import Path

from monitor.actions.guards import KillSwitch
from monitor.bus import ConfigReloaded, EventBus, Polled
from monitor.config import Config, ConfigError, load_config
from monitor.config.errors import ConfigIssue
from monitor.daemon.host import DaemonHost
from monitor.daemon.plugins import Plugin, load_plugins
from monitor.daemon.service import Daemon
from monitor.daemon.sinks import EventSink, JsonLinesSink, LogSink
from monitor.engine.levels import Level
from monitor.events import Event, EventKind, TargetKind
from monitor.events.tracker import LevelTracker
from monitor.heappolicy import keep_freed_pages
from monitor.ops import sdnotify
from monitor.ops.health import Health
from monitor.ops.heartbeat import Heartbeat
from monitor.ops.metrics import Metrics
from monitor.ops.state_dir import state_dir_problem
from monitor.venues.registry import lacks

log = logging.getLogger(__name__)

STATUS_PERIOD = 5.0
METRICS_PERIOD = 2.0
HEALTH_MAX_AGE = 3 * STATUS_PERIOD
"""/healthz calls a verdict older than this stalled: the loop stopped reporting."""


def _load_usable(path: Path) -> Config:
    """The configuration at `path`, refused also when its state_dir is unusable: the
    running daemon is stopped before the new one is built, so the new one must not fail."""
    config = load_config(path, venues=lacks)
    problem = state_dir_problem(config.state_dir)
    if problem is not None:
        raise ConfigError([ConfigIssue("state_dir", f"unusable: {problem}", None, path.name)])
    return config


class Runner:
    """Owns the running Daemon and swaps it on a valid reload."""

    def __init__(
        self,
        config_path: Path,
        config: Config,
        events_path: Path | None = None,
        extra_sinks: list[EventSink] | None = None,
        on_tick_done: Callable[[float, int], None] | None = None,
        use_plugins: bool = True,
    ) -> None:
        self.config_path = config_path
        self.config = config
        self.metrics = Metrics()
        self.health = Health(HEALTH_MAX_AGE)
        self._heartbeat_task: asyncio.Task[None] | None = None
        self.bus = EventBus()
        """One for the process: every daemon publishes here, every subscriber stays."""
        self._jsonl = JsonLinesSink(events_path, self.bus) if events_path else None
        sinks: list[EventSink] = [LogSink(), *(extra_sinks or [])]
        for sink in [*sinks, self._jsonl] if self._jsonl else sinks:
            self.bus.subscribe(Event, sink.emit)
        self.bus.subscribe(Event, self._count_event)
        self.bus.subscribe(Polled, self._count_read)
        self.tracker = LevelTracker()
        self.kill_switch = KillSwitch(config.state_dir)
        """One for the process: a /pause survives a configuration reload."""
        self._on_tick_done = on_tick_done
        self.host = DaemonHost(
            lambda: self.daemon, lambda: self.config,
            bus=self.bus, kill_switch=self.kill_switch, metrics=self.metrics,
        )  # fmt: skip
        """What plugins see and may do (monitor/daemon/plugins.py), whatever daemon runs."""
        self.daemon = self._build(config)
        self.stopping = asyncio.Event()
        self._stopped_by: signal.Signals | None = None
        self._reloads: asyncio.Queue[None] = asyncio.Queue()
        self.plugins: list[Plugin] = load_plugins(self.host) if use_plugins else []

    def _build(self, config: Config) -> Daemon:
        return Daemon(
            config, tracker=self.tracker, on_tick_done=self._tick_done,
            kill_switch=self.kill_switch, bus=self.bus, confirmer=self.host.confirmer,
        )  # fmt: skip

    def _count_event(self, event: Event) -> None:
        self.metrics.event(event.kind.value, event.level)

    def _count_read(self, read: Polled) -> None:
        self.metrics.rest_call(read.account, read.exchange, "snapshot")
        if read.error is not None:
            self.metrics.rest_error(read.account, read.exchange, "snapshot", read.error)

    def _tick_done(self, received: float, evaluated: int) -> None:
        self.metrics.tick(time.monotonic() - received)
        if self._on_tick_done is not None:
            self._on_tick_done(received, evaluated)

    # --- main loop ---------------------------------------------------------------

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self._stop, sig)
        loop.add_signal_handler(signal.SIGHUP, self._reloads.put_nowait, None)
        server = None
        if self.config.metrics.port is not None:
            server = self.metrics.start_http(
                self.config.metrics.port, self.config.metrics.host, health=self.health
            )
        await self.daemon.start()
        for plugin in self.plugins:
            await plugin.start()
        helpers = [
            asyncio.create_task(self._announce_ready(), name="ready"),
            asyncio.create_task(self._watchdog(), name="watchdog"),
            asyncio.create_task(self._reload_loop(), name="reload"),
            asyncio.create_task(self._metrics_loop(), name="metrics"),
        ]
        self._start_heartbeat()
        try:
            await self.stopping.wait()
        finally:
            sdnotify.stopping()
            if self._heartbeat_task is not None:
                helpers.append(self._heartbeat_task)
            for task in helpers:
                task.cancel()
            await asyncio.gather(*helpers, return_exceptions=True)
            for plugin in reversed(self.plugins):
                try:
                    await plugin.stop()
                except Exception:
                    log.exception("plugin %s failed to stop", type(plugin).__name__)
            await self.daemon.stop()
            if server is not None:
                server.close()
            if self._jsonl:
                self._jsonl.close()
            for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
                loop.remove_signal_handler(sig)
        log.info("stopped")
        # SIGTERM is how systemd stops a service: a clean 0. Ctrl-C reads as the shell expects.
        return 128 + signal.SIGINT if self._stopped_by == signal.SIGINT else 0

    def _stop(self, sig: signal.Signals) -> None:
        if not self.stopping.is_set():
            log.info("stopping on %s", sig.name)
            self._stopped_by = sig
        self.stopping.set()

    async def _announce_ready(self) -> None:
        await self.daemon.first_evaluation.wait()
        # Markets, modules and the first books live as long as the process: keep the
        # collector from rescanning them on every tick's allocations (tail latency; the
        # other half of the policy, no collection inside a frame: monitor/gcpolicy.py),
        # and keep the heap pages a frame's arrays reuse (monitor/heappolicy.py).
        gc.freeze()
        keep_freed_pages()
        sdnotify.ready()
        sdnotify.status(self.daemon.summary())
        self.check_health()
        log.info("first evaluation done: %s", self.daemon.summary())

    async def _watchdog(self) -> None:
        """WATCHDOG=1 only while healthy: a stalled loop or blind data lets systemd act."""
        interval = sdnotify.watchdog_interval()
        period = min(STATUS_PERIOD, interval / 2) if interval else STATUS_PERIOD
        while True:
            await asyncio.sleep(period)
            sdnotify.status(self.daemon.summary())
            if self.daemon.healthy():
                sdnotify.watchdog()
            self.check_health()

    def check_health(self) -> bool:
        """The verdict now (first evaluation done, and what feeds the watchdog), recorded
        for /healthz, which is read from the metrics server's thread."""
        healthy = self.daemon.first_evaluation.is_set() and self.daemon.healthy()
        self.health.report(healthy, self.daemon.summary())
        self.metrics.healthy.set(1 if healthy else 0)
        return healthy

    def _heartbeat_verdict(self) -> bool | None:
        """None until the (re)built daemon's first evaluation: starting is not failing."""
        if not self.daemon.first_evaluation.is_set():
            return None
        return self.check_health()

    def _start_heartbeat(self) -> None:
        """(Re)start the push heartbeat with the current configuration, if it has one."""
        if self._heartbeat_task is not None:
            self._heartbeat_task.cancel()
            self._heartbeat_task = None
        daemon = self.config.daemon
        if daemon.heartbeat_url is None:
            return
        fail = daemon.heartbeat_fail_url.reveal() if daemon.heartbeat_fail_url else None
        heartbeat = Heartbeat(
            daemon.heartbeat_url.reveal(), daemon.heartbeat_interval, self._heartbeat_verdict,
            fail_url=fail,
        )  # fmt: skip
        self._heartbeat_task = asyncio.create_task(heartbeat.run(), name="heartbeat")

    async def _metrics_loop(self) -> None:
        while True:
            await asyncio.sleep(METRICS_PERIOD)
            for group in self.daemon.groups.values():
                if group.feed is not None:
                    self.metrics.feed_status(group.exchange, group.feed.status.value)
                    if group.feed.last_message_at is not None:
                        age = time.monotonic() - group.feed.last_message_at
                        self.metrics.feed_message(group.exchange, time.time() - age)
            for budget in self.daemon.budgets.all():
                self.metrics.request_budget(budget.host, budget.used, budget.waits)
            for monitor in self.daemon.monitors:
                risk = monitor.current()  # evaluated exactly now if a tick moved its marks
                if risk is not None:
                    self.metrics.observe_account(risk)
                await asyncio.sleep(0)  # one account at a time: ticks never wait for all

    async def _reload_loop(self) -> None:
        while True:
            await self._reloads.get()
            await self.reload()

    async def reload(self) -> bool:
        """Apply a new configuration if it validates; otherwise keep the running one.

        Read and validated in a worker thread: the loader is bounded (size, aliases,
        problems shown), but even a bounded megabyte takes a while to parse, and ticks,
        polls and the watchdog must not wait for it.
        """
        try:
            config = await asyncio.to_thread(_load_usable, self.config_path)
        except (ConfigError, OSError) as exc:
            log.error("reload refused, keeping the running configuration:\n%s", exc)
            self._config_event(Level.WARN, f"reload refused: {exc}")
            return False
        sdnotify.reloading()
        await self.daemon.stop()
        for account in self.config.accounts:
            if not any(a.name == account.name for a in config.accounts):
                self.metrics.forget_account(account.name)
        self.config = config
        self.daemon = self._build(config)
        await self.daemon.start()
        self._start_heartbeat()
        sdnotify.ready()
        self.bus.publish(ConfigReloaded(config))
        self._config_event(Level.OK, f"configuration reloaded: {len(config.accounts)} accounts")
        return True

    def _config_event(self, level: Level, message: str) -> None:
        """A reload's outcome, into the same event stream as everything else."""
        self.bus.publish(Event(EventKind.CONFIG, None, "config", TargetKind.ACCOUNT, level=level,
                             message=message))  # fmt: skip
