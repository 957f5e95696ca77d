"""One watched account: its REST polling, its compiled book, its figures.

Each account fails alone: its errors back it off without delaying any other account,
and its book keeps being evaluated on every mark frame between polls, with its exchange
group's other accounts (daemon/evaluation.py).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable

from monitor.aio import cancel_and_wait
from monitor.config import AccountConfig, DaemonConfig, Thresholds
from monitor.daemon.events import Event, EventKind, TargetKind, position_target
from monitor.daemon.levels import LevelTracker
from monitor.daemon.marks import MarkBoard
from monitor.daemon.ownfills import OwnFills
from monitor.daemon.retry import TRANSIENT, retry_delay
from monitor.daemon.userstream import LiquidationLedger
from monitor.domain import AccountSnapshot, MarginMode, Position, TierTable
from monitor.engine.book import AccountBook
from monitor.engine.results import AccountRisk, PoolRisk, PositionRisk
from monitor.exchange.adapters import adapter_for
from monitor.exchange.clients import create_client, secret_values
from monitor.exchange.errors import ErrorKind, ExchangeError, classify
from monitor.exchange.markets import SharedMarkets

log = logging.getLogger(__name__)

NEAR_LIQUIDATION = ("critical", "imminent")
"""A position that vanishes at these levels is reported as a probable liquidation."""
LOUD_ERRORS = (ErrorKind.AUTH,)
"""Errors a person must fix, reported as events at once. Everything else is retried
quietly until it makes the account blind: the staleness watchdog reports that after
`account_stale_after`, with the last error, so one failed read never pages."""


class Figures:
    """One evaluation of a whole book, indexed the ways its readers look things up."""

    __slots__ = ("pools", "positions", "risk")

    def __init__(self, risk: AccountRisk, keys: dict[int, str]) -> None:
        self.risk = risk
        self.pools = {pool.asset: pool for pool in risk.pools}
        self.positions = {
            keys.get(id(p.position)) or _position_key(p.position): p for p in risk.positions
        }


def _position_key(p: Position) -> str:
    return position_target(p.symbol, p.side.value, p.margin_mode.value, p.position_side)


class AccountMonitor:
    """Polls one account and keeps its evaluation current."""

    def __init__(
        self,
        account: AccountConfig,
        settings: DaemonConfig,
        thresholds: Thresholds,
        markets: SharedMarkets,
        marks: MarkBoard,
        tracker: LevelTracker,
        emit: Callable[[Event], None],
    ) -> None:
        self.account = account
        self.name = account.name
        self.settings = settings
        self.thresholds = thresholds
        """Read on every frame (daemon/evaluation.py): a new object takes effect there."""
        self.markets = markets
        self.marks = marks
        self.tracker = tracker
        self.emit = emit
        self.adapter = adapter_for(account.exchange)
        self.client = create_client(account, timeout_ms=int(settings.request_timeout * 1000))
        self.adapter.configure(self.client)
        self.markets_key = SharedMarkets.key(account.exchange, account.rest_url, account.sandbox)
        self.snapshot: AccountSnapshot | None = None
        self.book: AccountBook | None = None
        self._symbols: frozenset[str] = frozenset()
        self.tiers: dict[str, TierTable] = {}
        self.tiers_at = 0.0
        self.last_ok: float | None = None
        self.failures = 0
        self.resume_at = 0.0
        self.last_error: ExchangeError | None = None
        self._keys: dict[int, str] = {}
        """Target key per position of the current snapshot (by identity): built once."""
        self._figures: Figures | None = None
        """The whole book at the marks of the last evaluation (install or read)."""
        self._figures_at = -1
        """The mark board's version `_figures` were computed at."""
        self.frame_figures: Callable[[AccountMonitor], AccountRisk | None] = lambda m: None
        """This account's figures from its group's last frame, when that frame is at the
        current marks and of the current book (daemon/evaluation.py); else None."""
        self.evaluated = asyncio.Event()
        self.on_symbols: Callable[[], None] = lambda: None
        self.on_poll: Callable[[str, ExchangeError | None], None] = lambda name, err: None
        self.on_evaluated: Callable[[AccountMonitor], None] = lambda monitor: None
        """Called after every evaluation (poll or tick) that changed figures: the
        auto-deleverage controller decides there, never on the tick path itself."""
        # --- user data stream (monitor/daemon/userstream.py) ---
        # The scheduler and the stream both call poll(): the lock keeps reads in order,
        # so an older reply can never overwrite a newer snapshot.
        self._poll_lock = asyncio.Lock()
        self._poll_task: asyncio.Task[None] | None = None
        # One PROBABLE_LIQUIDATION per disappearance, whether the stream or _reconcile
        # sees it first.
        self.liquidations = LiquidationLedger()
        # Our own orders' fills: a position they closed is never a liquidation.
        self.own_fills = OwnFills()
        self._read_started = 0.0
        """Wall time the read behind `snapshot` began (what it can have seen)."""

    # --- REST ----------------------------------------------------------------

    def expire_tiers(self) -> None:
        self.tiers_at = 0.0

    async def reload_markets(self) -> None:
        await self.markets.ensure(self.client, self.markets_key, reload=True)

    def _start_poll(self) -> None:
        if self._poll_lock.locked() or (self._poll_task and not self._poll_task.done()):
            log.debug("%s: a read is in flight; this poll is skipped", self.name)
            return
        self._poll_task = asyncio.create_task(self.poll(), name=f"poll {self.name}")

    def venue_back(self) -> None:
        """The venue's stream is live again after an outage: a read that failed for a
        transient reason is retried now rather than at the next scheduled poll. A rate
        limit's or refused key's wait still holds: a stream says nothing about those."""
        if self.last_error is None or self.last_error.kind not in TRANSIENT:
            return
        self.failures, self.resume_at = 0, 0.0
        self._start_poll()

    async def poll(self) -> None:
        """Read the account once; never raises (failures are reported, and retried as
        monitor/daemon/retry.py says).

        Never overlaps itself: a call made during a read waits and then reads again,
        because the read in flight may predate the change that prompted the call.
        """
        async with self._poll_lock:
            await self._poll_once()

    async def _poll_once(self) -> None:
        if time.monotonic() < self.resume_at:
            return
        fresh_tiers = time.monotonic() - self.tiers_at < self.settings.tiers_refresh
        read_started = time.time()
        try:
            async with asyncio.timeout(self.settings.request_timeout * 3):
                await self.markets.ensure(self.client, self.markets_key)
                snapshot = await self.adapter.fetch_snapshot(
                    self.client, self.name, self.tiers if fresh_tiers else None
                )
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self._failed(exc)
            return
        if not fresh_tiers:
            self.tiers_at = time.monotonic()
        self.tiers = dict(snapshot.tiers)
        self._succeeded(snapshot, read_started)

    def _failed(self, exc: BaseException) -> None:
        error = classify(
            ExchangeError(
                ErrorKind.NETWORK,
                f"no complete reply within {self.settings.request_timeout * 3:g} s "
                "(3 x request_timeout for the whole read)",
            )
            if isinstance(exc, TimeoutError)
            else exc,
            secret_values(self.account),
        )
        self.failures += 1
        retry_after = error.retry_after or self._retry_after()
        delay = retry_delay(error.kind, self.failures, self.settings.poll_interval, retry_after)
        self.resume_at = time.monotonic() + delay
        log.warning(
            "%s: %s (retry in %.0f s)",
            self.name,
            error,
            max(delay, self.settings.poll_interval),
        )
        if error.kind in LOUD_ERRORS and (
            self.last_error is None or self.last_error.kind is not error.kind
        ):
            self.emit(
                Event(EventKind.ERROR, self.name, "account", TargetKind.ACCOUNT, message=str(error))
            )
        self.last_error = error
        self.on_poll(self.name, error)

    def _retry_after(self) -> float | None:
        headers = getattr(self.client, "last_response_headers", None) or {}
        value = next((v for k, v in headers.items() if k.lower() == "retry-after"), None)
        try:
            return float(value) if value is not None else None
        except ValueError:
            return None

    def _succeeded(self, snapshot: AccountSnapshot, read_started: float | None = None) -> None:
        self.failures = 0
        self.resume_at = 0.0
        self.last_error = None
        self.last_ok = time.monotonic()
        self.install(snapshot, read_started)
        self.on_poll(self.name, None)

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
        self.evaluated.set()
        self.on_evaluated(self)
        if self._symbols != symbols_before:
            self.on_symbols()

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
                    self.emit(
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
            if self.tracker.last(self.name, key) in NEAR_LIQUIDATION and (
                self.liquidations.claim(key)
            ):
                self.emit(
                    Event(
                        EventKind.PROBABLE_LIQUIDATION,
                        self.name,
                        key,
                        TargetKind.POSITION,
                        level="critical",
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
                self.emit(event)
        for position in positions:
            key = self.target_key(position.position)
            event = self.tracker.position(self.name, position, self.thresholds, key)
            if event is not None:
                self.emit(event)

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

    async def close(self) -> None:
        if self._poll_task is not None:
            await cancel_and_wait(self._poll_task)
        await self.client.close()
