"""Our own fills, so that a position our order closed is never reported as a liquidation.

A position that vanishes between two reads while critical is reported as a probable
liquidation (monitor/daemon/account.py). When auto-deleverage closed it, that report
would page the user about the one outcome the defense was meant to bring about. Two
witnesses say an order was ours (client id `mw-...`) and how much of it filled:

- the journal (monitor/actions/journal.py): every order is written down `sent` before it
  leaves, with its client id and symbol, and settled with what filled;
- Binance's user stream: ORDER_TRADE_UPDATE carries the client id (`c`) and the
  cumulative filled quantity (`z`) of every fill, often before the order's reply.

A vanished position is "closed by marginwatch" only when our confirmed fills on its leg
that the previous read cannot have seen add up to its whole size. A fill is confirmed by
the journal (`filled`, with what the exchange's reply said filled) or by the stream; an
order still `sent` or `unknown` is not one: the exchange may have refused it because the
position was already liquidated (Bybit's 110017 "reduce-only rule not satisfied"), and
calling that closure ours would hide the liquidation from the user. An order that had settled before
that read began is already in it and counts for nothing, so a partial cut followed by a
liquidation of the rest is still a liquidation; and the exchange's own liquidation order
is reported by the stream whatever this says.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Protocol

from monitor.actions.decision import is_ours
from monitor.domain import Position
from monitor.engine.levels import Level

SENT = ("sent", "filled", "unknown")
"""Journal statuses of orders that may have traded: only `filled` is a fill by itself;
the others count when the stream heard one."""
KEEP_STREAM_FILLS = 3600.0
"""Seconds a fill heard on the stream is remembered: far beyond any two reads."""
SIZE_TOLERANCE = 1e-9


class JournalRow(Protocol):
    """The journal columns this relies on (monitor/actions/journal.py's ActionRow)."""

    client_order_id: str | None
    symbol: str
    status: str
    quantity: float
    request: dict[str, Any]
    result: dict[str, Any] | None
    updated_at: float


@dataclass(frozen=True, slots=True)
class StreamFill:
    client_id: str
    symbol: str
    position_side: str
    filled: float
    """Cumulative quantity filled so far (Binance's `z`)."""
    received: float
    """Wall time the update arrived."""


@dataclass(frozen=True, slots=True)
class Closure:
    """Our orders that account for a vanished position."""

    client_ids: tuple[str, ...]
    quantity: float

    def describe(self, position: Position, level: Level | None) -> str:
        at = f" at {level}" if level else ""
        orders = ", ".join(self.client_ids)
        return (
            f"closed by marginwatch{at}: our reduce-only order(s) filled "
            f"{self.quantity:g} of {position.contracts:g} ({orders})"
        )


class OwnFills:
    """One account's fills of our own orders. `rows` reads the account's journal rows
    (None while the account does not act: the stream is then the only witness)."""

    def __init__(self, now: Callable[[], float] = time.time) -> None:
        self.rows: Callable[[], Iterable[JournalRow]] | None = None
        self._stream: dict[str, StreamFill] = {}
        self._now = now

    def heard(self, client_id: str, symbol: str, position_side: str, filled: float) -> None:
        """A fill of our order `client_id` on the user stream (`filled` cumulative)."""
        now = self._now()
        self._stream = {
            k: f for k, f in self._stream.items() if now - f.received < KEEP_STREAM_FILLS
        }
        self._stream[client_id] = StreamFill(client_id, symbol, position_side, filled, now)

    def closure(self, position: Position, read_started: float) -> Closure | None:
        """Our orders that closed `position` since the read that still showed it, which
        began at `read_started`; None when they do not account for all of it."""
        leg = (position.symbol, position.position_side)
        counted: dict[str, float] = {}
        for row in self.rows() if self.rows is not None else ():
            if not is_ours(row.client_order_id) or row.status not in SENT:
                continue
            if (row.symbol, str(row.request.get("position_side", "BOTH"))) != leg:
                continue
            if row.status == "filled" and row.updated_at < read_started:
                continue  # settled before that read began: already in it
            assert row.client_order_id is not None
            heard = self._stream.get(row.client_order_id)
            if heard is not None:
                counted[row.client_order_id] = heard.filled
            elif row.status == "filled":
                counted[row.client_order_id] = _filled(row)
        for fill in self._stream.values():
            if fill.client_id in counted or (fill.symbol, fill.position_side) != leg:
                continue
            if fill.received >= read_started:
                counted[fill.client_id] = fill.filled
        quantity = sum(counted.values())
        if not counted or quantity < position.contracts * (1 - SIZE_TOLERANCE):
            return None
        return Closure(tuple(sorted(counted)), quantity)


def _filled(row: JournalRow) -> float:
    """What a `filled` row's reply said filled; the whole order when it names no amount."""
    if row.result is not None and row.result.get("filled") is not None:
        return float(row.result["filled"])
    return row.quantity
