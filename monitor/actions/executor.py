"""The exchange calls of auto-deleverage, and what their outcome was.

Binance USD-M only, exactly: `POST /sapi/v1/asset/transfer` (ccxt `transfer`, type
MAIN_UMFUTURE or FUNDING_UMFUTURE) to bring money from the reserve, `POST
/fapi/v1/positionMargin` (type 1) to add isolated margin, and reduce-only orders carrying
our deterministic `newClientOrderId`. Other exchanges are refused with a message rather
than approximated: an order sent with the wrong position mode or margin semantics is
worse than none.

A request is never sent twice. A timeout, a dropped connection or a 5xx says nothing
about what the exchange did, so it makes the outcome `unknown`, and the order is then
looked up by its client id (Binance lets a *filled* order's client id be reused, so
resending with the same id is not idempotent). "Not found" only becomes "failed" once
the request's `recvWindow` has expired: after that Binance refuses it even if it is
still on its way. A margin transfer has no id; its lookup compares the position's
isolated margin with the value read just before sending. A reserve transfer has no id
of ours either (Binance takes none): its lookup reads the transfer history and matches
asset, amount and a time window starting at the journal row, skipping transfers that
another row already claimed.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

import ccxt

from monitor.actions.journal import ActionRow, Outcome
from monitor.actions.policy import Decision
from monitor.config.schema import CrossPolicy
from monitor.domain import Position
from monitor.exchange.adapters.base import ExchangeAdapter
from monitor.exchange.errors import scrub

SUPPORTED = ("binanceusdm",)
RECV_WINDOW_MS = 5_000
"""Sent with every action request: the exchange refuses the request once this long has
passed since it was signed, which bounds how long its outcome can stay unknown."""
SETTLE_GRACE = 2.0
"""Seconds added to the recvWindow for clock skew (Binance accepts 1 s ahead)."""
LOOKUP_PERIOD = 0.5
MARGIN_MATCH = 0.99
"""A transfer counts as applied when the isolated margin rose by this share of it (the
rest allows for fees or funding booked to the position meanwhile)."""
UNKNOWN_CODES = ("-1006", "-1007")
"""Binance: "execution status unknown". ccxt maps them to a plain ExchangeError on
some hosts, so the code is read from the message."""
NOT_FOUND_CODE = "-2013"
TO_FUTURES = "linear"
"""ccxt's name of the USD-M futures wallet (Binance UMFUTURE)."""
TRANSFER_TYPES = {"spot": "MAIN_UMFUTURE", "funding": "FUNDING_UMFUTURE"}
TRANSFER_SKEW = 5.0
"""Seconds before the journal row a matching transfer may be stamped (clock skew)."""


def unsupported(exchange_id: str) -> str | None:
    """Why this exchange cannot be acted on, or None."""
    if exchange_id in SUPPORTED:
        return None
    return (
        f"automatic actions are implemented exactly for Binance USD-M only, not {exchange_id}; "
        "set actions.mode to dry_run for this account"
    )


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


def _maybe_executed(exc: BaseException) -> bool:
    """Whether a failed call may still have been executed by the exchange.

    A gateway refusal (rate limit, bad timestamp) or an exchange error code is a
    definite "no"; a timeout, a 5xx, a broken connection or an unreadable reply is not.
    """
    if isinstance(exc, ccxt.DDoSProtection | ccxt.RateLimitExceeded | ccxt.InvalidNonce):
        return False
    if isinstance(exc, ccxt.ExchangeError):
        return any(code in str(exc) for code in UNKNOWN_CODES)
    return True


