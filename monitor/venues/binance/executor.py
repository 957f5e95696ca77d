"""Binance futures execution: USD-M (fapi) and COIN-M (dapi).

Exactly: `POST /sapi/v1/asset/transfer` (ccxt `transfer`, type MAIN_UMFUTURE or
FUNDING_UMFUTURE) to bring money from the reserve, `POST /fapi/v1/positionMargin`
(type 1) to add isolated margin, and reduce-only orders carrying our deterministic
`newClientOrderId`, looked up with `GET /fapi/v1/order?origClientOrderId=` (Binance lets
a *filled* order's client id be reused, so resending with the same id is not
idempotent). Every request carries `recvWindow`: its validity window.

A reserve transfer has no id of ours (Binance takes none): its lookup reads the
transfer history and matches asset, amount and a time window starting at the journal
row, skipping transfers that another row already claimed.
"""

from __future__ import annotations

from typing import Any, ClassVar

from monitor.actions.decision import money
from monitor.actions.executor import Executor, order_outcome
from monitor.actions.journal import ActionRow, Outcome
from monitor.actions.policy import Decision
from monitor.domain import Position

TRANSFER_SKEW = 5.0
"""Seconds before the journal row a matching transfer may be stamped (clock skew)."""


class BinanceUsdmExecutor(Executor):
    unknown_codes = ("-1006", "-1007")
    """Binance: "execution status unknown"."""
    not_found_codes = ("-2013",)
    futures_wallet: ClassVar[str] = "linear"
    """ccxt's name of the USD-M futures wallet (Binance UMFUTURE)."""
    transfer_types: ClassVar[dict[str, str]] = {
        "spot": "MAIN_UMFUTURE",
        "funding": "FUNDING_UMFUTURE",
    }

    # --- requests --------------------------------------------------------------

    def transfer_request(self, decision: Decision) -> dict[str, Any]:
        return {
            "kind": "transfer",
            "asset": self.transfer_coin(decision),
            "amount": decision.quantity,
            "from": decision.source,
            "params": {"type": self.transfer_types[decision.source],
                       "recvWindow": self.recv_window_ms},
        }  # fmt: skip

    def add_margin_request(self, decision: Decision, position: Position | None) -> dict[str, Any]:
        params: dict[str, Any] = {
            "symbol": self.client.market(decision.symbol)["id"],
            "type": 1,
            "amount": self.margin_amount(decision),
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

    def margin_amount(self, decision: Decision) -> str:
        """USDT in cents, as the planner sized it."""
        return f"{decision.quantity:.2f}"

    def order_params(self, decision: Decision) -> dict[str, Any]:
        params: dict[str, Any] = {
            "clientOrderId": decision.client_order_id,
            "recvWindow": self.recv_window_ms,
        }
        if decision.position_side == "BOTH":
            params["reduceOnly"] = True
        else:  # hedge mode: the leg named can only shrink; Binance rejects reduceOnly here
            params["positionSide"] = decision.position_side
        return params

    # --- sending ---------------------------------------------------------------

    async def send_transfer(self, request: dict[str, Any]) -> Outcome:
        reply = await self.client.transfer(
            request["asset"], request["amount"], request["from"], self.futures_wallet,
            dict(request["params"]),
        )  # fmt: skip
        return Outcome(
            "filled",
            f"transferred {money(request['amount'])} {request['asset']} from "
            f"{request['from']} (id {reply.get('id')})",
            {"id": reply.get("id")},
        )

    async def send_add_margin(self, request: dict[str, Any]) -> Outcome:
        reply = await self.post_position_margin(dict(request["params"]))
        return Outcome("filled", f"added {money(request['amount'])} margin", dict(reply))

    async def post_position_margin(self, params: dict[str, Any]) -> dict[str, Any]:
        return await self.client.fapiPrivatePostPositionMargin(params)

    # --- lookups ---------------------------------------------------------------

    async def lookup_order(self, row: ActionRow) -> Outcome:
        order = await self.client.fetch_order(
            None, row.symbol, {"origClientOrderId": row.client_order_id}
        )
        return order_outcome(order)

    async def lookup_transfer(self, row: ActionRow) -> Outcome:
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
        until = self.expires(row)
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
        return self.absent(row, "no matching transfer in the history")


class BinanceCoinmExecutor(BinanceUsdmExecutor):
    """Binance COIN-M (dapi): the same rules on other endpoints and other units.

    Orders are whole contracts of a USD face value (the planner sizes them in contracts
    of the market's lot step, 1); `POST /dapi/v1/order` and `GET /dapi/v1/order` take the
    same client id parameters. Margin (`POST /dapi/v1/positionMargin`) and transfers are
    in the coin, to eight decimals: a reserve comes from spot (MAIN_CMFUTURE) or funding
    (FUNDING_CMFUTURE) into the coin's futures wallet (ccxt's "inverse" wallet)."""

    futures_wallet: ClassVar[str] = "inverse"
    transfer_types: ClassVar[dict[str, str]] = {
        "spot": "MAIN_CMFUTURE",
        "funding": "FUNDING_CMFUTURE",
    }

    def margin_amount(self, decision: Decision) -> str:
        return f"{decision.quantity:.8f}".rstrip("0").rstrip(".")

    async def post_position_margin(self, params: dict[str, Any]) -> dict[str, Any]:
        return await self.client.dapiPrivatePostPositionMargin(params)
