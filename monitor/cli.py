"""The `marginwatch` command line."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Sequence

import orjson

from monitor.config import Config, ConfigError, load_config
from monitor.report import EXIT_UNKNOWN

EXIT_CONFIG = 78  # EX_CONFIG: systemd's RestartPreventExitStatus keys on it


def _load(path: str, exit_code: int) -> Config:
    try:
        return load_config(path)
    except ConfigError as exc:
        print(f"marginwatch: invalid configuration {path}:\n{exc}", file=sys.stderr)
        raise SystemExit(exit_code) from None
    except OSError as exc:
        print(f"marginwatch: cannot read {path}: {exc.strerror}", file=sys.stderr)
        raise SystemExit(exit_code) from None


def cmd_status(args: argparse.Namespace) -> int:
    from monitor.collect import fetch_all
    from monitor.logs import configure_logging
    from monitor.report import assess, exit_status, status_json

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
    values = [s.reveal() for a in config.accounts for s in (a.api_key, a.secret, a.password) if s]
    if config.notifiers.telegram is not None:
        values.append(config.notifiers.telegram.bot_token.reveal())
    return values


def cmd_run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from monitor.daemon.runner import Runner
    from monitor.logs import configure_logging
    from monitor.ops.state_dir import state_dir_problem

    config = _load(args.config, EXIT_CONFIG)
    problem = state_dir_problem(config.state_dir)
    if problem is not None:
        print(f"marginwatch: state_dir is unusable: {problem} ({args.config})", file=sys.stderr)
        return EXIT_CONFIG
    configure_logging(config.log.level, config.log.format, _secrets(config))
    runner = Runner(Path(args.config), config, Path(args.events) if args.events else None)
    return asyncio.run(runner.run())


def cmd_demo(args: argparse.Namespace) -> int:
    from monitor.demo import run_demo
    from monitor.logs import configure_logging
    from monitor.simulator.scenario import ScenarioError, load_scenario

    try:
        load_scenario(args.scenario)  # refused here, before the live view takes the screen
    except ScenarioError as exc:
        print(f"marginwatch: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    configure_logging("ERROR")  # the live view is the output; errors still show
    return asyncio.run(run_demo(args.scenario, args.speed))


def cmd_drill(args: argparse.Namespace) -> int:
    from monitor.actions.drill import drill
    from monitor.logs import configure_logging
    from monitor.simulator.scenario import ScenarioError, load_scenario

    config = _load(args.config, EXIT_CONFIG)
    try:
        scenario = load_scenario(args.scenario)
        if args.account is not None:
            config.account(args.account)
    except ScenarioError as exc:
        print(f"marginwatch: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    except KeyError:
        print(f"marginwatch: no account {args.account!r} in {args.config}", file=sys.stderr)
        return EXIT_CONFIG
    configure_logging("ERROR")  # the timeline is the output; errors still show
    return asyncio.run(drill(config, scenario, args.speed, args.account))


def cmd_stress(args: argparse.Namespace) -> int:
    from monitor.logs import configure_logging
    from monitor.stress_command import run_stress

    config = _load(args.config, EXIT_UNKNOWN)
    configure_logging("ERROR")  # the report is the output; errors still show
    return run_stress(config, args)


def build_parser() -> argparse.ArgumentParser:
    from monitor.simulator.command import add_parser as add_sim_parser
    from monitor.simulator.command import positive

    parser = argparse.ArgumentParser(
        prog="marginwatch", description="Local margin and liquidation monitor."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    status = commands.add_parser(
        "status",
        help="read every account once and print margin ratios and liquidation prices",
        description="Exit status: 0 ok, 1 warn, 2 critical, 3 unknown (failed account or config).",
    )
    status.add_argument("--config", required=True, help="YAML configuration file")
    status.add_argument("--json", action="store_true", help="print one JSON document")
    status.set_defaults(handler=cmd_status)

    run = commands.add_parser(
        "run",
        help="watch every account continuously (the daemon)",
        description="Exit status 78 for an invalid configuration (systemd will not restart).",
    )
    run.add_argument("--config", required=True, help="YAML configuration file")
    run.add_argument("--events", help="append every event to this file as JSON lines")
    run.set_defaults(handler=cmd_run)

    demo = commands.add_parser(
        "demo",
        help="run the daemon against the built-in simulated exchange (no account needed)",
        description="Starts the simulator on 127.0.0.1 with a hybrid account and a flash "
        "crash, runs the real daemon against it and shows it live; exits when it ends.",
    )
    demo.add_argument("--scenario", default="flash-crash", help="built-in name or YAML file")
    demo.add_argument("--speed", type=positive, default=2.0, help="simulated seconds per second")
    demo.set_defaults(handler=cmd_demo)

    # --- auto-deleverage rehearsal (monitor/actions/drill.py)
    drill = commands.add_parser(
        "drill",
        help="rehearse the configured actions against a simulated crash, and without them",
        description="Plays a simulator scenario twice with the thresholds and actions policy "
        "of one configured account (the first unless --account): actions as configured, "
        "then off, and prints both timelines and end states side by side. Uses only "
        "simulated accounts and a temporary state directory; notifiers stay silent.",
    )
    drill.add_argument("--config", required=True, help="YAML configuration file")
    drill.add_argument("--scenario", required=True, help="built-in name or scenario YAML file")
    drill.add_argument("--account", help="configured account whose policy is rehearsed")
    drill.add_argument("--speed", type=positive, default=2.0, help="simulated seconds per second")
    drill.set_defaults(handler=cmd_drill)

    # --- what a move would do (monitor/stress, monitor/stress_command.py)
    from monitor.stress.report import DEFAULT_SURVIVE
    from monitor.stress_view import worst_days_text

    stress = commands.add_parser(
        "stress",
        help="what price shocks would liquidate, as held, all cross and all isolated",
        description="Reads each account once (read only) and plays shocks on its live book "
        "with the margin engine: uniform moves, beta-scaled moves and 3-sigma moves "
        "(from the venue's candles), and replays of real days. Exit status: 0, 1 when "
        "the --survive shock liquidates something, 3 when an account could not be read.",
        epilog="--replay worst replays these days:\n" + worst_days_text(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    stress.add_argument("--config", required=True, help="YAML configuration file")
    stress.add_argument("--account", help="only this configured account")
    stress.add_argument("--json", action="store_true", help="print one JSON document")
    stress.add_argument(
        "--replay", action="append", default=[], metavar="YYYY-MM-DD",
        help="replay that UTC day's 5m candles (repeatable; 'worst' for the built-in list)",
    )  # fmt: skip
    stress.add_argument(
        "--survive", default=DEFAULT_SURVIVE, metavar="SHOCK",
        help=f"shock to find the smallest surviving change for (default {DEFAULT_SURVIVE!r})",
    )  # fmt: skip
    stress.set_defaults(handler=cmd_stress)

    add_sim_parser(commands)
    return parser


EXIT_SOFTWARE = 70  # EX_SOFTWARE: a failure nobody anticipated, i.e. a bug


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.handler(args)
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
