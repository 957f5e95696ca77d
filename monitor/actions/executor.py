"""Carrying out a decision on an exchange, venue-neutral: send once, and when the outcome
is unknown, find out what the exchange did.

A request is never sent twice. A timeout, a dropped connection or a 5xx says nothing
about what the exchange did, so it makes the outcome `unknown`, and the request is then
looked up (an order by its client id; a margin change by the position's isolated margin
against the value read just before sending; a transfer by the venue's own means).
"Not found" only becomes "failed" once the request's validity window has expired: after
that the exchange refuses it even if it is still on its way.

Each venue subclasses `Executor` in `monitor/venues/<venue>/executor.py` and fills in the
hooks (how a request is built, sent and looked up, which error codes mean "status
unknown" or "not found", how long a signed request stays valid). This package never
imports a venue: the composer (daemon, drill) picks a `VenueExecution` by exchange id and
hands it to the controller.
"""

from __future__ import annotations

import asyncio
import math
import re
import time
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, ClassVar, NamedTuple

import ccxt

from monitor.actions.decision import money
from monitor.actions.journal import ActionRow, Outcome
from monitor.actions.permissions import PermissionReader
from monitor.actions.policy import Decision
from monitor.config.schema import CrossPolicy, ReserveConfig
from monitor.domain import Position
from monitor.exchange.adapters.base import ExchangeAdapter
from monitor.exchange.errors import scrub

RECV_WINDOW_MS = 5_000
"""Sent with every action request where the venue takes one: the exchange refuses the
request once this long has passed since it was signed, which bounds how long its
outcome can stay unknown."""
SETTLE_GRACE = 2.0
"""Seconds added to the validity window for clock skew (Binance accepts 1 s ahead)."""
LOOKUP_PERIOD = 0.5
MARGIN_MATCH = 0.99
"""A margin change counts as applied when the isolated margin rose by this share of it
(the rest allows for fees or funding booked to the position meanwhile)."""


async def fetch_positions(adapter: ExchangeAdapter, client: Any) -> list[Position]:
    """Every open position as the exchange reports it now: one fresh REST read."""
    parsed = (adapter.parse_position(raw, client) for raw in await adapter.fetch_positions(client))
    return [position for position in parsed if position is not None]


def find_position(
    positions: Iterable[Position], symbol: str, position_side: str
) -> Position | None:
    return next(
        (p for p in positions if p.symbol == symbol and p.position_side == position_side), None
    )


