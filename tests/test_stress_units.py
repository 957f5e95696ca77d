"""Stress, on a small book whose every figure is derived by hand below.

The book (Binance USD-M, one flat bracket: MM = 1 % of notional, cum 0):
    cross pool USDT, wallet 1,000
      BTC long 0.1 @ 50,000, mark 50,000, 20x  (notional 5,000, MM 50, IM 250)
      ETH long 1   @ 2,500,  mark 2,500,  5x   (notional 2,500, MM 25, IM 500)
    isolated
      SOL long 10  @ 100,    mark 100,    10x, isolated margin 100 (notional 1,000, MM 10)

Uniform move x (every price x (1 + x)):
    pool:  1,000 + 7,500 x = 0.01 x 7,500 (1 + x)  ->  x = -925 / 7,425 = -12.4579 %
    SOL:   100 + 1,000 x = 10 (1 + x)             ->  x = -90 / 990    =  -9.0909 %
As all cross (wallet 1,100, notional 8,500, MM 85):
    1,100 + 8,500 x = 85 (1 + x)                  ->  x = -1,015 / 8,415 = -12.0618 %
As all isolated, the wallet shared by IM (250 : 500): BTC 333.33, ETH 666.67:
    BTC:   333.33 + 5,000 x = 50 (1 + x)          ->  x = -283.33 / 4,950 = -5.7239 %
    ETH:   666.67 + 2,500 x = 25 (1 + x)          ->  x = -641.67 / 2,475 = -25.9259 %
"""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest

from monitor.domain import AccountSnapshot, CrossPool, MarginMode, Position, Side, TierTable
from monitor.engine.book import AccountBook
from monitor.engine.levels import Level
from monitor.stress import shocks as sh
from monitor.stress.funding import funding_effects
from monitor.stress.modes import as_cross, isolate
from monitor.stress.play import play
from monitor.stress.remedy import remedies
from monitor.stress.report import stress_account, stress_json
from monitor.stress.stats import beta, daily_volatility

BTC, ETH, SOL = "BTC/USDT:USDT", "ETH/USDT:USDT", "SOL/USDT:USDT"
SYMBOLS = (BTC, ETH, SOL)


def position(symbol: str, size: float, price: float, leverage: float, **extra: object) -> Position:
    return Position(
        symbol, Side.LONG, extra.pop("mode", MarginMode.CROSS), size, 1.0, price, price, "USDT",
        leverage=leverage, **extra,  # type: ignore[arg-type]
    )  # fmt: skip


def book_snapshot() -> AccountSnapshot:
    return AccountSnapshot(
        "main",
        "binanceusdm",
        (CrossPool("USDT", 1_000.0),),
        (
            position(BTC, 0.1, 50_000.0, 20),
            position(ETH, 1.0, 2_500.0, 5),
            position(SOL, 10.0, 100.0, 10, mode=MarginMode.ISOLATED, isolated_margin=100.0),
        ),
        dict.fromkeys(SYMBOLS, TierTable.flat(0.01)),
    )


def moves(outcome) -> dict[str, float]:  # type: ignore[no-untyped-def]
    return {item.target.name: item.move for item in outcome.liquidations}


def test_uniform_moves_liquidate_in_order_and_the_pool_takes_every_member():
    book = AccountBook(book_snapshot())
    small = play(book, sh.uniform(SYMBOLS, -0.05))
    # nothing goes; the loss is the PnL: 7,500 x 5 % + 1,000 x 5 % = 425
    assert small.liquidated == [] and small.losses == {"USDT": pytest.approx(425.0)}
    ten = play(book, sh.uniform(SYMBOLS, -0.10))
    # SOL goes at -9.09 % (its whole 100); the pool survives, down 750
    assert ten.liquidated == [SOL]
    assert moves(ten)[SOL] == pytest.approx(-90 / 990, abs=1e-12)
    assert ten.losses["USDT"] == pytest.approx(100 + 750)
    # after -10 %: equity 250, MM 67.5; further y: 250 + 6,750 y = 67.5 (1 + y)
    assert ten.pool is not None
    assert ten.pool.ratio == pytest.approx(67.5 / 250)
    assert ten.pool.distance == pytest.approx(182.5 / 6_682.5)
    twenty = play(book, sh.uniform(SYMBOLS, -0.20))
    # SOL first, then the pool at -12.46 % and with it both BTC and ETH (the cascade)
    assert twenty.liquidated == [SOL, BTC, ETH]
    assert moves(twenty)["pool USDT"] == pytest.approx(-925 / 7_425, abs=1e-12)
    assert twenty.losses["USDT"] == pytest.approx(1_100.0)  # everything: 1,000 + 100
    up = play(book, sh.uniform(SYMBOLS, 0.10))
    assert up.liquidated == [] and up.losses["USDT"] == pytest.approx(-850.0)  # a gain


