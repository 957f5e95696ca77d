"""What the account's API key may do, checked before anything acts with it.

A key that can withdraw turns a leaked config file into lost funds, and a daemon that
trades must hold its key for months: such a key is refused for `confirm` and `auto`.
A key that cannot trade is refused too, so that a user who asked for automatic defense
learns it at startup rather than during a crash. Where an exchange has no documented
way to tell, `confirm` and `auto` are refused: an unverified key is not trusted.

A reserve (`actions.reserve`) needs the key to move money between the account's own
wallets (Binance: "Permits Universal Transfer"); that permission is allowed, while a key
that can withdraw is still refused. A reserve configured with a key that cannot
transfer is refused at startup, not discovered in the middle of a crash.
"""

from __future__ import annotations

from typing import Any, NamedTuple


class KeyPermissions(NamedTuple):
    can_trade: bool
    can_withdraw: bool
    can_transfer: bool = False
    """Between the account's own wallets (spot, funding, futures)."""


async def _binance(client: Any) -> KeyPermissions:
    reply = await client.sapi_get_account_apirestrictions()
    return KeyPermissions(
        bool(reply.get("enableFutures")),
        bool(reply.get("enableWithdrawals")),
        bool(reply.get("permitsUniversalTransfer")),
    )


async def _bybit(client: Any) -> KeyPermissions:
    result = (await client.private_get_v5_user_query_api()).get("result") or {}
    permissions = result.get("permissions") or {}
    trades = bool(permissions.get("ContractTrade") or permissions.get("Derivatives"))
    read_only = str(result.get("readOnly")) != "0"
    wallet = permissions.get("Wallet") or []
    transfers = "AccountTransfer" in wallet and not read_only
    return KeyPermissions(trades and not read_only, "Withdraw" in wallet, transfers)


async def _okx(client: Any) -> KeyPermissions:
    data = (await client.private_get_account_config()).get("data") or [{}]
    perms = {p.strip() for p in str(data[0].get("perm") or "").split(",")}
    return KeyPermissions("trade" in perms, "withdraw" in perms)


_READERS = {
    "binanceusdm": _binance,
    "binancecoinm": _binance,
    "bybit": _bybit,
    "okx": _okx,
}


async def read_permissions(client: Any, exchange_id: str) -> KeyPermissions | None:
    """The key's permissions from the exchange's own endpoint; None if there is none
    we know. Exchange errors propagate: the caller decides what an unanswered check
    means (it is never "allowed")."""
    reader = _READERS.get(exchange_id)
    return await reader(client) if reader else None


def refusal(
    account: str, exchange_id: str, permissions: KeyPermissions | None, reserve: bool = False
) -> str | None:
    """Why `confirm`/`auto` must not run with this key, naming what to change; or None.
    `reserve`: the account's actions draw on a reserve wallet."""
    if permissions is None:
        return (
            f"account {account!r}: cannot verify the API key's permissions on {exchange_id}, "
            "so actions.mode confirm/auto is refused; use dry_run for this account"
        )
    if permissions.can_withdraw:
        return (
            f"account {account!r}: its API key can WITHDRAW funds; create a key without the "
            "withdrawal permission (trading only) for marginwatch, or set actions.mode to "
            "dry_run or off"
        )
    if not permissions.can_trade:
        return (
            f"account {account!r}: its API key cannot trade futures, so actions cannot be "
            "executed; enable futures trading on the key, or set actions.mode to dry_run or off"
        )
    if reserve and not permissions.can_transfer:
        return (
            f"account {account!r}: actions.reserve is configured but its API key cannot "
            "transfer between the account's wallets; enable universal transfer on the key "
            "(never withdrawals), or remove actions.reserve"
        )
    return None
