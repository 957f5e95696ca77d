"""On Bybit an isolated add is sized by what Bybit lets it take, its available balance,
not by Binance's max addable (issue #15): the daemon, its Bybit executor and unmodified
ccxt against the simulated Bybit v5 over loopback.

By hand (Bybit's rules, monitor/simulator/bybit_v5/rules.py; taker 0.055 %, BTC tier 1
MMR 0.5 %, SOL tier 1 MMR 1 %):
- cross BTCUSDT long 0.5 @ 50,000 at 10x, mark 60,000, wallet 1,000: uPnL +5,000, fee to
  close 0.5 x 50,000 x 0.9 x 0.055 % = 12.375, positionIM 30,000 / 10 + 12.375 =
  3,012.375, positionMM 30,000 x 0.5 % + 12.375 = 162.375. Bybit's available balance:
  1,000 + 5,000 - 3,012.375 = 2,987.625. Binance's rule would also
  bound it by wallet - MM = 837.625.
- the pool keeps its own 12 % (BTC at 52,800: MM 26,400 x 0.5 % + 12.375 = 144.375, PnL
  +1,400): it needs a wallet of -1,255.625, so 1,000 + 1,255.625 = 2,255.625 is spare.
- isolated SOLUSDT long 100 @ 140 at 5x, mark 118, positionBalance 2,806.16 (4.1 % from
  its liquidation at 113.13): at 15 % (118 x 0.85 = 100.3) MM is 100.3 + 6.16 (fee to
  close 100 x 140 x 0.8 x 0.055 %) = 106.46 and PnL -3,970, so the add is 106.46 + 3,970
  - 2,806.16 = 1,270.30: within Bybit's 2,987.625 (and the pool's 2,255.625), beyond
  Binance's 837.625. One add of 1,270.30, no reserve needed.
"""

from __future__ import annotations

import pytest

from monitor.simulator.bybit_v5.rules import position_figures
from tests.test_actions_sim import until
from tests.test_defense_sim_bybit import defended, settled
from tests.venue_actions import filled

IN_PROFIT = """
seed: 1
tick_seconds: 1
symbols:
  BTCUSDT: {start: 60000}
  SOLUSDT: {start: 118}
segments:
  - {duration: 600s}
accounts:
  - name: uta
    balances: {USDT: 1000}
    positions:
      - {symbol: BTCUSDT, side: long, size: 0.5, entry: 50000, leverage: 10}
      - {symbol: SOLUSDT, side: long, size: 100, entry: 140, leverage: 5,
         margin_mode: isolated, isolated_margin: 2806.16}
"""
ADD = {
    "mode": "auto",
    "isolated": {"trigger": "warn", "target_distance": 0.15,
                 "max_add_per_action": 2000, "max_add_per_position": 3000},
    "caps": {"cooldown": 1},
}  # fmt: skip


async def test_an_add_takes_what_bybit_makes_available(tmp_path):
    async with defended(tmp_path, IN_PROFIT, ADD) as (venue, account, journal):
        await until(lambda: bool(filled(journal.rows("uta"), "add_margin")), 40, "an add")
        await until(lambda: settled(journal), 10, "every row settled")
        rows = journal.rows("uta")
        sol = account.position("SOLUSDT")
        assert sol is not None
        liquidation = position_figures(venue.exchange, account, sol).liquidation_price

    (add,) = filled(rows, "add_margin")
    assert add.quantity == pytest.approx(1_270.30)
    assert not [r for r in rows if r.kind != "add_margin"]
    assert sol.isolated_wallet == pytest.approx(2_806.16 + 1_270.30)
    assert liquidation == pytest.approx(100.3, abs=0.01)
