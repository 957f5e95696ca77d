"""`marginwatch stress`: read each account, build its shocks, play them, print."""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from datetime import UTC, datetime

import orjson

from monitor.config import Config
from monitor.exchange.errors import ExchangeError
from monitor.report import EXIT_UNKNOWN
from monitor.stress.report import AccountStress, stress_account, stress_json
from monitor.stress.shocks import WORST_DAYS
from monitor.stress_fetch import day_start_ms, read_inputs

EXIT_OK, EXIT_SHOCK_LIQUIDATES = 0, 1
EXIT_USAGE = 64  # EX_USAGE


def replay_days(requested: list[str]) -> list[str]:
    """'worst' expands to the built-in list; anything else must be a UTC date."""
    days: list[str] = []
    for item in requested:
        for day in [d.day for d in WORST_DAYS] if item == "worst" else [item]:
            try:
                day_start_ms(day)
            except ValueError:
                raise ValueError(f"--replay takes YYYY-MM-DD or 'worst', not {day!r}") from None
            if day not in days:
                days.append(day)
    return days


def run_stress(config: Config, args: argparse.Namespace) -> int:
    accounts = list(config.accounts)
    if args.account is not None:
        accounts = [a for a in accounts if a.name == args.account]
        if not accounts:
            print(f"marginwatch: no account {args.account!r} in {args.config}", file=sys.stderr)
            return EXIT_USAGE
    try:
        days = replay_days(args.replay)
    except ValueError as exc:
        print(f"marginwatch: {exc}", file=sys.stderr)
        return EXIT_USAGE
    read = asyncio.run(read_inputs(accounts, days, config.state_dir / "cache"))
    reports: list[tuple[AccountStress | None, str]] = []
    for account, inputs in zip(accounts, read, strict=True):
        if isinstance(inputs, ExchangeError):
            reports.append((None, f"{account.name}: not read: {inputs}"))
            continue
        thresholds = config.thresholds_for(account.name)
        report = stress_account(
            inputs.snapshot, inputs.shocks, survive=args.survive, rates=inputs.rates,
            limits=(thresholds.cross, thresholds.isolated),
        )  # fmt: skip
        report.notes = inputs.notes + report.notes
        reports.append((report, _title(account.name, account.exchange, inputs.snapshot.fetched_at)))
    if args.json:
        document = stress_json([r for r, _ in reports if r is not None])
        sys.stdout.write(orjson.dumps(document, option=orjson.OPT_INDENT_2).decode() + "\n")
        for report, title in reports:
            if report is None:
                print(f"marginwatch: {title}", file=sys.stderr)
    else:
        from monitor.stress_view import print_stress

        print_stress(reports)
    if any(r is None for r, _ in reports):
        return EXIT_UNKNOWN
    if any(r.remedies for r, _ in reports if r is not None):
        return EXIT_SHOCK_LIQUIDATES
    return EXIT_OK


def _title(name: str, exchange: str, fetched_at: float) -> str:
    at = datetime.fromtimestamp(fetched_at or time.time(), UTC).strftime("%Y-%m-%d %H:%M UTC")
    return f"{name} · {exchange} · marks of {at}"
