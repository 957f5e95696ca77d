"""`marginwatch stress` end to end: the simulator serves the book and a day's candles
over real HTTP, unmodified ccxt fetches them (`fetch_ohlcv` on /fapi/v1/klines), and the
command plays the day against the live book.

The book is the one derived by hand in test_stress_units.py (one flat 1 % bracket):
cross pool USDT 1,000 with BTC long 0.1 @ 50,000 (20x) and ETH long 1 @ 2,500 (5x);
SOL long 10 @ 100 isolated with 100 (10x). Marks at entry.

The replayed day (2025-10-10, 5m candles made from the prices seeded below), as
multipliers of each symbol's open:
    BTC and ETH: 1.01, 0.80, 0.90 | 0.88, 0.95, 0.94     SOL: 1.0, 0.9, 0.95 | ...
On the way from 1.01 to 0.80 the pool goes where 1,000 + 7,500 (m - 1) = 0.01 x 7,500 m,
m = 6,500 / 7,425 (BTC -12.458 %), taking BTC and ETH; SOL goes at 10/11 of its own way
to 0.9, where BTC is at 1.01 - (10/11)(0.21) = 0.819091 (-18.091 %). Loss: 1,100.
"""

from __future__ import annotations

import itertools
import math
import random
import statistics
import time

import orjson
import pytest

from monitor.simulator.binance_usdm import (
    SimAccount,
    SimExchange,
    SimMarket,
    SimPosition,
    SymbolSettings,
    build_app,
    continuous_brackets,
)
from monitor.simulator.http import LocalServer
from tests.e2e import run_cli, write_config

KEY, SECRET = "stress-key", "stress-secret"
BTC, ETH, SOL = "BTC/USDT:USDT", "ETH/USDT:USDT", "SOL/USDT:USDT"
DAY = 1_760_054_400_000  # 2025-10-10 00:00 UTC
MINUTE = 60_000
FLAT = continuous_brackets(((100_000_000, 0.01, 100),))


def venue(tick: float = 0.01) -> SimExchange:
    markets = {
        "BTCUSDT": SimMarket("BTCUSDT", "BTC", "USDT", tick, 0.001, 0.001, 1000, 120, 5, FLAT),
        "ETHUSDT": SimMarket("ETHUSDT", "ETH", "USDT", tick, 0.001, 0.001, 10000, 2000, 5, FLAT),
        "SOLUSDT": SimMarket("SOLUSDT", "SOL", "USDT", tick, 1, 1, 1_000_000, 5000, 5, FLAT),
    }
    exchange = SimExchange(
        markets, {"BTCUSDT": 50_000.0, "ETHUSDT": 2_500.0, "SOLUSDT": 100.0},
        funding_rates={"BTCUSDT": 0.0001, "ETHUSDT": 0.0001, "SOLUSDT": 0.0001},
    )  # fmt: skip
    positions = [
        SimPosition("BTCUSDT", 0.1, 50_000.0, leverage=20),
        SimPosition("ETHUSDT", 1.0, 2_500.0, leverage=5),
        SimPosition("SOLUSDT", 10, 100.0, margin_type="isolated", isolated_wallet=100.0,
                    leverage=10),
    ]  # fmt: skip
    exchange.add_account(
        SimAccount(
            KEY, SECRET, {"USDT": 1_000.0}, positions,
            symbol_settings={p.symbol: SymbolSettings(p.leverage, p.margin_type)
                             for p in positions},
        )
    )  # fmt: skip
    # two 5m candles per symbol: open, then the extremes, then the close
    btc = [50_000, 50_500, 40_000, 45_000, 45_000, 44_000, 47_500, 47_000]
    sol = [100, 100, 90, 95, 95, 94, 99, 98]
    minutes = [0, 1, 2, 4, 5, 6, 7, 9]
    exchange.price_history = {
        "BTCUSDT": [(DAY + m * MINUTE, float(p)) for m, p in zip(minutes, btc, strict=True)],
        "ETHUSDT": [(DAY + m * MINUTE, p / 20) for m, p in zip(minutes, btc, strict=True)],
        "SOLUSDT": [(DAY + m * MINUTE, float(p)) for m, p in zip(minutes, sol, strict=True)],
    }
    return exchange


