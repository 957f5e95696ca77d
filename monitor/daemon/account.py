"""One watched account's state: its snapshot, its compiled book, its figures.

No I/O here: the REST reads (monitor/daemon/poller.py) and the user data stream
(monitor/daemon/userstream.py) install snapshots, the mark feed moves marks, and this
evaluates and reports; on every mark frame its book is evaluated with its exchange group's
other accounts (daemon/evaluation.py). What it has to say goes on the bus (monitor/bus.py): level
events, and `Evaluated` / `SymbolsChanged` for whoever acts on them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from monitor.bus import Evaluated, EventBus, SymbolsChanged
from monitor.config import AccountConfig, Thresholds
from monitor.daemon.liquidations import LiquidationLedger
from monitor.daemon.marks import MarkBoard
from monitor.daemon.ownfills import OwnFills
from monitor.domain import AccountSnapshot, MarginMode, Position
from monitor.engine.book import AccountBook
from monitor.engine.levels import Level
from monitor.engine.results import AccountRisk, PoolRisk, PositionRisk
from monitor.events import Event, EventKind, TargetKind, position_target
from monitor.events.tracker import LevelTracker

NEAR_LIQUIDATION = Level.CRITICAL
"""A position that vanishes at this level or worse is reported as a probable liquidation."""


class Figures:
    """One evaluation of a whole book, indexed the ways its readers look things up."""

    __slots__ = ("pools", "positions", "risk")

    def __init__(self, risk: AccountRisk, keys: dict[int, str]) -> None:
        self.risk = risk
        self.pools = {pool.asset: pool for pool in risk.pools}
        self.positions = {
            keys.get(id(p.position)) or _position_key(p.position): p for p in risk.positions
        }


def _nothing() -> None:
    """`AccountState.changed` until an evaluation hooks it."""


def _position_key(p: Position) -> str:
    return position_target(p.symbol, p.side.value, p.margin_mode.value, p.position_side)


class AccountState:
    """One account's latest snapshot and its evaluation, kept current on every tick."""

    def __init__(
        self,
        account: AccountConfig,
        thresholds: Thresholds,
        marks: MarkBoard,
        tracker: LevelTracker,
        bus: EventBus,
    ) -> None:
        self.account = account
        self.name = account.name
        self.changed: Callable[[], None] = _nothing
        """Called whenever `book` or `thresholds` is replaced: the group's evaluation
        (daemon/evaluation.py) hooks it to re-read its accounts on the next frame only
        then, instead of comparing every account's on every frame."""
        self._thresholds = thresholds
        self.marks = marks
        self.tracker = tracker
        self.bus = bus
        self.snapshot: AccountSnapshot | None = None
        self._book: AccountBook | None = None
        self._symbols: frozenset[str] = frozenset()
        self._keys: dict[int, str] = {}
        """Target key per position of the current snapshot (by identity): built once."""
        self._figures: Figures | None = None
        self._figures_at = -1
        """The mark board's version `_figures` were computed at."""
        self.frame_figures: Callable[[AccountState], AccountRisk | None] = lambda state: None
        """This account's figures from its group's last frame, when that frame is at the
        current marks and of the current book (daemon/evaluation.py); else None."""
        self.evaluated_news = Evaluated(self.name)
        """What an evaluation that may concern the controller publishes (one object:
        the tick path allocates nothing for it)."""
        # One PROBABLE_LIQUIDATION per disappearance, whether the stream or _reconcile
        # sees it first.
        self.liquidations = LiquidationLedger()
        # Our own orders' fills: a position they closed is never a liquidation.
        self.own_fills = OwnFills()
        self._read_started = 0.0
        """Wall time the read behind `snapshot` began (what it can have seen)."""

    @property
    def thresholds(self) -> Thresholds:
        """Read on every frame (daemon/evaluation.py): a new object takes effect there."""
        return self._thresholds

    @thresholds.setter
    def thresholds(self, thresholds: Thresholds) -> None:
        self._thresholds = thresholds
        self.changed()

    @property
    def book(self) -> AccountBook | None:
        """The compiled book of `snapshot` (None before the first read)."""
        return self._book

    @book.setter
    def book(self, book: AccountBook | None) -> None:
        self._book = book
        self.changed()

    @property
    def evaluated(self) -> bool:
        """Whether a snapshot was installed and evaluated yet."""
        return self.book is not None

    def install(self, snapshot: AccountSnapshot, read_started: float | None = None) -> None:
        """Make `snapshot` the account's state: compile its book, evaluate and report it.
        A REST read arrives here, and so does a user-stream update (account_update.py),
        which leaves the REST read's bookkeeping (failures, backoff) alone."""
        if read_started is None:
            read_started = snapshot.fetched_at
        # The snapshot's marks are as old as the read's start: a slow reply must not
        # overwrite a mark the stream delivered meanwhile (a recovery undone by a stale
        # REST price is a level flapping back to critical).
        for position in snapshot.positions:
            self.marks.update(position.symbol, position.mark_price, read_started)
        previous, self.snapshot = self.snapshot, snapshot
        previous_started, self._read_started = self._read_started, read_started
        if previous is not None:
            self._reconcile(previous, snapshot, previous_started)
        symbols_before = self._symbols
        self.book = AccountBook(snapshot)
        self._keys = {id(p): _position_key(p) for p in snapshot.positions}
        self._symbols = frozenset(p.symbol for p in snapshot.positions)
        risk = self.book.evaluate(self.marks)
        self._figures, self._figures_at = Figures(risk, self._keys), self.marks.version
        self._report(risk.pools, risk.positions)
        self.bus.publish(self.evaluated_news)
        if self._symbols != symbols_before:
            self.bus.publish(SymbolsChanged(self.name))

    def _reconcile(
        self, before: AccountSnapshot, after: AccountSnapshot, before_started: float
    ) -> None:
        """A position that vanished while critical was most likely liquidated (or ADL'd):
        say so, because the exchange's own margin call may arrive after the fact. One
        our own orders closed in full is said as such, never as a liquidation."""
        still_open = {_position_key(p) for p in after.positions}
        for position in before.positions:
            key = _position_key(position)
            if key in still_open:
                continue
            closure = self.own_fills.closure(position, before_started)
            if closure is not None:
                if not self.liquidations.claimed(key):  # else the exchange said first
                    level = self.tracker.last(self.name, key)
                    self.bus.publish(
                        Event(
                            EventKind.CLOSED_BY_US,
                            self.name,
                            key,
                            TargetKind.POSITION,
                            level=level,
                            margin_mode=position.margin_mode.value,
                            mark_price=self.marks.get(position.symbol),
                            exchange_liquidation_price=position.exchange_liquidation_price,
                            message=closure.describe(position, level),
                        )
                    )
                continue
            last = self.tracker.last(self.name, key)
            if last is not None and last >= NEAR_LIQUIDATION and self.liquidations.claim(key):
                self.bus.publish(
                    Event(
                        EventKind.PROBABLE_LIQUIDATION,
                        self.name,
                        key,
                        TargetKind.POSITION,
                        level=Level.CRITICAL,
                        margin_mode=position.margin_mode.value,
                        mark_price=self.marks.get(position.symbol),
                        exchange_liquidation_price=position.exchange_liquidation_price,
                        message="position disappeared while critical: probable liquidation or ADL",
                    )
                )
        keep = {_position_key(p) for p in after.positions}
        self.liquidations.observe(keep)
        keep |= {f"pool {p.asset}" for p in after.pools} | set(self._pool_targets(after))
        self.tracker.forget(self.name, keep)

    @staticmethod
    def _pool_targets(snapshot: AccountSnapshot) -> Iterable[str]:
        if snapshot.unified_pool:
            yield f"pool {snapshot.unified_pool}"
        for p in snapshot.positions:
            if p.margin_mode is MarginMode.CROSS:
                yield f"pool {p.settle}"

    # --- figures (the tick path itself is daemon/evaluation.py) ---------------

    def symbols(self) -> set[str]:
        return set(self._symbols)

    @property
    def isolated_targets(self) -> list[str]:
        """Target keys of the isolated positions of the current snapshot."""
        book = self.book
        return [self._keys[id(leg.position)] for leg in book.isolated] if book else []

    def target_key(self, position: Position) -> str:
        """The tracker's key of a position of the current snapshot (built once per
        snapshot)."""
        return self._keys.get(id(position)) or _position_key(position)

    def _report(self, pools: Iterable[PoolRisk], positions: Iterable[PositionRisk]) -> None:
        for pool in pools:
            event = self.tracker.pool(self.name, pool, self.thresholds)
            if event is not None:
                self.bus.publish(event)
        for position in positions:
            key = self.target_key(position.position)
            event = self.tracker.position(self.name, position, self.thresholds, key)
            if event is not None:
                self.bus.publish(event)

    def _current_figures(self) -> Figures | None:
        if self.book is None:
            return None
        if self._figures is None or self._figures_at != self.marks.version:
            risk = self.frame_figures(self) or self.book.evaluate(self.marks)
            self._figures, self._figures_at = Figures(risk, self._keys), self.marks.version
        return self._figures

    def current(self) -> AccountRisk | None:
        """Every target's figures at the latest marks, exact: the last frame's when it is
        at these marks, else the book evaluated when read."""
        figures = self._current_figures()
        return figures.risk if figures is not None else None

    @property
    def latest_pools(self) -> dict[str, PoolRisk]:
        """Pool figures by settlement asset, as `current()`."""
        figures = self._current_figures()
        return figures.pools if figures is not None else {}

    @property
    def latest_positions(self) -> dict[str, PositionRisk]:
        """Position figures by target key, as `current()`."""
        figures = self._current_figures()
        return figures.positions if figures is not None else {}
