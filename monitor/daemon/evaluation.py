"""Every target of one exchange group's accounts, evaluated exactly on every mark frame.

The accounts of a group share marks, so one vectorised engine (monitor/engine/vector)
holds all their positions and pools as rows, and each frame computes every row's figures
in one `update`, with no proof, band or screen deciding what may be skipped. The levels
of all rows are then classified at once (engine/vector/levels.py, `level_for` over
arrays) against per-row threshold columns (each account's own, cross or isolated) and
each row's last reported level; only the rows whose level moved go through the
`LevelTracker`, with the figures their events carry read from the frame's columns (and
what the rows' positions say, from the row tables) for all of them at once (no record per
row), and it records and words each event exactly as it does for a scalar evaluation;
the frame's events are published as one batch (`EventBus.publish_all`).

The engine follows the accounts rather than being told: before a frame, an account whose
book was replaced since the last one (a REST read or a user-stream update installed a new
snapshot) is loaded, and its rows' reported levels are read back from the tracker (the
install reported them from its own scalar evaluation), its positions' own figures from
the new snapshot. A change of an account's positions' shape re-joins the layout; the row
tables below are then rebuilt.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, NamedTuple

import numpy as np

from monitor.config import Thresholds
from monitor.daemon.marks import MarkBoard
from monitor.engine.book import AccountBook
from monitor.engine.levels import Level
from monitor.engine.results import AccountRisk
from monitor.engine.vector import Frame, VectorEngine, account_risk
from monitor.engine.vector.layout import AccountRows, Layout
from monitor.engine.vector.levels import (
    UNSEEN,
    LevelColumns,
    level_code,
    level_columns,
    levels,
    levels_of,
)
from monitor.engine.vector.risk import known
from monitor.events import Event, LevelFigures, TargetKind, pool_target
from monitor.events.tracker import (
    LevelTracker,
    margin_mode_name,
    pool_level_figures,
    position_level_figures,
)

if TYPE_CHECKING:
    from monitor.daemon.account import AccountState

_OK = level_code(Level.OK)


class FrameOutcome(NamedTuple):
    targets: int
    """Targets evaluated (every pool and position of every loaded account)."""
    alarmed: list[AccountState]
    """Accounts with a target above OK (or unknown) after the frame: the actions
    controller must hear about them."""


@dataclass(slots=True)
class _Rows:
    """What each row of one layout shape is for the tracker: its account, target key,
    thresholds and the level last reported for it."""

    accounts: dict[str, AccountRows]
    """The layout's account table these rows were built for (its identity marks the
    shape: an in-place reload keeps it, a re-join makes a new one)."""
    monitors: list[AccountState]
    position_account: np.ndarray
    pool_account: np.ndarray
    """Per row, its account's index in `monitors`."""
    position_names: np.ndarray
    pool_names: np.ndarray
    position_keys: np.ndarray
    pool_keys: np.ndarray
    """Per row, its account's name and its target key: object arrays, so that the rows
    whose level moved are one `take` each, not a Python lookup per row."""
    position_exchange_price: np.ndarray
    position_mode: np.ndarray
    """Per position row, what its events carry of its position (not of the frame): the
    exchange's liquidation price and the margin mode's name, object arrays as the keys
    are, read again whenever its account is loaded (`_read_positions`)."""
    position_columns: LevelColumns
    pool_columns: LevelColumns
    position_level: np.ndarray
    pool_level: np.ndarray
    hot: np.ndarray | None = None
    """Per account (of `monitors`), its rows not at OK (None: to count afresh)."""
    alarmed: list[AccountState] | None = None
    """The accounts with a target above OK, kept until one of them has none left or
    another gets one (None: to list afresh)."""


