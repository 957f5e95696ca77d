"""Bybit's liquidations for every account of a simulated venue, run after each tick.

Every figure comes from `bybit_v5/rules.py` (Bybit's published rules), never from the
monitor's engine. All pools are judged at the same marks, isolated legs first:
- an isolated position whose positionBalance + uPnL <= positionMM is closed at its
  bankruptcy price (entry - side x positionBalance / size): its whole balance is lost,
  the rest of the account is untouched;
- the cross pool, once the account MM rate reaches 100 %, is closed in full at the
  bankruptcy price of the account: every cross position goes, and what cross margin was
  left (at most the maintenance margin) goes to the insurance fund, which also clears a
  negative balance. The USDT cross wallet ends at zero; each position's share of the
  remainder is in proportion to its MM, so each liquidation order's realized PnL and
  price add up to what the account lost. (Bybit first lowers the risk limit of a
  position above its lowest tier; the scenarios' books sit in the lowest tier.)
Each close is booked as a LIQUIDATION order with an empty orderLinkId, as Bybit's
liquidation engine (createType CreateByLiq) places it.
"""

from __future__ import annotations

from monitor.simulator.binance_usdm.state import SimAccount, SimExchange
from monitor.simulator.bybit_v5.rules import (
    account_figures,
    isolated_liquidating,
    position_figures,
    side_of,
)
from monitor.simulator.liquidation import close_out, record_liquidation

SETTLE_ASSET = "USDT"


class BybitRiskEngine:
    """The liquidation checks of one simulated Bybit venue."""

    def __init__(self, exchange: SimExchange) -> None:
        self._exchange = exchange

    def check(self) -> None:
        for account in list(self._exchange.accounts.values()):
            self._liquidate_isolated(account)
            self._liquidate_cross(account)

    def _liquidate_isolated(self, account: SimAccount) -> None:
        doomed = [
            (p, f)
            for p in account.open_positions()
            if p.is_isolated
            and isolated_liquidating(f := position_figures(self._exchange, account, p))
        ]
        now = self._exchange.clock_ms()
        for position, figures in doomed:
            bankruptcy = position.entry_price - side_of(position) * figures.balance / figures.size
            realized = -figures.balance
            record_liquidation(account, position, max(0.0, bankruptcy), realized, now)
            position.isolated_wallet = 0.0
            close_out(account, position, realized, now)

    def _liquidate_cross(self, account: SimAccount) -> None:
        totals = account_figures(self._exchange, account, SETTLE_ASSET)
        if not totals.cross_liquidating:
            return
        legs = [
            (p, position_figures(self._exchange, account, p))
            for p in account.open_positions()
            if not p.is_isolated
        ]
        now = self._exchange.clock_ms()
        left = totals.margin_balance
        for position, figures in legs:
            share = left * figures.maintenance_margin / totals.cross_maintenance_margin
            realized = figures.unrealized_pnl - share
            price = position.entry_price + realized / (side_of(position) * figures.size)
            record_liquidation(account, position, max(0.0, price), realized, now)
            account.cross_wallet[SETTLE_ASSET] = (
                account.cross_wallet.get(SETTLE_ASSET, 0.0) + realized
            )
            close_out(account, position, realized, now)
        account.cross_wallet[SETTLE_ASSET] = 0.0  # rounding of the shares, nothing more
