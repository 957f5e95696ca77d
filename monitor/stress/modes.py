"""The same book under the other architecture: all cross, or positions isolated.

Moving a position to isolated gives it its current share of the pool's wallet, shared
in proportion to initial margin (the exchange's figure, else notional / leverage,
else notional): what it would carry if the trader had opened it isolated at the same
leverage. Equity is conserved: the shares sum to the wallet, and each position keeps
its own unrealised PnL. Moving everything to cross pours the isolated wallets back
into their settlement asset's pool.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import replace

from monitor.domain import AccountSnapshot, CrossPool, MarginMode, Position


def pool_asset(snapshot: AccountSnapshot, position: Position) -> str:
    return snapshot.unified_pool or position.settle


def _forget_exchange_figures(
    position: Position, mode: MarginMode, margin: float | None
) -> Position:
    """The exchange said nothing about a book it never saw: its figures go."""
    return replace(
        position,
        margin_mode=mode,
        isolated_margin=margin,
        exchange_liquidation_price=None,
        exchange_margin_ratio=None,
    )


def as_cross(snapshot: AccountSnapshot) -> AccountSnapshot:
    wallets = {p.asset: p.wallet_balance for p in snapshot.pools}
    positions = []
    for position in snapshot.positions:
        if position.margin_mode is MarginMode.ISOLATED:
            asset = pool_asset(snapshot, position)
            wallets[asset] = wallets.get(asset, 0.0) + (position.isolated_margin or 0.0)
            position = _forget_exchange_figures(position, MarginMode.CROSS, None)
        positions.append(position)
    pools = tuple(CrossPool(asset, wallet) for asset, wallet in sorted(wallets.items()))
    return replace(snapshot, pools=pools, positions=tuple(positions))


def initial_margin(position: Position) -> float:
    """The exchange's figure where it gives one (Binance's positionInitialMargin; its v3
    rows carry no leverage), else notional / leverage, else the notional."""
    if position.initial_margin:
        return position.initial_margin
    notional = position.size * (
        1 / position.mark_price if position.inverse else position.mark_price
    )
    return notional / position.leverage if position.leverage else notional


def isolate(snapshot: AccountSnapshot, symbols: Collection[str] | None = None) -> AccountSnapshot:
    """Cross positions of `symbols` (every one when None) made isolated, each with its
    share of its pool's wallet; the pool keeps the rest."""
    chosen = [
        p for p in snapshot.positions
        if p.margin_mode is MarginMode.CROSS and (symbols is None or p.symbol in symbols)
    ]  # fmt: skip
    weights: dict[str, float] = {}
    for p in snapshot.positions:
        if p.margin_mode is MarginMode.CROSS:
            asset = pool_asset(snapshot, p)
            weights[asset] = weights.get(asset, 0.0) + initial_margin(p)
    wallets = {p.asset: p.wallet_balance for p in snapshot.pools}
    taken: dict[str, float] = {}
    positions = []
    for position in snapshot.positions:
        if any(position is p for p in chosen):
            asset = pool_asset(snapshot, position)
            share = wallets.get(asset, 0.0) * initial_margin(position) / weights[asset]
            taken[asset] = taken.get(asset, 0.0) + share
            position = _forget_exchange_figures(position, MarginMode.ISOLATED, share)
        positions.append(position)
    pools = tuple(
        replace(p, wallet_balance=p.wallet_balance - taken.get(p.asset, 0.0),
                exchange_margin_ratio=None, exchange_maintenance_margin=None)
        for p in snapshot.pools
    )  # fmt: skip
    return replace(snapshot, pools=pools, positions=tuple(positions))
