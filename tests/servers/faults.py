"""'Status unknown' faults the trading test servers can inject after committing an order.

Why: the dangerous case for an executor is the order that filled although the client never
learned so (the reply was lost, or a gateway answered 5xx after the matching engine took
it). Each test server applies the order first and then fails its reply in one of these
ways, so a later lookup by client order id finds it filled exactly once.

- `DISCONNECT`: the connection is closed without a reply (ccxt raises a NetworkError).
- `GATEWAY_TIMEOUT`: HTTP 504 with an HTML body, as a load balancer sends it (ccxt maps 504
  to RequestTimeout).
- `VENUE_TIMEOUT`: the venue's own "timeout, outcome unknown" code in its JSON envelope
  (Bybit retCode 10000 "Server Timeout", OKX code 50004 "Endpoint request timeout");
  each server renders it itself. Hyperliquid has no such code and treats it as 504.
"""

from __future__ import annotations

from enum import Enum

from aiohttp import web


class OrderFault(Enum):
    DISCONNECT = "disconnect"
    GATEWAY_TIMEOUT = "gateway_timeout"
    VENUE_TIMEOUT = "venue_timeout"


GATEWAY_TIMEOUT_BODY = "<html><body><h1>504 Gateway Time-out</h1></body></html>"


def transport_fault(request: web.Request, fault: OrderFault) -> web.Response | None:
    """The reply for the transport-level faults, or None when the venue renders its own code.

    For DISCONNECT the socket is closed here; the response returned is never delivered.
    """
    if fault is OrderFault.DISCONNECT:
        if request.transport is not None:
            request.transport.close()
        return web.Response(status=504)
    if fault is OrderFault.GATEWAY_TIMEOUT:
        return web.Response(status=504, text=GATEWAY_TIMEOUT_BODY, content_type="text/html")
    return None
