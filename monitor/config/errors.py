"""What a broken configuration looks like to the operator: one line per problem, with its place."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ConfigIssue:
    """One problem, located by key path (`accounts[1].thresholds.cross.warn`) and file line.

    `path` is empty for problems with the file as a whole (unreadable, empty, bad YAML);
    `line` is None when no line applies (the file could not be read).
    """

    path: str
    message: str
    line: int | None
    file: str

    def __str__(self) -> str:
        where = self.file if self.line is None else f"{self.file}:{self.line}"
        prefix = f"{self.path}: " if self.path else ""
        return f"{prefix}{self.message} ({where})"


class ConfigError(Exception):
    """Every problem found in a configuration, so the operator fixes them all in one pass."""

    def __init__(self, errors: Sequence[ConfigIssue]) -> None:
        self.errors: list[ConfigIssue] = list(errors)
        super().__init__("\n".join(str(issue) for issue in self.errors))
