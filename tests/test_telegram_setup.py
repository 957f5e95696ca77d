"""`marginwatch telegram setup|test` against the local Bot API server, through PTB.

The command runs in process (tests/e2e.py `run_cli`: its own PTB, its own HTTP, its own
event loop) while the test's loop serves the Bot API on 127.0.0.1; what the user pastes is
then loaded by the real config loader.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from monitor.config import ConfigError, load_config
from tests.e2e import run_cli
from tests.servers.telegram import FIXTURE_TOKEN, telegram_server

ACCOUNT = {"name": "main", "exchange": "binanceusdm"}


def config_file(tmp_path: Path, base_url: str, **telegram: Any) -> Path:
    """A config whose token comes from a file next to it, as the example suggests."""
    (tmp_path / "telegram_bot_token").write_text(FIXTURE_TOKEN + "\n")
    section = {"bot_token_file": "telegram_bot_token", "api_url": base_url, **telegram}
    path = tmp_path / "config.yaml"
    document = {
        "state_dir": str(tmp_path / "state"),
        "notifiers": {"telegram": section},
        "accounts": [ACCOUNT],
    }
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return path


async def test_setup_checks_the_token_and_says_what_to_do_when_nobody_wrote(
    tmp_path: Path,
) -> None:
    async with telegram_server() as (state, base_url):
        config = config_file(tmp_path, base_url)  # no chats yet: that is why setup runs
        code, out, err = await run_cli("telegram", "setup", "--config", str(config))
    assert code == 0, err
    assert "Token OK: the bot is @marginwatch_test_bot (id 123456789)." in out
    assert "Nobody has written to the bot yet" in out
    assert "https://t.me/marginwatch_test_bot" in out
    assert [call.method for call in state.requests] == ["getMe", "getUpdates"]


async def test_setup_lists_chats_and_users_ready_to_paste(tmp_path: Path) -> None:
    async with telegram_server() as (state, base_url):
        state.push_message(5550001, 5550001, "/start")
        state.push_message(-1007770001, 5550002, "/start@marginwatch_test_bot")
        state.push_message(5550001, 5550001, "hello again")
        config = config_file(tmp_path, base_url)
        code, out, err = await run_cli("telegram", "setup", "--config", str(config))
        pending = len(state.updates)
    assert code == 0, err
    assert pending == 3  # read, not confirmed: the daemon's console still gets them
    assert "5550001  private" in out
    assert "-1007770001  supergroup  chat-1007770001" in out
    pasted = out.split("`accounts: null` means every account):\n\n")[1].split("\n\n")[0]
    snippet = yaml.safe_load(pasted)
    assert snippet == {
        "chats": [
            {"chat_id": 5550001, "accounts": None},
            {"chat_id": -1007770001, "accounts": None},
        ],
        "allowed_users": [5550001, 5550002],
    }
    # Pasted under notifiers.telegram as printed (indented), the configuration loads.
    text = config.read_text().replace(
        f"    api_url: {base_url}\n", f"    api_url: {base_url}\n{pasted}\n"
    )
    config.write_text(text)
    loaded = load_config(config)
    assert loaded.notifiers.telegram is not None
    assert [c.chat_id for c in loaded.notifiers.telegram.chats] == [5550001, -1007770001]
    assert loaded.notifiers.telegram.allowed_users == (5550001, 5550002)


async def test_setup_with_a_refused_token_says_so_without_showing_it(tmp_path: Path) -> None:
    async with telegram_server(token="999999999:AAAnotTheTokenTheServerKnows_0000000") as (
        _state,
        base_url,
    ):
        config = config_file(tmp_path, base_url)
        code, out, err = await run_cli("telegram", "setup", "--config", str(config))
    assert code == 78
    assert "the bot token was refused" in err and "@BotFather" in err
    assert FIXTURE_TOKEN not in out + err
    assert "Traceback" not in err


def test_a_telegram_block_without_chats_points_to_setup(tmp_path: Path) -> None:
    config = config_file(tmp_path, "http://127.0.0.1:9", chats=[])
    with pytest.raises(ConfigError) as error:
        load_config(config)
    assert "notifiers.telegram.chats: list at least one chat; `marginwatch telegram setup" in (
        str(error.value)
    )


async def test_test_page_goes_through_the_outbox_and_delivery_is_reported(
    tmp_path: Path,
) -> None:
    async with telegram_server() as (state, base_url):
        state.flood[5550001] = 1  # Telegram's 429: the outbox waits the second and retries
        state.fail[5550003] = (403, "Forbidden: bot was blocked by the user")
        chats = [{"chat_id": 5550001}, {"chat_id": 5550003}]
        config = config_file(tmp_path, base_url, chats=chats)
        code, out, err = await run_cli("telegram", "test", "--config", str(config))
        texts = state.texts(5550001)
    assert code == 1, err  # one chat refused
    assert "telegram chat 5550001: delivered after 2 attempts" in out
    assert "telegram chat 5550003: refused: " in out and "bot was blocked by the user" in out
    assert len(texts) == 1 and texts[0].startswith("marginwatch test page from ")
    assert "Pages for these accounts come here: main" in texts[0]
    assert FIXTURE_TOKEN not in out + err


async def test_test_page_to_every_chat_delivered_exits_0(tmp_path: Path) -> None:
    async with telegram_server() as (state, base_url):
        config = config_file(tmp_path, base_url, chats=[{"chat_id": 5550001}])
        code, out, err = await run_cli("telegram", "test", "--config", str(config))
    assert code == 0, err
    assert out.strip() == "telegram chat 5550001: delivered"
    assert [m["chat_id"] for m in state.sent] == [5550001]
