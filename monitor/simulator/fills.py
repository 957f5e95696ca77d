"""How a market fill settles into a simulated account's ledger, whichever dialect took
the order (Binance USD-M or Bybit v5): the one settlement model the simulator has.

- A cross leg's realized PnL and the taker fee settle into the cross wallet.
- Closing part of an isolated leg: the closed slice takes its own share of the isolated
  wallet (wallet x closed / size) with its own realized PnL and fee, all to the cross
  wallet; the rest of the position keeps the rest of its wallet untouched (why, with a
  worked case: `binance_usdm/trading.py`). Closing all of it returns the whole wallet.
- Opening or extending an isolated leg moves notional / leverage from the cross wallet
  into it; the fee is paid from the cross wallet.
"""

from __future__ import annotations

from monitor.simulator.binance_usdm.state import (
    PositionSide,
    SimAccount,
    SimMarket,
    SimPosition,
    SymbolSettings,
)


def close_slice(
    account: SimAccount,
    market: SimMarket,
    position: SimPosition,
    *,
    quantity: float,
    price: float,
    now: int,
) -> float:
    """Close `quantity` of `position` at `price`; returns the slice's realized PnL."""
    asset = market.margin_asset
    direction = 1.0 if position.amount > 0 else -1.0
    pnl = quantity * market.contract_size * (price - position.entry_price) * direction
    fee = quantity * market.contract_size * price * account.taker_fee_rate
    released = 0.0
    if position.is_isolated:
        released = position.isolated_wallet * quantity / abs(position.amount)
        position.isolated_wallet -= released
    account.cross_wallet[asset] = account.cross_wallet.get(asset, 0.0) + released + pnl - fee
    position.amount = round(position.amount - direction * quantity, market.quantity_precision)
    position.realized_pnl += pnl
    position.update_time_ms = now
    if position.amount == 0:
        if position.is_isolated:
            account.cross_wallet[asset] += position.isolated_wallet
        account.remove_position(position)
    return pnl


def open_slice(
    account: SimAccount,
    market: SimMarket,
    position: SimPosition | None,
    *,
    position_side: PositionSide,
    buy: bool,
    quantity: float,
    price: float,
    now: int,
) -> SimPosition:
    """Open `quantity` (or add it to `position`) at `price`, with the symbol's leverage
    and margin type; returns the position."""
    asset = market.margin_asset
    settings: SymbolSettings = account.settings(market.symbol)
    if position is None:
        position = SimPosition(
            symbol=market.symbol,
            amount=0.0,
            entry_price=price,
            position_side=position_side,
            margin_type=settings.margin_type,
            leverage=settings.leverage,
        )
        account.positions.append(position)
    held = abs(position.amount)
    direction = 1.0 if buy else -1.0
    position.entry_price = (held * position.entry_price + quantity * price) / (held + quantity)
    position.amount = round(position.amount + direction * quantity, market.quantity_precision)
    position.update_time_ms = now
    fee = quantity * market.contract_size * price * account.taker_fee_rate
    account.cross_wallet[asset] = account.cross_wallet.get(asset, 0.0) - fee
    if position.is_isolated:
        added_margin = quantity * market.contract_size * price / settings.leverage
        account.cross_wallet[asset] -= added_margin
        position.isolated_wallet += added_margin
    return position
