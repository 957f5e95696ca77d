"""One account compiled into columns: the per-snapshot work of the vectorised engine.

An `AccountBlock` is built from the scalar `AccountBook` (which already applies the
exchange model: tier table, fee terms, pool grouping), so the two engines cannot disagree
on what a position *is*; the block only lays those terms out as arrays. Blocks are built
one account at a time and concatenated by `layout.py`, so a changed snapshot costs one
account's compile, not the whole book's.

Row order is the scalar engine's output order: for each pool asset (sorted) its cross
members in book order, then the isolated positions.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

import numpy as np

from monitor.domain import AccountSnapshot, TierBasis
from monitor.engine.book import MIXED_POOL, NO_POOL, NO_TIERS, AccountBook
from monitor.engine.legs import Leg
from monitor.engine.models import MarginModel
from monitor.engine.solver import has_bracket_root
from monitor.engine.vector.bracket import bracket_price, gather

Columns = dict[str, np.ndarray]


class PoolStatus(IntEnum):
    """Why a pool's figures cannot be summed (book.py's notes), fixed per snapshot."""

    OK = 0
    NO_POOL = 1
    NO_TIERS = 2
    MIXED = 3


class ProblemKind(IntEnum):
    """What a liquidation problem's constant is and where its answer goes."""

    POOL = 0
    """Every member of a pool moving together against the wallet: the pool's move."""
    GROUP = 1
    """The legs of one symbol in a pool (one, or hedge-mode LONG and SHORT) moving, the
    other members held at their marks: `free - sum(pnl - MM)` of the group."""
    ISOLATED = 2
    """One isolated leg against its own wallet (where no closed-form root applies)."""


@dataclass(frozen=True, slots=True)
class AccountBlock:
    """The columns of one account, indices local to the block (layout.py offsets them)."""

    name: str
    exchange: str
    model: str
    exact: bool
    legs: tuple[Leg, ...]
    pool_assets: tuple[str, ...]
    pool_notes: tuple[str | None, ...]
    """The static note of each pool that cannot be summed (None where it can)."""
    leg_cols: Columns
    tier_cols: Columns
    """2-D, one row per leg, padded to the block's widest table (floors with +inf);
    `bounds` is each row's tier edges, one column wider: tier k holds a key in
    [bounds[k], bounds[k + 1]) (-inf below the first tier, +inf past the last), so a
    guessed tier is checked with two reads and no test of the row's ends."""
    pool_cols: Columns
    problem_cols: Columns
    member_cols: Columns

    @property
    def width(self) -> int:
        return int(self.tier_cols["floors"].shape[1])

    def structure(self) -> tuple[object, ...]:
        """Everything that fixes the rows, their targets and the solvers' routes; two
        blocks with equal structures differ only in figures (wallets, entries, sizes,
        marks, tiers of the same shape), so one can replace the other in place."""
        legs = self.leg_cols
        return (
            self.pool_assets,
            self.pool_notes,
            tuple((leg.symbol, leg.position.side, leg.position.position_side) for leg in self.legs),
            *(legs[key].tobytes() for key in _STRUCTURAL),
            np.isnan(legs["isolated_wallet"]).tobytes(),
            *(table.tobytes() for table in self.problem_cols.values()),
            *(table.tobytes() for table in self.member_cols.values()),
        )


_STRUCTURAL = (
    "pool", "inverse", "has_terms", "fixed", "moving", "by_contracts", "tier_count",
    "irregular", "bracket",
)  # fmt: skip
"""Leg columns that decide problems and routes (the rest are figures)."""


