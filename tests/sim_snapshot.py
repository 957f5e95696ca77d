"""A simulated account as the margin engine sees it (`monitor.domain.AccountSnapshot`).

For unit tests of code that takes an engine book (auto-deleverage policy): a scenario's
opening state read straight from the simulator's memory, without a REST round trip.
It lives with the tests because the simulator itself never touches `monitor.domain` or
`monitor.engine` (it is the independent implementation the engine is checked against).
"""

from __future__ import annotations

from monitor.domain import (
    AccountSnapshot,
    CrossPool,
    MarginMode,
    Position,
    Side,
    Tier,
    TierTable,
)
from monitor.simulator.binance_usdm.state import SimAccount, SimExchange, SimMarket, SimPosition

EXCHANGE_ID = "binanceusdm"


def tier_table(market: SimMarket) -> TierTable:
    return TierTable(
        tuple(Tier(b.floor, b.cap, b.maint_rate, b.cum, b.max_leverage) for b in market.brackets)
    )


def engine_position(exchange: SimExchange, position: SimPosition) -> Position:
    market = exchange.market(position.symbol)
    return Position(
        symbol=position.symbol,
        side=Side.LONG if position.amount > 0 else Side.SHORT,
        margin_mode=MarginMode.ISOLATED if position.is_isolated else MarginMode.CROSS,
        contracts=abs(position.amount),
        contract_size=market.contract_size,
        entry_price=position.entry_price,
        mark_price=exchange.mark(position.symbol),
        settle=market.margin_asset,
        leverage=position.leverage,
        isolated_margin=position.isolated_wallet if position.is_isolated else None,
        position_side=position.position_side,
    )


def account_snapshot(exchange: SimExchange, account: SimAccount) -> AccountSnapshot:
    """The account at the exchange's current marks, in single-asset mode (each margin
    asset its own cross pool), the mode scenarios build."""
    positions = account.open_positions()
    assets = dict.fromkeys(account.cross_wallet)
    assets.update(dict.fromkeys(exchange.market(p.symbol).margin_asset for p in positions))
    pools = tuple(CrossPool(a, account.cross_wallet.get(a, 0.0)) for a in assets)
    return AccountSnapshot(
        name=account.api_key,
        exchange=EXCHANGE_ID,
        pools=pools,
        positions=tuple(engine_position(exchange, p) for p in positions),
        tiers={p.symbol: tier_table(exchange.market(p.symbol)) for p in positions},
        taker_fee_rate=account.taker_fee_rate,
    )
