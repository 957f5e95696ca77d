"""OKX v5 (swaps, one-way or long/short mode): the exchange calls of auto-deleverage.

The calls, from OKX's v5 API documentation (www.okx.com/docs-v5/en):
- reserve -> futures: `POST /api/v5/asset/transfer` from the funding account (`6`) to the
  trading account (`18`) with our `clientId`; looked up with
  `GET /api/v5/asset/transfer-state?clientId=` (state success | pending | failed).
- add isolated margin: `POST /api/v5/account/position/margin-balance` `type: add`. Not
  ccxt's `add_margin`: ccxt 4.5.90 moves the margin, then fails to parse OKX's reply
  (TypeError), which would report a failure after the money moved.
- reduce-only order with our `clOrdId`: `POST /api/v5/trade/order` (ccxt's default for
  one order is `/trade/batch-orders`, whose envelope can say "all failed" for one order;
  the single-order endpoint is set in the client's options). `tdMode` is the position's
  margin mode: OKX keeps a cross and an isolated position of one instrument apart, and an
  order reduces the position of its own tdMode only. In long/short mode `posSide` names
  the leg instead of `reduceOnly`. The place-order reply carries ids, not the fill, so
  the fill is read back at once with `GET /api/v5/trade/order?clOrdId=`.

Status unknown: code 50004 "Endpoint request timeout (does not mean that the request was
successful or failed, please check the request result)", 51149 "Order timed out", and
the busy / unavailable / system-error codes 50001, 50013, 50026 (ccxt raises them as
RequestTimeout or ExchangeNotAvailable); a timeout, a dropped connection or a 5xx. Not
found: 51603 "Order does not exist". OKX refuses a request whose OK-ACCESS-TIMESTAMP is
more than 30 s off its clock (50102), so a request signed then can no longer execute
after `REQUEST_EXPIRY_S` plus the grace for clock skew: only then does "not found"
become "failed". An order request carries a deadline of its own, the `expTime` header
(monitor/venues/okx/client.py), when the client sends one: OKX discards it once the
deadline has passed (50036 or 50037, both definite refusals), so a lost order reply is
settled after `recv_window_ms` (5 s) plus the grace instead of 30 s. The journaled
request says which deadline it was sent with (`valid_ms`), so a row left by a process
that sent none keeps the 30 s window.
"""

from __future__ import annotations

from typing import Any

from monitor.actions.decision import money
from monitor.actions.executor import Executor, order_outcome
from monitor.actions.journal import ActionRow, Outcome
from monitor.actions.policy import Decision
from monitor.domain import Position
from monitor.venues.okx.client import VALIDITY_OPTION, OrderDeadline

REQUEST_EXPIRY_S = 30.0
"""OKX rejects a signed request whose timestamp is more than 30 s old (code 50102)."""
FUNDING, TRADING = "6", "18"
"""OKX's account types: the funding account (the reserve) and the trading account."""
RESERVE_ACCOUNTS = {"funding": FUNDING}
"""Where a reserve may come from. OKX's trading account holds spot and swaps alike, so
there is no separate spot wallet to draw on."""
CLIENT_ID_LENGTH = 32
"""clOrdId and clientId: case-sensitive letters and digits, up to 32 characters."""
POSITION_SIDES = {"LONG": "long", "SHORT": "short"}


def amount_text(quantity: float) -> str:
    """An amount as OKX takes it: USDT in cents, a coin (inverse margin, a coin reserve)
    to the eight decimals it was sized in; no trailing zeros."""
    return f"{quantity:.8f}".rstrip("0").rstrip(".")


def okx_client_id(decision_id: str) -> str:
    """Our deterministic id in OKX's alphabet: "mw" + the decision id (hex), 32 chars."""
    return ("mw" + decision_id)[:CLIENT_ID_LENGTH]


