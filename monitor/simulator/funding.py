"""Funding settlement with Binance's rule: notional at mark x rate, longs pay when the
rate is positive, paid from the pool that backs the position.

A cross position's payment moves the cross wallet; an isolated one's moves its own
isolated wallet, which is how a large payment can push an isolated leg toward
liquidation on its own. Each payment is reported as ACCOUNT_UPDATE `FUNDING_FEE`: the
balance only for cross, the balance and that one leg for isolated (as Binance sends it).
"""

from __future__ import annotations

from monitor.simulator.binance_usdm import events
from monitor.simulator.binance_usdm.state import SimExchange, position_notional


def settle_funding(exchange: SimExchange) -> None:
    """Settle one funding round on every open position, at the current marks and rates."""
    for account in exchange.accounts.values():
        for position in account.open_positions():
            market = exchange.market(position.symbol)
            notional = position_notional(market, position, exchange.mark(position.symbol))
            payment = -notional * exchange.funding_rate(position.symbol)
            asset = market.margin_asset
            if position.is_isolated:
                position.isolated_wallet += payment
                legs = [(position.symbol, position.position_side)]
            else:
                account.cross_wallet[asset] = account.cross_wallet.get(asset, 0.0) + payment
                legs = []
            update = events.account_update(exchange, account, "FUNDING_FEE", asset, legs)
            exchange.publish(account, update)
