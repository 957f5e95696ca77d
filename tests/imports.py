"""What a package's source imports, read from its syntax tree (nothing is imported)."""

from __future__ import annotations

import ast
from collections.abc import Iterable, Iterator
from pathlib import Path


def imported_modules(path: Path) -> set[str]:
    """Every module a file names in an import, at any depth (lazy imports included);
    `from a import b` counts as both `a` and `a.b`, since `b` may be a module."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def within(name: str, packages: Iterable[str]) -> bool:
    return any(name == p or name.startswith(f"{p}.") for p in packages)


def offenders(package: Path, forbidden: Iterable[str]) -> Iterator[str]:
    """`file: module` for every import under `package` of a forbidden module."""
    forbidden = tuple(forbidden)
    for path in sorted(package.rglob("*.py")):
        for name in sorted(imported_modules(path)):
            if within(name, forbidden):
                yield f"{path.relative_to(package)}: {name}"