def compile_account(
    snapshot: AccountSnapshot, symbol_id: dict[str, int], model: MarginModel | None = None
) -> AccountBlock:
    """Compile one snapshot; `symbol_id` (shared by every block) gains unseen symbols."""
    book = AccountBook(snapshot, model)
    legs: list[Leg] = []
    leg_pool: list[int] = []
    pool_cols: dict[str, list[float]] = {"wallet": [], "exchange_ratio": [], "status": []}
    pool_notes: list[str | None] = []
    problems: dict[str, list[float]] = {"kind": [], "pool": [], "inverse": []}
    members: dict[str, list[int]] = {"problem": [], "leg": []}

    def add_problem(kind: ProblemKind, pool: int, rows: list[int]) -> None:
        problems["kind"].append(kind)
        problems["pool"].append(pool)
        problems["inverse"].append(legs[rows[0]].inverse)
        for row in rows:
            members["problem"].append(len(problems["kind"]) - 1)
            members["leg"].append(row)

    for pool, asset in enumerate(book.pool_assets):
        reported = snapshot.pool(asset)
        pool_legs = book.cross.get(asset, [])
        first = len(legs)
        legs.extend(pool_legs)
        leg_pool.extend([pool] * len(pool_legs))
        status, note = _pool_status(book, asset)
        pool_cols["wallet"].append(reported.wallet_balance if reported else np.nan)
        ratio = reported.exchange_margin_ratio if reported else None
        pool_cols["exchange_ratio"].append(np.nan if ratio is None else ratio)
        pool_cols["status"].append(status)
        pool_notes.append(note)
        if status is not PoolStatus.OK or not pool_legs:
            continue
        add_problem(ProblemKind.POOL, pool, list(range(first, len(legs))))
        for group in book._groups[asset]:
            add_problem(ProblemKind.GROUP, pool, [first + i for i in group])
    for leg in book.isolated:
        legs.append(leg)
        leg_pool.append(-1)
        wallet_known = leg.position.isolated_margin is not None
        if leg.has_margin_terms and wallet_known and not has_bracket_root(leg):
            add_problem(ProblemKind.ISOLATED, -1, [len(legs) - 1])

    leg_cols, tier_cols = _leg_columns(legs, symbol_id)
    leg_cols["pool"] = np.array(leg_pool, dtype=np.intp)
    leg_cols["isolated_root"] = _isolated_roots(leg_cols, tier_cols)
    return AccountBlock(
        name=snapshot.name,
        exchange=snapshot.exchange,
        model=book.model.name,
        exact=book.model.exact,
        legs=tuple(legs),
        pool_assets=tuple(book.pool_assets),
        pool_notes=tuple(pool_notes),
        leg_cols=leg_cols,
        tier_cols=tier_cols,
        pool_cols={
            "wallet": np.array(pool_cols["wallet"], dtype=float),
            "exchange_ratio": np.array(pool_cols["exchange_ratio"], dtype=float),
            "status": np.array(pool_cols["status"], dtype=np.int8),
        },
        problem_cols={
            "kind": np.array(problems["kind"], dtype=np.int8),
            "pool": np.array(problems["pool"], dtype=np.intp),
            "inverse": np.array(problems["inverse"], dtype=bool),
        },
        member_cols={k: np.array(v, dtype=np.intp) for k, v in members.items()},
    )


def _pool_status(book: AccountBook, asset: str) -> tuple[PoolStatus, str | None]:
    """The scalar book's checks, in its order (book.evaluate_pool)."""
    legs = book.cross.get(asset, [])
    if book.snapshot.pool(asset) is None:
        return PoolStatus.NO_POOL, NO_POOL.format(asset=asset)
    missing = [leg.symbol for leg in legs if not leg.has_margin_terms]
    if missing:
        return PoolStatus.NO_TIERS, NO_TIERS.format(symbol=", ".join(missing))
    if asset in book._mixed_pools:
        return PoolStatus.MIXED, MIXED_POOL
    return PoolStatus.OK, None


