"""What a package's source imports, read from its syntax tree (nothing is imported)."""

from __future__ import annotations

import ast
import itertools
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


def unit_of(module: str, packages: Iterable[str]) -> str | None:
    """The unit a module belongs to in the graph between subpackages: `monitor.daemon`
    for `monitor.daemon.service`, `monitor.cli` for the top-level module itself; None
    outside `packages` and for a package's own root (`import monitor`)."""
    head, _, rest = module.partition(".")
    if head not in packages or not rest:
        return None
    return f"{head}.{rest.partition('.')[0]}"


Edges = dict[str, dict[str, str]]
"""unit -> {unit it imports: one `file: module` that does}."""


def unit_graph(root: Path, packages: Iterable[str]) -> Edges:
    """Imports between the units of `packages` (directories under `root`); a unit's
    imports of itself are its own business."""
    packages = tuple(packages)
    edges: Edges = {}
    for package in packages:
        for path in sorted((root / package).rglob("*.py")):
            parts = path.relative_to(root).with_suffix("").parts
            source = unit_of(".".join(p for p in parts if p != "__init__"), packages)
            if source is None:  # the package's own __init__
                continue
            for name in sorted(imported_modules(path)):
                target = unit_of(name, packages)
                if target is not None and target != source:
                    edges.setdefault(source, {}).setdefault(
                        target, f"{path.relative_to(root)}: {name}"
                    )
    return edges


def cycles(edges: Edges) -> list[list[str]]:
    """One shortest cycle per strongly connected group of units (Tarjan's components, then
    a breadth-first walk from the group's first unit back to itself)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    groups: list[list[str]] = []

    def visit(unit: str) -> None:
        index[unit] = low[unit] = len(index)
        stack.append(unit)
        for target in edges.get(unit, {}):
            if target not in index:
                visit(target)
                low[unit] = min(low[unit], low[target])
            elif target in stack:
                low[unit] = min(low[unit], index[target])
        if low[unit] == index[unit]:
            group = []
            while (member := stack.pop()) != unit:
                group.append(member)
            groups.append(sorted([unit, *group]))

    for unit in sorted(edges):
        if unit not in index:
            visit(unit)
    return [_shortest_cycle(group, edges) for group in groups if len(group) > 1]


def _shortest_cycle(group: list[str], edges: Edges) -> list[str]:
    start = group[0]
    paths = {start: [start]}
    frontier = [start]
    while frontier:
        following = []
        for unit in frontier:
            for target in sorted(edges.get(unit, {})):
                if target == start:
                    return [*paths[unit], start]
                if target in group and target not in paths:
                    paths[target] = [*paths[unit], target]
                    following.append(target)
        frontier = following
    raise AssertionError(f"{group} is not strongly connected")


def describe(cycle: list[str], edges: Edges) -> str:
    """`a -> b -> a`, then the import behind each arrow."""
    steps = [f"  {a} -> {b} ({edges[a][b]})" for a, b in itertools.pairwise(cycle)]
    return " -> ".join(cycle) + "\n" + "\n".join(steps)
