"""`marginwatch status` end to end against the Bybit v5 dialect on loopback.

The hybrid account (tests/servers/bybit.py) holds a cross long, a cross short and an
isolated long in one unified account. Every expected figure is Bybit's formula evaluated
by hand here (MM = value at the mark x tier rate - deduction + fee to close at the
bankruptcy price, the rules in force since 2 Sep 2025), never by the engine.
"""

from __future__ import annotations

import pytest

from monitor.simulator.http import LocalServer
from tests.e2e import by_symbol, status_json, write_config
from tests.servers.bybit import (
    TEST_KEY,
    TEST_SECRET,
    BybitState,
    create_app,
    hybrid_unified_account,
)

OK, UNKNOWN = 0, 3
TAKER = 0.00055

# Fees to close, at entry x (1 -/+ 1/leverage) for a long/short.
BTC_FEE = 0.5 * 62_000 * (1 - 1 / 10) * TAKER  # 15.345
ETH_FEE = 10 * 3_000 * (1 + 1 / 20) * TAKER  # 17.325
SOL_FEE = 1_000 * 140 * (1 - 1 / 5) * TAKER  # 61.6
# MM at the mark: BTC and ETH in tier 1 (0.5 %, no deduction), SOL in tier 2 (1.5 %, 500).
BTC_MM = 0.5 * 65_000 * 0.005 + BTC_FEE
ETH_MM = 10 * 3_200 * 0.005 + ETH_FEE
SOL_MM = 1_000 * 150 * 0.015 - 500 + SOL_FEE
SOL_BALANCE = 29_241.6  # positionBalance: IM at entry + fee to close + 1,180 added
BTC_PNL, ETH_PNL, SOL_PNL = 1_500.0, -2_000.0, 10_000.0


def account(name: str, url: str) -> dict:
    return {"name": name, "exchange": "bybit", "api_key": TEST_KEY, "secret": TEST_SECRET,
            "rest_url": url}  # fmt: skip


async def run_status(tmp_path, state: BybitState) -> tuple[int, dict, str]:
    async with LocalServer(create_app(state)) as server:
        config = write_config(tmp_path / "config.yaml", [account("uta", server.base_url)])
        code, doc, err = await status_json(config)
    [acct] = doc["accounts"]
    return code, acct, err


async def test_status_json_reports_hybrid_unified_account(tmp_path):
    code, acct, err = await run_status(tmp_path, hybrid_unified_account())

    assert acct["ok"] is True and acct["error"] is None, err
    assert acct["model"] == "bybit" and acct["exact"] is True
    positions = by_symbol(acct)
    btc, eth, sol = (positions[s] for s in ("BTC/USDT:USDT", "ETH/USDT:USDT", "SOL/USDT:USDT"))
    assert [(p["side"], p["margin_mode"]) for p in (btc, eth, sol)] == [
        ("long", "cross"),
        ("short", "cross"),
        ("long", "isolated"),
    ]

    # Isolated long: positionBalance + uPnL = MM at the liquidation price P (tier 2 there):
    # 29,241.6 + 1,000 (P - 140) = 1,000 P x 0.015 - 500 + 61.6  ->  985 P = 110,320.
    assert sol["isolated_margin"] == pytest.approx(SOL_BALANCE)
    assert sol["liquidation_price"] == pytest.approx(112.0, rel=1e-12)
    assert sol["maintenance_margin"] == pytest.approx(SOL_MM, rel=1e-12)
    assert sol["margin_ratio"] == pytest.approx(SOL_MM / (SOL_BALANCE + SOL_PNL), rel=1e-12)
    # Bybit's own figures beside ours: liqPrice, positionMM, and their ratio.
    assert sol["exchange_liquidation_price"] == 112.0
    assert sol["exchange_maintenance_margin"] == 1_811.6
    assert sol["exchange_margin_ratio"] == pytest.approx(1_811.6 / (29_241.6 + 10_000))

    # Cross pool: the cross margin balance less the uPnL Bybit counted in it.
    [pool] = acct["pools"]
    wallet = 20_258.4 - (BTC_PNL + ETH_PNL)  # = 50,000 wallet - 29,241.6 isolated
    assert pool["asset"] == "USD"
    assert pool["wallet_balance"] == pytest.approx(wallet, rel=1e-12)
    assert pool["margin_balance"] == pytest.approx(20_258.4, rel=1e-12)
    assert pool["maintenance_margin"] == pytest.approx(BTC_MM + ETH_MM, rel=1e-12)
    assert pool["margin_ratio"] == pytest.approx((BTC_MM + ETH_MM) / 20_258.4, rel=1e-12)
    # accountMMRate is Bybit's 355.17 / 20,258.4 truncated to 4 decimals.
    assert pool["exchange_margin_ratio"] == 0.0175
    assert pool["margin_ratio"] == pytest.approx(0.0175, abs=1e-4)

    # Each cross position with the other held at its mark:
    # BTC: wallet + ETH (uPnL - MM) + 0.5 (P - 62,000) = 0.5 P x 0.005 + 15.345
    btc_lp = (0.5 * 62_000 + BTC_FEE - (wallet + ETH_PNL - ETH_MM)) / (0.5 - 0.5 * 0.005)
    # ETH: wallet + BTC (uPnL - MM) + 10 (3,000 - P) = 10 P x 0.005 + 17.325
    eth_lp = (wallet + BTC_PNL - BTC_MM + 10 * 3_000 - ETH_FEE) / (10 + 10 * 0.005)
    assert btc["liquidation_price"] == pytest.approx(btc_lp, rel=1e-12)
    assert eth["liquidation_price"] == pytest.approx(eth_lp, rel=1e-12)
    assert btc["maintenance_margin"] == pytest.approx(BTC_MM, rel=1e-12)
    assert eth["margin_ratio"] == pool["margin_ratio"]
    # Unified cross: Bybit sends liqPrice "" (unknown, not safe); positionMM is shown.
    assert btc["exchange_liquidation_price"] is None
    assert eth["exchange_liquidation_price"] is None
    assert (btc["exchange_maintenance_margin"], eth["exchange_maintenance_margin"]) == (
        177.845,
        177.325,
    )
    # Every distance is over 25 % and every ratio under 5 %: OK under the defaults.
    assert {p["level"] for p in (btc, eth, sol, pool)} == {"ok"}
    assert code == OK


async def test_isolated_margin_account_reads_the_mode_from_account_info(tmp_path):
    # On UTA 2.0 the margin mode is account-wide and tradeMode is always 0.
    state = hybrid_unified_account()
    state.account.margin_mode = "ISOLATED_MARGIN"
    state.account.positions = [p for p in state.account.positions if p.symbol == "SOLUSDT"]
    state.account.positions[0].trade_mode = 0

    code, acct, err = await run_status(tmp_path, state)

    assert acct["ok"] is True, err
    [sol] = acct["positions"]
    assert sol["margin_mode"] == "isolated"
    assert sol["liquidation_price"] == pytest.approx(112.0, rel=1e-12)
    assert acct["pools"] == []  # account-wide totals do not apply to isolated margin
    assert code == OK


async def test_portfolio_margin_account_is_refused_not_guessed(tmp_path):
    state = hybrid_unified_account()
    state.account.margin_mode = "PORTFOLIO_MARGIN"

    code, acct, _ = await run_status(tmp_path, state)

    assert acct["ok"] is False
    assert "portfolio margin" in acct["error"]
    assert code == UNKNOWN