def test_the_same_book_as_all_cross_and_as_all_isolated():
    crossed, isolated = as_cross(book_snapshot()), isolate(book_snapshot())
    assert [p.wallet_balance for p in crossed.pools] == [1_100.0]
    margins = {p.symbol: p.isolated_margin for p in isolated.positions}
    assert margins[BTC] == pytest.approx(1_000 / 3) and margins[ETH] == pytest.approx(2_000 / 3)
    assert isolated.pools[0].wallet_balance == pytest.approx(0.0, abs=1e-9)

    report = stress_account(book_snapshot(), [sh.uniform(SYMBOLS, m) for m in (-0.1, -0.2)])
    ten, twenty = report.rows
    # -10 %: cross loses the 850 PnL and keeps everything; isolated loses BTC's 333.33
    # and SOL's 100 plus ETH's PnL 250
    assert ten.as_cross.liquidated == [] and ten.as_cross.losses["USDT"] == pytest.approx(850)
    assert ten.as_isolated.liquidated == [BTC, SOL]
    assert moves(ten.as_isolated)[BTC] == pytest.approx(-(1_000 / 3 - 50) / 4_950)
    assert ten.as_isolated.losses["USDT"] == pytest.approx(1_000 / 3 + 100 + 250)
    # -20 %: in cross the whole 1,100 goes at -12.06 %; isolated ETH survives (-25.9 %)
    assert twenty.as_cross.liquidated == [BTC, ETH, SOL]
    assert moves(twenty.as_cross)["pool USDT"] == pytest.approx(-1_015 / 8_415)
    assert twenty.as_cross.losses["USDT"] == pytest.approx(1_100)
    assert twenty.as_isolated.liquidated == [BTC, SOL]
    assert twenty.as_isolated.losses["USDT"] == pytest.approx(1_000 / 3 + 100 + 500)

    doc = stress_json([report])
    row = doc["accounts"][0]["shocks"][1]
    assert row["shock"] == "uniform -20%" and row["move"] == pytest.approx(-0.2)
    assert row["liquidated"] == [SOL, BTC, ETH] and row["loss"] == pytest.approx(1_100)
    assert row["as_cross"] == {"liquidated": [BTC, ETH, SOL], "loss": pytest.approx(1_100)}
    assert row["as_isolated"]["liquidated"] == [BTC, SOL]
    # the pool went on the way: it reads as having reached liquidation
    assert (row["pool_ratio"], row["pool_distance"]) == (1.0, 0.0)
    assert set(row) == {"shock", "move", "liquidated", "loss", "pool_ratio", "pool_distance",
                        "as_isolated", "as_cross"}  # fmt: skip


def test_beta_scaled_move():
    # betas 1, 2, 3 and BTC -10 %: BTC x 0.9, ETH x 0.8, SOL x 0.7; along s in [0, 1]:
    #   pool: 1,000 - 500 s - 500 s - 0.01 (5,000 (1 - 0.1 s) + 2,500 (1 - 0.2 s))
    #       = 925 - 990 s  ->  s = 925 / 990, BTC at -9.343 %
    #   SOL:  100 - 300 s - 10 (1 - 0.3 s) = 90 - 297 s  ->  s = 90 / 297, BTC at -3.030 %
    shock = sh.beta_scaled({BTC: 1.0, ETH: 2.0, SOL: 3.0}, -0.10)
    assert shock.name == "beta BTC -10%" and shock.move == pytest.approx(-0.1)
    outcome = play(AccountBook(book_snapshot()), shock)
    assert outcome.liquidated == [SOL, BTC, ETH]
    assert moves(outcome)[SOL] == pytest.approx(-0.1 * 90 / 297, abs=1e-12)
    assert moves(outcome)["pool USDT"] == pytest.approx(-0.1 * 925 / 990, abs=1e-12)
    # a beta of 12 would take SOL below zero: clamped at -99 %, and said so
    clamped = sh.beta_scaled({BTC: 1.0, SOL: 12.0}, -0.10)
    assert clamped.path[-1].prices[SOL] == 0.01 and SOL in (clamped.note or "")


