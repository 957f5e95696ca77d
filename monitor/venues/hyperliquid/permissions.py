"""What a Hyperliquid signing key may do: info `userRole` of the key's own address.

Actions are signed by an agent (API) wallet the account's main wallet approved: it may
trade, change isolated margin and move USDC within its own account (agentSendAsset), and
can never withdraw. The key is accepted only when its address is an agent of the
configured `wallet_address`. The main wallet's own key (role `user`) can withdraw and is
refused; an unknown key (`missing`), or an agent of another wallet, cannot act for this
account (Hyperliquid docs, info endpoint "Query a user's role": missing | user | agent |
vault | subAccount).
"""

from __future__ import annotations

from typing import Any

from monitor.actions.permissions import KeyPermissions


def signer_address(client: Any) -> str:
    """The address of the key ccxt signs with (lower case)."""
    return str(client.eth_get_address_from_private_key(client.privateKey)).lower()


async def read_permissions(client: Any) -> KeyPermissions:
    if not client.privateKey:
        return KeyPermissions(False, False, False)
    signer = signer_address(client)
    reply = await client.publicPostInfo({"type": "userRole", "user": signer})
    role = reply.get("role")
    owner = str((reply.get("data") or {}).get("user") or "").lower()
    if role == "user":  # the main wallet itself: it can withdraw everything
        return KeyPermissions(True, True, True)
    mine = role == "agent" and owner == str(client.walletAddress).lower()
    return KeyPermissions(mine, False, mine)
