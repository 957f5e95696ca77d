"""POST / PUT / DELETE /fapi/v1/listenKey: the user data stream's key, with Binance's rules.

A key lives 60 minutes unless kept alive; POST while a key is live returns that same key
(and extends it), as Binance does, so a client that reconnects keeps one stream. DELETE
publishes `listenKeyExpired`, which makes the stream layer close that account's sockets.
"""

from __future__ import annotations

import secrets
from typing import Any

from monitor.simulator.binance_usdm.errors import BinanceApiError
from monitor.simulator.binance_usdm.state import SimAccount, SimExchange

VALIDITY_MS = 60 * 60 * 1000


def listen_key_missing() -> BinanceApiError:
    return BinanceApiError(-1125, "This listenKey does not exist.")


def _live(exchange: SimExchange, account: SimAccount) -> bool:
    return account.listen_key is not None and exchange.clock_ms() < account.listen_key_expires_ms


def create(exchange: SimExchange, account: SimAccount) -> dict[str, Any]:
    if not _live(exchange, account):
        account.listen_key = secrets.token_hex(32)
    account.listen_key_expires_ms = exchange.clock_ms() + VALIDITY_MS
    return {"listenKey": account.listen_key}


def keep_alive(exchange: SimExchange, account: SimAccount) -> dict[str, Any]:
    if not _live(exchange, account):
        raise listen_key_missing()
    account.listen_key_expires_ms = exchange.clock_ms() + VALIDITY_MS
    return {"listenKey": account.listen_key}


def close(exchange: SimExchange, account: SimAccount) -> dict[str, Any]:
    if account.listen_key is not None:
        expired = account.listen_key
        account.listen_key = None
        account.listen_key_expires_ms = 0
        event = {"e": "listenKeyExpired", "E": exchange.clock_ms(), "listenKey": expired}
        exchange.publish(account, event)
    return {}
