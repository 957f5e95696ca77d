"""`marginwatch status` end to end against the Hyperliquid `/info` dialect on loopback.

The account is configured with a wallet address only (no key: every query is public) and
is hybrid: cross BTC long and ETH short, isolated SOL long (tests/servers/hyperliquid.py
`hybrid_user`). Expected figures are worked by hand below from the fixture's inputs, with
Hyperliquid's published liquidation formula (shared/reference/margin-models.md):

    liq = mark - side x margin_available / |szi| / (1 - l x side),  l = 1 / (2 x maxLeverage)
"""

from __future__ import annotations

import pytest

from monitor.simulator.http import LocalServer
from tests.e2e import by_symbol, status_json, write_config
from tests.servers import hyperliquid
from tests.servers.hyperliquid import FIXTURE_ADDRESS, HlState

OK = 0
BTC, ETH, SOL = "BTC/USDC:USDC", "ETH/USDC:USDC", "SOL/USDC:USDC"


def account(url: str) -> dict:
    return {"name": "hl", "exchange": "hyperliquid", "wallet_address": FIXTURE_ADDRESS,
            "rest_url": url}  # fmt: skip


async def run_status(tmp_path, state: HlState) -> tuple[int, dict, str]:
    async with LocalServer(hyperliquid.create_app(state)) as server:
        config = write_config(tmp_path / "config.yaml", [account(server.base_url)])
        code, doc, err = await status_json(config)
    [acct] = doc["accounts"]
    assert acct["ok"] is True and acct["error"] is None, err
    assert acct["model"] == "hyperliquid" and acct["exact"] is True
    return code, acct, err


async def test_status_json_reports_hybrid_wallet_with_hyperliquid_figures(tmp_path):
    state = hyperliquid.hybrid_user()
    code, acct, _ = await run_status(tmp_path, state)
    positions = by_symbol(acct)
    btc, eth, sol = positions[BTC], positions[ETH], positions[SOL]

    # Cross ledger: totalRawUsd -8,600 = USDC cash 8,000 - 0.5 x 58,000 + 4 x 3,100, so
    # the wallet excluding uPnL is -8,600 + 0.5 x 58,000 - 4 x 3,100 = 8,000; the SOL
    # isolated margin is not in it. uPnL 0.5 x 2,000 + 4 x 100 = 1,400: accountValue 9,400.
    # MM: BTC 30,000 / 80 = 375, ETH 12,000 / 50 = 240; margin_available 9,400 - 615 = 8,785.
    [pool] = acct["pools"]
    assert pool["asset"] == "USDC"
    assert pool["wallet_balance"] == pytest.approx(8_000)
    assert pool["unrealized_pnl"] == pytest.approx(1_400)
    assert pool["maintenance_margin"] == pytest.approx(615)
    assert pool["margin_ratio"] == pytest.approx(615 / 9_400)
    # crossMaintenanceMarginUsed / crossMarginSummary.accountValue, beside ours
    assert pool["exchange_margin_ratio"] == pytest.approx(615 / 9_400)
    # every cross position moving by x: 8,785 + (0.5 x 60,000 - 4 x 3,000) x - 615 x = 0
    assert pool["liquidation_move"] == pytest.approx(-8_785 / 17_385)

    assert (btc["side"], btc["margin_mode"], btc["contracts"]) == ("long", "cross", 0.5)
    assert (eth["side"], eth["margin_mode"], eth["contracts"]) == ("short", "cross", 4)
    assert btc["maintenance_margin"] == pytest.approx(375)
    assert eth["maintenance_margin"] == pytest.approx(240)
    # BTC: 60,000 - 8,785 / 0.5 / (1 - 0.0125); check 9,400 + 0.5 (P - 60,000) = P / 160 + 240
    assert btc["liquidation_price"] == pytest.approx(20_840 / 0.49375, rel=1e-12)
    assert btc["exchange_liquidation_price"] == pytest.approx(60_000 - 8_785 / 0.5 / 0.9875)
    # ETH: 3,000 + 8,785 / 4 / (1 + 0.02); check 9,400 - 4 (P - 3,000) = 0.08 P + 375
    assert eth["liquidation_price"] == pytest.approx(21_025 / 4.08, rel=1e-12)
    assert eth["exchange_liquidation_price"] == pytest.approx(3_000 + 8_785 / 4 / 1.02)
    assert btc["liquidation_distance"] == pytest.approx(1 - 20_840 / 0.49375 / 60_000)

    # Isolated SOL long 20 @ 140, mark 150: rawUsd -2,240, marginUsed 760 (incl. uPnL 200).
    # Our isolated wallet excludes uPnL: -2,240 + 20 x 140 = 560 (the margin posted).
    # MM 3,000 / 40 = 75; margin_available 760 - 75 = 685.
    assert (sol["side"], sol["margin_mode"]) == ("long", "isolated")
    assert sol["isolated_margin"] == pytest.approx(560)
    assert sol["unrealized_pnl"] == pytest.approx(200)
    assert sol["maintenance_margin"] == pytest.approx(75)
    assert sol["margin_ratio"] == pytest.approx(75 / 760)
    # 150 - 685 / 20 / (1 - 0.025); check -2,240 + 20 P = 0.5 P
    assert sol["liquidation_price"] == pytest.approx(2_240 / 19.5, rel=1e-12)
    assert sol["exchange_liquidation_price"] == pytest.approx(150 - 685 / 20 / 0.975)

    # cross ratio 6.5 %, nearest distance 23 % (SOL): every default threshold is clear
    assert {p["level"] for p in acct["positions"]} | {pool["level"]} == {"ok"}
    assert code == OK

    # read-only: public /info queries for this address only, no credentials anywhere
    assert {r.path for r in state.requests} == {"/info"}
    assert {"metaAndAssetCtxs", "clearinghouseState", "meta"} == set(state.info_types())
    for request in state.requests:
        assert request.body.get("user", FIXTURE_ADDRESS) == FIXTURE_ADDRESS
        assert not {"authorization", "x-api-key"} & {h.lower() for h in request.headers}


