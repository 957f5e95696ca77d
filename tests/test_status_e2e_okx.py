"""`marginwatch status` end to end against the OKX v5 dialect server on loopback.

One account holds an isolated linear long, a cross linear short and an isolated inverse
short (tests/servers/okx.py, `hybrid_account`). Expected figures are OKX's formulas
evaluated by hand here (margin-models.md, OKX section), taker rate 0.0005:
  MM + fee = value x (tier mmr + 0.0005); ours = (MM + fee) / equity = 1 / OKX mgnRatio
"""

from __future__ import annotations

import pytest

from monitor.simulator.http import LocalServer
from tests.e2e import by_symbol, run_cli, status_json, write_config
from tests.servers import okx

WARN = 1

BTC_LINEAR, ETH_LINEAR, BTC_INVERSE = "BTC/USDT:USDT", "ETH/USDT:USDT", "BTC/USD:BTC"
INVERSE_UPL = 3_000 * (1 / 60_000 - 1 / 62_000)


def account(url: str) -> dict:
    return {"name": "okx-main", "exchange": "okx", "api_key": okx.FIXTURE_API_KEY,
            "secret": okx.FIXTURE_SECRET, "password": okx.FIXTURE_PASSPHRASE,
            "rest_url": url}  # fmt: skip


async def status_of(tmp_path, state: okx.OkxState) -> tuple[int, dict, str]:
    async with LocalServer(okx.create_app(state)) as server:
        config = write_config(tmp_path / "config.yaml", [account(server.base_url)])
        code, doc, err = await status_json(config)
    [acct] = doc["accounts"]
    assert acct["ok"] is True and acct["error"] is None, err
    return code, acct, err


def assert_isolated_positions(positions: dict) -> None:
    # BTC-USDT isolated long: 50 x 0.01 BTC, entry 58,000, mark 60,000, margin 2,900.
    #   value 30,000, tier 1 (0.004): MM = 30,000 x 0.004 = 120 (OKX's mmr: the same figure),
    #   liquidation fees kept apart = 30,000 x 0.0005 = 15; MM + fees = 135
    #   equity = 2,900 + 1,000 = 3,900; OKX mgnRatio = 3,900 / 135 -> ours 135 / 3,900
    #   LP: 2,900 + 0.5 (P - 58,000) = 0.5 P x 0.0045  =>  P = 26,100 / 0.49775
    btc = positions[BTC_LINEAR]
    assert (btc["side"], btc["margin_mode"], btc["contracts"]) == ("long", "isolated", 50)
    assert btc["isolated_margin"] == pytest.approx(2_900)
    assert btc["maintenance_margin"] == pytest.approx(120, rel=1e-12)
    assert btc["exchange_maintenance_margin"] == pytest.approx(120)
    assert btc["liquidation_fees"] == pytest.approx(15, rel=1e-12)
    assert btc["margin_ratio"] == pytest.approx(135 / 3_900, rel=1e-12)
    assert btc["exchange_margin_ratio"] == pytest.approx(135 / 3_900, rel=1e-9)
    assert btc["liquidation_price"] == pytest.approx(26_100 / 0.49775, rel=1e-12)
    assert btc["exchange_liquidation_price"] == pytest.approx(26_100 / 0.49775, rel=1e-9)
    assert btc["liquidation_distance"] == pytest.approx(1 - 26_100 / 0.49775 / 60_000)

    # BTC-USD isolated inverse short: 30 x 100 USD, entry 62,000, mark 60,000, 0.0025 BTC.
    #   value 0.05 BTC: MM = 0.05 x 0.005 = 0.00025 BTC (OKX's mmr), fees 0.000025 BTC
    #   LP: 0.0025 + 3,000 (1/P - 1/62,000) = 3,000 / P x 0.0055
    #       =>  P = 3,000 x 0.9945 / (3,000 / 62,000 - 0.0025)
    inverse = positions[BTC_INVERSE]
    lp = 3_000 * 0.9945 / (3_000 / 62_000 - 0.0025)
    assert (inverse["side"], inverse["margin_mode"], inverse["settle"]) == (
        "short",
        "isolated",
        "BTC",
    )
    assert inverse["maintenance_margin"] == pytest.approx(0.00025, rel=1e-12)
    assert inverse["exchange_maintenance_margin"] == pytest.approx(0.00025)
    assert inverse["liquidation_fees"] == pytest.approx(0.000025, rel=1e-12)
    assert inverse["unrealized_pnl"] == pytest.approx(INVERSE_UPL, rel=1e-12)
    ratio = 0.000275 / (0.0025 + INVERSE_UPL)
    assert inverse["margin_ratio"] == pytest.approx(ratio, rel=1e-12)
    assert inverse["exchange_margin_ratio"] == pytest.approx(ratio, rel=1e-9)
    assert inverse["liquidation_price"] == pytest.approx(lp, rel=1e-12)
    assert inverse["exchange_liquidation_price"] == pytest.approx(lp, rel=1e-9)