class Executor:
    """Builds, sends and looks up one account's action requests."""

    def __init__(
        self,
        client: Any,
        adapter: ExchangeAdapter,
        cross: CrossPolicy,
        secrets: Iterable[str] = (),
        recv_window_ms: int = RECV_WINDOW_MS,
        now: Callable[[], float] = time.time,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.client = client
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
        is gone), so its recvWindow is counted from here at the latest."""

    # --- requests --------------------------------------------------------------

    def request(self, decision: Decision, position: Position | None) -> dict[str, Any]:
        """The exact call for `decision`, journaled before it is made.

        `position` is the fresh read taken right before acting: its isolated margin is
        the baseline a later lookup of a margin transfer compares against.
        """
        if decision.kind == "transfer":
            return {
                "kind": "transfer",
                "asset": decision.asset,
                "amount": decision.quantity,
                "from": decision.source,
                "params": {"type": TRANSFER_TYPES[decision.source],
                           "recvWindow": self.recv_window_ms},
            }  # fmt: skip
        if decision.kind == "add_margin":
            params: dict[str, Any] = {
                "symbol": self.client.market(decision.symbol)["id"],
                "type": 1,
                "amount": f"{decision.quantity:.2f}",
                "recvWindow": self.recv_window_ms,
            }
            if decision.position_side != "BOTH":
                params["positionSide"] = decision.position_side
            return {
                "kind": "add_margin",
                "symbol": decision.symbol,
                "position_side": decision.position_side,
                "amount": decision.quantity,
                "isolated_margin_before": position.isolated_margin if position else None,
                "params": params,
            }
        params = {"clientOrderId": decision.client_order_id, "recvWindow": self.recv_window_ms}
        if decision.position_side == "BOTH":
            params["reduceOnly"] = True
        else:  # hedge mode: the leg named can only shrink; Binance rejects reduceOnly here
            params["positionSide"] = decision.position_side
        order_type, price = "market", None
        if self.cross.order_type == "limit_ioc":
            order_type, price = "limit", self._limit_price(decision)
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

    def _limit_price(self, decision: Decision) -> float:
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
                reply = await self.client.transfer(
                    request["asset"], request["amount"], request["from"], TO_FUTURES,
                    dict(request["params"]),
                )  # fmt: skip
                return Outcome(
                    "filled",
                    f"transferred {request['amount']:,.2f} {request['asset']} from "
                    f"{request['from']} (id {reply.get('id')})",
                    {"id": reply.get("id")},
                )
            if request["kind"] == "add_margin":
                reply = await self.client.fapiPrivatePostPositionMargin(dict(request["params"]))
                return Outcome("filled", f"added {request['amount']:,.2f} margin", dict(reply))
            order = await self.client.create_order(
                request["symbol"], request["type"], request["side"], request["amount"],
                request["price"], dict(request["params"]),
            )  # fmt: skip
        except Exception as exc:
            text = scrub(str(exc) or type(exc).__name__, self.secrets)
            if _maybe_executed(exc):
                return Outcome("unknown", f"no definite reply: {text}")
            return Outcome("failed", f"rejected: {text}")
        return _order_outcome(order)

    # --- lookups ---------------------------------------------------------------

    async def lookup(self, row: ActionRow) -> Outcome:
        """What the exchange says became of a journaled request (one read)."""
        if row.status == "planned" and row.kind in ("add_margin", "transfer"):
            return Outcome("aborted", "interrupted before sending (nothing was sent)")
        try:
            if row.kind == "transfer":
                return await self._lookup_reserve_transfer(row)
            if row.kind == "add_margin":
                return await self._lookup_transfer(row)
            order = await self.client.fetch_order(
                None, row.symbol, {"origClientOrderId": row.client_order_id}
            )
        except Exception as exc:
            if isinstance(exc, ccxt.OrderNotFound) or NOT_FOUND_CODE in str(exc):
                return self._absent(row, f"order {row.client_order_id} not on the exchange")
            text = scrub(str(exc) or type(exc).__name__, self.secrets)
            return Outcome("unknown", f"lookup failed: {text}")
        return _order_outcome(order)

    async def _lookup_transfer(self, row: ActionRow) -> Outcome:
        request = row.request
        positions = await fetch_positions(self.adapter, self.client)
        position = find_position(positions, row.symbol, request["position_side"])
        if position is None:
            return self._absent(row, "position closed since; the transfer cannot be verified")
        before = request["isolated_margin_before"] or 0.0
        now = position.isolated_margin or 0.0
        if now - before >= request["amount"] * MARGIN_MATCH:
            return Outcome("filled", f"isolated margin rose from {before:,.2f} to {now:,.2f}")
        return self._absent(row, f"isolated margin still {now:,.2f} (was {before:,.2f})")

    async def _lookup_reserve_transfer(self, row: ActionRow) -> Outcome:
        """Find the transfer in the exchange's history: same asset and amount, stamped
        from (just before) the journal row until the request could no longer land, and
        not already claimed by another row of ours."""
        request = row.request
        since = row.created_at - TRANSFER_SKEW
        history = await self.client.fetch_transfers(
            request["asset"], int(since * 1000), None, {"type": request["params"]["type"]}
        )
        claimed = {
            str((other.result or {}).get("id"))
            for other in self.claimed(row.account, since)
            if other.id != row.id
        }
        until = self._expires(row)
        for entry in history:
            stamped = (entry.get("timestamp") or 0) / 1000
            if (
                str(entry.get("id")) not in claimed
                and entry.get("currency") == request["asset"]
                and abs((entry.get("amount") or 0.0) - request["amount"]) < 0.005
                and since <= stamped <= until
                and str(entry.get("status")) in ("ok", "CONFIRMED")
            ):
                return Outcome(
                    "filled", f"found in the transfer history (id {entry.get('id')})",
                    {"id": entry.get("id")},
                )  # fmt: skip
        return self._absent(row, "no matching transfer in the history")

    def _absent(self, row: ActionRow, what: str) -> Outcome:
        """Not (yet) seen on the exchange: final only when the request can no longer land."""
        if row.status == "planned":
            return Outcome("aborted", f"interrupted before sending: {what}")
        if self._now() > self._expires(row):
            return Outcome("failed", f"never executed: {what} after its recvWindow expired")
        return Outcome("unknown", f"{what} yet; the request may still arrive")

    def _expires(self, row: ActionRow) -> float:
        """When the request can no longer execute: recvWindow after it was signed.

        An `unknown` row was marked after the call ended (signed before that); a `sent`
        row was signed before it was last written, or before this process started.
        """
        signed_before = (
            row.updated_at if row.status == "unknown" else max(row.updated_at, self.started_at)
        )
        return signed_before + self.recv_window_ms / 1000 + SETTLE_GRACE

    async def resolve(self, row: ActionRow) -> Outcome:
        """Look an `unknown` request up until the exchange's answer is final or the
        request has expired and a last lookup still cannot tell."""
        while True:
            outcome = await self.lookup(row)
            if outcome.status != "unknown" or self._now() > self._expires(row) + SETTLE_GRACE:
                return outcome
            await self._sleep(LOOKUP_PERIOD)


def _order_outcome(order: dict[str, Any]) -> Outcome:
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
        return Outcome("filled", f"filled {filled:g}{part} at {order.get('average')}", summary)
    return Outcome("failed", f"{order.get('status')}: nothing filled", summary)
