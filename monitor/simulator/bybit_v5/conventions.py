"""What the simulated Bybit changes on a scenario's book, and what it refuses in one."""

from __future__ import annotations

from monitor.simulator.binance_usdm.state import SimExchange
from monitor.simulator.bybit_v5.markets import MAKER_FEE_RATE, TAKER_FEE_RATE, risk_tiers
from monitor.simulator.bybit_v5.rules import fee_to_close
from monitor.simulator.scenario import Scenario, ScenarioError


def scenario_problems(scenario: Scenario) -> list[str]:
    """Leverage past the symbol's lowest risk-limit tier, which Bybit refuses."""
    return [
        f"accounts[{a}].positions[{p}].leverage: {position.symbol} allows at most "
        f"{limit:g}x on Bybit"
        for a, account in enumerate(scenario.accounts)
        for p, position in enumerate(account.positions)
        if position.leverage > (limit := risk_tiers(position.symbol)[0].max_leverage)
    ]


def adopt(exchange: SimExchange, scenario: Scenario) -> None:
    """Bybit's conventions on the book just built from `scenario`:
    - Bybit's base taker and maker fees;
    - the reserve sits in the Funding account (FUND), the one wallet outside a unified
      account that an internal transfer moves into it, whichever wallet the scenario
      named;
    - an isolated position without an explicit `isolated_margin` holds what Bybit puts
      in it on opening: IM at entry plus the reserved fee to close."""
    problems = scenario_problems(scenario)
    if problems:
        raise ScenarioError(problems)
    for spec in scenario.accounts:
        account = exchange.accounts[spec.credentials[0]]
        account.taker_fee_rate, account.maker_fee_rate = TAKER_FEE_RATE, MAKER_FEE_RATE
        for asset, amount in account.spot.items():
            account.funding[asset] = account.funding.get(asset, 0.0) + amount
        account.spot = {}
        defaulted = {p.symbol for p in spec.positions if p.isolated_margin is None}
        for position in account.positions:
            if position.is_isolated and position.symbol in defaulted:
                size = abs(position.amount) * exchange.market(position.symbol).contract_size
                position.isolated_wallet += fee_to_close(position, size, TAKER_FEE_RATE)
