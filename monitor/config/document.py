"""YAML text to plain data, plus the line of every key so errors can point into the file."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

Loc = tuple[str | int, ...]
"""A key path as pydantic reports it: ("accounts", 0, "name")."""

_MERGE_TAG = "tag:yaml.org,2002:merge"


@dataclass(frozen=True, slots=True)
class Document:
    """Parsed data with 1-based lines: of each key, and of each list item."""

    data: Any
    lines: Mapping[Loc, int]
    duplicate_keys: tuple[Loc, ...]

    def line_of(self, loc: Loc) -> int | None:
        """Line of `loc`, else of its nearest ancestor in the file.

        Falling back matters for missing keys: they're reported at the mapping that should
        have held them.
        """
        for end in range(len(loc), -1, -1):
            line = self.lines.get(loc[:end])
            if line is not None:
                return line
        return None


def parse_document(text: str) -> Document:
    """Parse with SafeLoader (no arbitrary tags); raises yaml.YAMLError on bad syntax.

    Lines come from the composed node tree, read before construction because building the
    data flattens `<<` merge keys inside that tree.
    """
    loader = yaml.SafeLoader(text)
    try:
        root = loader.get_single_node()
        if root is None:
            return Document(None, {}, ())
        lines: dict[Loc, int] = {(): root.start_mark.line + 1}
        duplicates: list[Loc] = []
        _record_lines(root, (), lines, duplicates)
        data = loader.construct_document(root)
    finally:
        loader.dispose()
    return Document(data, lines, tuple(duplicates))


def format_path(loc: Loc) -> str:
    """("accounts", 0, "name") → "accounts[0].name"."""
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else part
    return text


def _record_lines(node: Node, loc: Loc, lines: dict[Loc, int], duplicates: list[Loc]) -> None:
    """Walk the nodes, noting lines and repeated keys (PyYAML silently keeps the last one)."""
    if isinstance(node, MappingNode):
        seen: set[str] = set()
        for key_node, value_node in node.value:
            if not isinstance(key_node, ScalarNode) or key_node.tag == _MERGE_TAG:
                continue
            child = (*loc, key_node.value)
            if key_node.value in seen:
                duplicates.append(child)
            seen.add(key_node.value)
            lines[child] = key_node.start_mark.line + 1
            _record_lines(value_node, child, lines, duplicates)
    elif isinstance(node, SequenceNode):
        for index, item in enumerate(node.value):
            child = (*loc, index)
            lines[child] = item.start_mark.line + 1
            _record_lines(item, child, lines, duplicates)
