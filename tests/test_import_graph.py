"""Imports point one way (README, Development): the margin engine is pure and knows only
the domain; the monitor never reaches into the alerts, which attach as a plugin; and no
two subpackages import each other, however long the way round."""

from __future__ import annotations

from pathlib import Path

import monitor
import monitor.engine
from tests.imports import cycles, describe, offenders, unit_graph

MONITOR = Path(monitor.__file__).parent
ROOT = MONITOR.parent
ENGINE = Path(monitor.engine.__file__).parent
OUTSIDE_THE_ENGINE = sorted(
    f"monitor.{p.name if p.is_dir() else p.stem}"
    for p in MONITOR.iterdir()
    if p.name not in ("engine", "domain.py", "__init__.py", "__pycache__")
    and (p.is_dir() or p.suffix == ".py")
)


def test_the_engine_imports_only_the_domain_and_itself():
    assert "monitor.daemon" in OUTSIDE_THE_ENGINE  # the listing found the packages
    assert list(offenders(ENGINE, OUTSIDE_THE_ENGINE)) == []


def test_the_monitor_never_imports_the_alerts():
    assert list(offenders(MONITOR, ["alerts"])) == []


ALERTS = Path(monitor.__file__).parent.parent / "alerts"
DAEMON_BOUNDARY = {"monitor.daemon.plugins"}
"""What of the daemon package the alerts may import: the plugin boundary (a typed state
view, commands, the bus's host)."""


def test_the_alerts_reach_the_daemon_only_through_its_plugin_boundary():
    daemon = Path(monitor.__file__).parent / "daemon"
    internals = sorted(
        f"monitor.daemon.{p.stem}"
        for p in daemon.glob("*.py")
        if p.stem != "__init__" and f"monitor.daemon.{p.stem}" not in DAEMON_BOUNDARY
    )
    assert "monitor.daemon.service" in internals  # the listing found the modules
    assert list(offenders(ALERTS, internals)) == []


def test_no_import_cycles_between_subpackages():
    """Units are each subpackage and top-level module of `monitor` and `alerts`
    (`monitor.daemon`, `monitor.cli`, `alerts.rules`...); lazy imports count: a cycle
    hidden in a function is still a cycle."""
    edges = unit_graph(ROOT, ["monitor", "alerts"])
    assert {"monitor.daemon", "monitor.actions", "alerts.rules"} <= set(edges)
    found = [describe(cycle, edges) for cycle in cycles(edges)]
    assert not found, "import cycles between subpackages:\n" + "\n".join(found)


def test_a_cycle_is_named_with_the_imports_that_make_it():
    edges = {"a": {"b": "a/x.py: b.y"}, "b": {"c": "b/y.py: c"}, "c": {"a": "c.py: a.x"}}
    assert cycles(edges) == [["a", "b", "c", "a"]]
    assert describe(["a", "b", "c", "a"], edges).splitlines() == [
        "a -> b -> c -> a",
        "  a -> b (a/x.py: b.y)",
        "  b -> c (b/y.py: c)",
        "  c -> a (c.py: a.x)",
    ]
    assert cycles({"a": {"b": ""}, "b": {}}) == []


def test_the_actions_never_import_a_venue():
    """The composer (daemon, drill) hands the venue's executor to the controller."""
    import monitor.actions

    actions = Path(monitor.actions.__file__).parent
    assert list(offenders(actions, ["monitor.venues"])) == []
