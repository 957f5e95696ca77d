"""Imports point one way (README, Development): the margin engine is pure and knows only
the domain; the monitor never reaches into the alerts, which attach as a plugin."""

from __future__ import annotations

from pathlib import Path

import monitor
import monitor.engine
from tests.imports import offenders

MONITOR = Path(monitor.__file__).parent
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


def test_the_actions_never_import_a_venue():
    """The composer (daemon, drill) hands the venue's executor to the controller."""
    import monitor.actions

    actions = Path(monitor.actions.__file__).parent
    assert list(offenders(actions, ["monitor.venues"])) == []
