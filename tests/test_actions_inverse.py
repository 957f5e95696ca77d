"""The policy on coin-margined (inverse) positions: cuts in whole contracts, margin in the
coin to eight decimals, and the caps (in USD) converted at the mark.

Binance COIN-M, one-way (margin-models.md): size N contracts of face cs USD, wallet WB
and cum in coin; long LP = N cs (1 + MMR) / (N cs / EP + WB + cum). Every expected
figure below is that formula solved by hand; no taker fee is known, so none is charged.
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from monitor.actions.policy import Budget, decide, target_of
from monitor.config.schema import ActionsConfig
from monitor.domain import (
    AccountSnapshot,
    CrossPool,
    MarginMode,
    MarketInfo,
    Position,
    Side,
    Tier,
    TierBasis,
    TierTable,
)
from monitor.engine.book import AccountBook
from monitor.engine.levels import Level
from monitor.events import pool_target

BTC, ETH = "BTC/USD:BTC", "ETH/USD:ETH"
ROOMY = Budget(per_action=1e9, window_left=1e9, actions_left=100, reserve_left=1e9)


def flat(rate: float) -> TierTable:
    return TierTable((Tier(0, 1e9, rate, 0.0),), TierBasis.CONTRACTS)


def book(*positions: Position, pools: tuple[CrossPool, ...]) -> AccountBook:
    snapshot = AccountSnapshot(
        "c", "binancecoinm", pools, positions, {BTC: flat(0.005), ETH: flat(0.01)},
        markets={BTC: MarketInfo(BTC, 1.0, 1.0), ETH: MarketInfo(ETH, 1.0, 1.0)},
        fetched_at=1_000.0,
    )  # fmt: skip
    return AccountBook(snapshot)


def actions(**isolated: float) -> ActionsConfig:
    return ActionsConfig.model_validate(
        {"mode": "auto", "isolated": {"trigger": "critical", "target_distance": 0.10,
                                      **isolated}}
    )  # fmt: skip


def test_a_coin_pool_is_cut_in_whole_contracts_counted_at_their_usd_face() -> None:
    # 300 x 100 USD long at 60,000, mark 58,000, MMR 0.5 %, WB 0.05 BTC:
    # LP = 30,000 x 1.005 / (0.5 + 0.05) = 54,818.18, 5.5 % away (critical).
    # Cutting k contracts at 58,000 books 100 k (1/60,000 - 1/58,000) = -k/17,400 BTC, and
    # the 12 % target wants LP <= 51,040:
    #   100 (300 - k) x 1.005 <= 51,040 ((300 - k)/600 + 0.05 - k/17,400)
    #   30,150 - 100.5 k <= 28,072 - 88 k   (1/600 + 1/17,400 = 1/580; 51,040/580 = 88)
    #   k >= 2,078 / 12.5 = 166.24  ->  167 contracts, 16,700 USD of face value.
    long = Position(BTC, Side.LONG, MarginMode.CROSS, 300, 100, 60_000, 58_000, "BTC",
                    inverse=True)  # fmt: skip
    b = book(long, pools=(CrossPool("BTC", 0.05),))
    plan = decide("c", b, {}, {pool_target("BTC"): Level.CRITICAL}, actions(), ROOMY)
    (cut,) = plan.decisions
    assert (cut.kind, cut.quantity, cut.notional) == ("reduce", 167, pytest.approx(16_700))
    assert cut.reaches_target and not plan.notes
    assert "(≈ 16,700 USD, reduce-only)" in cut.describe()

    # A cap of 10,000 USD per action allows 100 contracts, whatever a contract is in coin.
    capped = Budget(per_action=10_000, window_left=1e9, actions_left=100, reserve_left=1e9)
    (small,) = decide("c", b, {}, {pool_target("BTC"): Level.CRITICAL}, actions(), capped).decisions
    assert (small.quantity, small.notional) == (100, pytest.approx(10_000))


def test_coin_margin_is_added_in_the_coin_to_eight_decimals() -> None:
    # 1,000 x 10 USD long at 3,000, mark 2,900, MMR 1 %, 0.3 ETH posted:
    # LP = 10,000 x 1.01 / (10,000/3,000 + 0.3) = 2,779.82, 4.1 % away.
    # Surviving 10 % lower (2,610): add = MM(P) - PnL(P) - wallet
    #   = 10,000/2,610 x 0.01 + 10,000 (1/2,610 - 1/3,000) - 0.3 = 0.236398467... ETH.
    position = Position(ETH, Side.LONG, MarginMode.ISOLATED, 1_000, 10, 3_000, 2_900, "ETH",
                        inverse=True, isolated_margin=0.3)  # fmt: skip
    b = book(position, pools=(CrossPool("ETH", 1.0),))
    target = target_of(position)
    (add,) = decide("c", b, {}, {target: Level.CRITICAL}, actions(), ROOMY).decisions
    assert add.kind == "add_margin" and add.asset == "ETH"
    assert add.quantity == pytest.approx(0.236398467, abs=1e-8)
    assert add.quantity == round(add.quantity, 8)
    assert add.notional == pytest.approx(add.quantity * 2_900)  # the caps count USD
    assert "add 0.23639847 ETH margin to ETH" in add.describe()

    # max_add_per_action 300 USD is 300 / 2,900 = 0.10344827 ETH at the mark.
    config = actions(max_add_per_action=300)
    (part,), notes = decide("c", b, {}, {target: Level.CRITICAL}, config, ROOMY)
    assert part.quantity == 0.10344827
    assert notes and "only 0.10344827 of the 0.23639847 ETH" in notes[0].message


def test_an_isolated_inverse_position_in_a_unified_account_is_funded_in_its_coin() -> None:
    """Bybit's unified account values its cross pool in USD, but an isolated inverse
    position's margin is its coin: the add is in ETH, never from the USD pool. With no ETH
    balance reported, all of it comes from a reserve of ETH (the 0.23639847 ETH derived
    above), moved first; without such a reserve nothing can be added, and the ladder's
    last rung is what is left: at 4.14 % from liquidation, inside twice `close_before`
    (2 x 3 %, the move allowed before a close lands), the whole 1,000 contracts are
    closed reduce-only."""
    position = Position(ETH, Side.LONG, MarginMode.ISOLATED, 1_000, 10, 3_000, 2_900, "ETH",
                        inverse=True, isolated_margin=0.3)  # fmt: skip
    b = book(position, pools=(CrossPool("USD", 10_000.0),))
    unified = AccountBook(replace(b.snapshot, unified_pool="USD"))
    target = {target_of(position): Level.CRITICAL}
    reserve = {"from": "funding", "asset": "ETH", "max_per_action": 1, "max_per_day": 5}
    config = ActionsConfig.model_validate(
        {**actions().model_dump(by_alias=True), "reserve": reserve}
    )
    transfer, add = decide("c", unified, {}, target, config, ROOMY).decisions
    assert (transfer.kind, transfer.asset, transfer.quantity) == ("transfer", "ETH", 0.23639847)
    assert (add.kind, add.asset, add.quantity) == ("add_margin", "ETH", 0.23639847)

    plan = decide("c", unified, {}, target, actions(), ROOMY)
    (close,) = plan.decisions
    assert (close.kind, close.quantity, close.closes) == ("reduce", 1_000, True)
    (note,) = plan.notes
    assert note.message.startswith("no free ETH in the futures wallet to add")
    assert note.message.endswith("closing it 4.14% before liquidation")


def test_inverse_cross_positions_in_a_unified_usd_pool_are_left_to_the_trader() -> None:
    """In a UTA 2.0 cross pool an inverse position's coin PnL is valued in USD (with the
    coin's collateral ratio): the Bybit model has no exact rule for it, so the pool's
    figures are unknown and nothing is sized."""
    position = Position(BTC, Side.LONG, MarginMode.CROSS, 300, 100, 60_000, 58_000, "BTC",
                        inverse=True)  # fmt: skip
    snapshot = replace(
        book(position, pools=(CrossPool("USD", 10_000.0),)).snapshot,
        exchange="bybit", unified_pool="USD",
    )  # fmt: skip
    plan = decide(
        "c", AccountBook(snapshot), {}, {pool_target("USD"): Level.CRITICAL}, actions(), ROOMY
    )
    assert not plan.decisions
    (note,) = plan.notes
    assert "pool figures unknown" in note.message and note.level is Level.CRITICAL
