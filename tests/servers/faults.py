"""'Status unknown' faults the trading test servers can inject after committing an order.

Why: the dangerous case for an executor is the order that filled although the client never
learned so (the reply was lost, or a gateway answered 5xx after the matching engine took
it). Each test server applies the order first and then fails its reply in one of these
ways, so a later lookup by client order id finds it filled exactly once.

- `HANG`: no reply at all; the server holds the request until the client gives up and
  closes the connection (ccxt raises RequestTimeout after its `timeout`), at most
  `HANG_LIMIT_S`.
- `DISCONNECT`: the connection is closed without a reply (ccxt raises a NetworkError).
- `GATEWAY_TIMEOUT`: HTTP 504 with an HTML body, as a load balancer sends it (ccxt maps 504
  to RequestTimeout).
- `VENUE_TIMEOUT`: the venue's own "timeout, outcome unknown" code in its JSON envelope
  (Bybit retCode 10000 "Server Timeout", OKX code 50004 "Endpoint request timeout");
  each server renders it itself. Hyperliquid has no such code and treats it as 504.
"""

from __future__ import annotations

import asyncio
import time
from enum import Enum

from aiohttp import web

HANG_LIMIT_S = 10.0
_HANG_POLL_S = 0.01


class OrderFault(Enum):
    HANG = "hang"
    DISCONNECT = "disconnect"
    GATEWAY_TIMEOUT = "gateway_timeout"
    VENUE_TIMEOUT = "venue_timeout"


GATEWAY_TIMEOUT_BODY = "<html><body><h1>504 Gateway Time-out</h1></body></html>"


async def transport_fault(request: web.Request, fault: OrderFault) -> web.Response | None:
    """The reply for the transport-level faults, or None when the venue renders its own code.

    For HANG and DISCONNECT the response returned is never delivered.
    """
    if fault is OrderFault.HANG:
        deadline = time.monotonic() + HANG_LIMIT_S
        while time.monotonic() < deadline:
            transport = request.transport
            if transport is None or transport.is_closing():
                break
            await asyncio.sleep(_HANG_POLL_S)
        return web.Response(status=504)
    if fault is OrderFault.DISCONNECT:
        if request.transport is not None:
            request.transport.close()
        return web.Response(status=504)
    if fault is OrderFault.GATEWAY_TIMEOUT:
        return web.Response(status=504, text=GATEWAY_TIMEOUT_BODY, content_type="text/html")
    return None
