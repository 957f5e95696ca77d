"""Hyperliquid perpetuals, by the published margin-tier and liquidation rules.

Sources: Hyperliquid docs (hyperliquid.gitbook.io/hyperliquid-docs), "Margin tiers" and
"Liquidations".

- Maintenance margin is half the initial margin at the tier's max leverage:
  rate_n = 1 / (2 x maxLeverage_n), with tiers keyed by notional position value (USDC)
  from each tier's `lowerBound` on. The deduction keeps MM continuous:
  deduction_0 = 0, deduction_n = deduction_(n-1) + lowerBound_n x (rate_n - rate_(n-1)),
  and MM = value x rate - deduction: the base model's MM term for term, which is why the
  class below overrides nothing. `maintenance_tiers` is where the rule lives.
- Liquidation when equity falls to MM at the mark price: cross, the cross ledger's
  accountValue against crossMaintenanceMarginUsed; isolated, the position's own value
  (rawUsd + szi x mark, uPnL included) against its own MM.
- The published price `liq = mark - side x margin_available / |szi| / (1 - l x side)` is
  that equation solved for one position with the others held still, *within the current
  tier*. The engine's solver gives the same price and, unlike the closed form, follows
  MM into the next tier when the liquidation price lies beyond a tier boundary.
- Backstop liquidation (equity < 2/3 MM) and partial liquidation of large positions act
  after the trigger and do not move it, so they are not modelled.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

from monitor.domain import Tier, TierBasis, TierTable
from monitor.engine.models.base import MarginModel


def maintenance_tiers(margin_tiers: Iterable[tuple[float, float]]) -> TierTable:
    """Our tier table from a Hyperliquid margin table's (lowerBound, maxLeverage) pairs."""
    bounds = sorted(margin_tiers)
    if not bounds:
        raise ValueError("a margin table needs at least one tier")
    caps = [lower for lower, _ in bounds[1:]] + [math.inf]
    tiers: list[Tier] = []
    for (lower, leverage), cap in zip(bounds, caps, strict=True):
        rate = 1.0 / (2.0 * leverage)
        deduction = 0.0
        if tiers:
            previous = tiers[-1]
            deduction = previous.maintenance_amount + lower * (rate - previous.maintenance_rate)
        tiers.append(Tier(lower, cap, rate, deduction, leverage))
    return TierTable(tuple(tiers), TierBasis.NOTIONAL)


def flat_tiers(max_leverage: float) -> TierTable:
    """The single-tier table of an asset without notional tiers."""
    return maintenance_tiers([(0.0, max_leverage)])


class HyperliquidModel(MarginModel):
    name = "hyperliquid"
    exact = True


__all__ = ["HyperliquidModel", "flat_tiers", "maintenance_tiers"]
