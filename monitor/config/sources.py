"""Values kept outside the YAML file: `${VAR}` from the environment and `*_file` secrets.

Both resolve on parsed data, never on the text, so a value can't change the document's
structure. Problems come back as (key path, message) pairs for the loader to place; no
message ever includes a resolved value, since it may be a credential.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from monitor.config.document import Loc
from monitor.config.schema import SECRET_KEYS

Problem = tuple[Loc, str]

SECRET_FILE_KEYS: dict[str, str] = {f"{key}_file": key for key in SECRET_KEYS}
"""`api_key_file` → `api_key`, ...: the file's contents become the twin key's value."""

_REFERENCE = re.compile(r"\$(?:(?P<dollar>\$)|\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)\}|\{)")

_UNREAD = "unread"
"""Stands in for a secret whose file failed, so the schema's api_key/secret pairing check
doesn't report the same key twice. It never reaches a Config: the failure is an error."""


def substitute_env(data: Any, environ: Mapping[str, str]) -> tuple[Any, list[Problem]]:
    """Replace `${NAME}` in every string value (keys are left alone); `$$` is a literal `$`.

    An unset variable leaves the reference in place and is reported; a lone `$` not
    followed by `{` or `$` is kept as is, so passwords containing `$` need no escaping.
    """
    problems: list[Problem] = []

    def expand(text: str, loc: Loc) -> str:
        def replace(match: re.Match[str]) -> str:
            name = match["name"]
            if match["dollar"]:
                return "$"
            if name is None:
                problems.append((loc, "malformed ${...}: write ${NAME}, or $$ for a literal $"))
            elif name not in environ:
                problems.append((loc, f"environment variable {name} is not set"))
            else:
                return environ[name]
            return match[0]

        return _REFERENCE.sub(replace, text)

    def walk(value: Any, loc: Loc) -> Any:
        if isinstance(value, dict):
            return {key: walk(item, (*loc, key)) for key, item in value.items()}
        if isinstance(value, list):
            return [walk(item, (*loc, index)) for index, item in enumerate(value)]
        if isinstance(value, str):
            return expand(value, loc)
        return value

    return walk(data, ()), problems


def credentials_dir(config_path: Path, environ: Mapping[str, str]) -> Path:
    """Where relative `*_file` paths live.

    systemd's LoadCredential= exposes secrets in $CREDENTIALS_DIRECTORY; without it they sit
    next to the config file, wherever the daemon was started from.
    """
    directory = environ.get("CREDENTIALS_DIRECTORY")
    return Path(directory) if directory else config_path.absolute().parent


def resolve_secret_files(data: Any, directory: Path) -> tuple[Any, list[Problem]]:
    """Replace `<key>_file` with `<key>` (the file's text minus trailing newlines) in each
    account and in the Telegram notifier (`bot_token_file`)."""
    if not isinstance(data, dict):
        return data, []
    problems: list[Problem] = []
    result = dict(data)
    accounts = data.get("accounts")
    if isinstance(accounts, list):
        result["accounts"] = [
            _resolve_twins(account, ("accounts", index), directory, problems, SECRET_FILE_KEYS)
            if isinstance(account, dict)
            else account
            for index, account in enumerate(accounts)
        ]
    notifiers = data.get("notifiers")
    if isinstance(notifiers, dict) and isinstance(notifiers.get("telegram"), dict):
        telegram = _resolve_twins(
            notifiers["telegram"], ("notifiers", "telegram"), directory, problems,
            {"bot_token_file": "bot_token"},
        )  # fmt: skip
        result["notifiers"] = {**notifiers, "telegram": telegram}
    return result, problems


def _resolve_twins(
    section: dict[str, Any],
    loc: Loc,
    directory: Path,
    problems: list[Problem],
    twins: Mapping[str, str],
) -> dict[str, Any]:
    result = dict(section)
    for file_key, key in twins.items():
        if file_key not in result:
            continue
        file_value = result.pop(file_key)
        if result.get(key) is not None:
            problems.append(((*loc, file_key), f"cannot be combined with {key}; set only one"))
            continue
        result[key], problem = _read_secret(file_value, directory)
        if problem:
            problems.append(((*loc, file_key), problem))
    return result


def _read_secret(value: Any, directory: Path) -> tuple[str, str | None]:
    """The secret, or a placeholder and why it couldn't be read (naming the resolved path)."""
    if not isinstance(value, str) or not value:
        return _UNREAD, "must be a file path"
    path = directory / Path(value).expanduser()  # an absolute value replaces `directory`
    try:
        secret = path.read_text(encoding="utf-8").rstrip("\r\n")
    except UnicodeDecodeError:
        return _UNREAD, f"{path} is not UTF-8 text"
    except OSError as exc:
        return _UNREAD, f"cannot read {path}: {exc.strerror or type(exc).__name__}"
    if not secret:
        return _UNREAD, f"{path} is empty"
    return secret, None