class Executor(ABC):
    """Builds, sends and looks up one account's action requests on one venue."""

    unknown_codes: ClassVar[tuple[str, ...]] = ()
    """The venue's "execution status unknown" error codes: the request may have been
    executed although an error came back. Read from the message, since ccxt maps some of
    them to a plain ExchangeError."""
    not_found_codes: ClassVar[tuple[str, ...]] = ()
    """Codes a lookup gets for a request the venue does not know (besides ccxt's
    OrderNotFound)."""
    reserve_sources: ClassVar[tuple[str, ...]] = ("spot", "funding")
    """The wallets `actions.reserve.from` may name on this venue."""
    reserve_assets: ClassVar[tuple[str, ...] | None] = None
    """The assets a reserve may hold on this venue (None: any)."""

    def __init__(
        self,
        client: Any,
        adapter: ExchangeAdapter,
        cross: CrossPolicy,
        secrets: Iterable[str] = (),
        *,
        recv_window_ms: int = RECV_WINDOW_MS,
        reserve_asset: str | None = None,
        now: Callable[[], float] = time.time,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.client = client
        self.reserve_asset = reserve_asset
        """The coin a reserve transfer moves (`actions.reserve.asset`): a transfer
        decision names the pool it funds, which in a unified account is USD-valued."""
        self.adapter = adapter
        self.cross = cross
        self.secrets = list(secrets)
        self.recv_window_ms = recv_window_ms
        self._now = now
        self._sleep = sleep
        self.claimed: Callable[[str, float], list[ActionRow]] = lambda account, since: []
        """Transfer rows of the journal since a time (set by the controller), so that a
        lookup never matches one transfer to two rows."""
        self.started_at = now()
        """A `sent` row found at start was signed before this (the process that sent it
        is gone), so its validity window is counted from here at the latest."""

    # --- venue hooks -----------------------------------------------------------

    @abstractmethod
    def transfer_request(self, decision: Decision) -> dict[str, Any]:
        """From the reserve wallet into the futures wallet (kind "transfer")."""

    @abstractmethod
    def add_margin_request(self, decision: Decision, position: Position | None) -> dict[str, Any]:
        """Into an isolated position (kind "add_margin"); must carry `position_side`,
        `amount` and the position's `isolated_margin_before` for the lookup."""

    @abstractmethod
    def order_params(self, decision: Decision) -> dict[str, Any]:
        """The venue's parameters of a reduce-only order: the client id, reduce-only or
        the hedge-mode leg, the validity window."""

    @abstractmethod
    async def send_transfer(self, request: dict[str, Any]) -> Outcome: ...

    @abstractmethod
    async def send_add_margin(self, request: dict[str, Any]) -> Outcome: ...

    async def send_order(self, request: dict[str, Any]) -> Outcome:
        order = await self.client.create_order(
            request["symbol"], request["type"], request["side"], request["amount"],
            request["price"], dict(request["params"]),
        )  # fmt: skip
        return order_outcome(order)

    @abstractmethod
    async def lookup_order(self, row: ActionRow) -> Outcome:
        """The order of `row` found by its client id (raise ccxt.OrderNotFound, or an
        error carrying one of `not_found_codes`, when the venue does not know it)."""

    @abstractmethod
    async def lookup_transfer(self, row: ActionRow) -> Outcome:
        """Whether the reserve transfer of `row` happened."""

    async def lookup_margin(self, row: ActionRow) -> Outcome:
        """A margin change carries no id on most venues: the position's isolated margin
        is compared with the value read just before sending."""
        request = row.request
        positions = await fetch_positions(self.adapter, self.client)
        position = find_position(positions, row.symbol, request["position_side"])
        if position is None:
            return self.absent(row, "position closed since; the transfer cannot be verified")
        before = request["isolated_margin_before"] or 0.0
        now = position.isolated_margin or 0.0
        if now - before >= request["amount"] * MARGIN_MATCH:
            return Outcome("filled", f"isolated margin rose from {money(before)} to {money(now)}")
        return self.absent(row, f"isolated margin still {money(now)} (was {money(before)})")

    def reserve_refusal(self, reserve: ReserveConfig) -> str | None:
        """Why the configured reserve cannot be drawn on at this venue, or None."""
        if reserve.from_ not in self.reserve_sources:
            return (
                f"actions.reserve.from {reserve.from_!r} is not a wallet this exchange "
                f"transfers from; use {' or '.join(map(repr, self.reserve_sources))}"
            )
        if self.reserve_assets is not None and reserve.asset not in self.reserve_assets:
            return (
                f"actions.reserve.asset {reserve.asset!r} is not what this exchange margins "
                f"in; use {' or '.join(map(repr, self.reserve_assets))}"
            )
        return None

    def transfer_coin(self, decision: Decision) -> str:
        return self.reserve_asset or decision.asset

    def validity_window(self) -> float:
        """Seconds a signed request can still execute after it was signed."""
        return self.recv_window_ms / 1000

    def request_validity(self, row: ActionRow) -> float:
        """`validity_window` for the request of `row`: a venue whose requests differ in
        how long they stay executable (OKX's order deadline) tells them apart here."""
        return self.validity_window()

    # --- requests --------------------------------------------------------------

    def request(self, decision: Decision, position: Position | None) -> dict[str, Any]:
        """The exact call for `decision`, journaled before it is made.

        `position` is the fresh read taken right before acting: its isolated margin is
        the baseline a later lookup of a margin change compares against.
        """
        if decision.kind == "transfer":
            return self.transfer_request(decision)
        if decision.kind == "add_margin":
            return self.add_margin_request(decision, position)
        order_type, price = "market", None
        params = self.order_params(decision)
        if self.cross.order_type == "limit_ioc":
            order_type, price = "limit", self.limit_price(decision)
            params["timeInForce"] = "IOC"
        return {
            "kind": "reduce",
            "symbol": decision.symbol,
            "position_side": decision.position_side,
            "type": order_type,
            "side": decision.order_side,
            "amount": decision.quantity,
            "price": price,
            "params": params,
        }

    def limit_price(self, decision: Decision) -> float:
        """The worst price `max_slippage` allows, rounded to the tick inside the bound."""
        tick = self.client.market(decision.symbol)["precision"].get("price")
        slip = self.cross.max_slippage
        selling = decision.order_side == "sell"
        price = decision.mark * (1 - slip if selling else 1 + slip)
        if tick:  # round toward the mark, so the bound still holds after rounding
            ticks = price / tick
            price = (math.ceil(ticks - 1e-9) if selling else math.floor(ticks + 1e-9)) * tick
        return float(self.client.price_to_precision(decision.symbol, price))

    async def send(self, request: dict[str, Any]) -> Outcome:
        """Make the call once; never retried here."""
        try:
            if request["kind"] == "transfer":
                return await self.send_transfer(request)
            if request["kind"] == "add_margin":
                return await self.send_add_margin(request)
            return await self.send_order(request)
        except Exception as exc:
            text = self.scrubbed(exc)
            if self.maybe_executed(exc):
                return Outcome("unknown", f"no definite reply: {text}")
            return Outcome("failed", f"rejected: {text}")

    def maybe_executed(self, exc: BaseException) -> bool:
        """Whether a failed call may still have been executed by the exchange.

        A gateway refusal (rate limit, bad timestamp) or an exchange error code is a
        definite "no"; a timeout, a 5xx, a broken connection, an unreadable reply or one
        of the venue's "status unknown" codes is not.
        """
        if isinstance(exc, ccxt.DDoSProtection | ccxt.RateLimitExceeded | ccxt.InvalidNonce):
            return False
        if isinstance(exc, ccxt.ExchangeError):
            return _carries(exc, self.unknown_codes)
        return True

    def scrubbed(self, exc: BaseException) -> str:
        return scrub(str(exc) or type(exc).__name__, self.secrets)

    # --- lookups ---------------------------------------------------------------

    async def lookup(self, row: ActionRow) -> Outcome:
        """What the exchange says became of a journaled request (one read)."""
        if row.status == "planned" and row.kind in ("add_margin", "transfer"):
            return Outcome("aborted", "interrupted before sending (nothing was sent)")
        try:
            if row.kind == "transfer":
                return await self.lookup_transfer(row)
            if row.kind == "add_margin":
                return await self.lookup_margin(row)
            return await self.lookup_order(row)
        except Exception as exc:
            if isinstance(exc, ccxt.OrderNotFound) or _carries(exc, self.not_found_codes):
                return self.absent(row, f"order {row.client_order_id} not on the exchange")
            return Outcome("unknown", f"lookup failed: {self.scrubbed(exc)}")

    def absent(self, row: ActionRow, what: str) -> Outcome:
        """Not (yet) seen on the exchange: final only when the request can no longer land."""
        if row.status == "planned":
            return Outcome("aborted", f"interrupted before sending: {what}")
        if self._now() > self.expires(row):
            return Outcome("failed", f"never executed: {what} after its validity window expired")
        return Outcome("unknown", f"{what} yet; the request may still arrive")

    def expires(self, row: ActionRow) -> float:
        """When the request can no longer execute: its validity window after signing.

        An `unknown` row was marked after the call ended (signed before that); a `sent`
        row was signed before it was last written, or before this process started.
        """
        signed_before = (
            row.updated_at if row.status == "unknown" else max(row.updated_at, self.started_at)
        )
        return signed_before + self.request_validity(row) + SETTLE_GRACE

    async def resolve(self, row: ActionRow) -> Outcome:
        """Look an `unknown` request up until the exchange's answer is final or the
        request has expired and a last lookup still cannot tell."""
        while True:
            outcome = await self.lookup(row)
            if outcome.status != "unknown" or self._now() > self.expires(row) + SETTLE_GRACE:
                return outcome
            await self._sleep(LOOKUP_PERIOD)


def _carries(exc: BaseException, codes: Iterable[str]) -> bool:
    """Whether the error's text names one of `codes` as a whole number (10000 is not
    found in 100000)."""
    text = str(exc)
    return any(re.search(rf"(?<![\w.]){re.escape(code)}(?![\w.])", text) for code in codes)


def order_outcome(order: dict[str, Any]) -> Outcome:
    """A ccxt unified order as an outcome: any fill is `filled` (a partial one says so)."""
    filled = order.get("filled") or 0.0
    summary = {
        key: order.get(key)
        for key in ("id", "clientOrderId", "status", "amount", "filled", "average")
    }
    if order.get("status") == "open":
        return Outcome("unknown", "order still open", summary)
    if filled > 0:
        amount = order.get("amount") or filled
        part = "" if filled >= amount else f" of {amount:g} (partial)"
        average = order.get("average")  # absent from some lookups (Hyperliquid orderStatus)
        price = f" at {average}" if average is not None else ""
        return Outcome("filled", f"filled {filled:g}{part}{price}", summary)
    return Outcome("failed", f"{order.get('status')}: nothing filled", summary)


class VenueExecution(NamedTuple):
    """What a venue brings to act on it: its executor class and its key-permission
    reader. The composer looks it up by exchange id (`monitor/venues/registry.py`); a
    venue without one runs dry runs only."""

    executor: type[Executor]
    read_permissions: PermissionReader