class OkxExecutor(Executor):
    """Builds, sends and looks up one OKX account's action requests."""

    unknown_codes = ("50004", "51149", "50001", "50013", "50026")
    not_found_codes = ("51603",)
    reserve_sources = tuple(RESERVE_ACCOUNTS)

    def __init__(self, client: Any, *args: Any, **kwargs: Any) -> None:
        super().__init__(client, *args, **kwargs)
        client.options["createOrder"] = "privatePostTradeOrder"
        self.order_deadline = isinstance(client, OrderDeadline)
        """Whether the client sends `expTime` on order requests (a client made for the
        account by the daemon does; a bare ccxt client cannot)."""
        if self.order_deadline:
            client.options[VALIDITY_OPTION] = self.recv_window_ms

    def validity_window(self) -> float:
        return REQUEST_EXPIRY_S

    def request_validity(self, row: ActionRow) -> float:
        """An order sent with a deadline: that deadline; anything else: 30 s."""
        valid_ms = row.request.get("valid_ms")
        return float(valid_ms) / 1000 if valid_ms else REQUEST_EXPIRY_S

    def request(self, decision: Decision, position: Position | None) -> dict[str, Any]:
        """The request; an order's says how long OKX may still execute it (`valid_ms`),
        which is what its `expTime` header will say."""
        made = super().request(decision, position)
        if made["kind"] == "reduce" and self.order_deadline:
            made["valid_ms"] = self.recv_window_ms
        return made

    # --- requests --------------------------------------------------------------

    def transfer_request(self, decision: Decision) -> dict[str, Any]:
        """In a multi-currency account the pool is valued in USD: the coin moved is the
        reserve's (`actions.reserve.asset`)."""
        coin = self.transfer_coin(decision)
        return {
            "kind": "transfer",
            "asset": coin,
            "amount": decision.quantity,
            "from": decision.source,
            "params": {
                "ccy": coin,
                "amt": amount_text(decision.quantity),
                "from": RESERVE_ACCOUNTS.get(decision.source, decision.source),
                "to": TRADING,
                "type": "0",
                "clientId": okx_client_id(decision.id),
            },
        }

    def add_margin_request(self, decision: Decision, position: Position | None) -> dict[str, Any]:
        return {
            "kind": "add_margin",
            "symbol": decision.symbol,
            "position_side": decision.position_side,
            "amount": decision.quantity,
            "isolated_margin_before": position.isolated_margin if position else None,
            "params": {
                "instId": self.client.market(decision.symbol)["id"],
                "posSide": POSITION_SIDES.get(decision.position_side, "net"),
                "type": "add",
                "amt": amount_text(decision.quantity),
            },
        }

    def order_params(self, decision: Decision) -> dict[str, Any]:
        """`tdMode` is the position's own margin mode (OKX keeps a cross and an isolated
        position of one instrument apart); the leg in long/short mode, else reduce-only."""
        params: dict[str, Any] = {
            "clientOrderId": okx_client_id(decision.id),
            "marginMode": decision.margin_mode,
        }
        leg = POSITION_SIDES.get(decision.position_side)
        if leg is None:
            params["reduceOnly"] = True
        else:  # long/short mode: closing the named leg can only shrink it
            params["positionSide"] = leg
        return params

    # --- sending ---------------------------------------------------------------

    async def send_transfer(self, request: dict[str, Any]) -> Outcome:
        reply = await self.client.privatePostAssetTransfer(dict(request["params"]))
        row = (reply.get("data") or [{}])[0]
        return Outcome(
            "filled",
            f"transferred {money(request['amount'])} {request['asset']} from "
            f"{request['from']} (transId {row.get('transId')})",
            {"id": row.get("transId"), "clientId": row.get("clientId")},
        )

    async def send_add_margin(self, request: dict[str, Any]) -> Outcome:
        reply = await self.client.privatePostAccountPositionMarginBalance(dict(request["params"]))
        row = (reply.get("data") or [{}])[0]
        return Outcome("filled", f"added {money(request['amount'])} margin", dict(row))

    async def send_order(self, request: dict[str, Any]) -> Outcome:
        """OKX's place-order reply carries ids, not the fill: it is read back at once by
        clOrdId (a failed read leaves the outcome unknown, to be looked up)."""
        await self.client.create_order(
            request["symbol"], request["type"], request["side"], request["amount"],
            request["price"], dict(request["params"]),
        )  # fmt: skip
        try:
            return order_outcome(await self._fetch_order(request["symbol"], request["params"]))
        except Exception as exc:
            return Outcome("unknown", f"placed; its fill could not be read: {self.scrubbed(exc)}")

    async def _fetch_order(self, symbol: str, params: dict[str, Any]) -> dict[str, Any]:
        return await self.client.fetch_order(  # type: ignore[no-any-return]
            None, symbol, {"clientOrderId": params["clientOrderId"]}
        )

    # --- lookups ---------------------------------------------------------------

    async def lookup_order(self, row: ActionRow) -> Outcome:
        return order_outcome(await self._fetch_order(row.symbol, row.request["params"]))

    async def lookup_transfer(self, row: ActionRow) -> Outcome:
        """By our clientId: OKX answers the transfer's state, or nothing if it never
        arrived."""
        client_id = row.request["params"]["clientId"]
        reply = await self.client.privateGetAssetTransferState({"clientId": client_id})
        found = reply.get("data") or []
        if not found:
            return self.absent(row, f"no transfer with clientId {client_id}")
        state, trans_id = str(found[0].get("state")), found[0].get("transId")
        if state == "success":
            return Outcome("filled", f"transfer {trans_id} succeeded", {"id": trans_id})
        if state == "failed":
            return Outcome("failed", f"transfer {trans_id} failed on OKX", {"id": trans_id})
        return Outcome("unknown", f"transfer {trans_id} is {state}")
