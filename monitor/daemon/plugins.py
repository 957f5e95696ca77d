"""Extensions of the daemon, found by entry point, so that imports point one way.

`alerts` builds on `monitor`; `monitor` never imports `alerts`. The alerting package
registers itself under the `marginwatch.plugins` entry-point group; the runner calls
each factory with itself and starts and stops what it returns. Commands of its own
(`marginwatch telegram ...`) come the same way, from the `marginwatch.commands` group:
each entry is a function that adds its parser to the CLI's subcommands.
"""

from __future__ import annotations

import logging
from importlib.metadata import entry_points
from typing import Any, Protocol

log = logging.getLogger(__name__)

PLUGIN_GROUP = "marginwatch.plugins"
COMMAND_GROUP = "marginwatch.commands"


class Plugin(Protocol):
    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    async def reloaded(self) -> None:
        """The runner swapped in a new configuration and daemon (`runner.config`)."""


def load_plugins(runner: Any) -> list[Plugin]:
    """Instantiate every registered plugin; a plugin that fails to load is an error the
    operator must see, so it propagates (the daemon does not start half-configured)."""
    plugins = []
    for entry in sorted(entry_points(group=PLUGIN_GROUP), key=lambda e: e.name):
        factory = entry.load()
        plugins.append(factory(runner))
        log.info("plugin %s loaded", entry.name)
    return plugins


def add_plugin_commands(subparsers: Any) -> None:
    """Let every registered package add its subcommands (argparse's add_subparsers)."""
    for entry in sorted(entry_points(group=COMMAND_GROUP), key=lambda e: e.name):
        entry.load()(subparsers)
