"""Read a YAML file into a validated Config, or raise one ConfigError listing every problem.

Order matters: parse (keeping lines), substitute `${VAR}`, read `*_file` secrets, validate.
Problems from every stage are collected, placed at `key.path (file:line)` and raised together.

The exchanges' capabilities are checked last, when the caller hands them over (`venues`,
the venue registry's `lacks`): the configuration cannot import the venues, which build on
it, so the composers (the CLI, the daemon's reload) pass them in.

Bounded, so a hostile or broken file costs little whoever loads it (the CLI, or a running
daemon on SIGHUP): at most MAX_BYTES are read, aliases may expand the document to at most
MAX_NODES values (monitor/config/document.py), and only the first MAX_SHOWN problems are
described.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Sequence
from difflib import get_close_matches
from pathlib import Path
from types import UnionType
from typing import Any, TypeVar, Union, get_args, get_origin

import yaml
from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from monitor.config.document import (
    MAX_NODES,
    Document,
    DocumentTooLarge,
    Loc,
    format_path,
    parse_document,
)
from monitor.config.errors import MAX_SHOWN, ConfigError, ConfigIssue
from monitor.config.schema import AccountConfig, Config, TelegramAccess
from monitor.config.sources import (
    SECRET_FILE_KEYS,
    Problem,
    credentials_dir,
    resolve_secret_files,
    substitute_env,
)

_MESSAGES = {
    "missing": "required key is missing",
    "model_type": "must be a mapping",
    "tuple_type": "must be a list",
    "string_type": "must be a string (quote it in YAML)",
    "string_too_short": "must not be empty",
}
"""Pydantic messages reworded for YAML users: no Python type or class names."""

MAX_BYTES = 1024 * 1024
"""1 MiB: a configuration of hundreds of accounts is tens of kilobytes."""

M = TypeVar("M", bound=BaseModel)

VenueCheck = Callable[[AccountConfig], Iterable[tuple[Loc, str]]]
"""What an account asks of its exchange that the exchange cannot do: (key under the
account, message) each; nothing when all is possible."""

__all__ = ["MAX_BYTES", "MAX_NODES", "MAX_SHOWN", "VenueCheck", "load_config"]


def load_config(path: str | os.PathLike[str], *, venues: VenueCheck | None = None) -> Config:
    """Load and validate the configuration at `path`; raises ConfigError on any problem.

    `venues`: also refuse what an account asks of an exchange that cannot do it (the
    composers pass `monitor.venues.registry.lacks`; without it, only the file is checked).
    """
    document, data, problems, file = _resolve(Path(path))
    config = _validated(Config, data, problems, document, file, where=())
    refused = _venue_refusals(config, venues, document) if venues is not None else []
    if refused:
        raise _error(refused, document, file)
    return config


def _venue_refusals(config: Config, venues: VenueCheck, document: Document) -> list[Problem]:
    """Each placed where it is written: at the account's own key, else at the global key
    the account inherits (naming the account)."""
    refused: list[Problem] = []
    for index, account in enumerate(config.accounts):
        for key, message in venues(account):
            own: Loc = ("accounts", index, *key)
            if own not in document.lines and key in document.lines:
                refused.append((key, f"{message} (account {account.name!r} inherits it)"))
            else:
                refused.append((own, message))
    return refused


def load_telegram_access(path: str | os.PathLike[str]) -> TelegramAccess:
    """The bot token and API URL under `notifiers.telegram`, whatever else the file holds.

    `marginwatch telegram setup` runs before the configuration is complete: it finds the
    chat ids that `chats` needs. Resolved exactly as `load_config` does (`${VAR}`,
    `bot_token_file`), with problems placed the same way.
    """
    document, data, problems, file = _resolve(Path(path))
    where = ("notifiers", "telegram")
    section = data.get("notifiers", {}) if isinstance(data, dict) else {}
    section = section.get("telegram") if isinstance(section, dict) else None
    problems = [(loc, message) for loc, message in problems if loc[:2] == where]
    if not isinstance(section, dict):
        message = "not configured: add bot_token_file (or bot_token) first, see config.example.yaml"
        raise _error([(where, message)], document, file)
    return _validated(TelegramAccess, section, problems, document, file, where=where)


def _validated(
    model: type[M],
    data: Any,
    problems: list[Problem],
    document: Document,
    file: str,
    *,
    where: Loc,
) -> M:
    """`data` validated as `model` (found at `where` in the file), or one ConfigError with
    every problem. A key already reported (e.g. an unset ${VAR}) is not reported again."""
    reported = {loc for loc, _ in problems}
    try:
        validated = model.model_validate(data)
    except ValidationError as exc:
        errors = exc.errors(include_url=False, include_input=False)
        located = [{**error, "loc": (*where, *error["loc"])} for error in errors]
        raise _error(
            [*problems, *((e["loc"], e) for e in located if not _under(e["loc"], reported))],
            document,
            file,
        ) from None
    if problems:
        raise _error(problems, document, file)
    return validated


def _resolve(config_path: Path) -> tuple[Document, Any, list[Problem], str]:
    """Read, parse, substitute `${VAR}` and read `*_file` secrets: the data to validate,
    and the problems met on the way."""
    file = config_path.name
    document = _parse(_read(config_path), file)

    data, problems = substitute_env(document.data, os.environ)
    data, file_problems = resolve_secret_files(data, credentials_dir(config_path, os.environ))
    problems += file_problems
    problems += [
        (loc, "duplicate key; remove one, else the last wins") for loc in document.duplicate_keys
    ]
    return document, data, problems, file


def _under(loc: Loc, reported: set[Loc]) -> bool:
    """Whether `loc` is, or is inside, a key already reported."""
    return any(loc[:end] in reported for end in range(len(loc) + 1))


def _read(path: Path) -> str:
    """The file's text, read only up to the size cap."""
    try:
        with path.open("rb") as stream:
            raw = stream.read(MAX_BYTES + 1)
    except OSError as exc:
        message = f"cannot read {path}: {exc.strerror or type(exc).__name__}"
        raise ConfigError([ConfigIssue("", message, None, path.name)]) from None
    if len(raw) > MAX_BYTES:
        message = f"{path} is larger than 1 MiB, the limit for a configuration file"
        raise ConfigError([ConfigIssue("", message, None, path.name)])
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigError([ConfigIssue("", f"{path} is not UTF-8 text", None, path.name)]) from None


