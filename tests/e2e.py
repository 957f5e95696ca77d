"""Run the real `marginwatch` command against servers living in the test's event loop.

The command runs as a subprocess (its own ccxt, its own sockets) while the test's loop
keeps serving the exchange dialect on 127.0.0.1: real parts, real wires.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any

import orjson
import yaml


def write_config(path: Path, accounts: list[dict[str, Any]], **top: Any) -> Path:
    """A config file with `accounts` and a state directory beside it."""
    document = {"state_dir": str(path.parent / "state"), **top, "accounts": accounts}
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return path


async def run_cli(*args: str, timeout: float = 60.0) -> tuple[int, str, str]:
    """(exit status, stdout, stderr) of `python -m monitor.cli ARGS`."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "monitor.cli", *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(process.communicate(), timeout)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def status_json(config: Path) -> tuple[int, dict[str, Any], str]:
    """(exit status, parsed JSON document, stderr) of `marginwatch status --json`."""
    code, out, err = await run_cli("status", "--config", str(config), "--json")
    assert out.strip(), f"no JSON on stdout; stderr:\n{err}"
    return code, orjson.loads(out), err


def by_symbol(account: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {p["symbol"]: p for p in account["positions"]}
