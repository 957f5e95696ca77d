"""The `marginwatch` command line."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
import textwrap
from collections.abc import Sequence
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import TYPE_CHECKING

from monitor.cli_args import (
    EXIT_CONFIG,
    EXIT_INTERRUPTED,
    EXIT_SOFTWARE,
    amount,
    positive_float,
    writable_file,
)
from monitor.simulator.cli import add_venue_argument

if TYPE_CHECKING:
    from monitor.config import Config
    from monitor.simulator.scenario import Scenario

# Heavy imports (pydantic, ccxt, rich) wait inside the commands: `--help`, `--version`
# and a bad flag answer at once, and a Ctrl-C while they load is still caught by main().


def _load(path: str, exit_code: int) -> Config:
    from monitor.config import ConfigError, load_config
    from monitor.venues.registry import lacks

    try:
        return load_config(path, venues=lacks)
    except ConfigError as exc:
        print(f"marginwatch: invalid configuration {path}:\n{exc}", file=sys.stderr)
        raise SystemExit(exit_code) from None
    except OSError as exc:
        print(f"marginwatch: cannot read {path}: {exc.strerror}", file=sys.stderr)
        raise SystemExit(exit_code) from None


def cmd_status(args: argparse.Namespace) -> int:
    import orjson

    from monitor.collect import fetch_all
    from monitor.logs import configure_logging
    from monitor.report import EXIT_UNKNOWN, assess, exit_status, status_json

    config = _load(args.config, EXIT_UNKNOWN)
    configure_logging(config.log.level, config.log.format, _secrets(config))
    results = asyncio.run(fetch_all(config.accounts, config.state_dir / "cache"))
    assessed = [assess(r, config.thresholds_for(r.account.name)) for r in results]
    if args.json:
        sys.stdout.write(orjson.dumps(status_json(assessed), option=orjson.OPT_INDENT_2).decode())
        sys.stdout.write("\n")
    else:
        from monitor.render import print_status

        print_status(assessed)
    return exit_status(assessed)


def _secrets(config: Config) -> list[str]:
    """Every secret value in the config, for the log filter that masks them."""
    from monitor.exchange.clients import secret_values

    values = [value for account in config.accounts for value in secret_values(account)]
    if config.notifiers.telegram is not None:
        values.append(config.notifiers.telegram.bot_token.reveal())
    # A push monitor's URL is its secret: a library logging the URL must not show it.
    values += [
        u.reveal() for u in (config.daemon.heartbeat_url, config.daemon.heartbeat_fail_url) if u
    ]
    return values


def cmd_run(args: argparse.Namespace) -> int:
    from monitor.daemon.runner import Runner
    from monitor.logs import configure_logging
    from monitor.ops.state_dir import state_dir_problem

    config = _load(args.config, EXIT_CONFIG)
    problem = state_dir_problem(config.state_dir)
    if problem is not None:
        print(f"marginwatch: state_dir is unusable: {problem} ({args.config})", file=sys.stderr)
        return EXIT_CONFIG
    configure_logging(config.log.level, config.log.format, _secrets(config))
    runner = Runner(Path(args.config), config, args.events)
    return asyncio.run(runner.run())


def _scenario(source: str, paths: str | None = None, venue: str = "binance") -> Scenario:
    """The scenario to play (its accounts), on another scenario's price path if asked;
    an invalid one, or one the simulated `venue` would refuse, exits 78 with every
    problem listed."""
    from monitor.simulator.dialects import DIALECTS
    from monitor.simulator.repath import with_paths
    from monitor.simulator.scenario import ScenarioError, load_scenario

    try:
        scenario = load_scenario(source)
        if paths is not None:
            scenario = with_paths(scenario, load_scenario(paths))
        DIALECTS[venue].check(scenario)
        return scenario
    except ScenarioError as exc:
        print(f"marginwatch: invalid scenario:\n{exc}", file=sys.stderr)
        raise SystemExit(EXIT_CONFIG) from None


def cmd_demo(args: argparse.Namespace) -> int:
    from monitor.demo import run_demo
    from monitor.logs import configure_logging

    _scenario(args.scenario, venue=args.venue)  # one clear error before anything starts
    configure_logging("ERROR")  # the live view is the output; errors still show
    return asyncio.run(run_demo(args.scenario, args.speed, venue_name=args.venue))


def cmd_drill(args: argparse.Namespace) -> int:
    from monitor.drill import Request, builtin_scenarios, drill
    from monitor.logs import configure_logging

    config = _load(args.config, EXIT_CONFIG)
    if args.suite == (args.scenario is not None):
        print("marginwatch: drill needs --scenario or --suite (one of them)", file=sys.stderr)
        return EXIT_CONFIG
    if args.suite and args.paths is not None:
        print("marginwatch: --paths goes with --scenario, not --suite", file=sys.stderr)
        return EXIT_CONFIG
    if args.suite:
        scenarios = builtin_scenarios()
    else:
        scenarios = [(args.scenario, _scenario(args.scenario, args.paths, args.venue))]
    if args.account is not None and args.account not in {a.name for a in config.accounts}:
        print(f"marginwatch: no account {args.account!r} in {args.config}", file=sys.stderr)
        return EXIT_CONFIG
    configure_logging("ERROR")  # the timeline is the output; errors still show
    # ...except a poll in flight when a run's daemon stops, which the scheduler reports as
    # a failed job (poll() itself never raises)
    logging.getLogger("apscheduler.executors").setLevel(logging.CRITICAL)
    output = "json" if args.json else "markdown" if args.markdown else "text"
    request = Request(
        scenarios, args.speed, args.account, suite=args.suite, output=output,
        reserve=args.reserve, venue=args.venue,
    )  # fmt: skip
    return asyncio.run(drill(config, request))


def cmd_stress(args: argparse.Namespace) -> int:
    from monitor.logs import configure_logging
    from monitor.report import EXIT_UNKNOWN
    from monitor.stress_command import run_stress

    config = _load(args.config, EXIT_UNKNOWN)
    configure_logging("ERROR")  # the report is the output; errors still show
    return run_stress(config, args)


def cmd_snapshot(args: argparse.Namespace) -> int:
    from monitor.capture import capture, write_capture
    from monitor.logs import configure_logging
    from monitor.report import EXIT_UNKNOWN

    out: Path | None = args.out
    folder = out.absolute().parent if out is not None else None
    if folder is not None and not (folder.is_dir() and os.access(folder, os.W_OK)):
        print(f"marginwatch: cannot write {out}: no such directory, or no permission",
              file=sys.stderr)  # fmt: skip
        return EXIT_CONFIG
    config = _load(args.config, EXIT_CONFIG)
    try:
        account = config.account(args.account)
    except KeyError:
        names = ", ".join(a.name for a in config.accounts)
        print(f"marginwatch: no account {args.account!r} in {args.config} ({names})",
              file=sys.stderr)  # fmt: skip
        return EXIT_CONFIG
    configure_logging("WARNING", config.log.format, _secrets(config))
    result = asyncio.run(capture(account, config.state_dir / "cache"))
    if result.error is not None:
        print(f"marginwatch: {account.name}: {result.error}", file=sys.stderr)
        return EXIT_UNKNOWN
    try:
        write_capture(result, out or sys.stdout)
    except OSError as exc:
        print(f"marginwatch: cannot write {out}: {exc.strerror}", file=sys.stderr)
        return EXIT_UNKNOWN
    for warning in result.warnings:
        print(f"marginwatch: {warning}", file=sys.stderr)
    if out is not None:
        print(f"wrote {out}: rehearse it with `marginwatch drill --config {args.config} "
              f"--scenario {out} --paths flash-crash`", file=sys.stderr)  # fmt: skip
    return 0


def _version() -> str:
    try:
        return version("marginwatch")
    except PackageNotFoundError:  # run from a checkout that was never installed
        return "unknown (not installed)"


HELP_WIDTH = 78
"""Help text pre-wrapped where argparse is told not to wrap it."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="marginwatch",
        description="Local margin and liquidation monitor for crypto-derivatives accounts.",
        epilog="Start with `marginwatch demo` (no account needed); `marginwatch COMMAND "
        "--help` for each command.",
    )
    parser.add_argument("--version", action="version", version=f"marginwatch {_version()}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    status = commands.add_parser(
        "status",
        help="read every account once: margin ratios, liquidation prices",
        description="Read every account once and print margin ratios, liquidation "
        "prices and levels. Exit status: 0 ok, 1 warn, 2 critical, 3 unknown (an account "
        "failed, a figure is unknown, or the configuration is invalid).",
    )
    status.add_argument("--config", required=True, metavar="FILE", help="YAML configuration")
    status.add_argument("--json", action="store_true", help="print one JSON document")
    status.set_defaults(handler=cmd_status)

    run = commands.add_parser(
        "run",
        help="watch every account continuously (the daemon)",
        description="Watch every account continuously. SIGHUP reloads the configuration; "
        "SIGTERM stops (exit 0), Ctrl-C too (exit 130). Exit status 78 for an invalid "
        "configuration (systemd will not restart).",
    )
    run.add_argument("--config", required=True, metavar="FILE", help="YAML configuration")
    run.add_argument(
        "--events", type=writable_file, metavar="FILE",
        help="also append every event to FILE as JSON lines",
    )  # fmt: skip
    run.set_defaults(handler=cmd_run)

    demo = commands.add_parser(
        "demo",
        help="watch the daemon live on a simulated crash (no account needed)",
        description="Start the simulator on 127.0.0.1 (Binance USD-M, or Bybit v5 with "
        "--venue bybit) with a hybrid account and a flash crash, run the real daemon "
        "against it and show it live; exit when it ends.",
    )
    demo.add_argument(
        "--scenario", default="flash-crash", metavar="NAME|FILE",
        help="built-in scenario or scenario YAML file (default flash-crash)",
    )  # fmt: skip
    demo.add_argument(
        "--speed", type=positive_float, default=2.0, metavar="X",
        help="simulated seconds per second (default 2)",
    )  # fmt: skip
    add_venue_argument(demo)
    demo.set_defaults(handler=cmd_demo)

    # --- auto-deleverage rehearsal (monitor/drill.py)
    drill = commands.add_parser(
        "drill",
        help="rehearse your actions on simulated crashes, with and without",
        description="Play a simulator scenario twice with the thresholds, alert rules and "
        "actions policy of one configured account (the first unless --account): actions "
        "as configured, and off, at the same time; print both timelines, end states and a "
        "verdict. Uses only simulated accounts and a temporary state directory; notifiers "
        "stay silent (pages are counted, not sent).",
    )
    drill.add_argument("--config", required=True, metavar="FILE", help="YAML configuration")
    drill.add_argument(
        "--scenario", metavar="NAME|FILE",
        help="built-in scenario or scenario YAML file (e.g. from `marginwatch snapshot`)",
    )  # fmt: skip
    drill.add_argument("--suite", action="store_true", help="every built-in scenario, at once")
    drill.add_argument(
        "--paths", metavar="NAME|FILE",
        help="play the accounts of --scenario on this scenario's price paths, rescaled to "
        "--scenario's start prices (e.g. a snapshot of your book on flash-crash)",
    )  # fmt: skip
    drill.add_argument(
        "--account", metavar="NAME", help="configured account whose policy is rehearsed"
    )
    drill.add_argument(
        "--speed", type=positive_float, metavar="X",
        help="simulated seconds per second (default 2; with --suite, fast enough that "
        "each scenario lasts about a minute)",
    )  # fmt: skip
    drill.add_argument(
        "--reserve", type=amount, metavar="USDT",
        help="give every simulated account this reserve in its spot wallet",
    )  # fmt: skip
    add_venue_argument(drill)
    output = drill.add_mutually_exclusive_group()
    output.add_argument("--json", action="store_true", help="print one JSON document")
    output.add_argument(
        "--markdown", action="store_true", help="print the suite's table as Markdown"
    )
    drill.set_defaults(handler=cmd_drill)

    snapshot = commands.add_parser(
        "snapshot",
        help="write a live account's book as a scenario file, to drill it",
        description="Read one configured account once (positions, balances, leverage, "
        "isolated margins, the spot/funding reserve if the key can read it) and write it "
        "as a simulator scenario, marks as start prices. Rehearse it with `marginwatch "
        "drill --scenario FILE --paths flash-crash`. The format: docs/scenarios.md.",
    )
    snapshot.add_argument("--config", required=True, metavar="FILE", help="YAML configuration")
    snapshot.add_argument("--account", required=True, metavar="NAME", help="configured account")
    snapshot.add_argument("--out", type=Path, metavar="FILE", help="write here, not to stdout")
    snapshot.set_defaults(handler=cmd_snapshot)

    # --- what a move would do (monitor/stress, monitor/stress_command.py)
    from monitor.stress.report import DEFAULT_SURVIVE
    from monitor.stress_view import worst_days_text

    stress = commands.add_parser(
        "stress",
        help="what price shocks would liquidate, held, all cross or isolated",
        description=textwrap.fill(
            "Reads each account once (read only) and plays shocks on its live book with the "
            "margin engine: uniform moves, beta-scaled moves and 3-sigma moves (from the "
            "venue's candles), and replays of real days. Exit status: 0, 1 when the "
            "--survive shock liquidates something, 3 when an account could not be read.",
            HELP_WIDTH,
        ),
        epilog="--replay worst replays these days:\n"
        + "\n".join(
            textwrap.fill(day, HELP_WIDTH, subsequent_indent=" " * 14)
            for day in worst_days_text().splitlines()
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,  # the days one per line
    )
    stress.add_argument("--config", required=True, metavar="FILE", help="YAML configuration")
    stress.add_argument("--account", metavar="NAME", help="only this configured account")
    stress.add_argument("--json", action="store_true", help="print one JSON document")
    stress.add_argument(
        "--replay", action="append", default=[], metavar="YYYY-MM-DD",
        help="replay that UTC day's 5m candles (repeatable; 'worst' for the built-in list)",
    )  # fmt: skip
    stress.add_argument(
        "--survive", default=DEFAULT_SURVIVE, metavar="SHOCK",
        help="shock to find the smallest surviving change for (default "
        + repr(DEFAULT_SURVIVE).replace("%", "%%")  # argparse formats help with %
        + ")",
    )  # fmt: skip
    stress.set_defaults(handler=cmd_stress)

    from monitor.daemon.plugins import add_plugin_commands
    from monitor.simulator.cli import add_parser as add_sim_parser
    from monitor.venues.cli import add_parser as add_venues_parser

    add_sim_parser(commands)
    add_venues_parser(commands)
    add_plugin_commands(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; Ctrl-C anywhere ends it with 130 and one line, never a traceback."""
    try:
        args = build_parser().parse_args(argv)
        return args.handler(args)
    except KeyboardInterrupt:
        print("marginwatch: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as exc:
        # The last resort of "no traceback for the operator": expected failures are
        # handled where they happen, with their own exit codes; this one says what broke
        # and where to look, and keeps the traceback for whoever sets the variable.
        if os.environ.get("MARGINWATCH_TRACEBACK"):
            raise
        print(
            f"marginwatch: unexpected error: {type(exc).__name__}: {exc}\n"
            "This is a bug; set MARGINWATCH_TRACEBACK=1 to see where it happened.",
            file=sys.stderr,
        )
        return EXIT_SOFTWARE


if __name__ == "__main__":
    raise SystemExit(main())
