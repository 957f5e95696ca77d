"""Bybit v5 execution (unified trading account, linear and inverse perpetuals).

Exactly (Bybit v5 API docs; ccxt 4.5 calls in brackets):
- reduce-only order `POST /v5/order/create` with `reduceOnly` and our `orderLinkId`
  [create_order, clientOrderId], `positionIdx` 1/2 naming the leg in hedge mode (0 in
  one-way mode);
- looked up by `orderLinkId` with `GET /v5/order/realtime` (`openOnly=1`: the recent
  closed orders; the default lists open orders only, so a filled market order is not
  there) and then `GET /v5/order/history` [raw privateGetV5OrderRealtime / History;
  ccxt's fetch_order wants an orderId];
- add isolated margin `POST /v5/position/add-margin` [raw privatePostV5PositionAddMargin;
  ccxt's add_margin is not implemented for bybit]; it carries no id, so its lookup
  compares the position's margin with the value read before sending (the base's rule);
  `margin` takes at most four decimals ("Add Or Reduce Margin"), so an add, in USDT or
  in the coin of an inverse contract (BTC for BTCUSD), is rounded down to them;
- reserve transfer `POST /v5/asset/transfer/inter-transfer` FUND -> UNIFIED [raw
  privatePostV5AssetTransferInterTransfer: ccxt's transfer rounds the amount]
  (FUND -> CONTRACT for the coin of inverse contracts a classic or UTA 1.0 account keeps
  in its inverse derivatives wallet)
  with a `transferId` of ours: a UUID derived from the decision id, so the request is
  idempotent (a second one is refused with 131214 "TransferId exist") and is looked up by
  that id with `GET /v5/asset/transfer/query-inter-transfer-list`.

"Status unknown": retCode 10000 "Server Timeout" and 10016 "Server error" (Bybit's
error-code table) leave the outcome open, like a timeout or a 5xx. A request is valid
for `X-BAPI-RECV-WINDOW` ms after its timestamp (ccxt's `options['recvWindow']`, 5,000 by
default): past it Bybit refuses it (10002), which bounds how long an outcome stays open.
"""

from __future__ import annotations

import math
import uuid
from typing import Any, ClassVar

import ccxt

from monitor.actions.decision import money
from monitor.actions.executor import RECV_WINDOW_MS, Executor, order_outcome
from monitor.actions.journal import ActionRow, Outcome
from monitor.actions.policy import Decision
from monitor.domain import Position
from monitor.venues.bybit.adapter import BybitAdapter

POSITION_IDX = {"BOTH": 0, "LONG": 1, "SHORT": 2}
"""Our position side -> Bybit's positionIdx (0 one-way; 1 buy side, 2 sell side of a
hedge-mode pair)."""
MARGIN_DECIMALS = 4
"""add-margin's `margin`: "up to 4 decimal places"."""
TRANSFER_DONE = "131214"
"""inter-transfer: "TransferId exist": a transfer with our id was already made."""


