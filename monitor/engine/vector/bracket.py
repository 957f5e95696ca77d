"""Closed-form liquidation prices of single linear legs, many at once.

Binance's FAQ formula, bracket by bracket (solver.bracket_root_price, vectorised):
LP = (C - side x q x EP + cum - c) / (q x (rate + extra - side)), re-solved one bracket
further (down for a long, up for a short) until the price lies in the bracket it was
computed with. Each pass retires the legs that are done; no leg takes more passes than
its table has brackets, and a warm start (last frame's bracket) usually takes one.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from monitor.engine.solver import AT_BOUND
from monitor.engine.vector.carry import Carried, carried_at, move

Columns = dict[str, np.ndarray]


@dataclass(frozen=True, slots=True)
class Legs:
    """The terms of the legs a bracket search solves, gathered once per layout (a poll
    rewrites figures, so a new layout gathers them again) rather than per frame."""

    rows: np.ndarray
    sign: np.ndarray
    qty: np.ndarray
    held: np.ndarray
    """side x q x EP + c: what the formula takes off the constant, in its order."""
    mm_constant: np.ndarray
    last: np.ndarray
    first: np.ndarray
    """Where each leg's tiers start in the flattened tier tables, and its edges in the
    flattened `bounds`."""
    bounds_first: np.ndarray

    def refresh(self, leg_cols: Columns, at: np.ndarray) -> None:
        """Read the figures of legs `at` (indices into `rows`) again: a poll rewrote them."""
        rows = self.rows[at]
        self.qty[at] = leg_cols["qty"][rows]
        self.held[at] = self.sign[at] * self.qty[at] * leg_cols["entry"][rows]
        self.mm_constant[at] = leg_cols["mm_constant"][rows]


def gather(leg_cols: Columns, tier_cols: Columns, rows: np.ndarray) -> Legs:
    sign, qty = leg_cols["sign"][rows], leg_cols["qty"][rows]
    return Legs(
        rows=rows,
        sign=sign,
        qty=qty,
        held=sign * qty * leg_cols["entry"][rows],
        mm_constant=leg_cols["mm_constant"][rows],
        last=leg_cols["tier_count"][rows] - 1,
        first=rows * tier_cols["scales"].shape[1],
        bounds_first=rows * tier_cols["bounds"].shape[1],
    )


def bracket_price(
    legs: Legs, tier_cols: Columns, constant: np.ndarray, start: np.ndarray | Carried
) -> tuple[np.ndarray, Carried]:
    """(liquidation price, its bracket with the bracket's terms) of each of `legs` with
    `constant` (its wallet, plus PnL minus MM of whatever is held still), the search
    starting at bracket `start` (or last frame's brackets, carried with their terms).

    A single leg's equity - MM is strictly monotone in the price (slope q x (1 - rate)
    for a long, -q x (1 + rate) for a short), so exactly one bracket holds its own
    candidate price: the one the scalar walk stops at. Testing both edges lets the search
    start anywhere (the previous frame's answer, usually right) and step towards it. The
    first pass reads every leg's carried terms; later ones only the legs still moving.
    """
    base = np.subtract(constant, legs.held)
    base -= legs.mm_constant
    scales, amounts = tier_cols["scales"].ravel(), tier_cols["amounts"].ravel()
    bounds = tier_cols["bounds"].ravel()
    tables = [
        (amounts, legs.first), (scales, legs.first),
        (bounds, legs.bounds_first), (bounds[1:], legs.bounds_first),
    ]  # fmt: skip
    if isinstance(start, Carried):
        carried = carried_at(start, start.index, tables)
    else:
        carried = carried_at(None, np.minimum(np.asarray(start, dtype=np.intp), legs.last), tables)
    amount, scale, low, high = carried.values
    price, below, above = _try(base, amount, scale, legs.qty, low, high)
    above &= carried.index < legs.last
    # Only the legs whose bracket moves are stepped (and read again at their last one).
    moved = pending = np.flatnonzero(below | above)
    slot = np.arange(moved.size)
    at = carried.index.take(moved)
    step = above.take(moved) - below.take(moved).astype(np.intp)
    final = np.empty_like(at)
    while pending.size:
        at += step
        flat = legs.first.take(pending) + at
        edge = legs.bounds_first.take(pending) + at
        found, below, above = _try(
            base.take(pending), amounts.take(flat), scales.take(flat), legs.qty.take(pending),
            bounds.take(edge), bounds.take(edge + 1),
        )  # fmt: skip
        above &= at < legs.last.take(pending)
        go_on = below | above
        done = np.flatnonzero(~go_on)
        price[pending.take(done)] = found.take(done)
        final[slot.take(done)] = at.take(done)
        step = (above.astype(np.intp) - below)[go_on]
        pending, slot, at = pending[go_on], slot[go_on], at[go_on]
    move(carried, moved, final, tables)
    return price, carried


def _try(
    base: np.ndarray, amount: np.ndarray, scale: np.ndarray, q: np.ndarray, low: np.ndarray,
    high: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:  # fmt: skip
    """Each leg's candidate price in the bracket whose deduction, divisor
    q x (rate + extra - side) (the tier table `scales`) and edges are given, and whether
    it lies below the bracket or at or above its end."""
    found = np.add(base, amount)
    found /= scale
    key = found * q
    return found, key < low, key >= high


def move_to(price: np.ndarray, mark: np.ndarray, sign: np.ndarray) -> np.ndarray:
    """The adverse fractional move from `mark` to `price` (solver.move_to): 0 when already
    there or past it, NaN where a long's price is zero (nothing liquidates it)."""
    moved = np.divide(price, mark)
    moved -= 1.0
    # Past it: price >= mark for a long, <= for a short (a difference keeps its sign).
    past = np.subtract(price, mark)
    past *= sign
    moved = np.where(past >= 0.0, 0.0, moved)  # a select: any share of rows, one pass
    # A long's price at zero (or NaN); never one past its mark, which is above zero.
    alive = np.greater(price, AT_BOUND * mark)
    alive |= sign <= 0
    return np.where(alive, moved, np.nan)
