"""Binance's risk checks for every account of a simulated venue, run after each tick.

Ratios come from the product's margin engine (`monitor.engine`) over a snapshot of the
simulated account: one implementation of Binance's rules, so "the exchange liquidated
here" and "the engine said ratio 1 here" cannot drift apart.
- Liquidation when an isolated leg's ratio or a cross pool's ratio reaches 1
  (margin balance <= maintenance margin); see `liquidation.py` for how it closes.
- MARGIN_CALL once when a pool or isolated leg reaches `margin_call_ratio`, re-armed when
  it falls back below. Binance's margin call may come late or not at all before a fast
  liquidation; the monitor must never rely on it, and neither does anything here.
- Each surviving position's reported liquidation price is recomputed at the new marks,
  so REST's `liquidationPrice` is Binance's formula (others held at their marks).
"""

from __future__ import annotations

from typing import cast

from monitor.domain import MarginMode
from monitor.engine.book import AccountBook
from monitor.engine.results import AccountRisk
from monitor.simulator.binance_usdm import events
from monitor.simulator.binance_usdm.state import (
    PositionSide,
    SimAccount,
    SimExchange,
    SimPosition,
)
from monitor.simulator.liquidation import liquidate_cross, liquidate_isolated
from monitor.simulator.snapshot import account_snapshot

MARGIN_CALL_RATIO = 0.8
"""Binance warns at a margin ratio of 80 %."""


class RiskEngine:
    """The risk checks of one venue; keeps which margin calls were already sent."""

    def __init__(self, exchange: SimExchange, margin_call_ratio: float = MARGIN_CALL_RATIO) -> None:
        self._exchange = exchange
        self._margin_call_ratio = margin_call_ratio
        self._called: set[tuple[str, str]] = set()
        """(api key, pool asset or isolated leg) already sent a margin call."""

    def check(self) -> None:
        """Liquidate what must be, send margin calls, refresh reported liquidation prices."""
        for account in list(self._exchange.accounts.values()):
            risk = self.evaluate(account)
            if self._liquidate(account, risk):
                risk = self.evaluate(account)
            self._margin_calls(account, risk)
            self._report(account, risk)

    def evaluate(self, account: SimAccount) -> AccountRisk:
        return AccountBook(account_snapshot(self._exchange, account)).evaluate(
            self._exchange.mark_prices
        )

    def _leg(self, account: SimAccount, symbol: str, side: str) -> SimPosition:
        position = account.position(symbol, cast(PositionSide, side))
        assert position is not None, f"{symbol} {side} is in the snapshot but not the account"
        return position

    def _liquidate(self, account: SimAccount, risk: AccountRisk) -> bool:
        liquidated = False
        for member in risk.positions:
            position = member.position
            if position.margin_mode is MarginMode.ISOLATED and _reached(member.margin_ratio, 1.0):
                leg = self._leg(account, position.symbol, position.position_side)
                liquidate_isolated(self._exchange, account, leg)
                liquidated = True
        for pool in risk.pools:
            if _reached(pool.margin_ratio, 1.0) and liquidate_cross(
                self._exchange, account, pool.asset
            ):
                liquidated = True
        return liquidated

    def _margin_calls(self, account: SimAccount, risk: AccountRisk) -> None:
        for pool in risk.pools:
            legs = [
                self._leg(account, m.position.symbol, m.position.position_side)
                for m in risk.positions
                if m.position.margin_mode is MarginMode.CROSS and m.position.settle == pool.asset
            ]
            self._margin_call(account, pool.asset, pool.margin_ratio, legs, cross=True)
        for member in risk.positions:
            position = member.position
            if position.margin_mode is MarginMode.ISOLATED:
                leg = self._leg(account, position.symbol, position.position_side)
                key = f"{position.symbol}:{position.position_side}"
                self._margin_call(account, key, member.margin_ratio, [leg], cross=False)

    def _margin_call(
        self,
        account: SimAccount,
        key: str,
        ratio: float | None,
        legs: list[SimPosition],
        *,
        cross: bool,
    ) -> None:
        called = (account.api_key, key)
        if not _reached(ratio, self._margin_call_ratio):
            self._called.discard(called)
        elif legs and called not in self._called:
            self._called.add(called)
            event = events.margin_call(self._exchange, account, legs, cross)
            self._exchange.publish(account, event)

    def _report(self, account: SimAccount, risk: AccountRisk) -> None:
        for member in risk.positions:
            position = member.position
            leg = self._leg(account, position.symbol, position.position_side)
            leg.reported_liquidation_price = member.liquidation_price


def _reached(ratio: float | None, threshold: float) -> bool:
    return ratio is not None and ratio >= threshold
