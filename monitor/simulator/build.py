"""A scenario's opening state as a simulated Binance USD-M venue.

Only the scenario's symbols are listed (exchangeInfo, premiumIndex), so every listed
market has a mark. Isolated legs get their isolated wallet on top of the cross balance:
`balances` is the cross wallet, as Binance's `crossWalletBalance` reports it; `reserve`
fills the spot (or funding) wallet outside futures.
"""

from __future__ import annotations

from collections.abc import Callable

from monitor.simulator.binance_usdm.state import (
    SimAccount,
    SimExchange,
    SimPosition,
    SymbolSettings,
    wall_clock_ms,
)
from monitor.simulator.prices import round_price
from monitor.simulator.scenario import MARKETS, AccountSpec, PositionSpec, Scenario


def build_exchange(scenario: Scenario, clock_ms: Callable[[], int] = wall_clock_ms) -> SimExchange:
    exchange = SimExchange(
        markets={symbol: MARKETS[symbol] for symbol in scenario.symbols},
        mark_prices={s: round_price(s, spec.start) for s, spec in scenario.symbols.items()},
        funding_rates={s: spec.funding_rate for s, spec in scenario.symbols.items()},
        clock_ms=clock_ms,
    )
    for spec in scenario.accounts:
        exchange.add_account(build_account(scenario, spec, exchange.clock_ms()))
    return exchange


def build_account(scenario: Scenario, spec: AccountSpec, now_ms: int) -> SimAccount:
    hedge = spec.position_mode == "hedge"
    positions = [build_position(scenario, p, hedge, now_ms) for p in spec.positions]
    api_key, secret = spec.credentials
    reserve = dict(spec.reserve)
    return SimAccount(
        api_key=api_key,
        secret=secret,
        cross_wallet=dict(spec.balances),
        spot=reserve if spec.reserve_wallet == "spot" else {},
        funding=reserve if spec.reserve_wallet == "funding" else {},
        can_transfer=spec.can_transfer,
        positions=positions,
        dual_side_position=hedge,
        symbol_settings={p.symbol: SymbolSettings(p.leverage, p.margin_type) for p in positions},
        update_time_ms=now_ms,
    )


def build_position(scenario: Scenario, spec: PositionSpec, hedge: bool, now_ms: int) -> SimPosition:
    entry = spec.entry or scenario.symbols[spec.symbol].start
    sign = 1.0 if spec.side == "long" else -1.0
    isolated = spec.margin_mode == "isolated"
    contract_size = MARKETS[spec.symbol].contract_size
    wallet = spec.isolated_margin or spec.size * contract_size * entry / spec.leverage
    return SimPosition(
        symbol=spec.symbol,
        amount=sign * spec.size,
        entry_price=entry,
        position_side=("LONG" if sign > 0 else "SHORT") if hedge else "BOTH",
        margin_type=spec.margin_mode,
        isolated_wallet=wallet if isolated else 0.0,
        leverage=spec.leverage,
        update_time_ms=now_ms,
    )
