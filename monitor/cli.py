"""The `marginwatch` command line."""

from __future__ import annotations

import argparse
import asyncio
import logging
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

    config = _load(args.config, EXIT_CONFIG)
    configure_logging(config.log.level, config.log.format, _secrets(config))
    runner = Runner(Path(args.config), config, Path(args.events) if args.events else None)
    return asyncio.run(runner.run())


def cmd_demo(args: argparse.Namespace) -> int:
    from monitor.demo import run_demo
    from monitor.logs import configure_logging

    configure_logging("ERROR")  # the live view is the output; errors still show
    return asyncio.run(run_demo(args.scenario, args.speed))


def cmd_drill(args: argparse.Namespace) -> int:
    from monitor.actions.drill import Request, builtin_scenarios, drill
    from monitor.logs import configure_logging
    from monitor.simulator.scenario import ScenarioError, load_scenario

    config = _load(args.config, EXIT_CONFIG)
    if args.suite == (args.scenario is not None):
        print("marginwatch: drill needs --scenario or --suite (one of them)", file=sys.stderr)
        return EXIT_CONFIG
    try:
        if args.suite:
            scenarios = builtin_scenarios()
        else:
            scenarios = [(args.scenario, load_scenario(args.scenario))]
        if args.account is not None:
            config.account(args.account)
    except ScenarioError as exc:
        print(f"marginwatch: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    except KeyError:
        print(f"marginwatch: no account {args.account!r} in {args.config}", file=sys.stderr)
        return EXIT_CONFIG
    if args.speed is not None and args.speed <= 0:
        print(f"marginwatch: --speed must be positive, not {args.speed:g}", file=sys.stderr)
        return EXIT_CONFIG
    configure_logging("ERROR")  # the timeline is the output; errors still show
    # ...except a poll in flight when a run's daemon stops, which the scheduler reports as
    # a failed job (poll() itself never raises)
    logging.getLogger("apscheduler.executors").setLevel(logging.CRITICAL)
    output = "json" if args.json else "markdown" if args.markdown else "text"
    request = Request(
        scenarios, args.speed, args.account, suite=args.suite, output=output,
        reserve=args.reserve,
    )  # fmt: skip
    return asyncio.run(drill(config, request))


def build_parser() -> argparse.ArgumentParser:
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
    demo.add_argument("--speed", type=float, default=2.0, help="simulated seconds per second")
    demo.set_defaults(handler=cmd_demo)

    # --- auto-deleverage rehearsal (monitor/actions/drill.py)
    drill = commands.add_parser(
        "drill",
        help="rehearse the configured actions against a simulated crash, and without them",
        description="Plays a simulator scenario twice with the thresholds, alert rules and "
        "actions policy of one configured account (the first unless --account): actions as "
        "configured, and off, at the same time; prints both timelines, end states and a "
        "verdict. Uses only simulated accounts and a temporary state directory; notifiers "
        "stay silent (pages are counted, not sent).",
    )
    drill.add_argument("--config", required=True, help="YAML configuration file")
    drill.add_argument("--scenario", help="built-in name or scenario YAML file")
    drill.add_argument("--suite", action="store_true", help="every built-in scenario, at once")
    drill.add_argument("--account", help="configured account whose policy is rehearsed")
    drill.add_argument(
        "--speed", type=float,
        help="simulated seconds per second (default 2; with --suite, fast enough that "
        "each scenario lasts about a minute)",
    )  # fmt: skip
    drill.add_argument(
        "--reserve", type=float, metavar="USDT",
        help="give every simulated account this reserve in its spot wallet",
    )  # fmt: skip
    output = drill.add_mutually_exclusive_group()
    output.add_argument("--json", action="store_true", help="print one JSON document")
    output.add_argument(
        "--markdown", action="store_true", help="print the suite's table as Markdown"
    )
    drill.set_defaults(handler=cmd_drill)

    from monitor.simulator.command import add_parser as add_sim_parser

    add_sim_parser(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.handler(args)


if __name__ == "__main__":
    raise SystemExit(main())
