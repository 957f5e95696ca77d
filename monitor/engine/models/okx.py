"""OKX v5 perpetual swaps (linear USDT/USDC and inverse coin-margined), isolated and cross.

OKX liquidates when its margin ratio, equity / (maintenance margin + liquidation fee),
falls to 100 % (help centre, "Tiered maintenance margin ratio rules"); the fee is the
cost of closing at the taker rate, on the same base as the MM. OKX's maintenance margin
(a position's `mmr`) is `value x tier mmr` and does not include the fee, so that is what
we report as `maintenance_margin`, with the fee beside it as `liquidation_fees`
(`value x taker rate`); both enter ours = (MM + fee) / equity = 1 / OKX's ratio:
  linear:  value = ctVal x |pos| x mark                  (settlement asset, e.g. USDT)
  inverse: value = ctVal x |pos| / mark                  (coin)
Tiers come from `/api/v5/public/position-tiers` keyed by position size in contracts
(`minSz < |pos| <= maxSz`, `mmr`), with no deduction: the base model's terms plus the fee
as `rate_extra` (a term kept apart).

Pools follow the account mode (`acctLv` of `/api/v5/account/config`; field meanings from
the v5 API reference, "Get balance"):
- isolated position, every mode: its own `margin` + `upl` against its own MM + fee.
- Spot-and-futures mode (acctLv 2, single-currency margin): each currency's cross
  positions share that currency's cross equity, `details[].eq - isoEq`; OKX reports that
  pool's `details[].mmr` and `mgnRatio`. One pool per settlement currency.
- Multi-currency and portfolio margin (acctLv 3, 4): every cross position draws on the
  account's discounted USD equity `adjEq`; OKX reports the account `mmr` and
  `mgnRatio = adjEq / (mmr + fees)`. One unified USD pool. Linear USDT/USDC PnL is taken
  to move adjEq one to one (stablecoin at 1 USD, discount rate 1), and collateral in
  other coins is held at its snapshot value: exact for stablecoin collateral only.
  Coin-margined cross PnL in that USD pool moves with the coin's price and discount in
  ways a per-position leg cannot express, so such a pool is reported unknown rather
  than summed in mixed units. (Portfolio margin sizes MM by scenario risk, not tiers:
  there the tier MM is a stand-in, which `exchange_margin_ratio` beside ours exposes.)
"""

from __future__ import annotations

from monitor.domain import AccountSnapshot, MarginMode, Position
from monitor.engine.legs import Leg
from monitor.engine.models.base import MarginModel


class OkxModel(MarginModel):
    name = "okx"
    exact = True

    def rate_extra(self, position: Position, snapshot: AccountSnapshot) -> float:
        """OKX's liquidation fee: the taker rate on the MM's own base."""
        return snapshot.taker_fee_rate or 0.0

    def compile(self, position: Position, snapshot: AccountSnapshot) -> Leg:
        if (
            snapshot.unified_pool is not None
            and position.inverse
            and position.margin_mode is MarginMode.CROSS
        ):
            return Leg(position, None)  # coin PnL in a USD pool: unknown, never mis-summed
        return super().compile(position, snapshot)