def test_n_sigma_move_and_the_statistics_behind_it():
    # closes 100, 110, 99: log returns ln 1.1 = 0.0953102, ln 0.9 = -0.1053605; mean
    # -0.0050252, deviations +-0.1003354, sample sd = 0.1003354 x sqrt 2 = 0.1418957 hourly,
    # x sqrt 24 = 0.6951549 daily
    assert daily_volatility([100, 110, 99]) == pytest.approx(0.1003354 * math.sqrt(2 * 24), 1e-6)
    # ETH's log returns are exactly twice BTC's: beta 2
    btc = [100.0, 101.0, 99.0, 102.0]
    eth = [50.0 * (c / 100.0) ** 2 for c in btc]
    assert beta(eth, btc) == pytest.approx(2.0)
    # 3 sigma down with daily vols BTC 2 %, ETH 3 %, SOL 5 %: BTC x e^-0.06, SOL x e^-0.15.
    # SOL goes when its move reaches -90/990: s = (90/990) / (1 - e^-0.15) = 0.652650,
    # where BTC has moved s (e^-0.06 - 1) = -3.8007 %
    shock = sh.n_sigma({BTC: 0.02, ETH: 0.03, SOL: 0.05}, 0.02, count=3, days=7, down=True)
    assert shock.name == "3σ 7d down" and shock.move == pytest.approx(math.exp(-0.06) - 1)
    outcome = play(AccountBook(book_snapshot()), shock)
    s = (90 / 990) / (1 - math.exp(-0.15))
    assert outcome.liquidated == [SOL]
    assert moves(outcome)[SOL] == pytest.approx(s * (math.exp(-0.06) - 1), abs=1e-12)
    # the pool keeps going: its loss is the PnL, 5,000 (1 - e^-0.06) + 2,500 (1 - e^-0.09)
    pnl = 5_000 * (1 - math.exp(-0.06)) + 2_500 * (1 - math.exp(-0.09))
    assert outcome.losses["USDT"] == pytest.approx(100 + pnl)


def test_replay_path_goes_through_each_candles_extremes():
    # BTC opens 100, a down candle (high 101, low 80, close 90), then an up candle
    # (low 88, high 95, close 94): waypoints 1.01, 0.80, 0.90, 0.88, 0.95, 0.94
    candles = {
        BTC: [(0, 100, 101, 80, 90), (300_000, 90, 95, 88, 94)],
        SOL: [(0, 10, 10, 9, 9.5), (300_000, 9.5, 9.9, 9.4, 9.8)],
        ETH: [],
    }
    shock = sh.replay("2025-10-10", candles, BTC)
    assert [w.reference for w in shock.path] == pytest.approx([1.01, 0.8, 0.9, 0.88, 0.95, 0.94])
    assert [w.prices[SOL] for w in shock.path] == pytest.approx([1, 0.9, 0.95, 0.94, 0.99, 0.98])
    assert shock.path[1].prices[ETH] == pytest.approx(0.8)  # no candles: moves with BTC
    assert "ETH" in (shock.note or "") and shock.move == pytest.approx(-0.06)
    # on the book, on the segment BTC 1.01 -> 0.80 (ETH with it, SOL 1.0 -> 0.9):
    #   pool goes where BTC's multiplier m gives 1,000 + 7,500 (m - 1) = 75 m: m = 6,500 / 7,425
    #   = 0.875421, s = (1.01 - m) / 0.21 = 0.64085; SOL at s = (1 - 10/11) / 0.1 = 0.90909
    outcome = play(AccountBook(book_snapshot()), shock)
    assert outcome.liquidated == [BTC, ETH, SOL]
    assert moves(outcome)["pool USDT"] == pytest.approx(6_500 / 7_425 - 1, abs=1e-12)
    s = (1 - 1 / 1.1) / 0.1
    assert moves(outcome)[SOL] == pytest.approx(0.01 + s * (0.8 - 1.01), abs=1e-12)
    assert [item.at for item in outcome.liquidations] == pytest.approx(
        [1 + (1.01 - 6_500 / 7_425) / 0.21, 1 + s]
    )


def test_smallest_changes_that_survive_uniform_minus_20():
    by_target = {r.target: r for r in remedies(book_snapshot(), sh.uniform(SYMBOLS, -0.20))}
    pool, sol = by_target["pool USDT"], by_target[SOL]
    # at -20 %: pool equity 1,000 - 1,500 = -500 against MM 60: short by 560 (560 exactly
    # still liquidates: equity = MM), so one cent more
    assert pool.add_margin == pytest.approx(560.01)
    # moving BTC to isolated (333.33) leaves ETH 666.67 - 500 = 166.67 > MM 20: the pool
    # lives; loss BTC 333.33 + SOL 100 + ETH 500. Moving ETH instead leaves the pool
    # 333.33 - 1,000 < 0: it does not help
    assert pool.isolate == BTC and pool.isolate_loss == pytest.approx(1_000 / 3 + 600)
    # keep k of both: 1,000 - 1,500 k - 60 k > 0  ->  k < 1,000 / 1,560 = 0.641026
    assert 1_000 / 1_560 - 1 / 1_024 <= pool.keep < 1_000 / 1_560
    # SOL: 100 - 200 - 8 = -108 -> 108.01; keep k < 100 / 208
    assert sol.add_margin == pytest.approx(108.01) and sol.isolate is None
    assert 100 / 208 - 1 / 1_024 <= sol.keep < 100 / 208


