"""The defense when the market moves faster than its round trips, over loopback.

The whole daemon (mark stream, poller, controller, unmodified ccxt) against the simulated
Binance at 8 simulated seconds per second: a transfer, ccxt's pacing after it (the
universal transfer costs 6 of its 50 ms slots, so the add waits about 0.3 s, 2.4 s of
market here) and the add take long enough for the cross pool's PnL to move. An add
sized to the last cent of Binance's max addable is then refused with -4050 while the
position it was for runs on toward liquidation.
"""

from __future__ import annotations

from monitor.config import Config
from monitor.drill import play
from monitor.simulator.scenario import parse_scenario

# A cross BTC long, 1 @ 60,000 at 2x: initial margin 30,000 against a wallet of 30,000
# (no PnL yet), so Binance's available balance, and with it the most an isolated add may
# take, is 0. The pool itself is far from liquidation (about 50 % away), so it asks for
# nothing. The isolated AVAX long, 200 @ 35 at 10x with 800 of margin (ALT bracket
# 1.5 %, cum 25): 800 + 200 (L - 35) = 200 L x 1.5 % - 25 gives L = 6,175 / 197 = 31.345,
# 10.4 % away, so it reaches warn (10 %, the default trigger) once both fall, 0.5 % a
# second, and its add (some 400 to reach 15 %) must all come from the reserve.
#
# What the move costs the add: BTC 3 % lower loses 0.03 x 60,000 = 1,800 of PnL and frees
# 1,800 / 2 = 900 of initial margin, so the available balance falls by 900 per 3 % (300
# per simulated second here). A transfer of exactly 414.25 leaves the add refused after a
# 1.4 % move; the headroom for a 3 % move (close_before) is 900 x (mark / 60,000), at
# least 855 at the 57,000 BTC ends the scenario at.
FALLING = """
seed: 5
tick_seconds: 1
symbols:
  BTCUSDT: {start: 60000}
  AVAXUSDT: {start: 35}
segments: [{duration: 2s}, {duration: 10s, drift: -0.05}, {duration: 4s}]
accounts:
  - name: hybrid
    balances: {USDT: 30000}
    reserve: {USDT: 5000}
    positions:
      - {symbol: BTCUSDT, side: long, size: 1, leverage: 2, entry: 60000}
      - {symbol: AVAXUSDT, side: long, size: 200, margin_mode: isolated, leverage: 10,
         isolated_margin: 800, entry: 35}
"""
HEADROOM = 855.0
ACTIONS = {"mode": "auto", "reserve": {"from": "spot", "max_per_action": 2500,
                                       "max_per_day": 5000}}  # fmt: skip


async def test_a_funded_add_lands_in_a_fast_market_instead_of_being_refused() -> None:
    config = Config.model_validate(
        {"actions": ACTIONS, "accounts": [{"name": "policy", "exchange": "binanceusdm"}]}
    )
    run = await play(
        parse_scenario(FALLING), 8, source=config.accounts[0], base=config, mode="auto"
    )
    refusals = [t.event.message for t in run.events if "-4050" in (t.event.message or "")]
    assert not refusals, refusals
    assert not run.liquidations
    hybrid = run.accounts["hybrid"]
    assert hybrid.liquidated == [] and hybrid.closed_by_us == []  # defended, not closed
    assert "AVAX/USDT:USDT" in hybrid.positions
    added = [t.event.message for t in run.events if "filled: add" in (t.event.message or "")]
    assert added, "no add reached AVAX"
    # the transfers brought every add and the headroom on top of it
    assert hybrid.transfers >= 1 and hybrid.transferred >= 300 + HEADROOM
