"""Closing positions the way Binance's liquidation engine does, as the account sees it.

- Isolated: the leg is closed at its bankruptcy price (where its isolated wallet is used
  up), so the whole isolated wallet is lost; the cross wallet is untouched.
- Cross: every cross leg of the pool is closed at its mark, PnL is realized into the
  cross wallet, then Binance's liquidation clearance fee (`liquidationFee` x notional)
  takes what is left, up to the fee; a negative balance is cleared to zero (the
  insurance fund pays it).
Each close is a LIQUIDATION order with a client id `autoclose-...`, reported on the user
stream like any fill.
"""

from __future__ import annotations

from monitor.simulator.binance_usdm import events
from monitor.simulator.binance_usdm.state import (
    SimAccount,
    SimExchange,
    SimMarket,
    SimOrder,
    SimPosition,
    position_notional,
    unrealized_pnl,
)


def bankruptcy_price(market: SimMarket, position: SimPosition) -> float:
    """Where the isolated wallet is exactly used up: entry - side x wallet / size."""
    size = abs(position.amount) * market.contract_size
    sign = 1.0 if position.amount > 0 else -1.0
    return max(0.0, position.entry_price - sign * position.isolated_wallet / size)


def record_liquidation(
    account: SimAccount, position: SimPosition, price: float, realized: float, now: int
) -> SimOrder:
    """Book the exchange's close of `position` as a LIQUIDATION order (any dialect)."""
    order_id = account.next_order_id
    order = SimOrder(
        order_id=order_id,
        client_order_id=f"autoclose-{now}{order_id}",
        symbol=position.symbol,
        side="SELL" if position.amount > 0 else "BUY",
        position_side=position.position_side,
        orig_qty=abs(position.amount),
        executed_qty=abs(position.amount),
        avg_price=price,
        reduce_only=True,
        time_ms=now,
        realized_pnl=realized,
        type=events.LIQUIDATION,
    )
    account.next_order_id += 1
    account.orders.append(order)
    return order


def close_out(account: SimAccount, position: SimPosition, realized: float, now: int) -> None:
    """Drop the liquidated leg from the ledger, its realized PnL booked on it."""
    position.realized_pnl += realized
    position.amount = 0.0
    position.update_time_ms = account.update_time_ms = now
    account.remove_position(position)


def liquidate_isolated(
    exchange: SimExchange, account: SimAccount, position: SimPosition
) -> SimOrder:
    market = exchange.market(position.symbol)
    now = exchange.clock_ms()
    realized = -position.isolated_wallet
    order = record_liquidation(account, position, bankruptcy_price(market, position), realized, now)
    position.isolated_wallet = 0.0
    close_out(account, position, realized, now)
    events.publish_fill(exchange, account, order)
    return order


def liquidate_cross(
    exchange: SimExchange, account: SimAccount, legs: list[SimPosition]
) -> list[SimOrder]:
    """Close the cross `legs` of one pool at their marks; returns the liquidation orders.

    Each leg's PnL and clearance fee fall on its own margin asset's cross wallet (one
    asset in single-asset mode; several in a Multi-Assets pool)."""
    now = exchange.clock_ms()
    orders: list[SimOrder] = []
    clearance: dict[str, float] = {}
    for position in legs:
        market = exchange.market(position.symbol)
        asset, mark = market.margin_asset, exchange.mark(position.symbol)
        realized = unrealized_pnl(market, position, mark)
        fee = abs(position_notional(market, position, mark)) * market.liquidation_fee_rate
        clearance[asset] = clearance.get(asset, 0.0) + fee
        orders.append(record_liquidation(account, position, mark, realized, now))
        account.cross_wallet[asset] = account.cross_wallet.get(asset, 0.0) + realized
        close_out(account, position, realized, now)
        events.publish_fill(exchange, account, orders[-1])
    for asset, fee in clearance.items():
        wallet = account.cross_wallet.get(asset, 0.0)
        remaining = max(0.0, wallet - fee)  # the fee takes at most what is left
        if remaining != wallet:
            account.cross_wallet[asset] = remaining
            update = events.account_update(exchange, account, "INSURANCE_CLEAR", asset, [])
            exchange.publish(account, update)
    return orders
