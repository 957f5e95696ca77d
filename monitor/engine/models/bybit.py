"""Bybit v5 perpetuals and futures, linear and inverse, by Bybit's published rules.

MM = position value x tier rate - mmDeduction + fee to close. Since 2 Sep 2025 (Bybit
help centre, "The New Margin Calculation: Adjustments and Implications") the value, and
with it the risk-limit tier, is taken at the mark for cross positions *and* for the MM of
isolated ones; only an isolated position's IM stays priced at entry, and that IM is part
of the wallet we read (`positionBalance`), not of MM. So apart from the fee, MM is the
base model's terms, and the fee is the one hook this model overrides.

The fee to close is a taker fee at the bankruptcy price implied by the leverage, priced
at entry (same article; "Order Cost" article for inverse), so it does not move with the
mark. An isolated position's `positionBalance` reserves the same fee, which is why it
cancels out of the help centre's liquidation formula but not out of the ratio.

Before 2 Sep 2025 isolated MM was priced at entry, and the help centre's worked examples
(LP = entry - (IM - MM)/size - extra/size, MM = entry value x MMR - deduction) still use
that rule: `BybitModel(isolated_mm_at_entry=True)` reproduces them exactly.

Inverse (coin-settled) contracts, by account mode (v5 docs, "Different Account Modes"):
- isolated, every mode: the position's own coin margin (`positionBalance`, BTC for
  BTCUSD) against its own MM in the coin: exact, as above;
- cross in a classic account or a UTA 1.0's inverse derivatives wallet (CONTRACT): one
  pool per coin, the coin's wallet against its positions' MM in the coin, as Binance
  COIN-M: exact (the adapter reports those pools by coin);
- cross in a UTA 2.0 (margin shared among all trades): the coin PnL enters the account's
  USD margin balance at the coin's USD price, after the collateral value ratio when the
  coin's equity is positive, and the MM is converted the same way. A leg in one unit
  cannot express that, so the book reads such a pool unknown (its MIXED_POOL note)
  rather than summing BTC with USD. This is the model's explicit gap.
"""

from __future__ import annotations

from monitor.domain import AccountSnapshot, MarginMode, Position, TierTable
from monitor.engine.models.base import MarginModel


def fee_to_close(position: Position, taker_fee_rate: float | None) -> float:
    """Taker fee of closing at the bankruptcy price, in the settlement asset.

    Linear: size x entry x (1 - side/leverage); inverse: size / entry x (1 + side/leverage)
    (side +1 long, -1 short): the long's bankruptcy price lies 1/leverage below entry, and
    an inverse contract's coin value rises as the price falls. Unknown leverage prices the
    fee at entry; an unknown fee rate leaves the fee out (MM then reads slightly low).
    """
    if not taker_fee_rate:
        return 0.0
    step = position.side.sign / position.leverage if position.leverage else 0.0
    if position.inverse:
        return position.size / position.entry_price * (1.0 + step) * taker_fee_rate
    return position.size * position.entry_price * (1.0 - step) * taker_fee_rate


def entry_value(position: Position) -> float:
    """Position value at the entry price, in the settlement asset."""
    if position.inverse:
        return position.size / position.entry_price
    return position.size * position.entry_price


class BybitModel(MarginModel):
    """Unified trading account: cross and isolated, linear (USDT/USDC) and inverse."""

    name = "bybit"
    exact = True
    coin_margin_step = 1e-4
    """`POST /v5/position/add-margin` takes `margin` to four decimals (v5 docs)."""

    def __init__(self, isolated_mm_at_entry: bool = False) -> None:
        self.isolated_mm_at_entry = isolated_mm_at_entry

    def mm_constant(self, position: Position, tiers: TierTable, snapshot: AccountSnapshot) -> float:
        return fee_to_close(position, snapshot.taker_fee_rate)

    def mm_fixed(
        self, position: Position, tiers: TierTable | None, snapshot: AccountSnapshot
    ) -> float | None:
        """The pre-September-2025 isolated rule: MM and its tier at the entry value."""
        if (
            not self.isolated_mm_at_entry
            or position.margin_mode is not MarginMode.ISOLATED
            or tiers is None
        ):
            return None
        value = entry_value(position)
        tier = tiers.tier_for(value)
        return (
            value * tier.maintenance_rate
            - tier.maintenance_amount
            + fee_to_close(position, snapshot.taker_fee_rate)
        )
