"""Hypothesis strategies for random but exchange-shaped accounts."""

from __future__ import annotations

from hypothesis import strategies as st

from monitor.config import LevelThresholds
from monitor.domain import (
    AccountSnapshot,
    CrossPool,
    MarginMode,
    Position,
    Side,
    Tier,
    TierBasis,
    TierTable,
)


@st.composite
def tier_tables(draw: st.DrawFn, basis: TierBasis = TierBasis.NOTIONAL) -> TierTable:
    """Brackets with rising rates and Binance-style continuous deductions."""
    count = draw(st.integers(1, 6))
    floors = [0.0]
    for _ in range(count - 1):
        floors.append(floors[-1] + draw(st.floats(1e3, 5e6)))
    rates = sorted(draw(st.lists(st.floats(0.002, 0.2), min_size=count, max_size=count)))
    tiers, amount = [], 0.0
    for i, (floor, rate) in enumerate(zip(floors, rates, strict=True)):
        if i:
            amount += floor * (rate - rates[i - 1])
        cap = floors[i + 1] if i + 1 < count else float("inf")
        tiers.append(Tier(floor, cap, rate, amount))
    return TierTable(tuple(tiers), basis)


@st.composite
def linear_positions(draw: st.DrawFn, symbol: str, mode: MarginMode) -> Position:
    mark = draw(st.floats(1.0, 100_000.0))
    entry = mark * draw(st.floats(0.7, 1.3))
    side = draw(st.sampled_from(list(Side)))
    contracts = draw(st.floats(0.01, 1_000.0))
    notional = contracts * mark
    leverage = draw(st.floats(1.5, 50.0))
    isolated = notional / leverage if mode is MarginMode.ISOLATED else None
    return Position(
        symbol, side, mode, contracts, 1.0, entry, mark, "USDT", isolated_margin=isolated
    )


@st.composite
def cross_accounts(draw: st.DrawFn) -> AccountSnapshot:
    """A solvent cross pool of 1-5 linear positions, long and short mixed."""
    count = draw(st.integers(1, 5))
    positions = tuple(
        draw(linear_positions(f"S{i}/USDT:USDT", MarginMode.CROSS)) for i in range(count)
    )
    tiers = {p.symbol: draw(tier_tables()) for p in positions}
    gross = sum(p.contracts * p.mark_price for p in positions)
    pnl = sum(p.side.sign * p.contracts * (p.mark_price - p.entry_price) for p in positions)
    wallet = max(gross * draw(st.floats(0.05, 1.0)), -pnl + gross * 0.3)
    return AccountSnapshot("acct", "binanceusdm", (CrossPool("USDT", wallet),), positions, tiers)


@st.composite
def level_thresholds(draw: st.DrawFn) -> LevelThresholds:
    """Any valid ladder: ratios rising, distances falling, a clear margin up to 30%, and
    absolute clear margins from none to wider than a level's own band."""
    ratios = sorted(draw(st.lists(st.floats(0.02, 0.99), min_size=3, max_size=3, unique=True)))
    distances = sorted(
        draw(st.lists(st.floats(0.001, 0.9), min_size=3, max_size=3, unique=True)), reverse=True
    )
    return LevelThresholds(
        warn=ratios[0], critical=ratios[1], imminent=ratios[2], distance_warn=distances[0],
        distance_critical=distances[1], distance_imminent=distances[2],
        clear_margin=draw(st.floats(0.0, 0.3)),
        clear_ratio=draw(st.floats(0.0, 0.3)),
        clear_distance=draw(st.floats(0.0, 0.3)),
    )  # fmt: skip


def two_leg_pool(wallet: float) -> AccountSnapshot:
    """1 BTC long at 30,000 and 10 ETH short at 2,000, both at their entry, on a
    Binance-like table (0.4% to 50,000 of notional), sharing a USDT wallet."""
    tiers = TierTable(
        (Tier(0, 5e4, 0.004, 0), Tier(5e4, 2.5e5, 0.005, 50), Tier(2.5e5, 1e12, 0.01, 1300))
    )
    long = Position("BTC/USDT:USDT", Side.LONG, MarginMode.CROSS, 1.0, 1.0, 30_000, 30_000, "USDT")
    short = Position("ETH/USDT:USDT", Side.SHORT, MarginMode.CROSS, 10.0, 1.0, 2_000, 2_000, "USDT")
    return AccountSnapshot(
        "acct", "binanceusdm", (CrossPool("USDT", wallet),), (long, short),
        {"BTC/USDT:USDT": tiers, "ETH/USDT:USDT": tiers},
    )  # fmt: skip


# --- any exchange model: the vectorised engine's equivalence with the scalar one -------

MODEL_EXCHANGES = ("binanceusdm", "binancecoinm", "bybit", "okx", "hyperliquid", "kraken")
"""Every exact model, and one id without a model (the generic one)."""


