"""Rows of a liquidation search: one set of legs moving together in one direction.

Both vectorised searches (newton.py for concave terms, walk.py for tables whose MM jumps)
read the same shape: rows, each repeating its problem's members, members sorted by row.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

Columns = dict[str, np.ndarray]


@dataclass(frozen=True, slots=True)
class SearchRows:
    """Static structure: which legs move together in which direction, one row each."""

    problem: np.ndarray
    """Per row: the problem it searches."""
    price_direction: np.ndarray
    """Per row: -1 a fall, +1 a rise."""
    direction: np.ndarray
    """+1 / -1 per row: the direction of t (price direction, reversed for inverse)."""
    inverse: np.ndarray
    member_row: np.ndarray
    """Per member (sorted by row): its row."""
    member_leg: np.ndarray
    members: Columns
    """Per member and per row, what does not change between frames (`member_columns`,
    `_row_columns`, `_bounds`)."""

    @property
    def size(self) -> int:
        return int(self.direction.size)

    def members_of(self, rows: np.ndarray, sizes: np.ndarray) -> np.ndarray:
        """The members of `rows` (row indices, ascending; `sizes`, their numbers of
        members), in member order: a few small operations for a few rows, where a mask
        over every member costs a pass."""
        ends = np.cumsum(sizes)
        return np.repeat(self.members["row_start"][rows] - (ends - sizes), sizes) + np.arange(
            ends[-1] if ends.size else 0
        )


def member_columns(
    direction: np.ndarray, member_row: np.ndarray, member_leg: np.ndarray, leg_cols: Columns,
    width: int,
) -> Columns:  # fmt: skip
    """The members' structural terms, gathered once per layout (a reload of the same
    structure keeps them; sizes and figures are read per frame): kind, tier movement,
    where each leg's tier row starts in the flattened tables (`first`) and its tier
    edges in the flattened `bounds` (`bounds_first`), and the far-side tier (the last one
    going up, the first going down, for legs whose tier moves)."""
    moving = leg_cols["moving"][member_leg]
    rising = direction[member_row] > 0
    far = np.where(rising, leg_cols["tier_count"][member_leg] - 1, 0)
    inverse = leg_cols["inverse"][member_leg]
    return {
        "inverse": inverse,
        "moving": moving,
        "first": member_leg * width,
        "bounds_first": member_leg * (width + 1),
        "offset": np.where(inverse, 0.0, 1.0),
        "far": far,
        "any_inverse": np.array(bool(inverse.any())),
        "all_moving": np.array(bool(moving.all())),
    }


def _row_columns(
    row_problem: np.ndarray, price_direction: np.ndarray, counts: np.ndarray,
    member_row: np.ndarray, member_leg: np.ndarray,
) -> Columns:  # fmt: skip
    """Per row, what does not change between frames: where its members start and how
    many there are; the rising and falling rows and their problems. Rows of one problem
    (adjacent) share their members and their tiers now, so the line at the current
    tiers is summed once per problem: `primary` are the members of each problem's first
    row (and their legs), `slot_start` where each problem's begin among them and
    `row_slot` each row's problem's place."""
    opens = np.ones(row_problem.size, dtype=bool)
    opens[1:] = row_problem[1:] != row_problem[:-1]
    row_slot = np.cumsum(opens) - 1
    primary = np.flatnonzero(opens[member_row])
    up = np.flatnonzero(price_direction > 0)
    down = np.flatnonzero(price_direction < 0)
    return {
        "row_start": np.cumsum(counts) - counts,
        "row_size": counts,
        "up": up,
        "down": down,
        "up_problem": row_problem[up],
        "down_problem": row_problem[down],
        "row_slot": row_slot,
        "primary": primary,
        "primary_leg": member_leg[primary],
        "slot_start": np.cumsum(counts[opens]) - counts[opens],
    }


def _bounds(row_inverse: np.ndarray) -> Columns:
    """Per row, where t starts (the current marks: 0, or 1 for inverse contracts) and
    its bound (price zero: -1, or 0 for inverse contracts)."""
    return {
        "start": np.where(row_inverse, 1.0, 0.0),
        "lower": np.where(row_inverse, 0.0, -1.0),
    }


def search_rows(
    problems: np.ndarray, longs: np.ndarray, shorts: np.ndarray, *, inverse: np.ndarray,
    start: np.ndarray, size: np.ndarray, member_leg: np.ndarray, leg_cols: Columns, width: int,
) -> SearchRows:  # fmt: skip
    """Rows for `problems`: a downward row where the problem holds a long, an upward one
    where it holds a short; down first, as the scalar search breaks ties towards the fall.
    `start`, `size` and `member_leg` are the member table (grouped by problem)."""
    down = problems[longs[problems] > 0]
    up = problems[shorts[problems] > 0]
    row_problem = np.concatenate([down, up])
    price_direction = np.concatenate([-np.ones(down.size), np.ones(up.size)])
    order = np.lexsort((-price_direction, row_problem))
    row_problem, price_direction = row_problem[order], price_direction[order]
    row_inverse = inverse[row_problem]
    counts = size[row_problem]
    member_row = np.repeat(np.arange(row_problem.size), counts)
    offsets = np.arange(member_row.size) - np.repeat(np.cumsum(counts) - counts, counts)
    legs = member_leg[np.repeat(start[row_problem], counts) + offsets]
    direction = np.where(row_inverse, -price_direction, price_direction)
    members = member_columns(direction, member_row, legs, leg_cols, width)
    members |= _row_columns(row_problem, price_direction, counts, member_row, legs)
    members |= _bounds(row_inverse)
    return SearchRows(
        problem=row_problem,
        price_direction=price_direction,
        direction=direction,
        inverse=row_inverse,
        member_row=member_row,
        member_leg=legs,
        members=members,
    )
