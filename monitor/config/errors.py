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


MAX_SHOWN = 50
"""Problems spelled out; past these, a count. A file of 400,000 unknown keys must not
print 400,000 lines (or spend minutes suggesting spellings for them)."""


class ConfigError(Exception):
    """Every problem found in a configuration (the first MAX_SHOWN in file order, and how
    many more), so the operator fixes them all in one pass."""

    def __init__(self, errors: Sequence[ConfigIssue], more: int = 0) -> None:
        self.errors: list[ConfigIssue] = list(errors)
        self.more = more
        lines = [str(issue) for issue in self.errors]
        if more:
            lines.append(f"... and {more:,} more problems")
        super().__init__("\n".join(lines))
