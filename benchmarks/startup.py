"""Start-up cost of the `marginwatch` command: whole-process wall time and peak RSS.

Goal (issue 14): `marginwatch --help` <= 0.3 s. The baseline, run in the same process
(interleaved with the measured commands, so machine load hits both alike), is a bare
interpreter: `python -c pass`. Each command is a fresh process, as a person or systemd
starts it; its peak RSS comes from wait4().

    python benchmarks/startup.py [--runs 20]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

from common import summary


def marginwatch() -> list[str]:
    """The installed console script beside this interpreter, else the module."""
    script = Path(sys.executable).with_name("marginwatch")
    found = str(script) if script.exists() else shutil.which("marginwatch")
    return [found] if found else [sys.executable, "-m", "monitor.cli"]


def run_once(argv: list[str]) -> tuple[float, float]:
    """(wall seconds, peak RSS in MiB) of one process, output discarded."""
    started = time.perf_counter()
    process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(process.pid, 0)
    elapsed = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} exited {process.returncode}")
    return elapsed, usage.ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    commands = {
        "marginwatch --help": [*marginwatch(), "--help"],
        "marginwatch run --help": [*marginwatch(), "run", "--help"],
        "python -c pass": [sys.executable, "-c", "pass"],
    }
    walls: dict[str, list[float]] = {name: [] for name in commands}
    rss: dict[str, list[float]] = {name: [] for name in commands}
    run_once(commands["marginwatch --help"])  # warm the page cache and .pyc files
    for _ in range(args.runs):
        for name, argv in commands.items():
            wall, peak = run_once(argv)
            walls[name].append(wall)
            rss[name].append(peak)
    print(f"{args.runs} runs each, whole process, interleaved; load {os.getloadavg()[0]:.2f}")
    for name in commands:
        median, p99 = summary(walls[name])
        note = "   (goal <= 300 ms)" if name == "marginwatch --help" else ""
        note = "   (baseline)" if name == "python -c pass" else note
        print(
            f"{name:<24}: median {median:7.1f} ms   p99 {p99:7.1f} ms   "
            f"RSS {statistics.median(rss[name]):5.1f} MiB{note}"
        )
    base = statistics.median(walls["python -c pass"])
    print(
        f"--help / baseline (median): {statistics.median(walls['marginwatch --help']) / base:.2f}x"
    )


if __name__ == "__main__":
    main()
