"""`marginwatch status` end to end against the Binance USD-M dialect on loopback.

The account is hybrid: the two cross longs of Binance's published FAQ example and an
isolated short. Expected liquidation prices are Binance's published figures (cross)
and the FAQ formula evaluated by hand (isolated). A hedge-mode book checks the monitor's
figures and the simulated exchange's own (its FAQ implementation, not our engine)
against the same hand derivations.
"""

from __future__ import annotations

import pytest

from monitor.simulator.binance_usdm import (
    FAQ_API_KEY,
    FAQ_SECRET,
    binance_faq_hybrid_account,
    build_app,
)
from monitor.simulator.build import build_exchange
from monitor.simulator.http import LocalServer
from monitor.simulator.risk import RiskEngine
from monitor.simulator.scenario import parse_scenario
from tests.e2e import by_symbol, run_cli, status_json, write_config

# statuses of a monitoring plugin
OK, CRITICAL, UNKNOWN = 0, 2, 3


# thresholds under which the FAQ account is entirely OK, so only a failure can raise the status
RELAXED = {
    "cross": {"distance_warn": 0.05, "distance_critical": 0.02},
    "isolated": {"distance_warn": 0.02, "distance_critical": 0.01, "distance_imminent": 0.005},
}


def account(name: str, url: str, key: str = FAQ_API_KEY, secret: str = FAQ_SECRET) -> dict:
    return {"name": name, "exchange": "binanceusdm", "api_key": key, "secret": secret,
            "rest_url": url}  # fmt: skip


async def test_status_json_reports_hybrid_account_with_binance_figures(tmp_path):
    async with LocalServer(build_app(binance_faq_hybrid_account())) as server:
        config = write_config(tmp_path / "config.yaml", [account("main", server.base_url)])
        code, doc, err = await status_json(config)

    [acct] = doc["accounts"]
    assert acct["ok"] is True and acct["error"] is None, err
    assert acct["model"] == "binance-usdm" and acct["exact"] is True
    positions = by_symbol(acct)
    btc, eth, sol = (
        positions["BTC/USDT:USDT"],
        positions["ETH/USDT:USDT"],
        positions["SOL/USDT:USDT"],
    )
    assert btc["liquidation_price"] == pytest.approx(26_316.89, abs=0.005)
    assert eth["liquidation_price"] == pytest.approx(1_153.26, abs=0.005)
    assert btc["exchange_liquidation_price"] == pytest.approx(26_316.89)
    assert (btc["side"], btc["margin_mode"]) == ("long", "cross")
    assert (sol["side"], sol["margin_mode"]) == ("short", "isolated")
    # isolated short, bracket 2 % / cum 275: LP = (6000 + 275 + 400 x 142.5) / (400 x 0.02 + 400)
    assert sol["liquidation_price"] == pytest.approx((6_000 + 275 + 400 * 142.5) / 408, rel=1e-9)
    assert sol["isolated_margin"] == pytest.approx(6_000)
    # isolated ratio = MM / (isolated wallet + uPnL), MM = 400 x 148.25 x 0.02 - 275
    sol_mm = 400 * 148.25 * 0.02 - 275
    assert sol["maintenance_margin"] == pytest.approx(sol_mm)
    assert sol["margin_ratio"] == pytest.approx(sol_mm / (6_000 - 400 * (148.25 - 142.50)))
    assert sol["liquidation_distance"] == pytest.approx(
        abs(148.25 - sol["liquidation_price"]) / 148.25
    )

    [pool] = acct["pools"]
    btc_mm = 109.488 * 31_967.27 * 0.025 - 16_300
    eth_mm = 3_683.979 * 1_335.18 * 0.10 - 135_365
    pnl = 109.488 * (31_967.27 - 32_481.98) + 3_683.979 * (1_335.18 - 1_456.84)
    assert pool["asset"] == "USDT"
    assert pool["wallet_balance"] == pytest.approx(1_535_443.01)  # isolated wallet excluded
    assert pool["maintenance_margin"] == pytest.approx(btc_mm + eth_mm)
    assert pool["margin_ratio"] == pytest.approx((btc_mm + eth_mm) / (1_535_443.01 + pnl))
    # the exchange's own figures, combined by Binance's definition, agree with ours
    assert pool["exchange_margin_ratio"] == pytest.approx(pool["margin_ratio"], rel=1e-6)
    for number in ("wallet_balance", "margin_ratio", "maintenance_margin"):
        assert isinstance(pool[number], float)
    # default thresholds: cross ratio ~41 % (< 50 % warn) but ETH alone is 13.6 % from liquidation
    # (cross distance warn 15 %); the isolated SOL short is 4.6 % away (critical < 5 %)
    # the pool moving as one is 7.7 % from liquidation: under the 8 % cross critical distance
    assert (pool["level"], btc["level"], eth["level"]) == ("critical", "ok", "warn")
    assert sol["level"] == "critical"
    assert code == CRITICAL