async def test_replay_of_a_served_day_and_the_uniform_shocks(tmp_path):
    exchange = venue()
    async with LocalServer(build_app(exchange)) as server:
        account = {"name": "main", "exchange": "binanceusdm", "api_key": KEY, "secret": SECRET,
                   "rest_url": server.base_url}  # fmt: skip
        config = write_config(tmp_path / "config.yaml", [account])
        code, out, err = await run_cli(
            "stress", "--config", str(config), "--json", "--replay", "2025-10-10"
        )
    assert out.strip(), err
    doc = orjson.loads(out)
    [acct] = doc["accounts"]
    rows = {row["shock"]: row for row in acct["shocks"]}
    replay = rows["replay 2025-10-10"]
    assert replay["liquidated"] == [BTC, ETH, SOL]
    assert replay["loss"] == pytest.approx(1_100.0)
    assert replay["move"] == pytest.approx(47_000 / 50_000 - 1)
    # the candles crossed the wire: ccxt asked the simulator's klines endpoint
    assert "GET /fapi/v1/klines" in exchange.requests
    # uniform moves on the live book: the hand figures of test_stress_units.py
    ten = rows["uniform -10%"]
    assert ten["liquidated"] == [SOL] and ten["loss"] == pytest.approx(850.0)
    assert ten["pool_ratio"] == pytest.approx(67.5 / 250)
    assert ten["pool_distance"] == pytest.approx(182.5 / 6_682.5)
    assert ten["as_cross"] == {"liquidated": [], "loss": pytest.approx(850.0)}
    assert ten["as_isolated"]["liquidated"] == [BTC, SOL]
    assert ten["as_isolated"]["loss"] == pytest.approx(1_000 / 3 + 100 + 250)
    assert rows["uniform -20%"]["liquidated"] == [SOL, BTC, ETH]
    # without 30 days of history there are no betas or volatilities: said, not guessed
    assert not any(name.startswith(("beta", "3σ")) for name in rows)
    assert code == 1  # uniform -20% (the default --survive) liquidates


async def test_text_report_fits_80_columns(tmp_path):
    async with LocalServer(build_app(venue())) as server:
        account = {"name": "main", "exchange": "binanceusdm", "api_key": KEY, "secret": SECRET,
                   "rest_url": server.base_url}  # fmt: skip
        config = write_config(tmp_path / "config.yaml", [account])
        _, out, _ = await run_cli("stress", "--config", str(config), "--replay", "worst")
    lines = out.splitlines()
    assert max(map(len, lines)) <= 80, out
    text = "\n".join(lines)
    assert "-9.09% SOL/USDT" in text and "1,100.00" in text
    assert "To survive uniform -20%" in text and "add 560.01 of margin" in text
    assert "or move BTC/USDT to isolated (loss then 933.33)" in text
    assert "replay 2021-05-19 left out" in text  # 'worst' asked for days the venue lacks


HOUR = 3_600_000


