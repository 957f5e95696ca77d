"""An OKX key's permissions: `GET /api/v5/account/config`, field `perm`
("read_only,trade,withdraw")."""

from __future__ import annotations

from typing import Any

from monitor.actions.permissions import KeyPermissions


async def read_permissions(client: Any) -> KeyPermissions:
    data = (await client.private_get_account_config()).get("data") or [{}]
    perms = {p.strip() for p in str(data[0].get("perm") or "").split(",")}
    return KeyPermissions("trade" in perms, "withdraw" in perms)
