"""The simulator speaking Bybit v5: unmodified ccxt `bybit` against its REST, its public
tickers stream, and its own liquidations by Bybit's rules.

Expected figures are derived by hand in comments. The hybrid book is the Bybit test
server's (tests/servers/bybit.py, `hybrid_unified_account`, whose docstring derives every
exchange figure from Bybit's help centre): BTCUSDT cross long 0.5 @ 62,000 (10x),
ETHUSDT cross short 10 @ 3,000 (20x), SOLUSDT isolated long 1,000 @ 140 (5x) holding
positionBalance 29,241.6; marks 65,000 / 3,200 / 150; taker fee 0.00055; USDT wallet
50,000, of which 50,000 - 29,241.6 = 20,758.4 is the cross wallet.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import ccxt
import orjson
import pytest
import websockets

from monitor.simulator.binance_usdm import SimAccount, SimExchange, SimPosition, usdm_markets
from monitor.simulator.bybit_v5 import STREAMS_KEY, BybitRiskEngine, build_app
from monitor.simulator.bybit_v5.markets import RISK_LIMITS, TAKER_FEE_RATE
from monitor.simulator.http import LocalServer
from tests.e2e import by_symbol, status_json, write_config
from tests.servers.bybit import make_client

KEY, SECRET = "sim-bybit-key", "sim-bybit-secret"
BTC, ETH, SOL = "BTC/USDT:USDT", "ETH/USDT:USDT", "SOL/USDT:USDT"


def hybrid_book(*, funding: float = 0.0, can_transfer: bool = True) -> SimExchange:
    exchange = SimExchange(
        markets=usdm_markets(),
        mark_prices={"BTCUSDT": 65_000.0, "ETHUSDT": 3_200.0, "SOLUSDT": 150.0},
    )
    positions = [
        SimPosition("BTCUSDT", 0.5, 62_000.0, leverage=10),
        SimPosition("ETHUSDT", -10, 3_000.0, leverage=20),
        SimPosition(
            "SOLUSDT", 1_000, 140.0, margin_type="isolated", isolated_wallet=29_241.6, leverage=5
        ),
    ]
    exchange.add_account(
        SimAccount(
            KEY,
            SECRET,
            {"USDT": 20_758.4},
            positions,
            can_transfer=can_transfer,
            funding={"USDT": funding} if funding else {},
            taker_fee_rate=TAKER_FEE_RATE,
        )
    )
    return exchange


@pytest.fixture
async def served() -> AsyncIterator[tuple[SimExchange, Any, str]]:
    exchange = hybrid_book(funding=1_000.0)
    async with LocalServer(build_app(exchange)) as server:
        client = make_client(server.base_url, KEY, SECRET)
        try:
            yield exchange, client, server.base_url
        finally:
            await client.close()


def _info(positions: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {p["symbol"]: p["info"] for p in positions}


async def test_positions_and_wallet_are_bybits_figures_for_the_hybrid_book(served):
    """The test server's hand derivation (its fixture docstring), figure by figure:
    BTC: fee to close 0.5 x 62,000 x (1 - 1/10) x 0.00055 = 15.345; value at mark 32,500
      in tier 1 (0.5 %): MM 162.5 + 15.345 = 177.845, IM 3,250 + 15.345 = 3,265.345.
    ETH: fee 10 x 3,000 x (1 + 1/20) x 0.00055 = 17.325; MM 160 + 17.325 = 177.325,
      IM 1,600 + 17.325 = 1,617.325.
    SOL: fee 1,000 x 140 x 0.8 x 0.00055 = 61.6; value 150,000 in tier 2 (1.5 %, deduction
      500): MM 2,250 - 500 + 61.6 = 1,811.6; IM at entry 28,000 + 61.6 = 28,061.6;
      liquidation 29,241.6 + 1,000 (P - 140) = 15 P - 500 + 61.6 -> P = 110,320 / 985 = 112.
    Account: margin balance 20,758.4 + 1,500 - 2,000 = 20,258.4; MM 355.17; IM 4,882.67;
      MM rate 0.017531 -> 0.0175, IM rate 0.24102 -> 0.241; available 15,375.73;
      equity 50,000 + 9,500 = 59,500; coin IM 4,882.67 + 29,241.6, coin MM 2,166.77."""
    _, client, _ = served
    await client.load_markets()
    positions = await client.fetch_positions(None, {"subType": "linear", "settleCoin": "USDT"})
    rows = _info(positions)
    assert float(rows[BTC]["positionMM"]) == pytest.approx(177.845)
    assert float(rows[BTC]["positionIM"]) == pytest.approx(3_265.345)
    assert rows[BTC]["liqPrice"] == "" and rows[BTC]["tradeMode"] == 0
    assert float(rows[ETH]["positionMM"]) == pytest.approx(177.325)
    assert float(rows[ETH]["positionIM"]) == pytest.approx(1_617.325)
    assert rows[ETH]["side"] == "Sell" and float(rows[ETH]["unrealisedPnl"]) == -2_000
    assert float(rows[SOL]["positionMM"]) == pytest.approx(1_811.6)
    assert float(rows[SOL]["positionIM"]) == pytest.approx(28_061.6)
    assert float(rows[SOL]["positionBalance"]) == pytest.approx(29_241.6)
    assert float(rows[SOL]["liqPrice"]) == pytest.approx(112.0)
    assert rows[SOL]["tradeMode"] == 1 and rows[SOL]["riskId"] == 2
    reply = await client.privateGetV5AccountWalletBalance({"accountType": "UNIFIED"})
    (totals,) = reply["result"]["list"]
    expected = {
        "totalWalletBalance": 50_000, "totalEquity": 59_500, "totalPerpUPL": 9_500,
        "totalMarginBalance": 20_258.4, "totalMaintenanceMargin": 355.17,
        "totalInitialMargin": 4_882.67, "totalAvailableBalance": 15_375.73,
    }  # fmt: skip
    for field, value in expected.items():
        assert float(totals[field]) == pytest.approx(value), field
    assert totals["accountMMRate"] == "0.0175" and totals["accountIMRate"] == "0.241"
    (coin,) = totals["coin"]
    assert float(coin["totalPositionIM"]) == pytest.approx(34_124.27)
    assert float(coin["totalPositionMM"]) == pytest.approx(2_166.77)


async def test_risk_limits_instruments_and_tickers_as_ccxt_reads_them(served):
    """BTC tiers: 2M at 0.5 %, then 4M at 1 % with deduction 2M x 0.5 % = 10,000."""
    _, client, _ = served
    tiers = await client.fetch_market_leverage_tiers(BTC)
    assert [(t["maxNotional"], t["maintenanceMarginRate"]) for t in tiers[:2]] == [
        (2_000_000, 0.005),
        (4_000_000, 0.01),
    ]
    assert tiers[0]["info"]["mmDeduction"] == "" and tiers[1]["info"]["mmDeduction"] == "10000"
    market = client.market(SOL)
    assert market["precision"]["price"] == 0.01 and market["limits"]["leverage"]["max"] == 50
    ticker = await client.fetch_ticker(BTC)
    assert ticker["markPrice"] == 65_000


async def test_reduce_only_order_by_order_link_id_fills_once_and_is_found_again(served):
    """Selling 0.2 of the 0.5 BTC long at the mark 65,000: PnL 0.2 x 3,000 = 600, fee
    0.2 x 65,000 x 0.00055 = 7.15, so the wallet becomes 50,000 + 592.85 = 50,592.85."""
    exchange, client, _ = served
    await client.load_markets()
    params = {"reduceOnly": True, "clientOrderId": "mw-cut-1"}
    placed = await client.create_order(BTC, "market", "sell", 0.2, None, params)
    assert placed["clientOrderId"] == "mw-cut-1"
    with pytest.raises(ccxt.ExchangeError, match="110072"):
        await client.create_order(BTC, "market", "sell", 0.2, None, params)
    for method, extra in (("privateGetV5OrderRealtime", {"openOnly": 1}),
                          ("privateGetV5OrderHistory", {})):  # fmt: skip
        query = {"category": "linear", "orderLinkId": "mw-cut-1", **extra}
        (row,) = (await getattr(client, method)(query))["result"]["list"]
        assert row["orderStatus"] == "Filled" and row["cumExecQty"] == "0.2"
        assert row["orderId"] == placed["id"] and row["reduceOnly"] is True
        assert float(row["cumExecFee"]) == pytest.approx(7.15)
    open_only = await client.privateGetV5OrderRealtime(
        {"category": "linear", "orderLinkId": "mw-cut-1"}
    )
    assert open_only["result"]["list"] == []  # a filled order is not open
    reply = await client.privateGetV5AccountWalletBalance({"accountType": "UNIFIED"})
    assert float(reply["result"]["list"][0]["totalWalletBalance"]) == pytest.approx(50_592.85)
    assert len(exchange.accounts[KEY].orders) == 1
    for side, amount in (("buy", 0.1), ("sell", 0.4)):  # same side; more than the 0.3 left
        with pytest.raises(ccxt.ExchangeError, match="110017"):
            await client.create_order(BTC, "market", side, amount, None, {"reduceOnly": True})


async def test_add_margin_moves_the_isolated_liquidation_price(served):
    """100 more into SOL: balance 29,341.6; P = (140,000 - 29,341.6 - 500 + 61.6) / 985
    = 110,220 / 985 = 111.8985 (tier 2 holds 111,898); available 15,375.73 - 100."""
    _, client, _ = served
    reply = await client.privatePostV5PositionAddMargin(
        {"category": "linear", "symbol": "SOLUSDT", "margin": "100", "positionIdx": 0}
    )
    row = reply["result"]
    assert float(row["positionBalance"]) == pytest.approx(29_341.6)
    assert float(row["liqPrice"]) == pytest.approx(111.90)
    wallet = await client.privateGetV5AccountWalletBalance({"accountType": "UNIFIED"})
    assert float(wallet["result"]["list"][0]["totalAvailableBalance"]) == pytest.approx(15_275.73)
    for symbol, margin, code in (("BTCUSDT", "10", "110015"), ("SOLUSDT", "20000", "110014")):
        with pytest.raises(ccxt.ExchangeError, match=code):
            await client.privatePostV5PositionAddMargin(
                {"category": "linear", "symbol": symbol, "margin": margin, "positionIdx": 0}
            )


async def test_internal_transfer_is_idempotent_by_its_transfer_id(served):
    """FUND holds 1,000: moving 300 in leaves 700; the same transferId again moves
    nothing (131214) and is found in the transfer list."""
    exchange, client, _ = served
    transfer_id = str(uuid.uuid4())
    await client.transfer("USDT", 300, "funding", "unified", {"transferId": transfer_id})
    with pytest.raises(ccxt.ExchangeError, match="131214"):
        await client.transfer("USDT", 300, "funding", "unified", {"transferId": transfer_id})
    listed = await client.privateGetV5AssetTransferQueryInterTransferList(
        {"transferId": transfer_id}
    )
    (row,) = listed["result"]["list"]
    assert (row["fromAccountType"], row["toAccountType"], row["amount"]) == (
        "FUND",
        "UNIFIED",
        "300",
    )
    balance = await client.privateGetV5AssetTransferQueryAccountCoinsBalance(
        {"accountType": "FUND", "coin": "USDT"}
    )
    assert balance["result"]["balance"][0]["walletBalance"] == "700"
    assert exchange.accounts[KEY].cross_wallet["USDT"] == pytest.approx(20_758.4 + 300)
    with pytest.raises(ccxt.ExchangeError, match="131212"):
        await client.transfer("USDT", 800, "funding", "unified", {"transferId": str(uuid.uuid4())})


async def test_keys_signatures_and_permissions(served):
    exchange, client, base_url = served
    permissions = (await client.privateGetV5UserQueryApi())["result"]
    assert permissions["readOnly"] == 0
    assert permissions["permissions"]["Wallet"] == ["AccountTransfer"]
    exchange.accounts[KEY].can_withdraw = True
    permissions = (await client.privateGetV5UserQueryApi())["result"]
    assert "Withdraw" in permissions["permissions"]["Wallet"]
    for key, secret in ((KEY, "wrong-secret"), ("unknown-key", SECRET)):
        stranger = make_client(base_url, key, secret)
        try:
            with pytest.raises(ccxt.AuthenticationError):
                await stranger.privateGetV5UserQueryApi()
        finally:
            await stranger.close()
    exchange.accounts[KEY].can_transfer = False
    with pytest.raises(ccxt.PermissionDenied):
        await client.transfer("USDT", 1, "funding", "unified", {"transferId": str(uuid.uuid4())})


# --- Bybit's liquidations -----------------------------------------------------------------


def test_isolated_position_is_liquidated_at_its_price_and_loses_only_its_balance():
    """SOL's liquidation price is 112 (above): at 112.01 it survives, at 112 balance +
    uPnL = 29,241.6 - 28,000 = 1,241.6 = MM 112,000 x 1.5 % - 500 + 61.6. It closes at the
    bankruptcy price 140 - 29,241.6 / 1,000 = 110.7584, losing its 29,241.6; the cross
    wallet keeps its 20,758.4."""
    exchange = hybrid_book()
    account = exchange.accounts[KEY]
    risk = BybitRiskEngine(exchange)
    exchange.mark_prices["SOLUSDT"] = 112.01
    risk.check()
    assert account.orders == []
    exchange.mark_prices["SOLUSDT"] = 112.0
    risk.check()
    (order,) = account.orders
    assert (order.type, order.symbol, order.side) == ("LIQUIDATION", "SOLUSDT", "SELL")
    assert order.avg_price == pytest.approx(110.7584)
    assert order.realized_pnl == pytest.approx(-29_241.6)
    assert account.cross_wallet["USDT"] == pytest.approx(20_758.4)
    assert [p.symbol for p in account.open_positions()] == ["BTCUSDT", "ETHUSDT"]


def test_cross_pool_is_liquidated_when_the_account_mm_rate_reaches_one():
    """1 BTC long @ 60,000 at 50x on a 1,500 wallet: fee to close 60,000 x 0.98 x 0.00055
    = 32.34; liquidation where 1,500 + P - 60,000 = 0.005 P + 32.34, P = 58,826.47. At
    58,827 the margin balance 327 > MM 326.475; at 58,826 it is 326 <= 326.47. The whole
    cross balance goes: the order realizes -1,174 - 326 = -1,500 at 58,500."""
    exchange = SimExchange(markets=usdm_markets(), mark_prices={"BTCUSDT": 58_827.0})
    long = SimPosition("BTCUSDT", 1, 60_000.0, leverage=50)
    account = exchange.add_account(
        SimAccount(KEY, SECRET, {"USDT": 1_500.0}, [long], taker_fee_rate=TAKER_FEE_RATE)
    )
    risk = BybitRiskEngine(exchange)
    risk.check()
    assert account.orders == []
    exchange.mark_prices["BTCUSDT"] = 58_826.0
    risk.check()
    (order,) = account.orders
    assert order.type == "LIQUIDATION" and order.realized_pnl == pytest.approx(-1_500)
    assert order.avg_price == pytest.approx(58_500)
    assert account.cross_wallet["USDT"] == 0 and account.open_positions() == []


# --- the public tickers stream ------------------------------------------------------------


async def _send(ws: Any, request: dict[str, Any]) -> None:
    await ws.send(orjson.dumps(request).decode())  # a text frame, as Bybit expects


async def test_tickers_stream_sends_a_snapshot_then_deltas_of_what_changed():
    exchange = hybrid_book()
    app = build_app(exchange)
    async with LocalServer(app) as server:
        url = f"ws://127.0.0.1:{server.port}/v5/public/linear"
        async with websockets.connect(url) as ws:
            await _send(ws, {"op": "subscribe", "args": ["tickers.BTCUSDT"], "req_id": "a"})
            ack = orjson.loads(await ws.recv())
            assert (ack["success"], ack["op"], ack["req_id"]) == (True, "subscribe", "a")
            snapshot = orjson.loads(await ws.recv())
            assert (snapshot["topic"], snapshot["type"]) == ("tickers.BTCUSDT", "snapshot")
            assert snapshot["data"]["markPrice"] == "65000" and "fundingRate" in snapshot["data"]
            exchange.mark_prices["BTCUSDT"] = 64_990.5
            app[STREAMS_KEY].publish_marks()
            delta = orjson.loads(await ws.recv())
            assert delta["type"] == "delta" and delta["data"]["symbol"] == "BTCUSDT"
            assert delta["data"]["markPrice"] == "64990.5" and "fundingRate" not in delta["data"]
            await _send(ws, {"op": "ping"})
            pong = orjson.loads(await ws.recv())
            assert (pong["op"], pong["ret_msg"]) == ("ping", "pong")
            await _send(ws, {"op": "subscribe", "args": ["tickers.NOPEUSDT"]})
            assert orjson.loads(await ws.recv())["success"] is False


def test_the_scenario_docs_list_the_simulated_bybits_risk_limits():
    """docs/scenarios.md's Bybit table is the simulator's (value: rate, max leverage)."""
    doc = (Path(__file__).resolve().parents[1] / "docs" / "scenarios.md").read_text("utf-8")

    def amount(value: float) -> str:
        return f"{value / 1e6:g}M" if value >= 1e6 else f"{value / 1e3:g}k"

    for symbol, tiers in RISK_LIMITS.items():
        row = "; ".join(
            f"{amount(t.risk_limit_value)}: {t.maintenance_rate * 100:g} %, {t.max_leverage:g}x"
            for t in tiers
        )
        [line] = [line for line in doc.splitlines() if f"`{symbol}`" in line and " %, " in line]
        assert line.endswith(f"| {row} |"), (symbol, line, row)


async def test_hedge_legs_by_position_idx_and_liquidations_in_the_order_history():
    """Hedge mode: the long leg is positionIdx 1, the short 2; 0 is refused (10001). A
    reduce-only sell on leg 1 closes only the long. The exchange's liquidation of SOL
    (at 112, above) is in the order history with no orderLinkId, CreateByLiq."""
    exchange = hybrid_book()
    account = exchange.accounts[KEY]
    account.dual_side_position = True
    btc = account.position("BTCUSDT")
    assert btc is not None
    btc.position_side = "LONG"
    account.positions.append(SimPosition("BTCUSDT", -0.2, 64_000.0, "SHORT", leverage=10))
    for leg in account.positions[1:]:
        leg.position_side = "SHORT" if leg.amount < 0 else "LONG"
    async with LocalServer(build_app(exchange)) as server:
        client = make_client(server.base_url, KEY, SECRET)
        try:
            await client.load_markets()
            with pytest.raises(ccxt.ExchangeError, match="10001"):
                await client.create_order(BTC, "market", "sell", 0.1, None, {"reduceOnly": True})
            await client.create_order(
                BTC, "market", "sell", 0.5, None, {"reduceOnly": True, "positionIdx": 1}
            )
            btc_legs = [
                (p.position_side, p.amount) for p in account.positions if p.symbol == "BTCUSDT"
            ]
            assert btc_legs == [("SHORT", -0.2)]
            exchange.mark_prices["SOLUSDT"] = 112.0
            BybitRiskEngine(exchange).check()
            history = await client.privateGetV5OrderHistory({"category": "linear"})
            newest, ours = history["result"]["list"][:2]
        finally:
            await client.close()
    assert (newest["symbol"], newest["orderLinkId"], newest["createType"]) == (
        "SOLUSDT", "", "CreateByLiq"
    )  # fmt: skip
    assert (ours["positionIdx"], ours["cumExecQty"], ours["createType"]) == (
        1,
        "0.5",
        "CreateByUser",
    )


@pytest.mark.parametrize(
    "marks",
    [
        {"BTCUSDT": 58_000.0, "ETHUSDT": 3_450.0, "SOLUSDT": 121.37},
        {"BTCUSDT": 71_250.5, "ETHUSDT": 2_810.25, "SOLUSDT": 215.0},  # SOL in tier 3
    ],
)
async def test_the_monitor_and_the_simulated_bybit_agree_on_its_figures(tmp_path, marks):
    """Two implementations of Bybit's rules, neither the expected value: the monitor's
    engine (`marginwatch status`, through ccxt) and the simulated exchange's own figures
    on the wire, on the hybrid book at marks away from the fixture's."""
    exchange = hybrid_book()
    exchange.mark_prices.update(marks)
    async with LocalServer(build_app(exchange)) as server:
        account = {"name": "uta", "exchange": "bybit", "api_key": KEY, "secret": SECRET,
                   "rest_url": server.base_url}  # fmt: skip
        config = write_config(tmp_path / "config.yaml", [account])
        _, document, err = await status_json(config)
    [uta] = document["accounts"]
    assert uta["error"] is None, err
    for row in by_symbol(uta).values():
        assert row["maintenance_margin"] == pytest.approx(row["exchange_maintenance_margin"])
    sol = by_symbol(uta)[SOL]
    assert sol["liquidation_price"] == pytest.approx(sol["exchange_liquidation_price"], abs=0.01)
    assert sol["margin_ratio"] == pytest.approx(sol["exchange_margin_ratio"])
    [pool] = uta["pools"]
    assert pool["margin_ratio"] == pytest.approx(pool["exchange_margin_ratio"], abs=1e-4)


async def test_tickers_stream_keeps_sending_while_the_market_holds():
    """After a scenario's last tick the marks hold; the stream still sends a delta per
    tick (the symbol alone), so the monitor's feed is not taken for dead."""
    exchange = hybrid_book()
    app = build_app(exchange)
    async with LocalServer(app) as server:
        url = f"ws://127.0.0.1:{server.port}/v5/public/linear"
        async with websockets.connect(url) as ws:
            await _send(ws, {"op": "subscribe", "args": ["tickers.ETHUSDT"]})
            for _ in ("acknowledgement", "snapshot"):
                await ws.recv()
            app[STREAMS_KEY].publish_marks()
            held = orjson.loads(await ws.recv())
    assert (held["type"], held["data"]) == ("delta", {"symbol": "ETHUSDT"})
