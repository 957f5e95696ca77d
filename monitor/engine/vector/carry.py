"""Table entries at each row's place in its tier table, carried from frame to frame.

Reading a tier table at one place per row (a take over thousands of rows) costs tens of
microseconds and, at a thousand accounts, mostly cache misses. Between two frames almost
every row keeps its place (a position's tier, a Newton member's tier at its row's root,
a closed-form leg's bracket), so the entries read last frame are kept with the places
they were read at and only rows whose place moved are read again. The entries are the
tables' own values, so nothing depends on the history but the cost; where a poll
rewrites some rows of the tables in place, those rows are marked `stale` and read again
on the next use (a re-joined layout starts from nothing).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np

Table = tuple[np.ndarray, np.ndarray]
"""A flattened table and where each row's entries start in it."""


@dataclass(slots=True)
class Carried:
    index: np.ndarray
    """Each row's place (tier or bracket): the caller's array, changed only by `move`."""
    values: list[np.ndarray]
    """Per table, each row's entry at its place (empty: not read yet from the current
    tables)."""
    stale: np.ndarray | None = None
    """Rows whose entries the tables no longer hold (rewritten since they were read)."""


def carried_at(previous: Carried | None, index: np.ndarray, tables: Sequence[Table]) -> Carried:
    """The entries of `tables` at `index`: `previous`'s where its place is the same (it
    must have been read from these tables), read again elsewhere. Takes `index` over."""
    if previous is None or not previous.values or previous.index.size != index.size:
        return Carried(index, [table.take(at) for table, at in _places(tables, index)])
    if previous.stale is not None:
        _read(previous, previous.stale, tables)
        previous.stale = None
    if index is previous.index:
        return previous
    moved = np.flatnonzero(index != previous.index)
    previous.index = index
    if moved.size:
        _read(previous, moved, tables)
    return previous


def move(carried: Carried, rows: np.ndarray, index: np.ndarray, tables: Sequence[Table]) -> None:
    """Move `rows` to places `index` and read their entries there."""
    carried.index[rows] = index
    _read(carried, rows, tables)


def _read(carried: Carried, rows: np.ndarray, tables: Sequence[Table]) -> None:
    places = _places(tables, carried.index.take(rows), rows)
    for values, (table, at) in zip(carried.values, places, strict=True):
        values[rows] = table.take(at)


def _places(
    tables: Sequence[Table], index: np.ndarray, rows: np.ndarray | None = None
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Each table with where `rows` (all if None) read it at their places `index`: tables
    sharing their starts (a tier's rate and deduction; its two edges) share the sum."""
    first, at = None, index
    for table, starts in tables:
        if starts is not first:
            first = starts
            at = (starts if rows is None else starts.take(rows)) + index
        yield table, at
