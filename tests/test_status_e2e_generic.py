"""`marginwatch status` end to end against BingX, MEXC and WEEX dialect servers on loopback.

These exchanges have no exact model: they are priced by the generic one (MM = position
value x maintenance rate of its tier, no deduction), so the expected figures below are
derived by hand with exactly that arithmetic. Each account is hybrid (a cross BTC long and
an isolated ETH short); the exchange's own liquidation prices are stored in the servers
and must appear beside ours. WEEX publishes no maintenance rate at all: its figures must
be unknown, with a reason, and the status UNKNOWN.
"""

from __future__ import annotations

from contextlib import AsyncExitStack
from types import ModuleType

import pytest

from monitor.simulator.http import LocalServer
from tests.e2e import by_symbol, run_cli, status_json, write_config
from tests.servers import bingx, mexc, weex

OK, UNKNOWN = 0, 3
BTC, ETH = "BTC/USDT:USDT", "ETH/USDT:USDT"

# The three fixtures share one book: cross BTC long 0.5 @ 60,000 (mark 63,000), isolated
# ETH short 10 @ 3,000 (mark 3,100) on 6,000 isolated margin, a 20,000 USDT wallet.
BTC_QTY, BTC_ENTRY, BTC_MARK = 0.5, 60_000, 63_000
ETH_QTY, ETH_ENTRY, ETH_MARK, ETH_MARGIN = 10, 3_000, 3_100, 6_000
CROSS_WALLET = 20_000 - ETH_MARGIN  # isolated margin is no part of the cross pool
BTC_PNL = BTC_QTY * (BTC_MARK - BTC_ENTRY)  # +1,500
ETH_PNL = -ETH_QTY * (ETH_MARK - ETH_ENTRY)  # -1,000


def account(module: ModuleType, url: str, name: str | None = None, **overrides: str) -> dict:
    exchange = module.__name__.rsplit(".", 1)[-1]
    doc = {"name": name or exchange, "exchange": exchange, "api_key": module.FIXTURE_API_KEY,
           "secret": module.FIXTURE_SECRET, "rest_url": url}  # fmt: skip
    if hasattr(module, "FIXTURE_PASSPHRASE"):
        doc["password"] = module.FIXTURE_PASSPHRASE
    return {**doc, **overrides}


async def status_of(tmp_path, module: ModuleType, state) -> tuple[int, dict, str]:
    async with LocalServer(module.create_app(state)) as server:
        config = write_config(tmp_path / "config.yaml", [account(module, server.base_url)])
        code, doc, err = await status_json(config)
    [acct] = doc["accounts"]
    assert acct["ok"] is True, (acct["error"], err)
    assert (acct["model"], acct["exact"]) == ("generic", False)
    return code, acct, err


def cross_long_liquidation(rate: float) -> float:
    """Wallet + q (P - entry) = q P rate, the BTC long alone in the cross pool."""
    return (BTC_QTY * BTC_ENTRY - CROSS_WALLET) / (BTC_QTY * (1 - rate))


def isolated_short_liquidation(rate: float) -> float:
    """Margin + q (entry - P) = q P rate."""
    return (ETH_MARGIN + ETH_QTY * ETH_ENTRY) / (ETH_QTY * (1 + rate))


def assert_hand_derived(acct: dict, btc_rate: float, eth_rate: float) -> None:
    positions = by_symbol(acct)
    btc, eth = positions[BTC], positions[ETH]
    [pool] = acct["pools"]
    btc_mm = BTC_QTY * BTC_MARK * btc_rate
    eth_mm = ETH_QTY * ETH_MARK * eth_rate
    assert (btc["side"], btc["margin_mode"]) == ("long", "cross")
    assert (eth["side"], eth["margin_mode"]) == ("short", "isolated")
    assert btc["notional"] == pytest.approx(BTC_QTY * BTC_MARK)
    assert eth["notional"] == pytest.approx(ETH_QTY * ETH_MARK)

    assert pool["wallet_balance"] == pytest.approx(CROSS_WALLET)
    assert pool["margin_balance"] == pytest.approx(CROSS_WALLET + BTC_PNL)
    assert pool["maintenance_margin"] == pytest.approx(btc_mm)
    assert pool["margin_ratio"] == pytest.approx(btc_mm / (CROSS_WALLET + BTC_PNL))
    assert btc["liquidation_price"] == pytest.approx(cross_long_liquidation(btc_rate))
    assert btc["liquidation_distance"] == pytest.approx(
        (BTC_MARK - cross_long_liquidation(btc_rate)) / BTC_MARK
    )

    assert eth["isolated_margin"] == pytest.approx(ETH_MARGIN)  # uPnL not folded in
    assert eth["maintenance_margin"] == pytest.approx(eth_mm)
    assert eth["margin_ratio"] == pytest.approx(eth_mm / (ETH_MARGIN + ETH_PNL))
    assert eth["liquidation_price"] == pytest.approx(isolated_short_liquidation(eth_rate))
    for p in (btc, eth):
        assert p["exchange_maintenance_margin"] is None  # none reported: ccxt's is back-solved
        assert p["note"] is None


