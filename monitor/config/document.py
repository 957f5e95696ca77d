"""YAML text to plain data, plus the line of every key so errors can point into the file.

Bounded: a YAML alias repeats a node without copying it, so a 1 KB file of nested anchors
and aliases stands for billions of values (the "billion laughs"), which every walk of the
data (line numbers, `${VAR}`, validation) would expand. The composer counts values as
they would be once expanded and stops at MAX_NODES, at the alias that crossed it; it also
refuses an alias to a node that contains it (an endless loop) and nesting deeper than
MAX_DEPTH (the walks recurse). libyaml's parser feeds it when installed (PyYAML's wheels
include it), else PyYAML's own.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from yaml.composer import Composer
from yaml.constructor import SafeConstructor
from yaml.events import AliasEvent, Event
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode
from yaml.resolver import Resolver

try:
    from yaml.cyaml import CParser as _EventSource
except ImportError:  # PyYAML built without libyaml: its pure-Python parser, slower
    from yaml.parser import Parser
    from yaml.reader import Reader
    from yaml.scanner import Scanner

    class _EventSource(Reader, Scanner, Parser):  # type: ignore[no-redef]
        def __init__(self, stream: str) -> None:
            Reader.__init__(self, stream)
            Scanner.__init__(self)
            Parser.__init__(self)


MAX_NODES = 100_000
"""Values (keys, scalars, lists, mappings) in the document once its aliases are expanded:
a configuration of hundreds of accounts, each with its own thresholds, has a few
thousand."""
MAX_DEPTH = 64

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


class DocumentTooLarge(Exception):
    """The document is over a bound (see the module docstring); `line` is 1-based."""

    def __init__(self, message: str, line: int) -> None:
        super().__init__(message)
        self.message = message
        self.line = line


class _BoundedComposer(Composer):
    """PyYAML's composer, counting values as expanded (see the module docstring)."""

    def __init__(self) -> None:
        super().__init__()
        self._expanded = 0
        self._depth = 0
        self._sizes: dict[int, int] = {}
        """Expanded size of each anchored node, by identity, once it is complete."""

    def compose_node(self, parent: Node | None, index: Any) -> Node:
        event: Event = self.peek_event()
        if isinstance(event, AliasEvent):
            node = super().compose_node(parent, index)
            size = self._sizes.get(id(node))
            if size is None:
                raise DocumentTooLarge(
                    f"alias *{event.anchor} refers to a node that contains it, an endless loop",
                    event.start_mark.line + 1,
                )
            self._count(size, event)
            return node
        self._depth += 1
        if self._depth > MAX_DEPTH:
            raise DocumentTooLarge(
                f"nested more than {MAX_DEPTH} levels deep", event.start_mark.line + 1
            )
        before = self._expanded
        self._count(1, event)
        node = super().compose_node(parent, index)
        self._depth -= 1
        if getattr(event, "anchor", None) is not None:
            self._sizes[id(node)] = self._expanded - before
        return node

    def _count(self, size: int, event: Event) -> None:
        self._expanded += size
        if self._expanded <= MAX_NODES:
            return
        if isinstance(event, AliasEvent):
            message = (
                f"the document grows past {MAX_NODES:,} values at alias *{event.anchor}; "
                "nested anchors and aliases can make a small file expand without bound "
                '("billion laughs"), so it is refused'
            )
        else:
            message = (
                f"the document has more than {MAX_NODES:,} values (keys, scalars, lists) "
                "by here; a configuration needs a few thousand"
            )
        raise DocumentTooLarge(message, event.start_mark.line + 1)


class _BoundedLoader(_BoundedComposer, _EventSource, SafeConstructor, Resolver):
    """SafeLoader's parts (no arbitrary tags) with the bounded composer."""

    def __init__(self, text: str) -> None:
        _EventSource.__init__(self, text)
        _BoundedComposer.__init__(self)
        SafeConstructor.__init__(self)
        Resolver.__init__(self)


def parse_document(text: str) -> Document:
    """Parse safely (no arbitrary tags) within the bounds above; raises yaml.YAMLError on
    bad syntax and DocumentTooLarge past a bound.

    Lines come from the composed node tree, read before construction because building the
    data flattens `<<` merge keys inside that tree.
    """
    loader = _BoundedLoader(text)
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