def _leg_columns(legs: list[Leg], symbol_id: dict[str, int]) -> tuple[Columns, Columns]:
    """Per-leg scalars and per-leg tier rows (the leg's own terms, as legs.py has them)."""
    width = max((len(_tier_rows(leg)[0]) for leg in legs), default=1)
    shape = (len(legs), width)
    floors = np.full(shape, np.inf)
    rates, amounts = np.zeros(shape), np.zeros(shape)
    slopes, consts = np.zeros(shape), np.zeros(shape)
    count = np.zeros(len(legs), dtype=np.intp)
    for row, leg in enumerate(legs):
        leg_floors, leg_rates, leg_amounts = _tier_rows(leg)
        n = len(leg_floors)
        count[row] = n
        floors[row, :n] = leg_floors
        rates[row, :n], amounts[row, :n] = leg_rates, leg_amounts
        slopes[row, :n], consts[row, :n] = leg.slopes, leg.consts
        slopes[row, n:], consts[row, n:] = leg.slopes[-1], leg.consts[-1]

    def column(values: list[float] | list[bool] | list[int], dtype: type = float) -> np.ndarray:
        return np.array(values, dtype=dtype)

    fixed = [leg.mm_fixed is not None for leg in legs]
    by_contracts = [leg.basis is TierBasis.CONTRACTS and leg.tiers is not None for leg in legs]
    leg_cols = {
        "symbol": column([symbol_id.setdefault(leg.symbol, len(symbol_id)) for leg in legs], int),
        "snapshot_mark": column([leg.position.mark_price for leg in legs]),
        "sign": column([float(leg.sign) for leg in legs]),
        "qty": column([leg.qty for leg in legs]),
        "contracts": column([leg.contracts for leg in legs]),
        "entry": column([leg.entry for leg in legs]),
        "inverse": column([leg.inverse for leg in legs], bool),
        "has_terms": column([leg.has_margin_terms for leg in legs], bool),
        "fixed": column(fixed, bool),
        "mm_fixed": column([np.nan if leg.mm_fixed is None else leg.mm_fixed for leg in legs]),
        "rate_extra": column([leg.rate_extra for leg in legs]),
        "mm_constant": column([leg.mm_constant for leg in legs]),
        "moving": column([leg.tier_moves for leg in legs], bool),
        "by_contracts": column(by_contracts, bool),
        "tier_count": count,
        "irregular": column(
            [leg.tier_moves and not leg.tiers.regular for leg in legs],  # type: ignore[union-attr]
            bool,
        ),
        "bracket": column([has_bracket_root(leg) for leg in legs], bool),
        "isolated_wallet": column(
            [
                np.nan if leg.position.isolated_margin is None else leg.position.isolated_margin
                for leg in legs
            ]
        ),
    }
    bounds = np.full((len(legs), width + 1), np.inf)
    bounds[:, :width] = floors
    bounds[:, 0] = -np.inf
    # What a frame would otherwise work out per row from the snapshot's terms alone, in
    # the same operations: the leg's cost (qty x entry, taken off its value for PnL), the
    # rate its MM reads in each tier (the tier's plus the leg's extra) and the bracket
    # formula's divisor there, q x (rate + extra - side).
    leg_cols["cost"] = leg_cols["qty"] * leg_cols["entry"]
    mm_rates = rates + leg_cols["rate_extra"][:, None]
    scales = mm_rates - leg_cols["sign"][:, None]
    scales *= leg_cols["qty"][:, None]
    tier_cols = {
        "floors": floors,
        "bounds": bounds,
        "mm_rates": mm_rates,
        "scales": scales,
        "amounts": amounts,
        "slopes": slopes,
        "consts": consts,
    }
    return leg_cols, tier_cols


def _tier_rows(leg: Leg) -> tuple[list[float], list[float], list[float]]:
    """(floors, rates, deductions) the leg's MM reads; one dummy tier where MM is fixed
    or unknown (the line tables legs.py builds then have one entry too)."""
    if leg.tiers is None or leg.mm_fixed is not None:
        return [0.0], [0.0], [0.0]
    tiers = leg.tiers.tiers
    return (
        [t.floor for t in tiers],
        [t.maintenance_rate for t in tiers],
        [t.maintenance_amount for t in tiers],
    )


def _isolated_roots(leg_cols: Columns, tier_cols: Columns) -> np.ndarray:
    """Each isolated closed-form leg's liquidation price: it depends on its own wallet
    only, never on the mark, so it is found once per snapshot (book.py does the same)."""
    roots = np.full(len(leg_cols["sign"]), np.nan)
    rows = np.flatnonzero(
        leg_cols["bracket"] & (leg_cols["pool"] < 0) & ~np.isnan(leg_cols["isolated_wallet"])
    )
    if rows.size:
        far_side = np.where(leg_cols["sign"][rows] > 0, leg_cols["tier_count"][rows] - 1, 0)
        legs = gather(leg_cols, tier_cols, rows)
        with np.errstate(divide="ignore", invalid="ignore"):
            roots[rows], _ = bracket_price(
                legs, tier_cols, leg_cols["isolated_wallet"][rows], far_side
            )
    return roots
