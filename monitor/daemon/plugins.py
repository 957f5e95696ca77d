"""Extensions of the daemon, found by entry point, so that imports point one way.

`alerts` builds on `monitor`; `monitor` never imports `alerts`. The alerting package
registers itself under the `marginwatch.plugins` entry-point group; the runner calls each
factory with a `PluginHost` and starts and stops what it returns. Commands of its own
(`marginwatch telegram ...`) come the same way, from the `marginwatch.commands` group:
each entry is a function that adds its parser to the CLI's subcommands.

`PluginHost` is everything a plugin may see and do, and nothing more: a read-only view of
the running daemon (`DaemonState`), the few commands a person may give it through a
plugin (`DaemonCommands`), and the bus. It outlives configuration reloads (the runner
owns it and the bus, and swaps the daemon underneath), so a plugin subscribes once and
never re-attaches; it hears `ConfigReloaded` when it cares what changed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Any, Protocol

from monitor.bus import M, Subscription

if TYPE_CHECKING:
    from monitor.actions.controller import Confirmer
    from monitor.actions.journal import ActionRow
    from monitor.config import Config
    from monitor.domain import AccountSnapshot
    from monitor.engine.book import AccountBook
    from monitor.engine.levels import Level
    from monitor.engine.results import AccountRisk, PoolRisk, PositionRisk

log = logging.getLogger(__name__)

PLUGIN_GROUP = "marginwatch.plugins"
COMMAND_GROUP = "marginwatch.commands"


@dataclass(frozen=True, slots=True)
class FeedState:
    """One exchange's mark-price feed as the daemon sees it now."""

    target: str
    """Its event target, "feed binanceusdm"."""
    accounts: tuple[str, ...]
    """The accounts it prices."""
    live: bool
    """Connected and delivering marks."""
    blind: bool
    """Reported stale or down, and not recovered since."""


class DaemonState(Protocol):
    """The running daemon, read-only, as of the moment of each call (a reload swaps the
    daemon underneath: never keep what these return for long)."""

    @property
    def config(self) -> Config: ...

    def accounts(self) -> tuple[str, ...]:
        """The monitored accounts, in configuration order."""
        ...

    def exchange(self, account: str) -> str | None:
        """The account's exchange id; None for an account not monitored."""
        ...

    def snapshot(self, account: str) -> AccountSnapshot | None:
        """The account as last read; None until its first read."""
        ...

    def book(self, account: str) -> AccountBook | None: ...

    def marks(self, account: str) -> Mapping[str, float]:
        """The latest mark per symbol of the account's exchange."""
        ...

    def risk(self, account: str) -> AccountRisk | None:
        """Every target's figures at the latest marks; None until the first read."""
        ...

    def pools(self, account: str) -> Mapping[str, PoolRisk]:
        """Pool figures by settlement asset, as `risk`."""
        ...

    def positions(self, account: str) -> Mapping[str, PositionRisk]:
        """Position figures by target key, as `risk`."""
        ...

    def level(self, account: str, target: str) -> Level | None:
        """The target's level as last reported; None when never reported."""
        ...

    def levels(self) -> list[tuple[tuple[str, str], Level]]:
        """((account, target), level) of every target whose level is known."""
        ...

    def feeds(self) -> tuple[FeedState, ...]: ...

    def last_read(self, account: str) -> float | None:
        """Monotonic time the account was last known current (a read, or its stream);
        None before its first read."""
        ...

    def journal(self, account: str, limit: int = 10) -> list[ActionRow]:
        """The account's latest auto-deleverage decisions, newest first."""
        ...

    def paused(self) -> str | None:
        """Why automatic actions are stopped now (the kill switch), or None."""
        ...


class DaemonCommands(Protocol):
    """What a plugin may ask of the daemon."""

    def pause_actions(self, reason: str) -> None:
        """Stop every automatic action now (the kill switch); kept across reloads."""
        ...

    def resume_actions(self) -> str | None:
        """Lift the runtime pause; what still stops actions (the configuration's
        `actions.paused`), or None."""
        ...

    def answer_confirmations(self, confirmer: Confirmer) -> None:
        """Who confirm-mode actions ask before anything is sent, for this daemon and
        every one a reload builds."""
        ...

    def report_alert_delivery(self, *, storage_failing: bool, pending: int) -> None:
        """The alert outbox's state, for the metrics endpoint."""
        ...

    def subscribe(
        self, kind: type[M], handler: Callable[[M], None], *, account: str | None = None
    ) -> Subscription:
        """Receive every `kind` the daemon publishes from now on, across reloads."""
        ...


class PluginHost(DaemonState, DaemonCommands, Protocol):
    """What the runner hands each plugin factory."""


class Plugin(Protocol):
    async def start(self) -> None: ...

    async def stop(self) -> None: ...


def load_plugins(host: PluginHost) -> list[Plugin]:
    """Instantiate every registered plugin; a plugin that fails to load is an error the
    operator must see, so it propagates (the daemon does not start half-configured)."""
    plugins = []
    for entry in sorted(entry_points(group=PLUGIN_GROUP), key=lambda e: e.name):
        factory: Callable[[PluginHost], Plugin] = entry.load()
        plugins.append(factory(host))
        log.info("plugin %s loaded", entry.name)
    return plugins


def add_plugin_commands(subparsers: Any) -> None:
    """Let every registered package add its subcommands (argparse's add_subparsers)."""
    for entry in sorted(entry_points(group=COMMAND_GROUP), key=lambda e: e.name):
        entry.load()(subparsers)
