"""Hyperliquid perps: the exchange calls of auto-deleverage, signed by an agent wallet.

An agent (API) wallet, approved by the account's main wallet, signs L1 actions for it
and can never withdraw (Hyperliquid docs, "Nonces and API wallets"). Every request here
is an L1 action the agent may sign, built as the docs' "Exchange endpoint" describes,
signed with ccxt's own `sign_l1_action` and posted with ccxt to `POST /exchange`:
- reduce-only order: action `order`, one IOC limit (Hyperliquid's market order) with
  `r: true` and our `cloid` (16 bytes hex: the decision id itself);
- add isolated margin: action `updateIsolatedMargin` {asset, isBuy, ntli (USD x 1e6)};
- reserve -> perps: action `agentSendAsset` from the spot balance to the main perp dex,
  destination the account itself (an agent may move funds only within its own account;
  fields as @nktkas/hyperliquid 0.33 signs them, not verified against the live venue).
  The user-signed `usdClassTransfer` needs the main wallet's key, which can withdraw:
  marginwatch never holds it.

Each action carries `expiresAfter` (ms): Hyperliquid refuses it after that time, so an
outcome left unknown by a timeout becomes final once that moment (plus the grace for
clock skew) has passed. Both the nonce and `expiresAfter` are chosen when the request is
built and journaled before it is sent, so a lookup after a restart knows them exactly.
Hyperliquid has no "status unknown" code: a timeout, a dropped connection or a 5xx is.
Lookups: info `orderStatus` by cloid (`unknownOid` = not found), the position's isolated
margin for a margin add, and info `userNonFundingLedgerUpdates` for the transfer's nonce.
"""

from __future__ import annotations

from typing import Any

from monitor.actions.executor import SETTLE_GRACE, Executor, order_outcome
from monitor.actions.journal import ActionRow, Outcome
from monitor.actions.policy import Decision
from monitor.domain import Position

COLLATERAL = "USDC"
PERP_DEX, SPOT_DEX = "", "spot"
"""How `agentSendAsset` names the main perp dex's balance and the spot balance."""
RESERVE_DEXES = {"spot": SPOT_DEX}
USD_SCALE = 1_000_000
"""`updateIsolatedMargin` takes USD x 1e6 as an integer (`ntli`)."""
CLIENT_OPTIONS = {"refSet": True, "approvedBuilderFee": True, "builderFee": False}
"""Keep ccxt from sending actions nobody asked for when it initialises the client: the
one-off setReferrer, and approveBuilderFee, which an agent may not sign. (Our own order
actions carry no builder at all.)"""
LEDGER_SKEW_MS = 5_000
"""How long before our nonce a ledger row of the transfer may be stamped (clock skew)."""


def cloid(decision_id: str) -> str:
    """Hyperliquid's client order id: 16 bytes hex; the decision id is 32 hex digits."""
    return "0x" + decision_id[:32].rjust(32, "0")