class GroupEvaluation:
    """One exchange group's engine, its rows' targets, and the frame last computed."""

    def __init__(
        self, marks: MarkBoard, tracker: LevelTracker, emit: Callable[[list[Event]], None]
    ) -> None:
        """`emit` publishes a frame's events of one kind, in order (`EventBus.publish_all`:
        hundreds in a crash frame, so not one call each)."""
        self.engine = VectorEngine()
        self.marks = marks
        self.tracker = tracker
        self.emit = emit
        self.monitors: list[AccountState] = []
        self._loaded: dict[str, AccountBook] = {}
        """Per account, the book whose snapshot the engine holds."""
        self._thresholds: dict[str, Thresholds] = {}
        """Per account, the thresholds its rows' columns were built from."""
        self._rows: _Rows | None = None
        self._stale = True
        """An account's book or thresholds were replaced since the last frame (each
        account's `changed` hook says so): the usual frame, with none, skips the
        per-account checks."""
        self._vector = np.empty(0)
        self._slots: dict[str, int] = {}
        self._symbols: tuple[str, ...] | None = None
        self._vector_at = -1
        """The mark vector, each symbol's slot in it, the layout symbols it follows and
        the board's version it holds (`_mark_vector`)."""
        self.frame: Frame | None = None
        self._frame_at = -1
        """The mark board's version `frame` was computed at."""

    def add(self, monitor: AccountState) -> None:
        self.monitors.append(monitor)
        monitor.changed = self._changed
        self._stale = True

    def _changed(self) -> None:
        self._stale = True

    def evaluate(self, moved: Sequence[str] = ()) -> FrameOutcome:
        """Evaluate every target at the board's marks; emit the level changes.

        `moved`: the symbols whose marks this frame moved, one per move (what
        `MarkBoard.update_all` returned), so that only their slots of the mark vector
        are written; the vector is read from the board afresh whenever other moves came
        between (a snapshot's marks) or the layout's symbols changed."""
        rows = self._follow_accounts()
        if rows is None:
            return FrameOutcome(0, [])
        frame = self.engine.update(self._mark_vector(moved))
        self.frame, self._frame_at = frame, self.marks.version
        self._report(frame, rows)
        return FrameOutcome(len(rows.pool_keys) + len(rows.position_keys), self._alarmed(rows))

    def risk(self, monitor: AccountState) -> AccountRisk | None:
        """`monitor`'s figures from the last frame, if it is at the board's current marks
        and of the account's current book; None otherwise (evaluate the book instead)."""
        frame = self.frame
        if (
            frame is None
            or self._frame_at != self.marks.version
            or monitor.book is None
            or self._loaded.get(monitor.name) is not monitor.book
        ):
            return None
        return account_risk(frame, monitor.name)

    def _mark_vector(self, moved: Sequence[str]) -> np.ndarray:
        """The board's marks in `layout.symbols` order (NaN where none), kept between
        frames; the engine gets a copy, never the vector kept here."""
        symbols, board = self.engine.layout.symbols, self.marks
        if symbols is not self._symbols or board.version != self._vector_at + len(moved):
            self._vector = self.engine.mark_vector(board.prices)
            self._slots = {symbol: i for i, symbol in enumerate(symbols)}
            self._symbols = symbols
        else:
            prices, slots, vector = board.prices, self._slots, self._vector
            for symbol in moved:
                slot = slots.get(symbol)
                if slot is not None:
                    vector[slot] = prices[symbol]
        self._vector_at = board.version
        return self._vector.copy()

    # --- keeping up with the accounts -------------------------------------------

    def _follow_accounts(self) -> _Rows | None:
        """Load the books installed since the last frame; rebuild the row tables when
        the layout's shape or an account's thresholds changed."""
        if self._rows is not None and not self._stale:
            return self._rows  # nothing installed or retuned since the last frame
        self._stale = False
        loaded = self._loaded
        fresh = [
            m for m in self.monitors if m.book is not None and loaded.get(m.name) is not m.book
        ]
        for monitor in fresh:
            book = monitor.book
            assert book is not None
            snapshot = book.snapshot
            if snapshot.name != monitor.name:  # rows are keyed by the account's own name
                snapshot = replace(snapshot, name=monitor.name)
            self.engine.load(snapshot, book.model)
            loaded[monitor.name] = book
        if not loaded:
            return None
        layout = self.engine.layout
        rows = self._rows
        seen = self._thresholds
        retuned = any(seen.get(m.name) is not m.thresholds for m in self.monitors)
        if rows is None or rows.accounts is not layout.accounts or retuned:
            rows = self._rows = self._build_rows(layout, rows, {m.name for m in fresh})
        else:  # loaded in place: the same rows, of new positions
            for monitor in fresh:
                span = layout.accounts[monitor.name]
                self._read_levels(rows, monitor.name, span)
                _read_positions(rows, layout, span)
        return rows

    def _build_rows(self, layout: Layout, old: _Rows | None, fresh: set[str]) -> _Rows:
        """The row tables of a new layout. An account whose rows are unchanged (not
        loaded since `old` was built) keeps its keys and reported levels from `old`;
        the others are read afresh (keys from its monitor, levels from the tracker)."""
        by_name = {m.name: m for m in self.monitors}
        monitors = [by_name[name] for name in layout.accounts]
        self._thresholds = {m.name: m.thresholds for m in monitors}
        spans = list(layout.accounts.values())
        index = np.arange(len(monitors))
        position_account = np.repeat(index, [r.positions.stop - r.positions.start for r in spans])
        pool_account = np.repeat(index, [r.pools.stop - r.pools.start for r in spans])
        # Per row, its account's cross limits, or its isolated ones (isolated legs have
        # no pool row): every column gathered from a per-account table, in C order
        # (`levels` runs along the rows of all three levels at once; the gathers come
        # out in Fortran order, which made it three times slower).
        cross = level_columns([m.thresholds.cross for m in monitors])
        isolated = level_columns([m.thresholds.isolated for m in monitors])
        alone = layout.leg_cols["pool"] < 0
        position_columns = LevelColumns(
            *(
                np.ascontiguousarray(
                    np.where(alone, apart[:, position_account], shared[:, position_account])
                )
                for shared, apart in zip(cross, isolated, strict=True)
            )
        )
        pool_columns = LevelColumns(
            *(np.ascontiguousarray(table[:, pool_account]) for table in cross)
        )
        position_keys: list[str] = []
        position_exchange_price = np.empty(position_account.size, object)
        position_mode = np.empty(position_account.size, object)
        position_level = np.full(position_account.size, UNSEEN, np.int8)
        pool_level = np.full(pool_account.size, UNSEEN, np.int8)
        rows_of = layout.position_rows
        unread = []
        for name, span in layout.accounts.items():
            before = old.accounts.get(name) if old is not None and name not in fresh else None
            if before is not None and old is not None:
                position_keys += old.position_keys[before.positions].tolist()
                position_exchange_price[span.positions] = old.position_exchange_price[
                    before.positions
                ]
                position_mode[span.positions] = old.position_mode[before.positions]
                position_level[span.positions] = old.position_level[before.positions]
                pool_level[span.pools] = old.pool_level[before.pools]
            else:
                key = by_name[name].target_key
                position_keys += [key(position) for _, position in rows_of[span.positions]]
                unread.append((name, span))
        names = np.array([m.name for m in monitors], dtype=object)
        rows = _Rows(
            accounts=layout.accounts,
            monitors=monitors,
            position_account=position_account,
            pool_account=pool_account,
            position_names=names.take(position_account),
            pool_names=names.take(pool_account),
            position_keys=np.array(position_keys, dtype=object),
            position_exchange_price=position_exchange_price,
            position_mode=position_mode,
            pool_keys=np.array([pool_target(asset) for _, asset in layout.pool_rows], dtype=object),
            position_columns=position_columns,
            pool_columns=pool_columns,
            position_level=position_level,
            pool_level=pool_level,
        )
        for name, span in unread:
            self._read_levels(rows, name, span)
            _read_positions(rows, layout, span)
        return rows

    def _read_levels(self, rows: _Rows, name: str, account: AccountRows) -> None:
        """Copy the tracker's last reported levels of one account's rows."""
        rows.hot = rows.alarmed = None
        for row in range(account.positions.start, account.positions.stop):
            rows.position_level[row] = self._reported(name, rows.position_keys[row])
        for row in range(account.pools.start, account.pools.stop):
            rows.pool_level[row] = self._reported(name, rows.pool_keys[row])

    def _reported(self, account: str, key: str) -> int:
        level = self.tracker.last(account, key)
        return UNSEEN if level is None else level_code(level)

    # --- the frame's events ------------------------------------------------------

    def _report(self, frame: Frame, rows: _Rows) -> None:
        """Classify every row; the rows whose level moved go through the tracker with the
        figures their events will carry, read from the frame's columns for all of them at
        once (no record per row), in row order as ever: pools, then positions."""
        pool_now = levels(
            frame.pool_margin_ratio, frame.pool_liquidation_distance,
            rows.pool_columns, rows.pool_level,
        )  # fmt: skip
        moved = np.flatnonzero(pool_now != rows.pool_level)
        if moved.size:
            self._track(
                rows, moved, _pool_figures(frame, moved), pool_now, kind=TargetKind.POOL,
                accounts=rows.pool_account, names=rows.pool_names, keys=rows.pool_keys,
                reported=rows.pool_level,
            )  # fmt: skip
        position_now = levels(
            frame.margin_ratio, frame.liquidation_distance,
            rows.position_columns, rows.position_level,
        )  # fmt: skip
        moved = np.flatnonzero(position_now != rows.position_level)
        if moved.size:
            self._track(
                rows, moved, _position_figures(frame, rows, moved), position_now,
                kind=TargetKind.POSITION, accounts=rows.position_account,
                names=rows.position_names, keys=rows.position_keys,
                reported=rows.position_level,
            )  # fmt: skip

    def _track(
        self,
        rows: _Rows,
        moved: np.ndarray,
        figures: LevelFigures,
        now: np.ndarray,
        *,
        kind: TargetKind,
        accounts: np.ndarray,
        names: np.ndarray,
        keys: np.ndarray,
        reported: np.ndarray,
    ) -> None:
        """The moved rows (an index array, which every gather below takes as it is: a list
        would be converted again by each; their events' figures in `figures`, their level
        codes in `now`) through the tracker at once, with the levels the arrays
        classified, and the events it words emitted in row order; those levels, which the
        tracker now holds, are kept as the rows' reported levels and the count of each
        account's rows above OK follows."""
        codes = now.take(moved)
        events = self.tracker.report(
            kind, names.take(moved).tolist(), keys.take(moved).tolist(), levels_of(codes), figures
        )
        if events:
            self.emit(events)
        before = reported[moved] != _OK
        reported[moved] = codes
        hot = rows.hot
        if hot is not None:
            change = (codes != _OK).astype(np.intp) - before
            if change.any():
                was = hot > 0
                np.add.at(hot, accounts.take(moved), change)
                if not np.array_equal(was, hot > 0):
                    rows.alarmed = None

    @staticmethod
    def _alarmed(rows: _Rows) -> list[AccountState]:
        """The accounts with a row not at OK: counted once per layout (or an account's
        reload), then kept up to date row by row as levels move (`_track`)."""
        if rows.hot is None:
            size = len(rows.monitors)
            rows.hot = np.bincount(
                rows.position_account, rows.position_level != _OK, minlength=size
            ).astype(np.intp) + np.bincount(
                rows.pool_account, rows.pool_level != _OK, minlength=size
            ).astype(np.intp)
            rows.alarmed = None
        if rows.alarmed is None:
            rows.alarmed = [rows.monitors[i] for i in np.flatnonzero(rows.hot).tolist()]
        return rows.alarmed