def test_next_funding_payment_and_the_level_it_crosses():
    # rate 1 %: BTC pays 50, ETH 25 from the pool; SOL 10 from its own 100
    limits = SimpleNamespace(warn=0.105, critical=0.5, imminent=0.9, distance_warn=0.01,
                             distance_critical=0.005, distance_imminent=0.001,
                             clear_margin=0.1)  # fmt: skip
    rates = dict.fromkeys(SYMBOLS, 0.01)
    effects = {e.target: e for e in funding_effects(book_snapshot(), rates, limits, limits)}
    pool, sol = effects["pool USDT"], effects[SOL]
    assert pool.pays == pytest.approx(75.0) and sol.pays == pytest.approx(10.0)
    # pool ratio 75 / 1,000 -> 75 / 925; SOL 10 / 100 -> 10 / 90 (past warn 10.5 %)
    assert pool.ratio_after == pytest.approx(75 / 925) and not pool.crosses_level
    assert (sol.ratio_before, sol.ratio_after) == (pytest.approx(0.1), pytest.approx(1 / 9))
    assert (sol.level_before, sol.level_after) == (Level.OK, Level.WARN) and sol.crosses_level
    # SOL's distance: 90 + 1,000 x = 10 (1 + x)  ->  80 / 990
    assert sol.distance_after == pytest.approx(80 / 990)
    # a short receives at a positive rate
    short = AccountSnapshot("s", "binanceusdm", (CrossPool("USDT", 1_000.0),),
                            (Position(BTC, Side.SHORT, MarginMode.CROSS, 0.1, 1.0, 50_000.0,
                                      50_000.0, "USDT"),),
                            {BTC: TierTable.flat(0.01)})  # fmt: skip
    [received] = funding_effects(short, {BTC: 0.01}, limits, limits)
    assert received.pays == pytest.approx(-50.0)


def test_ratio_curve_and_the_live_marks():
    from monitor.stress.curve import at_marks, ratio_curves

    # at the marks: pool 75 / 1,000; SOL 10 / 100. At -5 %: pool MM 71.25 over equity 625,
    # SOL 9.5 over 50
    curves = ratio_curves(AccountBook(book_snapshot()), (0.0, -0.05))
    assert curves["pool USDT"] == [(0.0, pytest.approx(0.075)), (-0.05, pytest.approx(71.25 / 625))]
    assert curves[f"{SOL} isolated"][1] == (-0.05, pytest.approx(9.5 / 50))
    moved = at_marks(book_snapshot(), {BTC: 49_000.0})
    assert [p.mark_price for p in moved.positions] == [49_000.0, 2_500.0, 100.0]


def test_text_report_at_80_columns_with_a_replay_peak_and_a_funding_warning():
    """One candle of BTC and ETH dipping to 0.9 and closing flat (an up candle: low
    first), SOL moving with them. SOL goes at -9.09 %; the pool survives, its ratio
    peaking at the low: MM 67.5 over equity 1,000 - 750 = 250 = 27 %. Funding at 1 %
    takes SOL's ratio from 10 % to 11.1 %, past a 10.5 % warn (derived above)."""
    from rich.console import Console

    from monitor.stress_view import print_stress

    candles = {BTC: [(0, 100, 100, 90, 100)], ETH: [(0, 50, 50, 45, 50)], SOL: []}
    shocks = [
        *(sh.uniform(SYMBOLS, m) for m in sh.UNIFORM_MOVES),
        sh.replay("2025-10-10", candles, BTC),
    ]
    limits = SimpleNamespace(warn=0.105, critical=0.5, imminent=0.9, distance_warn=0.01,
                             distance_critical=0.005, distance_imminent=0.001,
                             clear_margin=0.1)  # fmt: skip
    report = stress_account(book_snapshot(), shocks, rates=dict.fromkeys(SYMBOLS, 0.01),
                            limits=(limits, limits))  # fmt: skip
    replayed = report.rows[-1].held
    assert replayed.liquidated == [SOL] and replayed.peak is not None
    assert replayed.peak[0] == pytest.approx(-0.1) and replayed.peak[1].ratio == pytest.approx(0.27)
    console = Console(record=True, width=80, color_system=None)
    print_stress([(report, "main · binanceusdm · marks of 2026-01-01 00:00 UTC")], console)
    text = console.export_text()
    assert max(len(line) for line in text.splitlines()) <= 80
    for figure in ("-9.09% SOL/USDT", "-12.46% BTC/USDT", "1,100.00", "-10.00% peak 27.00%",
                   "add 560.01 of margin", "or move BTC/USDT to isolated (loss then 933.33)",
                   "SOL/USDT pays 10.00: ratio 10.00% → 11.11%"):  # fmt: skip
        assert figure in text, figure
    assert "⚠ this payment alone takes it from OK to WARN" in text