async def test_status_json_multi_currency_account(tmp_path):
    code, acct, _ = await status_of(tmp_path, okx.hybrid_account())

    assert acct["model"] == "okx" and acct["exact"] is True
    positions = by_symbol(acct)
    assert_isolated_positions(positions)

    # The cross ETH short draws on the account's USD pool: adjEq 7,750 (isolated excluded).
    #   wallet = 7,750 - upl 200 = 7,550; MM = 6,000 x 0.005 = 30 (OKX's account mmr),
    #   fees 6,000 x 0.0005 = 3: MM + fees = 33
    #   ours = 33 / 7,750 (OKX mgnRatio 7,750 / 33)
    #   LP (others held): 7,550 + 2 (3,100 - P) = 2 P x 0.0055  =>  P = 13,750 / 2.011
    [pool] = acct["pools"]
    assert (pool["asset"], pool["wallet_balance"]) == ("USD", pytest.approx(7_550))
    assert pool["margin_balance"] == pytest.approx(7_750)
    assert pool["maintenance_margin"] == pytest.approx(30, rel=1e-12)
    assert pool["liquidation_fees"] == pytest.approx(3, rel=1e-12)
    assert pool["margin_ratio"] == pytest.approx(33 / 7_750, rel=1e-12)
    assert pool["exchange_margin_ratio"] == pytest.approx(33 / 7_750, rel=1e-9)
    eth = positions[ETH_LINEAR]
    assert (eth["side"], eth["margin_mode"]) == ("short", "cross")
    assert eth["margin_ratio"] == pytest.approx(33 / 7_750, rel=1e-12)
    assert eth["exchange_margin_ratio"] == pytest.approx(33 / 7_750, rel=1e-9)
    assert eth["liquidation_price"] == pytest.approx(13_750 / 2.011, rel=1e-12)
    assert eth["exchange_liquidation_price"] == pytest.approx(13_750 / 2.011, rel=1e-9)

    # Default thresholds: the inverse short is 8.4 % from liquidation (isolated warn < 10 %);
    # BTC is 12.6 % away, the cross short 128 %.
    levels = {symbol: p["level"] for symbol, p in positions.items()}
    assert levels == {BTC_LINEAR: "ok", ETH_LINEAR: "ok", BTC_INVERSE: "warn"}
    assert pool["level"] == "ok"
    assert code == WARN


async def test_status_json_single_currency_account_with_unknown_cross_liq_px(tmp_path):
    state = okx.single_currency_account()
    eth_row = next(p for p in state.account.positions if p.inst_id == okx.ETH_USDT)
    eth_row.liq_px = None  # OKX sends "" for cross positions at times: unknown, not safe

    _, acct, _ = await status_of(tmp_path, state)

    positions = by_symbol(acct)
    assert_isolated_positions(positions)
    # USDT cross pool alone: eq - isoEq = 11,200 - 3,900 = 7,300; wallet 7,100
    #   ours = 33 / 7,300; LP: 7,100 + 2 (3,100 - P) = 0.011 P  =>  P = 13,300 / 2.011
    [pool] = acct["pools"]
    assert (pool["asset"], pool["wallet_balance"]) == ("USDT", pytest.approx(7_100))
    assert pool["margin_ratio"] == pytest.approx(33 / 7_300, rel=1e-12)
    assert pool["exchange_margin_ratio"] == pytest.approx(33 / 7_300, rel=1e-9)
    eth = positions[ETH_LINEAR]
    assert eth["exchange_liquidation_price"] is None
    assert eth["liquidation_price"] == pytest.approx(13_300 / 2.011, rel=1e-12)


async def test_status_text_shows_okx_maintenance_margin_and_fees_apart(tmp_path, monkeypatch):
    """OKX's MM as OKX shows it beside the fees it keeps apart, readable at 80 columns.

    Figures as derived above: BTC-USDT long MM 120 + fees 15; ETH-USDT short 30 + 3 (and
    the USD pool the same); BTC-USD short 0.00025 + 0.000025 BTC.
    """
    monkeypatch.setenv("COLUMNS", "80")
    async with LocalServer(okx.create_app(okx.hybrid_account())) as server:
        config = write_config(tmp_path / "config.yaml", [account(server.base_url)])
        _code, out, err = await run_cli("status", "--config", str(config))
    assert "maintenance margin and the fees kept apart" in out, out + err
    rows = {line.split("│")[1].strip(): line for line in out.splitlines() if line.count("│") > 4}
    assert "120.00" in rows["BTC/USDT:USDT long"] and "15.00" in rows["BTC/USDT:USDT long"]
    assert "30.00" in rows["pool USD"] and "3.00" in rows["pool USD"]
    assert "0.00025" in rows["BTC/USD:BTC short"] and "0.000025" in rows["BTC/USD:BTC short"]
    # the first line, the monitoring-plugin summary, stays one line when piped
    assert max(len(line) for line in out.splitlines()[1:]) <= 80
