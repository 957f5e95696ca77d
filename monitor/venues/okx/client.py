"""OKX's request deadline on order requests: the `expTime` header ccxt does not send.

OKX discards a Place order / Place multiple orders / Amend order request that reaches
it after the `expTime` header (Unix ms; www.okx.com/docs-v5/en/#overview-transaction-
timeouts: "the request will not be processed if the current system time of the server
is after the expTime"; refused with 50036, or 50037 "Order expired."). Without it an
order request stays executable for OKX's 30 s timestamp window (50102), so a lost reply
leaves the order's outcome unknown that long. ccxt 4.5.90's okx `sign()` builds the
OK-ACCESS-* headers itself and drops any header passed to a call, so the deadline is
added here, after ccxt signed: the header is not part of OKX's signature.

`OrderDeadline` goes in front of ccxt's okx class (`OkxAdapter.client_mixins`); the
executor turns it on with the validity it counts on (`options["orderValidityMs"]`).
"""

from __future__ import annotations

from typing import Any

ORDER_PATHS = frozenset({"trade/order", "trade/batch-orders", "trade/amend-order",
                         "trade/amend-batch-orders"})  # fmt: skip
"""The POST paths OKX honours `expTime` on."""
VALIDITY_OPTION = "orderValidityMs"


class OrderDeadline:
    """Adds `expTime` = the request's own OK-ACCESS-TIMESTAMP + `options["orderValidityMs"]`
    to every order request signed while that option is set: the deadline counts from the
    very timestamp OKX checks, on the client's clock as adjusted by ccxt."""

    def sign(
        self,
        path: str,
        api: Any = "public",
        method: str = "GET",
        params: Any = None,
    ) -> dict[str, Any]:
        request: dict[str, Any] = super().sign(  # type: ignore[misc]
            path, api, method, {} if params is None else params
        )
        validity = self.options.get(VALIDITY_OPTION)  # type: ignore[attr-defined]
        signed = request.get("headers") or {}
        if (
            validity
            and method == "POST"
            and path in ORDER_PATHS
            and "OK-ACCESS-TIMESTAMP" in signed
        ):
            stamp = self.parse8601(signed["OK-ACCESS-TIMESTAMP"])  # type: ignore[attr-defined]
            signed["expTime"] = str(int(stamp) + int(validity))
        return request
