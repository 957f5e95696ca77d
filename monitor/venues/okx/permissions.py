"""What an OKX API key may do: `GET /api/v5/account/config`, field `perm`.

OKX lists the key's permissions as `read_only`, `trade` and `withdraw` (comma-separated).
Trading, margin changes and funds transfers between the account's own funding and
trading accounts all need `trade`; a key with `withdraw` is refused for actions.
"""

from __future__ import annotations

from typing import Any

from monitor.actions.permissions import KeyPermissions


async def read_permissions(client: Any) -> KeyPermissions:
    data = (await client.private_get_account_config()).get("data") or [{}]
    perms = {p.strip() for p in str(data[0].get("perm") or "").split(",")}
    trades = "trade" in perms
    return KeyPermissions(trades, "withdraw" in perms, trades)
