"""`marginwatch telegram setup|test`'s arguments (entry point `marginwatch.commands`),
apart from their implementation (alerts/setup.py) so that building the CLI's parser
does not load python-telegram-bot."""

from __future__ import annotations

from typing import Any

from monitor.cli_args import deferred, positive_float


def add_parser(subparsers: Any) -> None:
    """Register `telegram setup` and `telegram test` (entry point `marginwatch.commands`)."""
    telegram = subparsers.add_parser(
        "telegram",
        help="set up and test paging through a Telegram bot",
        description="Find the chat ids for the configuration, and send a test page.",
    )
    actions = telegram.add_subparsers(dest="telegram_command", required=True, metavar="ACTION")
    setup = actions.add_parser(
        "setup",
        help="check the token; list the chats and users that wrote to the bot",
        description="Check notifiers.telegram's token (getMe) and list the chats and users "
        "that have written to the bot (getUpdates), as YAML to paste under "
        "notifiers.telegram. Only the token is needed: chats may still be empty.",
    )
    setup.add_argument("--config", required=True, metavar="FILE", help="YAML configuration")
    setup.set_defaults(handler=deferred("alerts.setup:cmd_setup"))
    test = actions.add_parser(
        "test",
        help="send a test page to every configured chat and report delivery",
        description="Send a test page to every chat in notifiers.telegram through the "
        "same durable outbox real pages use (in a temporary store, so a running daemon "
        "is not disturbed) and report per chat: delivered, refused, or still retrying.",
    )
    test.add_argument("--config", required=True, metavar="FILE", help="YAML configuration")
    test.add_argument(
        "--timeout", type=positive_float, default=30.0, metavar="SECONDS",
        help="give up waiting for delivery after this long (default 30)",
    )  # fmt: skip
    test.set_defaults(handler=deferred("alerts.setup:cmd_test"))
