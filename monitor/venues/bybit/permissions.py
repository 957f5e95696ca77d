"""A Bybit v5 key's permissions: `GET /v5/user/query-api`.

`readOnly` 1 forbids every write; derivatives trading shows as `ContractTrade` (classic)
or `Derivatives` (unified); `Wallet` lists "AccountTransfer" (between the account's own
wallets: what a reserve needs) and "Withdraw" (refused).
"""

from __future__ import annotations

from typing import Any

from monitor.actions.permissions import KeyPermissions


async def read_permissions(client: Any) -> KeyPermissions:
    result = (await client.private_get_v5_user_query_api()).get("result") or {}
    permissions = result.get("permissions") or {}
    trades = bool(permissions.get("ContractTrade") or permissions.get("Derivatives"))
    read_only = str(result.get("readOnly")) != "0"
    wallet = permissions.get("Wallet") or []
    transfers = "AccountTransfer" in wallet and not read_only
    return KeyPermissions(trades and not read_only, "Withdraw" in wallet, transfers)