def _parse(text: str, file: str) -> Document:
    """Parse, turning YAML errors and non-mapping documents into a ConfigError.

    Only the problem text is kept from a YAML error, not its source snippet, which could
    show a credential.
    """
    try:
        document = parse_document(text)
    except DocumentTooLarge as exc:
        raise ConfigError([ConfigIssue("", exc.message, exc.line, file)]) from None
    except yaml.MarkedYAMLError as exc:
        reason = exc.problem or "syntax error"
        if exc.context and exc.context_mark:
            reason += f" ({exc.context} from line {exc.context_mark.line + 1})"
        line = exc.problem_mark.line + 1 if exc.problem_mark else None
        raise ConfigError([ConfigIssue("", f"invalid YAML: {reason}", line, file)]) from None
    except yaml.reader.ReaderError as exc:  # a control character: no mark, just a position
        line = text.count("\n", 0, exc.position) + 1
        message = f"invalid YAML: character #x{exc.character:04x} is not allowed"
        raise ConfigError([ConfigIssue("", message, line, file)]) from None
    if document.data is None:
        message = "the file is empty; it must define at least 'accounts'"
        raise ConfigError([ConfigIssue("", message, None, file)])
    if not isinstance(document.data, dict):
        message = (
            "the top level must be a mapping of settings (state_dir, log, thresholds, accounts)"
        )
        raise ConfigError([ConfigIssue("", message, document.line_of(()), file)])
    return document


def _error(
    problems: Sequence[tuple[Loc, str | ErrorDetails]], document: Document, file: str
) -> ConfigError:
    """Build the error with problems in file order, the way the operator will fix them;
    only the first MAX_SHOWN are described (a suggested spelling costs a search)."""
    placed = sorted(
        ((document.line_of(loc), index) for index, (loc, _) in enumerate(problems)),
        key=lambda item: (item[0] or 0, item[1]),
    )
    issues = []
    for line, index in placed[:MAX_SHOWN]:
        loc, problem = problems[index]
        message = (
            problem
            if isinstance(problem, str)
            else _describe(problem) + _related_line(problem, document)
        )
        issues.append(ConfigIssue(format_path(loc), message, line, file))
    return ConfigError(issues, more=len(placed) - len(issues))


def _describe(error: ErrorDetails) -> str:
    kind = error["type"]
    if kind == "extra_forbidden":
        return _unknown_key(error["loc"])
    if kind in _MESSAGES:
        return _MESSAGES[kind]
    message = error["msg"]
    if message.startswith("Input should be "):
        return "must be " + message.removeprefix("Input should be ")
    return message


def _model_in(model: type[BaseModel], key: str) -> Any:
    """The model a key holds, through `X | None` (an optional section)."""
    field = next(f for name, f in model.model_fields.items() if key in (name, f.alias))
    annotation = field.annotation
    if get_origin(annotation) not in (Union, UnionType):
        return annotation
    options = [a for a in get_args(annotation) if isinstance(a, type) and issubclass(a, BaseModel)]
    return options[0] if options else annotation


def _related_line(error: ErrorDetails, document: Document) -> str:
    """Where the other key of a two-key problem is written (see `schema.RELATED`)."""
    related = (error.get("ctx") or {}).get("related")
    if not related:
        return ""
    line = document.line_of(tuple(related))
    return "" if line is None else f" (that key: line {line})"


def _unknown_key(loc: Loc) -> str:
    """Suggest the closest allowed key, or list them all when nothing is close."""
    allowed = _allowed_keys(loc[:-1])
    close = get_close_matches(str(loc[-1]).lower(), allowed, n=1)
    if close:
        return f"unknown key; did you mean {close[0]!r}?"
    return f"unknown key; allowed keys: {', '.join(allowed)}"


def _allowed_keys(loc: Loc) -> list[str]:
    """Keys of the model at `loc`, found by following field annotations from Config.

    Accounts also take the `*_file` twins, which the loader consumes before validation.
    """
    current: Any = Config
    for part in loc:
        current = get_args(current)[0] if isinstance(part, int) else _model_in(current, str(part))
    model: type[BaseModel] = current
    allowed = [field.alias or name for name, field in model.model_fields.items()]
    if model is AccountConfig:
        allowed += SECRET_FILE_KEYS
    return allowed