async def test_tiered_margin_table_and_unknown_exchange_price(tmp_path):
    """BTC on a listed tiered table: 40x, then 25x from 10,000, then 10x from 50,000.

    Deductions: 10,000 x (0.02 - 0.0125) = 75; 75 + 50,000 x (0.05 - 0.02) = 1,575.
    BTC's 30,000 sits in the 25x tier: MM = 30,000 x 0.02 - 75 = 525, so Hyperliquid's
    crossMaintenanceMarginUsed is 525 + 240 = 765 and margin_available 9,400 - 765 = 8,635.
    Hyperliquid's liquidationPx for ETH is null here: unknown, and ours is still shown.
    """
    state = hyperliquid.hybrid_user()
    state.asset("BTC").margin_table_id = 56
    state.margin_tables[56] = ((0.0, 40), (10_000.0, 25), (50_000.0, 10))
    user = state.users[FIXTURE_ADDRESS]
    user.cross_maintenance_margin_used = 765
    btc_raw, eth_raw, _ = user.positions
    btc_raw.liquidation_px = 60_000 - 8_635 / 0.5 / (1 - 0.02)
    eth_raw.liquidation_px = None

    code, acct, _ = await run_status(tmp_path, state)
    positions = by_symbol(acct)
    btc, eth = positions[BTC], positions[ETH]
    [pool] = acct["pools"]
    assert btc["maintenance_margin"] == pytest.approx(525)
    assert pool["maintenance_margin"] == pytest.approx(765)
    assert pool["margin_ratio"] == pytest.approx(765 / 9_400)
    assert pool["exchange_margin_ratio"] == pytest.approx(765 / 9_400)
    # 8,160 + 0.5 (P - 58,000) = 0.01 P - 75  ->  P = 20,765 / 0.49 (notional 21,189:
    # still the 25x tier), the published formula's 60,000 - 8,635 / 0.5 / 0.98
    assert btc["liquidation_price"] == pytest.approx(20_765 / 0.49, rel=1e-12)
    assert btc["exchange_liquidation_price"] == pytest.approx(btc["liquidation_price"])
    # ETH with BTC held: 8,475 - 4 (P - 3,100) = 0.08 P  ->  P = 20,875 / 4.08
    assert eth["liquidation_price"] == pytest.approx(20_875 / 4.08, rel=1e-12)
    assert eth["exchange_liquidation_price"] is None
    assert code == OK