class BybitExecutor(Executor):
    unknown_codes = ("10000", "10016", TRANSFER_DONE)
    """10000 "Server Timeout", 10016 "Server error": the outcome is open. 131214 means our
    transfer id already exists: it was made (the lookup confirms it by that id)."""
    not_found_codes = ("110001", "170213")
    futures_wallet: ClassVar[str] = "unified"
    """ccxt's name of the unified trading account (UNIFIED). The reserve's `from` is
    ccxt's too: funding (FUND), or spot (SPOT) where a classic account still has one; a
    unified account holds spot inside UNIFIED, Bybit refuses SPOT as a source there, and
    that rung is then skipped."""

    def validity_window(self) -> float:
        return float(self.client.options.get("recvWindow") or RECV_WINDOW_MS) / 1000

    # --- requests --------------------------------------------------------------

    def transfer_request(self, decision: Decision) -> dict[str, Any]:
        """The inter-transfer body exactly as sent: ccxt's `transfer` would round the
        amount to the currency precision it derives from the markets when currencies are
        not loaded (ccxt 4.5.90: BTC to 0.001, 0.0378 sent as 0.038), moving more than
        was decided."""
        target = (
            self.adapter.wallet_of(decision.asset)
            if isinstance(self.adapter, BybitAdapter)
            else self.futures_wallet
        )
        accounts = self.client.options["accountsByType"]
        coin = self.transfer_coin(decision)
        return {
            "kind": "transfer",
            "asset": coin,
            "amount": decision.quantity,
            "from": decision.source,
            "to": target,
            "params": {
                "transferId": str(uuid.UUID(hex=decision.id, version=4)),
                "coin": coin,
                "amount": f"{decision.quantity:.8f}".rstrip("0").rstrip("."),
                "fromAccountType": accounts[decision.source],
                "toAccountType": accounts[target],
            },
        }

    def add_margin_request(self, decision: Decision, position: Position | None) -> dict[str, Any]:
        market = self.client.market(decision.symbol)
        scale = 10**MARGIN_DECIMALS
        amount = math.floor(decision.quantity * scale + 1e-6) / scale  # never above the plan
        return {
            "kind": "add_margin",
            "symbol": decision.symbol,
            "position_side": decision.position_side,
            "amount": amount,
            "isolated_margin_before": position.isolated_margin if position else None,
            "params": {
                "category": "inverse" if market.get("inverse") else "linear",
                "symbol": market["id"],
                "margin": f"{amount:.{MARGIN_DECIMALS}f}".rstrip("0").rstrip("."),
                "positionIdx": POSITION_IDX[decision.position_side],
            },
        }

    def order_params(self, decision: Decision) -> dict[str, Any]:
        return {
            "clientOrderId": decision.client_order_id,
            "reduceOnly": True,
            "positionIdx": POSITION_IDX[decision.position_side],
        }

    # --- sending ---------------------------------------------------------------

    async def send_transfer(self, request: dict[str, Any]) -> Outcome:
        reply = await self.client.privatePostV5AssetTransferInterTransfer(dict(request["params"]))
        transfer_id = request["params"]["transferId"]
        status = str((reply.get("result") or {}).get("status") or "SUCCESS")
        return _transfer_outcome(status, transfer_id, request)

    async def send_add_margin(self, request: dict[str, Any]) -> Outcome:
        reply = await self.client.privatePostV5PositionAddMargin(dict(request["params"]))
        result = reply.get("result") or {}
        return Outcome(
            "filled",
            f"added {money(request['amount'])} margin (position margin now "
            f"{result.get('positionBalance')})",
            {"positionBalance": result.get("positionBalance")},
        )

    async def send_order(self, request: dict[str, Any]) -> Outcome:
        """Bybit's reply to an order is an acknowledgement (`orderId`, `orderLinkId`), not
        its fill: the fill is read by the client id right after. An acknowledged order
        whose fill cannot be read yet is `unknown` (looked up again), never `failed`."""
        link_id = request["params"]["clientOrderId"]
        ack = await self.client.create_order(
            request["symbol"], request["type"], request["side"], request["amount"],
            request["price"], dict(request["params"]),
        )  # fmt: skip
        try:
            return await self.find_order(request["symbol"], link_id)
        except Exception as exc:
            return Outcome(
                "unknown", f"acknowledged (id {ack.get('id')}), fill not read yet: "
                f"{self.scrubbed(exc)}", {"id": ack.get("id"), "clientOrderId": link_id},
            )  # fmt: skip

    # --- lookups ---------------------------------------------------------------

    async def lookup_order(self, row: ActionRow) -> Outcome:
        return await self.find_order(row.symbol, row.client_order_id or "")

    async def find_order(self, symbol: str, link_id: str) -> Outcome:
        """Recent closed orders first (where a filled reduce-only order is), then open
        ones, then the history (older than the realtime window)."""
        market = self.client.market(symbol)
        query = {
            "category": "inverse" if market.get("inverse") else "linear",
            "symbol": market["id"],
            "orderLinkId": link_id,
        }
        reads = (
            lambda: self.client.privateGetV5OrderRealtime({**query, "openOnly": 1}),
            lambda: self.client.privateGetV5OrderRealtime(query),
            lambda: self.client.privateGetV5OrderHistory(query),
        )
        for read in reads:
            found = ((await read()).get("result") or {}).get("list") or []
            if found:
                return order_outcome(self.client.parse_order(found[0], market))
        raise ccxt.OrderNotFound(f"orderLinkId {link_id} not found")

    async def lookup_transfer(self, row: ActionRow) -> Outcome:
        transfer_id = row.request["params"]["transferId"]
        reply = await self.client.privateGetV5AssetTransferQueryInterTransferList(
            {"transferId": transfer_id, "coin": row.request["asset"]}
        )
        found = (reply.get("result") or {}).get("list") or []
        if not found:
            return self.absent(row, f"transfer {transfer_id} not on the exchange")
        return _transfer_outcome(str(found[0].get("status")), transfer_id, row.request)


def _transfer_outcome(status: str, transfer_id: str, request: dict[str, Any]) -> Outcome:
    """inter-transfer statuses: SUCCESS, PENDING, FAILED."""
    what = (
        f"{money(request['amount'])} {request['asset']} from {request['from']} (id {transfer_id})"
    )
    result = {"id": transfer_id}
    if status == "SUCCESS":
        return Outcome("filled", f"transferred {what}", result)
    if status == "FAILED":
        return Outcome("failed", f"transfer failed: {what}", result)
    return Outcome("unknown", f"transfer {status.lower()}: {what}", result)