async def test_beta_and_sigma_shocks_from_the_venues_candles(tmp_path):
    """A month of hourly history: BTC's log returns drawn at random, ETH's exactly twice
    and SOL's exactly three times BTC's, so the betas are 2 and 3 (the served prices
    carry 8 decimals: rounding cannot move them). With betas 1, 2, 3 the beta shock
    BTC -10 % is the one derived in test_stress_units.py: SOL goes at BTC -3.03 %, the
    pool (BTC, ETH) at -9.34 %. The 3-sigma 7-day move of BTC is exp(-3 s) - 1, with s
    the sample deviation of the last 168 hourly log returns x sqrt 24 (computed here
    from the generated path with the statistics module)."""
    exchange = venue(tick=0.00000001)
    now = int(time.time() * 1000)
    first = now - now % HOUR - 800 * HOUR
    rng = random.Random(7)
    logs = [0.0]
    for _ in range(799):
        logs.append(logs[-1] + rng.gauss(0.0, 0.004))
    times = [first + h * HOUR for h in range(800)]
    exchange.price_history = {
        symbol: [(t, round(start * math.exp(k * x), 8)) for t, x in zip(times, logs, strict=True)]
        for symbol, start, k in (("BTCUSDT", 50_000, 1), ("ETHUSDT", 2_500, 2), ("SOLUSDT", 100, 3))
    }
    async with LocalServer(build_app(exchange)) as server:
        account = {"name": "main", "exchange": "binanceusdm", "api_key": KEY, "secret": SECRET,
                   "rest_url": server.base_url}  # fmt: skip
        config = write_config(tmp_path / "config.yaml", [account])
        _, out, err = await run_cli("stress", "--config", str(config), "--json")
        _, text, _ = await run_cli("stress", "--config", str(config))
    rows = {row["shock"]: row for row in orjson.loads(out)["accounts"][0]["shocks"]}
    beta = rows["beta BTC -10%"]
    assert beta["liquidated"] == [SOL, BTC, ETH] and beta["loss"] == pytest.approx(1_100)
    assert "-3.03% SOL/USDT" in text and "-9.34% BTC/USDT" in text
    closes = [50_000 * math.exp(x) for x in logs[-169:]]
    returns = [math.log(b / a) for a, b in itertools.pairwise(closes)]
    sigma = statistics.stdev(returns) * math.sqrt(24)
    seven = rows["3σ 7d down"]
    assert seven["move"] == pytest.approx(math.exp(-3 * sigma) - 1, rel=1e-6)
    assert rows["3σ 7d up"]["move"] == pytest.approx(math.exp(3 * sigma) - 1, rel=1e-6)
    # SOL moves exp(-9 s) - 1, past its -9.09 %; the pool keeps going
    assert math.exp(-9 * sigma) - 1 < -90 / 990 and seven["liquidated"] == [SOL]
    assert {"3σ 1d down", "3σ 30d down", "beta BTC +20%"} <= set(rows), err


async def test_replay_over_the_bybit_dialect(tmp_path):
    """The same command on Bybit's wire (/v5/market/kline, rows newest first). The day:
    BTC opens 100, falls to 70 (-30 %), closes 92; ETH and SOL have no candles and move
    with BTC (said in a note). The unified account's cross pool is hedged (BTC long 0.5,
    ETH short 10: a 1 % fall costs 325 and earns 320), so it lives; the isolated SOL
    long (1,000 SOL at 150 with 29,241.6 + 10,000 of equity, MM under 2,000) needs a fall
    of about a quarter: it goes on the way down."""
    from tests.servers.bybit import TEST_KEY as BYBIT_KEY
    from tests.servers.bybit import TEST_SECRET as BYBIT_SECRET
    from tests.servers.bybit import create_app, hybrid_unified_account

    state = hybrid_unified_account()
    state.price_history = {
        "BTCUSDT": [(DAY, 100.0), (DAY + 2 * MINUTE, 70.0), (DAY + 4 * MINUTE, 92.0)]
    }
    async with LocalServer(create_app(state)) as server:
        account = {"name": "uta", "exchange": "bybit", "api_key": BYBIT_KEY,
                   "secret": BYBIT_SECRET, "rest_url": server.base_url}  # fmt: skip
        config = write_config(tmp_path / "config.yaml", [account])
        _, out, err = await run_cli(
            "stress", "--config", str(config), "--json", "--replay", "2025-10-10"
        )
    rows = {row["shock"]: row for row in orjson.loads(out)["accounts"][0]["shocks"]}
    replay = rows["replay 2025-10-10"]
    assert replay["move"] == pytest.approx(-0.08), err
    assert replay["liquidated"] == [SOL]
    assert ("GET", "/v5/market/kline") in state.called()


