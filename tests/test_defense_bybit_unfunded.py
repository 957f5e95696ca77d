"""An isolated position that nothing can fund is closed one allowed move early, on the
simulated Bybit with unmodified ccxt (issue #15, drill crash-revert without a reserve).

The book is tests/test_defense_sim_bybit.py's, without a reserve: SOLUSDT isolated long
100 @ 140 at 5x (mark 118, positionBalance 2,806.16) liquidates at 113.13, 4.1 % under
the mark (tests/test_defense_bybit.py derives it); the pool (BTCUSDT cross long 0.5 @
62,000 at 50x on 2,693.84) is itself critical, 5.1 % from its liquidation, so it has
nothing to spare for SOL. With `close_before` 3 %, SOL used to wait for 3 % while a one-tick
gap of 5.35 % (drill crash-revert) took it from 5.2 % past liquidation: it is now closed
below 2 x 3 % = 6 %, i.e. at once at 4.1 %: one reduce-only sell of 100 SOL at the mark
118, and no liquidation.
"""

from __future__ import annotations

from tests.test_actions_sim import until
from tests.test_defense_sim_bybit import ENDANGERED, SOL, defended, settled
from tests.venue_actions import filled

UNFUNDED = {
    "mode": "auto",
    "isolated": {"trigger": "warn", "target_distance": 0.15, "close_before": 0.03},
    "caps": {"cooldown": 1},
}


async def test_an_unfundable_isolated_position_is_closed_one_move_early(tmp_path):
    book = ENDANGERED.format(wallet=2693.84, sol=SOL).replace(
        "    reserve: {USDT: 10000}\n    reserve_wallet: funding\n", ""
    )
    async with defended(tmp_path, book, UNFUNDED) as (_venue, account, journal):

        def sol_closed() -> bool:
            return any(r.symbol == "SOL/USDT:USDT" for r in filled(journal.rows("uta"), "reduce"))

        await until(sol_closed, 40, "SOL closed reduce-only")
        await until(lambda: settled(journal), 10, "every row settled")
        rows = journal.rows("uta")

    assert not [o for o in account.orders if o.type == "LIQUIDATION"]
    assert not filled(rows, "add_margin") and not filled(rows, "transfer")
    (close,) = [o for o in account.orders if o.symbol == "SOLUSDT"]
    assert close.reduce_only and close.side == "SELL" and close.executed_qty == 100
    assert close.avg_price == 118
    assert account.position("SOLUSDT") is None
