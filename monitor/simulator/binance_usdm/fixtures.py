"""Ready-made simulated venues with known, published answers.

`binance_faq_hybrid_account()` reproduces the cross example of Binance's FAQ "How to
Calculate Liquidation Price of USDⓈ-M Futures Contracts" (two cross longs, wallet
1,535,443.01 USDT, liquidation prices 26,316.89 and 1,153.26) and adds one isolated
short, so that one account exercises cross and isolated pools at once (a hybrid account).
"""

from __future__ import annotations

from monitor.simulator.binance_usdm.state import (
    SimAccount,
    SimBracket,
    SimExchange,
    SimMarket,
    SimPosition,
    SymbolSettings,
)

FAQ_API_KEY = "sim-faq-hybrid-api-key"
FAQ_SECRET = "sim-faq-hybrid-secret"


def continuous_brackets(rows: tuple[tuple[float, float, int], ...]) -> tuple[SimBracket, ...]:
    """Brackets from (cap, maint_rate, max_leverage) rows, each starting at the previous cap.

    cum follows Binance's continuity rule cum_k = cum_{k-1} + floor_k x (rate_k - rate_{k-1}),
    so maintenance margin has no jump at any floor.
    """
    brackets: list[SimBracket] = []
    floor, cum, previous_rate = 0.0, 0.0, rows[0][1]
    for cap, rate, max_leverage in rows:
        cum += floor * (rate - previous_rate)
        brackets.append(SimBracket(floor, float(cap), rate, round(cum, 8), max_leverage))
        floor, previous_rate = float(cap), rate
    return tuple(brackets)


# Binance's historical BTCUSDT table: 1M-5M is 2.5 % with cum 16,300, as in the FAQ.
BTC_BRACKETS = continuous_brackets(
    (
        (50_000, 0.004, 125),
        (250_000, 0.005, 100),
        (1_000_000, 0.01, 50),
        (5_000_000, 0.025, 20),
        (20_000_000, 0.05, 10),
        (50_000_000, 0.1, 5),
        (100_000_000, 0.125, 4),
        (200_000_000, 0.15, 3),
        (300_000_000, 0.25, 2),
        (500_000_000, 0.5, 1),
    )
)

# Binance's historical ETHUSDT table: 2M-5M is 10 % with cum 135,365, as in the FAQ.
ETH_BRACKETS = continuous_brackets(
    (
        (10_000, 0.005, 100),
        (100_000, 0.0065, 75),
        (500_000, 0.01, 50),
        (1_000_000, 0.02, 25),
        (2_000_000, 0.05, 10),
        (5_000_000, 0.1, 5),
        (10_000_000, 0.125, 4),
        (20_000_000, 0.15, 3),
        (50_000_000, 0.25, 2),
        (100_000_000, 0.5, 1),
    )
)

SOL_BRACKETS = continuous_brackets(
    (
        (5_000, 0.01, 50),
        (50_000, 0.015, 25),
        (250_000, 0.02, 20),
        (1_000_000, 0.05, 10),
        (2_000_000, 0.1, 5),
        (5_000_000, 0.125, 4),
        (10_000_000, 0.15, 3),
        (20_000_000, 0.25, 2),
        (50_000_000, 0.5, 1),
    )
)


# Altcoin tables in Binance's shape (small first bracket, 1 % .. 50 %); not current numbers.
ALT_BRACKETS = continuous_brackets(
    (
        (5_000, 0.01, 50),
        (25_000, 0.015, 25),
        (100_000, 0.02, 20),
        (500_000, 0.05, 10),
        (1_000_000, 0.1, 5),
        (5_000_000, 0.125, 4),
        (10_000_000, 0.15, 3),
        (20_000_000, 0.25, 2),
        (50_000_000, 0.5, 1),
    )
)


def usdm_markets(extended: bool = False) -> dict[str, SimMarket]:
    """BTC, ETH and SOL USDT perpetuals with Binance's filters of the time.

    `extended` adds DOGEUSDT and AVAXUSDT: in one-way mode a symbol is either cross or
    isolated, so a hybrid scenario needs symbols of its own for its isolated bets.
    """
    markets = [
        SimMarket("BTCUSDT", "BTC", "USDT", 0.1, 0.001, 0.001, 1000, 120, 100, BTC_BRACKETS),
        SimMarket("ETHUSDT", "ETH", "USDT", 0.01, 0.001, 0.001, 10000, 2000, 20, ETH_BRACKETS),
        SimMarket("SOLUSDT", "SOL", "USDT", 0.01, 1, 1, 1_000_000, 5000, 5, SOL_BRACKETS),
    ]
    if extended:
        markets += [
            SimMarket(
                "DOGEUSDT", "DOGE", "USDT", 0.00001, 1, 1, 50_000_000, 30_000_000, 5, ALT_BRACKETS
            ),
            SimMarket("AVAXUSDT", "AVAX", "USDT", 0.001, 1, 1, 1_000_000, 100_000, 5, ALT_BRACKETS),
        ]
    return {m.symbol: m for m in markets}


def binance_faq_hybrid_account(api_key: str = FAQ_API_KEY, secret: str = FAQ_SECRET) -> SimExchange:
    """A venue holding one hybrid account: the FAQ's two cross longs plus an isolated short.

    Cross pool (USDT, single-asset mode): wallet 1,535,443.01 (isolated wallets excluded),
    BTCUSDT long 109.488 @ 32,481.98 (mark 31,967.27, reported LP 26,316.89), ETHUSDT long
    3,683.979 @ 1,456.84 (mark 1,335.18, reported LP 1,153.26).
    Isolated: SOLUSDT short 400 @ 142.50, mark 148.25, isolated wallet 6,000, 10x;
    its reported LP 155.08578431 = (6000 + 275 + 400 x 142.5) / (400 x 0.02 + 400).
    """
    exchange = SimExchange(
        markets=usdm_markets(),
        mark_prices={"BTCUSDT": 31_967.27, "ETHUSDT": 1_335.18, "SOLUSDT": 148.25},
        index_prices={"BTCUSDT": 31_980.12, "ETHUSDT": 1_335.91, "SOLUSDT": 148.19},
    )
    now = exchange.clock_ms()
    positions = [
        SimPosition(
            "BTCUSDT",
            109.488,
            32_481.98,
            leverage=20,
            reported_liquidation_price=26_316.89,
            update_time_ms=now,
        ),
        SimPosition(
            "ETHUSDT",
            3_683.979,
            1_456.84,
            leverage=5,
            reported_liquidation_price=1_153.26,
            update_time_ms=now,
        ),
        SimPosition(
            "SOLUSDT",
            -400,
            142.50,
            margin_type="isolated",
            isolated_wallet=6_000.0,
            leverage=10,
            reported_liquidation_price=155.08578431,
            update_time_ms=now,
        ),
    ]
    exchange.add_account(
        SimAccount(
            api_key=api_key,
            secret=secret,
            cross_wallet={"USDT": 1_535_443.01},
            positions=positions,
            symbol_settings={
                p.symbol: SymbolSettings(p.leverage, p.margin_type) for p in positions
            },
            update_time_ms=now,
        )
    )
    return exchange
