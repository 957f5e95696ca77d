"""Binance USD-M's ACCOUNT_UPDATE applied to a snapshot, without a REST read.

The user data stream pushes every change of an account's positions and balances
(Binance "Event: Balance and Position Update"): per changed leg `s` symbol, `ps` position
side, `pa` amount (signed in one-way mode), `ep` entry price, `mt` margin type, `iw`
isolated wallet, `up` unrealized PnL; per changed asset `a`, `wb` wallet balance and `cw`
cross wallet balance. Only changed legs and assets are sent (a cross funding fee sends a
balance and no position). That is every input of our engine but the mark, which the mark
feed keeps current, so a snapshot updated from the event is as current as the stream.

What the event does not carry stays as the last REST read left it (leverage, tiers,
market data) or becomes unknown (the exchange's own liquidation price, maintenance margin
and margin ratio of what changed: never a stale figure beside ours). A REST read is still
needed, and asked for, when:
- a leg of a symbol the snapshot holds no tiers for appears (its MM is unknown until read);
- a balance changes in Multi-Assets mode: the shared USD pool values every asset with its
  own price and haircut, which the event does not give.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

from monitor.domain import AccountSnapshot, CrossPool, MarginMode, MarketInfo, Position, Side


class Applied(NamedTuple):
    snapshot: AccountSnapshot
    needs_read: str | None
    """Why a REST read is still needed, or None."""


def _leg_key(position: Position) -> tuple[str, str]:
    return position.symbol, position.position_side


def _side(amount: float, position_side: str) -> Side:
    if position_side in ("LONG", "SHORT"):
        return Side(position_side.lower())
    return Side.LONG if amount > 0 else Side.SHORT


def apply_account_update(
    snapshot: AccountSnapshot,
    update: Mapping[str, Any],
    *,
    market: Callable[[str], Mapping[str, Any]],
    marks: Mapping[str, float],
    market_info: Callable[[str], MarketInfo],
) -> Applied:
    """The snapshot after the event's `a` object. `market(id)` is ccxt's market for a
    Binance id, `marks` the latest marks by unified symbol."""
    legs = {_leg_key(p): p for p in snapshot.positions}
    changed_assets: set[str] = set()
    needs_read: str | None = None
    markets = dict(snapshot.markets)
    for row in update.get("P") or ():
        info = market(row["s"])
        symbol, position_side = info["symbol"], row.get("ps") or "BOTH"
        before = legs.pop((symbol, position_side), None)
        amount = float(row["pa"])
        settle = info.get("settle") or row.get("ma") or info["quote"]
        if before is not None and before.margin_mode is MarginMode.CROSS:
            changed_assets.add(before.settle)
        if not amount:
            continue  # closed (or liquidated): the reconciliation says so if it was critical
        isolated = str(row.get("mt", "")).lower().startswith("isolated")
        if not isolated:
            changed_assets.add(settle)
        entry = float(row["ep"])
        mark = marks.get(symbol) or (before.mark_price if before else entry)
        position = Position(
            symbol=symbol,
            side=_side(amount, position_side),
            margin_mode=MarginMode.ISOLATED if isolated else MarginMode.CROSS,
            contracts=abs(amount),
            contract_size=float(info.get("contractSize") or 1.0),
            entry_price=entry,
            mark_price=mark,
            settle=settle,
            inverse=bool(info.get("inverse")),
            leverage=before.leverage if before else None,
            isolated_margin=float(row["iw"]) if isolated else None,
            position_side=position_side,
            exchange_unrealized_pnl=float(row["up"]) if row.get("up") is not None else None,
        )
        if before is not None and _same_terms(before, position):
            position = dataclasses.replace(before, mark_price=mark)  # keep the exchange's
        legs[(symbol, position_side)] = position
        if symbol not in snapshot.tiers:
            needs_read = needs_read or f"new position in {symbol}: its tiers are not read yet"
        if symbol not in markets:
            markets[symbol] = market_info(symbol)
    pools = {p.asset: p for p in snapshot.pools}
    for row in update.get("B") or ():
        asset = row["a"]
        if snapshot.unified_pool is not None:  # Multi-Assets: a USD pool of haircut assets
            needs_read = needs_read or f"{asset} balance changed in Multi-Assets mode"
            continue
        changed_assets.add(asset)
        wallet = float(row["cw"])
        if asset in pools or wallet:
            pools[asset] = CrossPool(asset, wallet)
    for asset in changed_assets:  # the exchange's pool figures no longer describe it
        pool = pools.get(asset)
        if pool is not None and (pool.exchange_margin_ratio, pool.exchange_maintenance_margin) != (
            None,
            None,
        ):
            pools[asset] = CrossPool(asset, pool.wallet_balance)
    if snapshot.unified_pool is not None and changed_assets:
        unified = pools.get(snapshot.unified_pool)
        if unified is not None:
            pools[unified.asset] = CrossPool(unified.asset, unified.wallet_balance)
    updated = dataclasses.replace(
        snapshot,
        positions=tuple(legs.values()),
        pools=tuple(pools[a] for a in sorted(pools)),
        markets=markets,
    )
    return Applied(updated, needs_read)


def _same_terms(before: Position, after: Position) -> bool:
    """Whether the leg is unchanged in everything the exchange's own figures depend on
    but the mark (a repeated row): then those figures still hold."""
    return (
        before.side,
        before.margin_mode,
        before.contracts,
        before.entry_price,
        before.isolated_margin,
    ) == (after.side, after.margin_mode, after.contracts, after.entry_price, after.isolated_margin)
