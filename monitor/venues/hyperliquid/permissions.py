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

APPROVE = (
    "approve an agent (API) wallet for wallet_address on Hyperliquid (it can never "
    "withdraw) and configure its key as private_key"
)


def signer_address(client: Any) -> str:
    """The address of the key ccxt signs with (lower case)."""
    return str(client.eth_get_address_from_private_key(client.privateKey)).lower()


async def read_permissions(client: Any) -> KeyPermissions:
    wallet = str(client.walletAddress).lower()
    if not client.privateKey:
        return KeyPermissions(False, False, False, f"no private_key: {APPROVE}")
    signer = signer_address(client)
    reply = await client.publicPostInfo({"type": "userRole", "user": signer})
    role = reply.get("role")
    owner = str((reply.get("data") or {}).get("user") or "").lower()
    if role == "user":  # the main wallet itself: it can withdraw everything
        advice = (
            f"private_key is the key of wallet {signer} itself, which can WITHDRAW funds; "
            f"{APPROVE} instead"
        )
        return KeyPermissions(True, True, True, advice)
    if role == "agent" and owner == wallet:
        return KeyPermissions(True, False, True)
    whose = f"an agent of {owner}" if role == "agent" else f"role {role!r}"
    advice = f"private_key ({signer}) is not an agent of {wallet} ({whose}): {APPROVE}"
    return KeyPermissions(False, False, False, advice)