class HyperliquidExecutor(Executor):
    """Builds, sends and looks up one Hyperliquid account's action requests."""

    reserve_sources = tuple(RESERVE_DEXES)
    reserve_assets = (COLLATERAL,)

    def __init__(self, client: Any, *args: Any, **kwargs: Any) -> None:
        super().__init__(client, *args, **kwargs)
        client.options.update(CLIENT_OPTIONS)
        self._token: str | None = None

    def _signed(self) -> dict[str, int]:
        """The nonce and the `expiresAfter` of a new request, journaled with it."""
        nonce = int(self.client.incrementing_nonce())
        return {"nonce": nonce, "expiresAfter": nonce + self.recv_window_ms}

    def expires(self, row: ActionRow) -> float:
        """Hyperliquid refuses the action after the `expiresAfter` signed into it."""
        return float(row.request["params"]["expiresAfter"]) / 1000 + SETTLE_GRACE

    # --- requests --------------------------------------------------------------

    def request(self, decision: Decision, position: Position | None) -> dict[str, Any]:
        """A reduce is the whole signed `order` action (Hyperliquid has no market order
        of its own: an IOC limit through the mark)."""
        if decision.kind != "reduce":
            return super().request(decision, position)
        params = {**self._signed(), **self.order_params(decision)}
        order_type, price = "market", str(decision.mark)
        if self.cross.order_type == "limit_ioc":
            order_type, price = "limit", str(self.limit_price(decision))
            params["timeInForce"] = "Ioc"
        wire = self.client.create_order_request(
            decision.symbol, order_type, decision.order_side,
            self.client.amount_to_precision(decision.symbol, decision.quantity), price,
            params,
        )  # fmt: skip
        params["action"] = {"type": "order", "orders": [wire], "grouping": "na"}
        return {
            "kind": "reduce",
            "symbol": decision.symbol,
            "position_side": decision.position_side,
            "type": order_type,
            "side": decision.order_side,
            "amount": decision.quantity,
            "price": wire["p"],
            "params": params,
        }

    def order_params(self, decision: Decision) -> dict[str, Any]:
        return {
            "reduceOnly": True,
            "clientOrderId": cloid(decision.id),
            "slippage": self.client.safe_string(self.client.options, "defaultSlippage", "0.05"),
        }

    def transfer_request(self, decision: Decision) -> dict[str, Any]:
        return {
            "kind": "transfer",
            "asset": self.transfer_coin(decision),
            "amount": decision.quantity,
            "from": decision.source,
            "params": {
                **self._signed(),
                "sourceDex": RESERVE_DEXES.get(decision.source, decision.source),
                "destinationDex": PERP_DEX,
                "amount": f"{decision.quantity:.2f}",
            },
        }

    def add_margin_request(self, decision: Decision, position: Position | None) -> dict[str, Any]:
        action = {
            "type": "updateIsolatedMargin",
            "asset": int(self.client.market(decision.symbol)["baseId"]),
            "isBuy": True,  # no effect outside hedge mode, which Hyperliquid does not have
            "ntli": round(decision.quantity * USD_SCALE),
        }
        return {
            "kind": "add_margin",
            "symbol": decision.symbol,
            "position_side": decision.position_side,
            "amount": decision.quantity,
            "isolated_margin_before": position.isolated_margin if position else None,
            "params": {**self._signed(), "action": action},
        }

    # --- sending ---------------------------------------------------------------

    async def _post(self, action: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
        """Sign with ccxt's own L1 signer, `expiresAfter` included, and post once."""
        nonce, expires = params["nonce"], params["expiresAfter"]
        body = {
            "action": action,
            "nonce": nonce,
            "signature": self.client.sign_l1_action(action, nonce, None, expires),
            "expiresAfter": expires,
        }
        return await self.client.privatePostExchange(body)  # type: ignore[no-any-return]

    async def send_transfer(self, request: dict[str, Any]) -> Outcome:
        params = request["params"]
        action = {
            "type": "agentSendAsset",
            "destination": str(self.client.walletAddress).lower(),
            "sourceDex": params["sourceDex"],
            "destinationDex": params["destinationDex"],
            "token": await self._collateral_token(),
            "amount": params["amount"],
            "fromSubAccount": "",
            "nonce": params["nonce"],
        }
        await self._post(action, params)
        return Outcome(
            "filled",
            f"moved {request['amount']:,.2f} {COLLATERAL} from {request['from']} to perps "
            f"(nonce {params['nonce']})",
            {"nonce": params["nonce"]},
        )

    async def _collateral_token(self) -> str:
        """USDC as `spotMeta` names it ("USDC:0x<tokenId>"; mainnet and testnet differ)."""
        if self._token is None:
            meta = await self.client.publicPostInfo({"type": "spotMeta"})
            token = next(t for t in meta.get("tokens") or [] if t.get("name") == COLLATERAL)
            self._token = f"{COLLATERAL}:{token['tokenId']}"
        return self._token

    async def send_add_margin(self, request: dict[str, Any]) -> Outcome:
        reply = await self._post(request["params"]["action"], request["params"])
        return Outcome("filled", f"added {request['amount']:,.2f} margin", dict(reply))

    async def send_order(self, request: dict[str, Any]) -> Outcome:
        params = request["params"]
        reply = await self._post(params["action"], params)
        statuses = ((reply.get("response") or {}).get("data") or {}).get("statuses") or [{}]
        filled = statuses[0].get("filled")
        if filled is None:  # an IOC order cannot rest: look it up to be sure
            return Outcome("unknown", f"no fill in the reply: {statuses[0]}")
        return order_outcome(
            {
                "id": str(filled.get("oid")),
                "clientOrderId": params["clientOrderId"],
                "status": "closed",
                "amount": request["amount"],
                "filled": float(filled.get("totalSz") or 0.0),
                "average": float(filled["avgPx"]) if filled.get("avgPx") else None,
            }
        )

    # --- lookups ---------------------------------------------------------------

    async def lookup_order(self, row: ActionRow) -> Outcome:
        """Info `orderStatus` by cloid; `unknownOid` is ccxt's OrderNotFound."""
        client_id = row.request["params"]["clientOrderId"]
        return order_outcome(
            await self.client.fetch_order(None, row.symbol, {"clientOrderId": client_id})
        )

    async def lookup_transfer(self, row: ActionRow) -> Outcome:
        """The transfer's ledger row carries the nonce it was signed with: ours."""
        nonce = row.request["params"]["nonce"]
        ledger = await self.client.publicPostInfo(
            {
                "type": "userNonFundingLedgerUpdates",
                "user": self.client.walletAddress,
                "startTime": nonce - LEDGER_SKEW_MS,
            }
        )
        for entry in ledger or []:
            delta = entry.get("delta") or {}
            if delta.get("type") == "send" and delta.get("nonce") == nonce:
                return Outcome("filled", f"found in the ledger (nonce {nonce})", {"nonce": nonce})
        return self.absent(row, f"no ledger entry with nonce {nonce}")