async def test_failed_account_is_reported_and_others_still_print(tmp_path):
    async with LocalServer(build_app(binance_faq_hybrid_account())) as server:
        config = write_config(
            tmp_path / "config.yaml",
            [
                account("good", server.base_url),
                account("bad", server.base_url, secret="wrong-secret"),
            ],
            thresholds=RELAXED,
        )
        code, doc, err = await status_json(config)
    accounts = {a["name"]: a for a in doc["accounts"]}
    assert accounts["good"]["ok"] is True and len(accounts["good"]["positions"]) == 3
    assert accounts["bad"]["ok"] is False
    assert accounts["bad"]["error_kind"] == "auth"
    assert "wrong-secret" not in accounts["bad"]["error"] and "wrong-secret" not in err
    assert code == UNKNOWN


async def test_all_ok_account_exits_zero(tmp_path):
    """The status as a monitoring plugin sees it: a real process's exit status."""
    async with LocalServer(build_app(binance_faq_hybrid_account())) as server:
        config = write_config(
            tmp_path / "config.yaml", [account("good", server.base_url)], thresholds=RELAXED
        )
        code, doc, _ = await status_json(config, spawn=True)
    assert {p["level"] for p in doc["accounts"][0]["positions"]} == {"ok"}
    assert code == OK


async def test_markets_are_cached_on_disk_and_reused(tmp_path):
    exchange = binance_faq_hybrid_account()
    async with LocalServer(build_app(exchange)) as server:
        config = write_config(tmp_path / "config.yaml", [account("main", server.base_url)])
        await status_json(config)
        cached = list((tmp_path / "state" / "cache").glob("markets-binanceusdm-*.json"))
        assert len(cached) == 1
        exchange.requests.clear()
        _code, doc, _ = await status_json(config)
    assert doc["accounts"][0]["ok"] is True
    assert not [r for r in exchange.requests if r.endswith("/exchangeInfo")]


async def test_invalid_config_exits_unknown_with_the_key_path(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text("accounts:\n  - name: a\n    exchange: binanceusdm\n    api_secret: x\n")
    code, _out, err = await run_cli("status", "--config", str(path), "--json")
    assert code == UNKNOWN
    assert "accounts[0].api_secret" in err and "config.yaml:4" in err


# Hedge mode over the wire. Cross BTC LONG 0.5 @ 60,000 and SHORT 0.3 @ 62,000 on a 1,000
# USDT cross wallet, mark 60,000 (both legs 0.4 % / cum 0), FAQ hedge formula by hand:
#   LP = (1,000 - 0.5 x 60,000 + 0.3 x 62,000) / (0.5 x 0.004 + 0.3 x 0.004 - 0.5 + 0.3)
#      = -10,400 / -0.1968 = 52,845.53
# Isolated SOL SHORT 300 @ 150 with 9,000 of margin: at the mark (notional 45,000) the
# bracket is 1.5 % / cum 25, but at the liquidation price the notional passes 50,000, into
# 2 % / cum 275: LP = (9,000 + 275 + 300 x 150) / (300 x 0.02 + 300) = 54,275 / 306.
HEDGED_BOOK = """
seed: 1
symbols:
  BTCUSDT: {start: 60000}
  SOLUSDT: {start: 150}
segments: [{duration: 10s}]
accounts:
  - name: hedged
    position_mode: hedge
    balances: {USDT: 1000}
    positions:
      - {symbol: BTCUSDT, side: long, size: 0.5, leverage: 20, entry: 60000}
      - {symbol: BTCUSDT, side: short, size: 0.3, leverage: 20, entry: 62000}
      - {symbol: SOLUSDT, side: short, size: 300, leverage: 5, margin_mode: isolated,
         isolated_margin: 9000, entry: 150}
"""


async def test_hedge_mode_liquidation_prices_agree_with_the_simulated_exchange(tmp_path):
    exchange = build_exchange(parse_scenario(HEDGED_BOOK))
    RiskEngine(exchange).check()  # the venue's own reported liquidation prices
    [spec] = parse_scenario(HEDGED_BOOK).accounts
    key, secret = spec.credentials
    async with LocalServer(build_app(exchange)) as server:
        config = write_config(tmp_path / "c.yaml", [account("h", server.base_url, key, secret)])
        _code, doc, err = await status_json(config)

    [acct] = doc["accounts"]
    assert acct["ok"] is True, err
    legs = {(p["symbol"], p["side"]): p for p in acct["positions"]}
    expected = {
        ("BTC/USDT:USDT", "long"): 10_400 / 0.1968,
        ("BTC/USDT:USDT", "short"): 10_400 / 0.1968,
        ("SOL/USDT:USDT", "short"): 54_275 / 306,
    }
    assert set(legs) == set(expected)
    for leg, price in expected.items():
        # ours (the engine) and the exchange's (the simulator's rules, 8 decimals on REST)
        assert legs[leg]["liquidation_price"] == pytest.approx(price, rel=1e-12)
        assert legs[leg]["exchange_liquidation_price"] == pytest.approx(price, abs=1e-8)
