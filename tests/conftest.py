"""Fixtures every test gets: the suite runs in parallel (pytest-xdist), so nothing a test
writes may land in a place another test, or another worker, also uses."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _own_default_state_dir(
    monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """A configuration without `state_dir` keeps its state in `./state`, the repository
    when tests run; systemd's STATE_DIRECTORY overrides that default, so each test points
    it at a directory of its own (subprocesses inherit it). Tests of the default itself
    unset it (tests/test_config.py)."""
    monkeypatch.setenv("STATE_DIRECTORY", str(tmp_path_factory.mktemp("default-state")))
