"""Binance's risk checks for every account of a simulated venue, run after each tick.

Every figure comes from the simulator's own implementation of Binance's published rules
(`binance_usdm/rules.py`), never from the monitor's engine: the end-to-end tests then
compare two implementations of the FAQ, not one with itself.
- Liquidation when an isolated leg or a cross pool has margin balance <= maintenance
  margin (margin ratio 100 %); see `liquidation.py` for how it closes.
- MARGIN_CALL once when a pool or isolated leg reaches `margin_call_ratio`, re-armed when
  it falls back below. Binance's margin call may come late or not at all before a fast
  liquidation; the monitor must never rely on it, and neither does anything here.
- Each surviving position's reported liquidation price is recomputed at the new marks
  with the FAQ formula, so REST's `liquidationPrice` is what Binance would show.
"""

from __future__ import annotations

from monitor.simulator.binance_usdm import events
from monitor.simulator.binance_usdm.rules import MarginPool, liquidation_price, margin_pools
from monitor.simulator.binance_usdm.state import SimAccount, SimExchange
from monitor.simulator.liquidation import liquidate_cross, liquidate_isolated

MARGIN_CALL_RATIO = 0.8
"""Binance warns at a margin ratio of 80 %."""


class RiskEngine:
    """The risk checks of one venue; keeps which margin calls were already sent."""

    def __init__(self, exchange: SimExchange, margin_call_ratio: float = MARGIN_CALL_RATIO) -> None:
        self._exchange = exchange
        self._margin_call_ratio = margin_call_ratio
        self._called: set[tuple[str, str]] = set()
        """(api key, pool key) already sent a margin call."""

    def check(self) -> None:
        """Liquidate what must be, send margin calls, refresh reported liquidation prices."""
        for account in list(self._exchange.accounts.values()):
            pools = margin_pools(self._exchange, account)
            if self._liquidate(account, pools):
                pools = margin_pools(self._exchange, account)
            self._margin_calls(account, pools)
            self._report(pools)

    def _liquidate(self, account: SimAccount, pools: list[MarginPool]) -> bool:
        """Close every pool past its maintenance margin, all judged at the same marks
        (isolated and cross losses never reach each other's pool)."""
        liquidating = [pool for pool in pools if pool.liquidating]
        for pool in liquidating:
            if pool.cross:
                liquidate_cross(self._exchange, account, list(pool.legs))
            else:
                (leg,) = pool.legs
                liquidate_isolated(self._exchange, account, leg)
        return bool(liquidating)

    def _margin_calls(self, account: SimAccount, pools: list[MarginPool]) -> None:
        for pool in pools:
            called = (account.api_key, pool.key)
            if pool.margin_ratio < self._margin_call_ratio:
                self._called.discard(called)
            elif pool.legs and called not in self._called:
                self._called.add(called)
                event = events.margin_call(self._exchange, account, list(pool.legs), pool.cross)
                self._exchange.publish(account, event)

    def _report(self, pools: list[MarginPool]) -> None:
        for pool in pools:
            for leg in pool.legs:
                leg.reported_liquidation_price = liquidation_price(self._exchange, pool, leg)
