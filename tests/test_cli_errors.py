"""Every subcommand, fed bad input, answers with one clear message and an exit code.

No `Traceback` in stdout or stderr, whatever goes wrong. What fails before any logging,
event loop or signal handler is set up is checked in process (fast); the rest in real
processes (`python -m monitor.cli`), run concurrently, a few at a time.

Running as root needs care for the `state_dir` cases: root writes through permission
bits, so "no permission" runs the command as `nobody` (setpriv), and "read-only" mounts a
read-only tmpfs in a private mount namespace (unshare; a user namespace too when not root)
that vanishes with the process.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

from monitor.cli import main
from tests.ports import refused_port
from tests.test_config import BILLION_LAUGHS

EXIT_USAGE, EXIT_UNKNOWN, EXIT_CONFIG = 2, 3, 78
ROOT = os.geteuid() == 0
NOBODY = 65534


@dataclass(frozen=True)
class Case:
    name: str
    args: tuple[str, ...]
    code: int
    says: tuple[str, ...] = ()
    """Fragments the output must contain (the key or file named, the cause)."""
    prefix: tuple[str, ...] = ()
    """Runs the command under this (setpriv, unshare)."""
    stop_when: str | None = None
    """For commands that run until stopped: SIGTERM once stderr shows this."""


@pytest.fixture
def place() -> Iterator[Path]:
    """A world-readable directory: `nobody` must be able to read the config in it."""
    directory = Path(tempfile.mkdtemp(prefix="mw-cli-"))
    directory.chmod(0o755)
    yield directory
    shutil.rmtree(directory, ignore_errors=True)


def config(directory: Path, name: str, state_dir: Path | str, port: int) -> str:
    path = directory / name
    path.write_text(
        textwrap.dedent(f"""\
            state_dir: {state_dir}
            daemon: {{poll_interval: 1, request_timeout: 1}}
            accounts:
              - name: main
                exchange: binanceusdm
                api_key: test-key-1
                secret: test-secret-1
                rest_url: http://127.0.0.1:{port}
                ws_url: ws://127.0.0.1:{port}
            """)
    )
    path.chmod(0o644)
    return str(path)


async def run_case(case: Case, cwd: Path) -> tuple[int | None, str]:
    process = await asyncio.create_subprocess_exec(
        *case.prefix, sys.executable, "-m", "monitor.cli", *case.args,
        cwd=cwd, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        env={k: v for k, v in os.environ.items() if k != "MARGINWATCH_TRACEBACK"},
    )  # fmt: skip
    try:
        early = b""
        if case.stop_when is not None:
            assert process.stderr is not None
            marker = case.stop_when.encode()
            while marker not in early and not process.stderr.at_eof():
                early += await asyncio.wait_for(process.stderr.readline(), 60)
            process.send_signal(signal.SIGTERM)
        out, err = await asyncio.wait_for(process.communicate(), 60)
        err = early + err
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    return process.returncode, (out + err).decode(errors="replace")


async def run_all(cases: Sequence[Case], cwd: Path) -> None:
    slots = asyncio.Semaphore(4)

    async def one(case: Case) -> tuple[Case, int | None, str]:
        async with slots:
            return (case, *await run_case(case, cwd))

    failures = []
    for case, code, output in await asyncio.gather(*(one(c) for c in cases)):
        failures += check(case, code, output)
    assert not failures, "\n\n".join(failures)


def check(case: Case, code: int | str | None, output: str) -> list[str]:
    """What is wrong with how `case` ended, as one report (empty when nothing is)."""
    problems = []
    if "Traceback" in output:
        problems.append("a traceback")
    if code != case.code:
        problems.append(f"exit {code}, not {case.code}")
    problems += [f"no {text!r}" for text in case.says if text not in output]
    return [f"{case.name}: {', '.join(problems)}\n{output}"] if problems else []


def _unprivileged() -> tuple[str, ...]:
    if not ROOT:
        return ()
    if shutil.which("setpriv") is None:
        pytest.skip("running as root without setpriv: cannot drop to an unprivileged user")
    return ("setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups")


def bad_inputs(place: Path, port: int) -> list[Case]:
    good = config(place, "good.yaml", place / "state", port)
    a_file = place / "a-file"
    a_file.write_text("not a directory")
    on_file = config(place, "on-file.yaml", a_file, port)
    no_parent = config(place, "no-parent.yaml", place / "missing" / "state", port)
    unknown_key = place / "unknown.yaml"
    unknown_key.write_text("accounts:\n  - name: a\n    exchange: bybit\n    bogus: 1\n")
    laughs = place / "laughs.yaml"
    laughs.write_text(BILLION_LAUGHS)
    missing = str(place / "missing.yaml")
    return [
        # status: 3 (unknown) for anything that keeps it from reading every account
        Case("status, missing config", ("status", "--config", missing), EXIT_UNKNOWN,
             ("missing.yaml", "No such file")),
        Case("status, unknown key", ("status", "--config", str(unknown_key)), EXIT_UNKNOWN,
             ("accounts[0].bogus: unknown key", "unknown.yaml:4")),
        Case("status, billion laughs", ("status", "--config", str(laughs)), EXIT_UNKNOWN,
             ("billion laughs", "laughs.yaml:5")),
        Case("status, bad flag", ("status", "--config", good, "--bogus"), EXIT_USAGE),
        # run: 78 (systemd does not restart) for configuration and state_dir
        Case("run, missing config", ("run", "--config", missing), EXIT_CONFIG,
             ("missing.yaml",)),
        Case("run, unknown key", ("run", "--config", str(unknown_key)), EXIT_CONFIG,
             ("accounts[0].bogus",)),
        Case("run, billion laughs", ("run", "--config", str(laughs)), EXIT_CONFIG,
             ("billion laughs",)),
        Case("run, state_dir is a file", ("run", "--config", on_file), EXIT_CONFIG,
             ("state_dir", "is not a directory")),
        Case("run, state_dir's parent missing", ("run", "--config", no_parent), EXIT_CONFIG,
             ("state_dir", f"parent directory {place / 'missing'} does not exist")),
        Case("run, missing flag", ("run",), EXIT_USAGE, ("--config",)),
        # demo, drill, sim: a scenario that is not there, and bad flags
        Case("demo, missing scenario", ("demo", "--scenario", missing), EXIT_CONFIG,
             ("missing.yaml",)),
        Case("demo, bad speed", ("demo", "--speed", "-1"), EXIT_USAGE, ("--speed",)),
        Case("drill, missing scenario",
             ("drill", "--config", good, "--scenario", missing), EXIT_CONFIG,
             ("missing.yaml",)),
        Case("drill, missing config", ("drill", "--config", missing, "--scenario", "calm"),
             EXIT_CONFIG, ("missing.yaml",)),
        Case("drill, unknown account",
             ("drill", "--config", good, "--scenario", "calm", "--account", "nope"),
             EXIT_CONFIG, ("nope",)),
        Case("drill, bad speed", ("drill", "--config", good, "--scenario", "calm",
                                  "--speed", "nan"), EXIT_USAGE, ("--speed",)),
        Case("sim, missing scenario", ("sim", "--scenario", missing), EXIT_CONFIG,
             ("missing.yaml",)),
        Case("sim, bad port", ("sim", "--scenario", "calm", "--port", "x"), EXIT_USAGE),
        Case("no subcommand", (), EXIT_USAGE),
        Case("unknown subcommand", ("frobnicate",), EXIT_USAGE),
    ]  # fmt: skip


def test_every_subcommand_refuses_bad_input_with_a_message_and_an_exit_code(
    place: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """In process, to stay fast: every one of these is refused before any logging or
    event loop is set up, so what main() prints is all the process would print."""
    failures = []
    for case in bad_inputs(place, refused_port()):
        try:
            code: int | str | None = main(list(case.args))
        except SystemExit as exit_:  # argparse, and the loader's refusals
            code = exit_.code
        captured = capsys.readouterr()
        failures += check(case, code, captured.out + captured.err)
    assert not failures, "\n\n".join(failures)


async def test_an_unreachable_exchange_is_a_typed_error_not_a_traceback(
    place: Path, tmp_path: Path
) -> None:
    """Real processes: these get as far as logging, the event loop and signals. The typed
    error must read as one phrase: `status` once folded it into a 4-character column."""
    good = config(place, "good.yaml", place / "state", refused_port())
    await run_all(
        [
            Case(
                "status", ("status", "--config", good), EXIT_UNKNOWN, ("network: cannot connect",)
            ),
            Case(
                "run, until SIGTERM",
                ("run", "--config", good),
                0,
                ("network: cannot connect",),
                stop_when="cannot connect",
            ),
        ],
        tmp_path,
    )


async def test_a_state_dir_without_write_permission_exits_78_naming_it(place: Path) -> None:
    state = place / "state"
    state.mkdir(mode=0o755)  # owned by us: another user may read it, not write it
    prefix = _unprivileged()
    if not ROOT:
        state.chmod(0o555)
    path = config(place, "config.yaml", state, refused_port())
    says = ("state_dir is unusable", str(state), "permission denied")
    case = Case("run, no permission", ("run", "--config", path), EXIT_CONFIG, says, prefix=prefix)
    await run_all([case], place)


async def test_a_read_only_state_dir_exits_78_naming_it(place: Path) -> None:
    # A private mount namespace; without root, inside a user namespace of our own.
    unshare = ("unshare", "--mount", "--propagation", "private")
    unshare += () if ROOT else ("--map-root-user",)
    if shutil.which("unshare") is None or subprocess.run([*unshare, "true"]).returncode:
        pytest.skip("a read-only mount needs unshare and a mount namespace it may create")
    state = place / "state"
    state.mkdir()
    path = config(place, "config.yaml", state, refused_port())
    mount_then_run = (
        *unshare, "sh", "-c", f'mount -t tmpfs -o ro tmpfs "{state}" && exec "$0" "$@"',
    )  # fmt: skip
    case = Case("run, read-only", ("run", "--config", path), EXIT_CONFIG,
                ("state_dir is unusable", str(state), "read-only file system"),
                prefix=mount_then_run)  # fmt: skip
    await run_all([case], place)
