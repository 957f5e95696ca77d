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


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Property tests (hypothesis) take a core each for seconds; the end-to-end tests
    play markets in real time and must keep up with them. One xdist group, run by one
    worker at a time (`--dist loadgroup`), keeps the property tests to a single core."""
    for item in items:
        if getattr(getattr(item, "obj", None), "is_hypothesis_test", False):
            item.add_marker(pytest.mark.xdist_group("property-tests"))
