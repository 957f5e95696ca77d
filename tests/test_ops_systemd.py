"""The shipped unit file: systemd accepts it, it is hardened, and it keeps its contract.

The contract (Type=notify, the watchdog, no restart on exit 78 = bad config, a dynamic user
with state and configuration directories, credentials via LoadCredential=) is what the daemon
and the README's instructions rely on, so a careless edit must fail here rather than on a
server. systemd-analyze is needed for verify/security; the CI script installs systemd.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

UNIT = Path(__file__).resolve().parents[1] / "systemd" / "marginwatch.service"
MAX_EXPOSURE = 2.0
ANALYZE = shutil.which("systemd-analyze")
needs_analyze = pytest.mark.skipif(
    ANALYZE is None, reason="systemd-analyze not installed (apt-get install systemd)"
)
EXEC_KEYS = ("ExecStart", "ExecStartPre", "ExecStartPost", "ExecReload", "ExecStop")


def directives(text: str) -> dict[str, list[str]]:
    """Every active `Key=value` of the [Service] section, repeated keys kept in order."""
    found: dict[str, list[str]] = {}
    section = None
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            section = line
            continue
        key, _, value = line.partition("=")
        if section == "[Service]":
            found.setdefault(key.strip(), []).append(value.strip())
    return found


def analyze(*args: str) -> subprocess.CompletedProcess[str]:
    assert ANALYZE is not None
    env = {**os.environ, "SYSTEMD_COLORS": "0", "SYSTEMD_PAGER": "", "LC_ALL": "C.UTF-8"}
    return subprocess.run(
        [ANALYZE, *args], capture_output=True, text=True, env=env, timeout=120, check=False
    )


def verifiable_copy(text: str, directory: Path) -> Path:
    """The unit with Exec*= binaries absent from *this* machine swapped for one present.

    verify checks that each command exists here, but /usr/local/bin/marginwatch exists only
    on a server where it was installed; everything else is still checked as written.
    """
    stand_in = shutil.which("true") or "/bin/true"
    lines = []
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep and key in EXEC_KEYS:
            binary = value.lstrip("-@:+!").split()[0]
            if not Path(binary).exists():
                line = f"{key}={value.replace(binary, stand_in, 1)}"
        lines.append(line)
    path = directory / UNIT.name  # verify wants the real name: the suffix picks the unit type
    path.write_text("\n".join(lines) + "\n")
    return path


def verify_problems(path: Path) -> list[str]:
    """verify exits 0 even on unknown keys or bad values; its complaints name the file."""
    result = analyze("verify", "--man=no", str(path))
    output = (result.stdout + result.stderr).splitlines()
    problems = [line for line in output if path.name in line or str(path) in line]
    if result.returncode != 0:
        problems.append(f"exit status {result.returncode}: {output}")
    return problems


def test_unit_keeps_its_contract() -> None:
    found = directives(UNIT.read_text())
    single = {key: values[-1] for key, values in found.items()}
    assert single["Type"] == "notify"
    assert single["NotifyAccess"] == "main"
    assert single["WatchdogSec"] == "30"
    assert single["Restart"] == "on-failure"
    assert single["RestartSec"] == "5"
    assert "78" in single["RestartPreventExitStatus"].split()
    assert single["DynamicUser"] == "yes"
    assert single["StateDirectory"] == "marginwatch"
    assert single["ConfigurationDirectory"] == "marginwatch"
    assert single["ExecStart"] == (
        "/usr/local/bin/marginwatch run --config %E/marginwatch/config.yaml"
    )
    assert single["ExecReload"] == "/bin/kill -HUP $MAINPID"
    assert single["CapabilityBoundingSet"] == ""
    assert single["NoNewPrivileges"] == "yes"


def test_unit_shows_how_to_load_credentials() -> None:
    # Commented out: an active LoadCredential= for a file that isn't there fails the start.
    examples = re.findall(r"^#\s*(LoadCredential=\S+)$", UNIT.read_text(), re.MULTILINE)
    assert "LoadCredential=binance_secret:/etc/marginwatch/credentials/binance_secret" in examples
    for example in examples:
        name, _, source = example.removeprefix("LoadCredential=").partition(":")
        assert re.fullmatch(r"[A-Za-z0-9_.-]+", name), example
        assert source.startswith("/etc/marginwatch/credentials/"), example


@needs_analyze
def test_systemd_analyze_verify_accepts_the_unit(tmp_path: Path) -> None:
    assert verify_problems(verifiable_copy(UNIT.read_text(), tmp_path)) == []


@needs_analyze
def test_credential_examples_are_valid_once_uncommented(tmp_path: Path) -> None:
    text = re.sub(r"^#\s*((?:LoadCredential|EnvironmentFile)=)", r"\1", UNIT.read_text(),
                  flags=re.MULTILINE)  # fmt: skip
    assert len(directives(text)["LoadCredential"]) >= 2
    assert verify_problems(verifiable_copy(text, tmp_path)) == []


@needs_analyze
def test_verify_check_catches_a_broken_unit(tmp_path: Path) -> None:
    """Guards the test itself: a typo must show up, since verify's exit status doesn't."""
    broken = UNIT.read_text().replace("NotifyAccess=main", "NotifyAccess=mian")
    assert verify_problems(verifiable_copy(broken, tmp_path)) != []


@needs_analyze
def test_security_exposure_at_most_2() -> None:
    result = analyze("security", "--offline=yes", str(UNIT))
    output = result.stdout + result.stderr
    match = re.search(r"Overall exposure level for \S+: (\d+(?:\.\d+)?)", output)
    assert match, f"no exposure level in systemd-analyze output:\n{output}"
    exposure = float(match.group(1))
    assert exposure <= MAX_EXPOSURE, f"exposure {exposure} > {MAX_EXPOSURE}:\n{output}"


MDWE_PROBE = """
import ctypes, sys
PR_SET_MDWE, PR_MDWE_REFUSE_EXEC_GAIN = 65, 1
libc = ctypes.CDLL(None, use_errno=True)
if libc.prctl(PR_SET_MDWE, PR_MDWE_REFUSE_EXEC_GAIN, 0, 0, 0) != 0:
    sys.exit(77)  # kernel older than 6.3: cannot emulate
import asyncio, ssl, urllib.request
import aiohttp, ccxt.async_support as ccxt
import monitor.cli, monitor.collect
from monitor.ops.metrics import Metrics

async def main() -> None:
    exchange = ccxt.binanceusdm({"apiKey": "k", "secret": "s"})
    exchange.hmac(b"payload", b"secret")
    async with aiohttp.ClientSession():
        pass
    await exchange.close()

asyncio.run(main())
ssl.create_default_context()
metrics = Metrics()
metrics.tick()
with metrics.start_http(0) as server:
    url = f"http://127.0.0.1:{server.port}/metrics"
    assert b"marginwatch_ticks_total 1.0" in urllib.request.urlopen(url, timeout=5).read()
"""


def test_dependencies_run_under_memory_deny_write_execute() -> None:
    """MemoryDenyWriteExecute=yes kills a process that maps W+X memory (old libffi, JITs).

    The kernel's PR_SET_MDWE is the same rule as systemd's filter, so the daemon's stack
    (ccxt, aiohttp, TLS, the metrics server) is exercised under it before a server finds out.
    """
    result = subprocess.run(
        [sys.executable, "-c", MDWE_PROBE], capture_output=True, text=True, timeout=120, check=False
    )
    if result.returncode == 77:
        pytest.skip("kernel lacks PR_SET_MDWE (Linux < 6.3)")
    assert result.returncode == 0, result.stderr