async def test_replay_over_the_hyperliquid_dialect(tmp_path):
    """Hyperliquid's candleSnapshot, on the hybrid wallet of tests/servers/hyperliquid.py
    (cross BTC long 0.5 and ETH short 4, account value 9,400; isolated SOL long 20 with
    marginUsed 760, liquidation at 150 - 685 / 20 / 0.975 = 114.87, -23.42 %). The day:
    BTC 100 -> 70 -> 92, ETH and SOL without candles move with BTC. SOL goes on the way
    to 70; the pool at -30 % has 9,400 - 9,000 + 3,600 = 4,000 against MM 430: it lives.
    Loss: SOL's 760, and the pool's PnL at the close (-8 %): 2,400 - 960 = 1,440."""
    from tests.servers.hyperliquid import FIXTURE_ADDRESS, create_app, hybrid_user

    state = hybrid_user()
    state.price_history = {
        "BTC": [(DAY, 100.0), (DAY + 2 * MINUTE, 70.0), (DAY + 4 * MINUTE, 92.0)]
    }
    async with LocalServer(create_app(state)) as server:
        account = {"name": "hl", "exchange": "hyperliquid", "wallet_address": FIXTURE_ADDRESS,
                   "rest_url": server.base_url}  # fmt: skip
        config = write_config(tmp_path / "config.yaml", [account])
        _, out, err = await run_cli(
            "stress", "--config", str(config), "--json", "--replay", "2025-10-10"
        )
    rows = {row["shock"]: row for row in orjson.loads(out)["accounts"][0]["shocks"]}
    replay = rows["replay 2025-10-10"]
    assert replay["liquidated"] == ["SOL/USDC:USDC"], err
    assert replay["loss"] == pytest.approx(760 + 1_440)
    assert "candleSnapshot" in state.info_types()


async def test_replay_over_the_okx_dialect_with_two_settlement_assets(tmp_path):
    """OKX's candles (a day this old is asked of /market/history-candles, rows newest
    first) on the hybrid account of tests/servers/okx.py: an isolated BTC-USDT long
    (50 x 0.01 BTC, margin 2,900, liquidation at 26,100 / 0.49775 = 52,437, -12.6 %), a
    cross ETH-USDT short and an isolated inverse BTC-USD short. The day: BTC 100 -> 80 ->
    92, the others moving with BTC. The linear long goes on the way down; the shorts
    gain. Losses come per pool asset: nothing of different assets is summed."""
    from tests.servers import okx

    state = okx.hybrid_account()
    state.price_history = {
        "BTC-USDT-SWAP": [(DAY, 100.0), (DAY + 2 * MINUTE, 80.0), (DAY + 4 * MINUTE, 92.0)]
    }
    async with LocalServer(okx.create_app(state)) as server:
        account = {"name": "okx-main", "exchange": "okx", "api_key": okx.FIXTURE_API_KEY,
                   "secret": okx.FIXTURE_SECRET, "password": okx.FIXTURE_PASSPHRASE,
                   "rest_url": server.base_url}  # fmt: skip
        config = write_config(tmp_path / "config.yaml", [account])
        _, out, err = await run_cli(
            "stress", "--config", str(config), "--json", "--replay", "2025-10-10"
        )
    rows = {row["shock"]: row for row in orjson.loads(out)["accounts"][0]["shocks"]}
    replay = rows["replay 2025-10-10"]
    assert replay["liquidated"] == [BTC], err
    # the cross short draws on the account's USD-valued pool (multi-currency margin), the
    # isolated long on its USDT, the inverse short on its BTC
    assert set(replay["loss"]) == {"USD", "USDT", "BTC"}
    # the long takes its whole margin balance with it: 2,900 + uPnL 0.5 x 2,000
    assert replay["loss"]["USDT"] == pytest.approx(3_900)

    assert "/api/v5/market/history-candles" in state.paths_called()


async def test_bad_arguments_are_refused_before_any_read(tmp_path):
    account = {"name": "main", "exchange": "binanceusdm", "api_key": KEY, "secret": SECRET,
               "rest_url": "http://127.0.0.1:9"}  # fmt: skip
    config = str(write_config(tmp_path / "config.yaml", [account]))
    code, out, err = await run_cli("stress", "--config", config, "--replay", "2025-13-01")
    assert (code, out) == (64, "") and "not '2025-13-01'" in err and "Traceback" not in err
    code, _, err = await run_cli("stress", "--config", config, "--account", "other")
    assert code == 64 and "no account 'other'" in err