def _pool_figures(frame: Frame, moved: np.ndarray) -> LevelFigures:
    """What the events of these pool rows say, read from the frame's columns."""
    return pool_level_figures(
        known(frame.pool_margin_ratio, moved), known(frame.pool_liquidation_distance, moved),
        _notes(moved, frame.pool_note, frame.pool_note_text),
    )  # fmt: skip


def _position_figures(frame: Frame, rows: _Rows, moved: np.ndarray) -> LevelFigures:
    """What the events of these position rows say, read from the frame's columns and
    the rows' own."""
    return position_level_figures(
        known(frame.margin_ratio, moved), known(frame.liquidation_distance, moved),
        known(frame.liquidation_price, moved),
        exchange_prices=rows.position_exchange_price.take(moved).tolist(),
        modes=rows.position_mode.take(moved).tolist(), marks=frame.mark.take(moved).tolist(),
        notes=_notes(moved, frame.note, frame.position_note),
    )  # fmt: skip


def _notes(
    moved: np.ndarray, codes: np.ndarray, word: Callable[[int], str | None]
) -> list[str | None]:
    """The note texts of these rows, worded (`word`) only for the rows that have one (a
    code other than `Note.NONE`, 0): most have none, and wording builds an enum."""
    return [
        word(row) if code else None
        for row, code in zip(moved.tolist(), codes.take(moved).tolist(), strict=True)
    ]


def _read_positions(rows: _Rows, layout: Layout, account: AccountRows) -> None:
    """Copy what one account's position rows' events carry of its snapshot's positions
    into the rows' columns: on each load of the account, since a reload in place keeps
    its rows (and keys) but not its positions (their exchange liquidation prices)."""
    positions = [position for _, position in layout.position_rows[account.positions]]
    rows.position_exchange_price[account.positions] = [
        p.exchange_liquidation_price for p in positions
    ]
    rows.position_mode[account.positions] = [margin_mode_name(p) for p in positions]
