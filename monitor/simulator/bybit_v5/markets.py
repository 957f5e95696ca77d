"""Bybit's side of the simulated markets: risk-limit tiers, fee rates and instrument
limits for every symbol a scenario may trade.

The scenario's markets (tick size, quantity step, minimum quantity) are shared with the
Binance dialect; what Bybit prices differently lives here. Tier tables are in Bybit's
shape (`/v5/market/risk-limit`): each tier holds position values up to its
`riskLimitValue`, and `mmDeduction` keeps maintenance margin continuous at every edge:
deduction_k = deduction_(k-1) + limit_(k-1) x (rate_k - rate_(k-1)). BTC, ETH and SOL
follow the tables of the Bybit test server (tests/servers/bybit.py); DOGE and AVAX are
altcoin tables in Bybit's shape. None are today's live numbers: read them from
`/v5/market/risk-limit`, never hard-code them in the monitor.
"""

from __future__ import annotations

from dataclasses import dataclass

TAKER_FEE_RATE = 0.00055
"""Bybit's base-tier taker fee on derivatives."""
MAKER_FEE_RATE = 0.0002


@dataclass(frozen=True, slots=True)
class RiskTier:
    """One row of `/v5/market/risk-limit`."""

    id: int
    risk_limit_value: float
    """Largest position value (at the mark) this tier holds."""
    maintenance_rate: float
    initial_rate: float
    max_leverage: float
    mm_deduction: float


def tiers(rows: tuple[tuple[float, float, float], ...]) -> tuple[RiskTier, ...]:
    """Tiers from (riskLimitValue, maintenance rate, max leverage) rows; the initial rate
    is 1 / max leverage and each deduction follows the continuity rule above."""
    out: list[RiskTier] = []
    deduction, previous_limit, previous_rate = 0.0, 0.0, rows[0][1]
    for number, (limit, rate, leverage) in enumerate(rows, 1):
        deduction += previous_limit * (rate - previous_rate)
        out.append(RiskTier(number, limit, rate, 1 / leverage, leverage, round(deduction, 8)))
        previous_limit, previous_rate = limit, rate
    return tuple(out)


ALT_TIERS = tiers(
    ((200_000, 0.01, 50), (400_000, 0.015, 33.33), (600_000, 0.02, 25), (1_000_000, 0.05, 10))
)
RISK_LIMITS: dict[str, tuple[RiskTier, ...]] = {
    "BTCUSDT": tiers(
        (
            (2_000_000, 0.005, 100),
            (4_000_000, 0.01, 50),
            (6_000_000, 0.015, 33.33),
            (8_000_000, 0.02, 25),
        )
    ),
    "ETHUSDT": tiers(((1_000_000, 0.005, 100), (2_000_000, 0.01, 50), (3_000_000, 0.015, 33.33))),
    "SOLUSDT": tiers(((100_000, 0.01, 50), (200_000, 0.015, 33.33), (300_000, 0.02, 25))),
    "DOGEUSDT": ALT_TIERS,
    "AVAXUSDT": ALT_TIERS,
}


def risk_tiers(symbol: str) -> tuple[RiskTier, ...]:
    return RISK_LIMITS[symbol]