async def test_bingx_hybrid_account_matches_hand_derived_figures(tmp_path):
    state = bingx.hybrid_account()
    code, acct, _ = await status_of(tmp_path, bingx, state)
    # per-market tiers: BTC value 31,500 in tier 1 (0.4 %), ETH 31,000 in tier 1 (0.5 %)
    assert_hand_derived(acct, btc_rate=0.004, eth_rate=0.005)
    btc, eth = by_symbol(acct)[BTC], by_symbol(acct)[ETH]
    assert btc["exchange_liquidation_price"] == 32_128.5
    assert eth["exchange_liquidation_price"] == 3_582.1
    assert btc["liquidation_price"] == pytest.approx(32_128.5, abs=0.05)
    assert eth["liquidation_price"] == pytest.approx(3_582.1, abs=0.05)
    tier_calls = [r for r in state.requests if r.path.endswith("/maintMarginRatio")]
    assert sorted(r.query["symbol"] for r in tier_calls) == ["BTC-USDT", "ETH-USDT"]
    assert all(r.signed for r in tier_calls)
    assert {p["level"] for p in acct["positions"]} == {"ok"} and code == OK


async def test_mexc_hybrid_account_uses_mexc_risk_levels(tmp_path):
    state = mexc.hybrid_account()
    code, acct, _ = await status_of(tmp_path, mexc, state)
    # BTC 5,000 contracts: past riskBaseVol 2,000, so level 2 = 0.004 + 0.002 (ccxt says 0.004);
    # ETH 1,000 contracts: level 2 of the custom table (500 < 1,000 <= 2,000), 1 %
    assert_hand_derived(acct, btc_rate=0.006, eth_rate=0.01)
    btc, eth = by_symbol(acct)[BTC], by_symbol(acct)[ETH]
    assert (btc["contracts"], btc["contract_size"]) == (5_000, 0.0001)
    assert btc["mark_price"] == BTC_MARK  # MEXC positions carry none: the fair price is read
    assert btc["exchange_liquidation_price"] == 32_193.2
    assert eth["exchange_liquidation_price"] == 3_564.4
    assert any(r.path == "/api/v1/contract/fair_price/BTC_USDT" for r in state.requests)
    # the risk levels come from the detail load_markets read: asked for once, not again
    # for the tiers (a second ask waits 5 s in ccxt's rate limiter)
    assert [r.path for r in state.requests].count("/api/v1/contract/detail") == 1
    assert {p["level"] for p in acct["positions"]} == {"ok"} and code == OK


async def test_weex_gives_too_little_so_figures_are_unknown_with_a_reason(tmp_path):
    code, acct, _ = await status_of(tmp_path, weex, weex.hybrid_account())
    btc, eth = by_symbol(acct)[BTC], by_symbol(acct)[ETH]
    [pool] = acct["pools"]
    # what WEEX does give is still read right: base-unit sizes, marks, wallets
    assert btc["notional"] == pytest.approx(BTC_QTY * BTC_MARK)  # not x contractVal 0.0001
    assert eth["isolated_margin"] == pytest.approx(ETH_MARGIN)
    assert pool["wallet_balance"] == pytest.approx(CROSS_WALLET)
    assert pool["margin_balance"] == pytest.approx(CROSS_WALLET + BTC_PNL)
    # ... but no maintenance rate anywhere: no MM, ratio or liquidation price of ours
    for target in (pool, btc, eth):
        for figure in ("maintenance_margin", "margin_ratio", "liquidation_distance"):
            assert target[figure] is None, figure
        assert target["note"] and "no maintenance tiers" in target["note"]
        assert target["level"] == "unknown"
    assert btc["liquidation_price"] is None and eth["liquidation_price"] is None
    assert btc["exchange_liquidation_price"] is None  # WEEX's "0" means none, never safe
    assert eth["exchange_liquidation_price"] == 3_570
    assert code == UNKNOWN


async def test_bingx_market_without_tiers_is_unknown_not_guessed(tmp_path):
    state = bingx.hybrid_account()
    del state.tiers["ETH-USDT"]  # BingX answers an empty list for it
    code, acct, _ = await status_of(tmp_path, bingx, state)
    btc, eth = by_symbol(acct)[BTC], by_symbol(acct)[ETH]
    assert eth["maintenance_margin"] is None and eth["liquidation_price"] is None
    assert eth["note"] == f"no maintenance tiers published for {ETH}"
    assert eth["exchange_liquidation_price"] == 3_582.1
    assert btc["liquidation_price"] == pytest.approx(cross_long_liquidation(0.004))
    assert code == UNKNOWN


@pytest.mark.parametrize("module", [bingx, mexc, weex], ids=lambda m: m.__name__)
async def test_wrong_secret_is_refused_by_the_signature_check(tmp_path, module):
    async with LocalServer(module.create_app(module.hybrid_account())) as server:
        bad = account(module, server.base_url, secret="not-the-secret")
        code, doc, err = await status_json(write_config(tmp_path / "config.yaml", [bad]))
    [acct] = doc["accounts"]
    assert acct["ok"] is False and acct["error_kind"] == "auth", acct["error"]
    assert "not-the-secret" not in acct["error"] and "not-the-secret" not in err
    assert code == UNKNOWN


async def test_table_names_the_generic_model_in_each_account_title(tmp_path):
    modules = (bingx, mexc, weex)
    async with AsyncExitStack() as stack:
        servers = [
            await stack.enter_async_context(LocalServer(m.create_app(m.hybrid_account())))
            for m in modules
        ]
        accounts = [account(m, s.base_url) for m, s in zip(modules, servers, strict=True)]
        config = write_config(tmp_path / "config.yaml", accounts)
        code, out, err = await run_cli("status", "--config", str(config))
    for m in modules:
        name = m.__name__.rsplit(".", 1)[-1]
        assert f"{name} · {name} · model generic (generic, approximate)" in out, out + err
    assert code == UNKNOWN  # WEEX's figures are unknown
