"""What the account's API key may do, checked before anything acts with it.

A key that can withdraw turns a leaked config file into lost funds, and a daemon that
trades must hold its key for months: such a key is refused for `confirm` and `auto`.
A key that cannot trade is refused too, so that a user who asked for automatic defense
learns it at startup rather than during a crash. Where an exchange has no documented
way to tell, `confirm` and `auto` are refused: an unverified key is not trusted.

This module is venue-neutral: what a key may do, and when that refuses `confirm`/`auto`.
Reading it is each venue's business (`PermissionReader`).

A reserve (`actions.reserve`) needs the key to move money between the account's own
wallets (Binance: "Permits Universal Transfer"; Bybit: Wallet "AccountTransfer"); that
permission is allowed, while a key that can withdraw is still refused. A reserve
configured with a key that cannot transfer is refused at startup, not discovered in the
middle of a crash.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, NamedTuple


class KeyPermissions(NamedTuple):
    can_trade: bool
    can_withdraw: bool
    can_transfer: bool = False
    """Between the account's own wallets (spot, funding, futures)."""


PermissionReader = Callable[[Any], Awaitable[KeyPermissions]]
"""Reads a key's permissions from the venue's own endpoint (each venue has one in
`monitor/venues/<venue>/permissions.py`). Exchange errors propagate: the caller decides
what an unanswered check means (it is never "allowed")."""


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
            "transfer between the account's wallets; enable it on the key (Binance: "
            "universal transfer; Bybit: Wallet AccountTransfer; never withdrawals), or "
            "remove actions.reserve"
        )
    return None
