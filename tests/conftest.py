"""Fixtures every test gets: the suite runs in parallel (pytest-xdist), so nothing a test
writes may land in a place another test, or another worker, also uses."""

from __future__ import annotations

import os
import sys

import pytest

# The suite starts a hundred-odd Python processes (xdist workers, `marginwatch` under test,
# servers); where PYTHONDONTWRITEBYTECODE is set (container images set it), each compiled
# monitor/ and alerts/ from source again, ~0.35 s of CPU a process. Bytecode goes where
# Python puts it by default (__pycache__, ignored by git); set here, before xdist starts
# its workers, so they and every process they start inherit it.
os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
sys.dont_write_bytecode = False


@pytest.fixture(autouse=True)
def _own_default_state_dir(
    monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """A configuration without `state_dir` keeps its state in `./state`, the repository
    when tests run; systemd's STATE_DIRECTORY overrides that default, so each test points
    it at a directory of its own (subprocesses inherit it). Tests of the default itself
    unset it (tests/test_config.py)."""
    monkeypatch.setenv("STATE_DIRECTORY", str(tmp_path_factory.mktemp("default-state")))


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Property tests (hypothesis) take a core each for seconds; the end-to-end tests
    play markets in real time and must keep up with them. One xdist group, run by one
    worker at a time (`--dist loadgroup`), keeps the property tests to a single core.
    `tryfirst`: xdist reads the groups in this same hook, so they must be marked before.

    Known gap: with pytest 9.2 and pytest-xdist 3.8 (the newest of each) loadgroup groups
    nothing, because xdist still writes the group into a node id field pytest 9.2 no
    longer reads (pytest-dev/pytest-xdist#1386); until a fixed xdist, the property tests
    spread over the workers like any other test.

    In parallel, the files are also dealt out one test at a time (see `_interleaved`)."""
    for item in items:
        if getattr(getattr(item, "obj", None), "is_hypothesis_test", False):
            item.add_marker(pytest.mark.xdist_group("property-tests"))
    if os.environ.get("PYTEST_XDIST_WORKER"):
        items[:] = _interleaved(items)


def _interleaved(items: list[pytest.Item]) -> list[pytest.Item]:
    """The first test of every file, then the second of every file, and so on.

    Files are homogeneous: the end-to-end tests that wait on markets played in real time
    (CPU mostly idle) come early in the alphabet, those that start a CLI process per test
    (CPU-bound) late. In file order, four workers spent the first minutes waiting and the
    last ones queueing for two cores; dealt out, every stretch of the run mixes both, and
    the long tail is the many short tests of the largest files. Every worker sorts the
    same collection the same way, as xdist requires."""
    by_file: dict[str, list[pytest.Item]] = {}
    for item in items:
        by_file.setdefault(item.nodeid.split("::", 1)[0], []).append(item)
    files = list(by_file.values())
    longest = max((len(tests) for tests in files), default=0)
    return [tests[i] for i in range(longest) for tests in files if i < len(tests)]
