"""A Binance key's permissions: `GET /sapi/v1/account/apiRestrictions` (the same key
serves USD-M and COIN-M)."""

from __future__ import annotations

from typing import Any

from monitor.actions.permissions import KeyPermissions


async def read_permissions(client: Any) -> KeyPermissions:
    reply = await client.sapi_get_account_apirestrictions()
    return KeyPermissions(
        bool(reply.get("enableFutures")),
        bool(reply.get("enableWithdrawals")),
        bool(reply.get("permitsUniversalTransfer")),
    )