@st.composite
def jumping_tier_tables(draw: st.DrawFn, basis: TierBasis = TierBasis.NOTIONAL) -> TierTable:
    """ccxt's unified shape: rising rates without deductions, so MM jumps at each floor
    (not regular: the solvers must walk it rather than trust concavity)."""
    count = draw(st.integers(2, 5))
    floors = [0.0]
    for _ in range(count - 1):
        floors.append(floors[-1] + draw(st.floats(1e3, 5e6)))
    rates = sorted(draw(st.lists(st.floats(0.002, 0.2), min_size=count, max_size=count)))
    caps = [*floors[1:], float("inf")]
    return TierTable(tuple(map(Tier, floors, caps, rates)), basis)


def _basis(exchange: str, inverse: bool) -> TierBasis:
    """OKX and Binance COIN-M key tiers by contracts; the others by notional value."""
    if exchange == "okx" or (exchange == "binancecoinm" and inverse):
        return TierBasis.CONTRACTS
    return TierBasis.NOTIONAL


@st.composite
def model_positions(
    draw: st.DrawFn,
    symbol: str,
    mode: MarginMode,
    inverse: bool,
    side: Side,
    hedge: str,
    mark: float,
) -> Position:
    """A position as an exchange adapter would hand it over; the isolated margin and the
    leverage are sometimes missing (unknown, not zero)."""
    entry = mark * draw(st.floats(0.7, 1.3))
    contract_size = draw(st.sampled_from([10.0, 100.0])) if inverse else 1.0
    contracts = draw(st.floats(0.01, 1_000.0)) * (mark / 1_000 if inverse else 1.0)
    size = contracts * contract_size
    value = size / mark if inverse else size * mark
    leverage = draw(st.one_of(st.none(), st.floats(1.5, 50.0)))
    isolated = None
    if mode is MarginMode.ISOLATED and draw(st.integers(0, 9)) > 0:
        isolated = value / draw(st.floats(1.5, 50.0))
    settle = symbol.split(":")[1]
    return Position(
        symbol, side, mode, contracts, contract_size, entry, mark, settle, inverse=inverse,
        leverage=leverage, isolated_margin=isolated, position_side=hedge,
    )  # fmt: skip


@st.composite
def model_accounts(draw: st.DrawFn) -> AccountSnapshot:
    """An account of any exchange model: linear and inverse, cross and isolated (hybrid),
    hedge-mode pairs, regular and jumping tier tables, a unified pool, and the unknowns
    adapters produce (no tiers for a symbol, no reported wallet, no isolated margin)."""
    exchange = draw(st.sampled_from(MODEL_EXCHANGES))
    positions: list[Position] = []
    tiers: dict[str, TierTable] = {}
    for i in range(draw(st.integers(1, 5))):
        inverse = exchange == "binancecoinm" or (
            exchange in ("bybit", "okx", "kraken") and draw(st.booleans())
        )
        symbol = f"C{i}/USD:C{i}" if inverse else f"S{i}/USDT:USDT"
        mode = draw(st.sampled_from(list(MarginMode)))
        if draw(st.integers(0, 3)) == 0:  # hedge mode: both legs of one symbol
            legs = [(Side.LONG, "LONG"), (Side.SHORT, "SHORT")]
        else:
            legs = [(draw(st.sampled_from(list(Side))), "BOTH")]
        mark = draw(st.floats(1.0, 100_000.0))  # one mark per symbol, as on the exchange
        for side, hedge in legs:
            positions.append(draw(model_positions(symbol, mode, inverse, side, hedge, mark)))
        if draw(st.integers(0, 9)) > 0:
            basis = _basis(exchange, inverse)
            jumping = exchange == "kraken" or draw(st.integers(0, 5)) == 0
            tiers[symbol] = draw(jumping_tier_tables(basis) if jumping else tier_tables(basis))
    unified = "USD" if exchange in ("bybit", "okx") and draw(st.booleans()) else None
    assets = {unified} if unified else {p.settle for p in positions}
    pools = []
    for asset in sorted(assets):
        members = [p for p in positions if (unified or p.settle) == asset]
        gross = sum(p.size / p.mark_price if p.inverse else p.size * p.mark_price for p in members)
        if draw(st.integers(0, 9)) > 0:
            pools.append(CrossPool(asset, max(gross, 1.0) * draw(st.floats(0.01, 1.5))))
    return AccountSnapshot(
        f"{exchange}-{draw(st.integers(0, 10**6))}", exchange, tuple(pools), tuple(positions),
        tiers, taker_fee_rate=draw(st.one_of(st.none(), st.floats(0.0001, 0.001))),
        unified_pool=unified,
    )  # fmt: skip
