"""Read a YAML file into a validated Config, or raise one ConfigError listing every problem.

Order matters: parse (keeping lines), substitute `${VAR}`, read `*_file` secrets, validate.
Problems from every stage are collected, placed at `key.path (file:line)` and raised together.
"""

from __future__ import annotations

import os
from difflib import get_close_matches
from pathlib import Path
from types import UnionType
from typing import Any, Union, get_args, get_origin

import yaml
from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from monitor.config.document import Document, Loc, format_path, parse_document
from monitor.config.errors import ConfigError, ConfigIssue
from monitor.config.schema import AccountConfig, Config
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


def load_config(path: str | os.PathLike[str]) -> Config:
    """Load and validate the configuration at `path`; raises ConfigError on any problem."""
    config_path = Path(path)
    file = config_path.name
    try:
        text = config_path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise ConfigError(
            [ConfigIssue("", f"{config_path} is not UTF-8 text", None, file)]
        ) from None
    except OSError as exc:
        message = f"cannot read {config_path}: {exc.strerror or type(exc).__name__}"
        raise ConfigError([ConfigIssue("", message, None, file)]) from None
    document = _parse(text, file)

    data, problems = substitute_env(document.data, os.environ)
    data, file_problems = resolve_secret_files(data, credentials_dir(config_path, os.environ))
    problems += file_problems
    problems += [
        (loc, "duplicate key; remove one, else the last wins") for loc in document.duplicate_keys
    ]
    # A key already reported (e.g. an unset ${VAR}) would only fail validation again.
    reported = [loc for loc, _ in problems]
    try:
        config = Config.model_validate(data)
    except ValidationError as exc:
        problems += [
            (error["loc"], _describe(error) + _related_line(error, document))
            for error in exc.errors()
            if not any(error["loc"][: len(loc)] == loc for loc in reported)
        ]
        raise _error(problems, document, file) from None
    if problems:
        raise _error(problems, document, file)
    return config


def _parse(text: str, file: str) -> Document:
    """Parse, turning YAML errors and non-mapping documents into a ConfigError.

    Only the problem text is kept from a YAML error, not its source snippet, which could
    show a credential.
    """
    try:
        document = parse_document(text)
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


def _error(problems: list[Problem], document: Document, file: str) -> ConfigError:
    """Build the error with problems in file order, the way the operator will fix them."""
    issues = [
        ConfigIssue(format_path(loc), message, document.line_of(loc), file)
        for loc, message in problems
    ]
    return ConfigError(sorted(issues, key=lambda issue: issue.line or 0))


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
