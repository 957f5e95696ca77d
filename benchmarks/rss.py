"""Resident memory of the daemon process: 50 accounts on one exchange vs 1 account.

Goal (issue 4): RSS with 50 accounts <= 2x the RSS with 1 account, because everything
per exchange (the markets table, the marks, the feed) is shared and an account adds only
its client and its book. The baseline, measured in the same run, is the 1-account
process.

A `SimulatedVenue` (the calm scenario, served by this process over loopback) gets 50
accounts through the simulator's state API (`SimExchange.add_account`), each a copy of
the scenario's hybrid book (3 cross, 2 isolated positions), and `--markets` listed
contracts in all (Binance USD-M lists several hundred; the scenario alone lists 5, which
would hide any per-client copy of the markets table). Each daemon is the real
`python -m monitor.cli run --config <tmp>` subprocess with default settings plus a
loopback metrics port: its `marginwatch_rest_calls_total` counter tells when every
account has been read once. VmRSS is then read from /proc/<pid>/status once a second for
`--settle` seconds (more than one poll cycle); the median is reported, with the peak
(VmHWM).

    python benchmarks/rss.py [--accounts 50] [--markets 500] [--settle 12]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import signal
import socket
import statistics
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
import yaml

from monitor.simulator.binance_usdm.fixtures import ALT_BRACKETS
from monitor.simulator.binance_usdm.state import SimMarket
from monitor.simulator.build import build_account
from monitor.simulator.runner import SimulatedVenue

ROOT = Path(__file__).resolve().parent.parent
GOAL_RATIO = 2.0
POLLED = re.compile(r'^marginwatch_rest_calls_total\{account="([^"]+)"[^}]*\} (\S+)$', re.M)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def populate(venue: SimulatedVenue, accounts: int, markets: int) -> list[tuple[str, str, str]]:
    """Extra listed contracts and `accounts` copies of the hybrid account:
    (name, api key, secret) of each."""
    exchange = venue.exchange
    for i in range(max(0, markets - len(exchange.markets))):
        symbol = f"X{i:03d}USDT"
        exchange.markets[symbol] = SimMarket(
            symbol, f"X{i:03d}", "USDT", 0.001, 1, 1, 1_000_000, 100_000, 5, ALT_BRACKETS
        )
        exchange.mark_prices[symbol] = 1.0 + i / 100
    (hybrid,) = venue.scenario.accounts
    made = []
    for i in range(accounts):
        spec = hybrid.model_copy(update={"name": f"acct{i:02d}"})
        account = exchange.add_account(build_account(venue.scenario, spec, exchange.clock_ms()))
        made.append((spec.name, account.api_key, account.secret))
    return made


def rss_kib(pid: int) -> tuple[int, int]:
    """(VmRSS, VmHWM) in KiB."""
    fields = dict(
        line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines()
    )
    return int(fields["VmRSS"].split()[0]), int(fields["VmHWM"].split()[0])


async def polled_accounts(session: aiohttp.ClientSession, port: int) -> set[str]:
    try:
        async with session.get(f"http://127.0.0.1:{port}/metrics") as reply:
            text = await reply.text()
    except aiohttp.ClientError:
        return set()
    return {name for name, value in POLLED.findall(text) if float(value) >= 1}


async def measure(
    venue: SimulatedVenue, accounts: list[tuple[str, str, str]], settle: float, tmp: Path
) -> tuple[float, int, float]:
    """(median VmRSS KiB, peak VmHWM KiB, seconds until every account was read)."""
    port = free_port()
    config = {
        "state_dir": str(tmp / "state"),
        "log": {"level": "WARNING"},
        "metrics": {"port": port, "host": "127.0.0.1"},
        "accounts": [
            {"name": name, "exchange": "binanceusdm", "api_key": key, "secret": secret,
             "rest_url": venue.base_url, "ws_url": venue.ws_url}
            for name, key, secret in accounts
        ],
    }  # fmt: skip
    path = tmp / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    names = {name for name, _, _ in accounts}
    with (tmp / "stderr.log").open("wb") as stderr:
        started = time.monotonic()
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "monitor.cli", "run", "--config", str(path),
            cwd=ROOT, stdout=asyncio.subprocess.DEVNULL, stderr=stderr,
        )  # fmt: skip
        try:
            async with aiohttp.ClientSession() as session:
                deadline = started + 90
                while (await polled_accounts(session, port)) != names:
                    if process.returncode is not None or time.monotonic() > deadline:
                        raise RuntimeError(f"daemon did not read every account; see {stderr.name}")
                    await asyncio.sleep(0.25)
            ready = time.monotonic() - started
            samples = []
            for _ in range(max(1, round(settle))):
                await asyncio.sleep(1.0)
                samples.append(rss_kib(process.pid))
        finally:
            if process.returncode is None:
                process.send_signal(signal.SIGTERM)
                try:
                    await asyncio.wait_for(process.wait(), 15)
                except TimeoutError:
                    process.kill()
                    await process.wait()
    return statistics.median(s[0] for s in samples), max(s[1] for s in samples), ready


async def run(args: argparse.Namespace) -> None:
    async with SimulatedVenue("calm", speed=1) as venue:
        accounts = populate(venue, args.accounts, args.markets)
        with tempfile.TemporaryDirectory() as one_dir, tempfile.TemporaryDirectory() as many_dir:
            one = await measure(venue, accounts[:1], args.settle, Path(one_dir))
            many = await measure(venue, accounts, args.settle, Path(many_dir))
    print(
        f"daemon process (python -m monitor.cli run), {len(venue.exchange.markets)} listed "
        f"markets, 5 positions per account, pid RSS median over {args.settle:g} s"
    )
    for label, (rss, hwm, ready) in (("1 account", one), (f"{args.accounts} accounts", many)):
        print(
            f"{label:12}: RSS {rss / 1024:7.1f} MiB   peak {hwm / 1024:7.1f} MiB   "
            f"(all accounts read after {ready:4.1f} s)"
        )
    ratio = many[0] / one[0]
    verdict = "ok" if ratio <= GOAL_RATIO else "MISSED"
    print(
        f"ratio {args.accounts} / 1 accounts: {ratio:.2f}x   (goal <= {GOAL_RATIO:g}x: {verdict})"
    )
    per_account = (many[0] - one[0]) / max(1, args.accounts - 1) / 1024
    print(f"each further account: {per_account:.2f} MiB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--accounts", type=int, default=50)
    parser.add_argument("--markets", type=int, default=500, help="listed contracts")
    parser.add_argument("--settle", type=float, default=12.0, help="seconds of RSS samples")
    args = parser.parse_args()
    if not Path(f"/proc/{os.getpid()}/status").exists():
        parser.error("needs /proc (Linux)")
    asyncio.run(run(args))


if __name__ == "__main__":
    main()
