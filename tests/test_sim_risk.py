"""The simulator's risk engine applies Binance's rules: liquidation, funding, margin calls.

Expected prices are worked out by hand from Binance's FAQ formula, never by calling the
engine, so the simulator and the engine are checked against the published rule.
"""

from __future__ import annotations

from typing import Any

import aiohttp
import orjson
import pytest
import websockets

from monitor.simulator.binance_usdm import (
    FAQ_API_KEY,
    SimAccount,
    SimExchange,
    SimPosition,
    binance_faq_hybrid_account,
    usdm_markets,
)
from monitor.simulator.funding import settle_funding
from monitor.simulator.risk import RiskEngine
from monitor.simulator.runner import SimulatedVenue
from monitor.simulator.scenario import parse_scenario

KEY = "risk-key"

# Isolated BTC long 0.5 @ 60,000 with an isolated wallet of 3,000 (10x); BTC's first
# bracket (notional < 50,000): rate 0.004, cum 0. Binance's FAQ formula, one-way:
#   LP = (WB - TMM1 + UPNL1 + cumB - Side x Pos x EP) / (Pos x MMR - Side x Pos)
#      = (3000 - 0 + 0 + 0 - 0.5 x 60000) / (0.5 x 0.004 - 0.5)
ISOLATED_LP = (3000 - 0.5 * 60_000) / (0.5 * 0.004 - 0.5)  # 54,216.87
BANKRUPTCY = 60_000 - 3000 / 0.5  # 54,000: where the isolated wallet is used up


def isolated_book() -> tuple[SimExchange, SimAccount, list[dict[str, Any]]]:
    exchange = SimExchange(markets=usdm_markets(), mark_prices={"BTCUSDT": 60_000.0})
    position = SimPosition("BTCUSDT", 0.5, 60_000.0, margin_type="isolated", leverage=10)
    position.isolated_wallet = 3000.0
    account = exchange.add_account(SimAccount(KEY, "s", {"USDT": 10_000.0}, [position]))
    events: list[dict[str, Any]] = []
    exchange.listeners.append(lambda _account, event: events.append(event))
    return exchange, account, events


def test_neglected_isolated_position_liquidates_where_the_ratio_reaches_one() -> None:
    exchange, account, events = isolated_book()
    risk = RiskEngine(exchange)
    risk.check()
    position = account.position("BTCUSDT")
    assert position is not None
    assert position.reported_liquidation_price == pytest.approx(ISOLATED_LP, abs=1e-6)

    exchange.mark_prices["BTCUSDT"] = ISOLATED_LP * (1 + 1e-6)  # a hair above: still open
    risk.check()
    assert account.position("BTCUSDT") is position
    assert [e["e"] for e in events] == ["MARGIN_CALL"]  # ratio just below 1: a warning only
    events.clear()

    exchange.mark_prices["BTCUSDT"] = ISOLATED_LP * (1 - 1e-6)
    risk.check()
    assert account.position("BTCUSDT") is None
    assert account.cross_wallet == {"USDT": 10_000.0}  # the isolated wallet alone is lost
    (order,) = account.orders
    assert order.type == "LIQUIDATION" and order.client_order_id.startswith("autoclose-")
    assert (order.side, order.executed_qty) == ("SELL", 0.5)
    assert order.avg_price == pytest.approx(BANKRUPTCY)
    assert order.realized_pnl == pytest.approx(-3000.0)

    new, update, fill = events
    assert (new["o"]["o"], new["o"]["X"]) == ("LIQUIDATION", "NEW")
    filled = fill["o"]
    assert (filled["o"], filled["x"], filled["X"]) == ("LIQUIDATION", "CALCULATED", "FILLED")
    assert filled["c"] == order.client_order_id and filled["f"] == "IOC"
    assert float(filled["ap"]) == pytest.approx(BANKRUPTCY)
    assert update["a"]["m"] == "ORDER"
    (balance,) = update["a"]["B"]
    assert (balance["wb"], balance["cw"]) == ("10000.00000000", "10000.00000000")
    (leg,) = update["a"]["P"]
    assert (leg["s"], leg["pa"], leg["mt"]) == ("BTCUSDT", "0.000", "isolated")
    assert float(leg["iw"]) == 0


def test_margin_call_once_near_the_threshold_and_again_after_recovery() -> None:
    exchange, _account, events = isolated_book()
    risk = RiskEngine(exchange)
    # ratio = MM / (wallet + uPnL) = 0.002 m / (3000 + 0.5 (m - 60000)): 0.8 at 54,271.36
    mark = 54_250.0
    ratio = 0.002 * mark / (3000 + 0.5 * (mark - 60_000))
    assert 0.8 < ratio < 1
    exchange.mark_prices["BTCUSDT"] = mark
    risk.check()
    risk.check()
    (call,) = events
    assert call["e"] == "MARGIN_CALL" and "cw" not in call  # isolated: no cross wallet
    (leg,) = call["p"]
    assert (leg["s"], leg["mt"], leg["pa"]) == ("BTCUSDT", "ISOLATED", "0.500")
    assert float(leg["iw"]) == 3000
    assert float(leg["mm"]) == pytest.approx(0.002 * mark)
    assert float(leg["up"]) == pytest.approx(0.5 * (mark - 60_000))

    exchange.mark_prices["BTCUSDT"] = 58_000.0
    risk.check()
    exchange.mark_prices["BTCUSDT"] = mark
    risk.check()
    assert [e["e"] for e in events] == ["MARGIN_CALL", "MARGIN_CALL"]


# Binance's FAQ cross example (see the fixture): wallet 1,535,443.01, two cross longs.
WALLET = 1_535_443.01
BTC_QTY, BTC_ENTRY = 109.488, 32_481.98
ETH_QTY, ETH_ENTRY, ETH_MARK = 3_683.979, 1_456.84, 1_335.18


def test_reported_liquidation_prices_follow_binance_faq() -> None:
    exchange = binance_faq_hybrid_account()
    account = exchange.accounts[FAQ_API_KEY]
    for position in account.positions:
        position.reported_liquidation_price = None
    RiskEngine(exchange).check()
    reported = {p.symbol: p.reported_liquidation_price for p in account.positions}
    assert reported["BTCUSDT"] == pytest.approx(26_316.89, abs=0.01)
    assert reported["ETHUSDT"] == pytest.approx(1_153.26, abs=0.01)
    # isolated SOL short: (6000 + 275 + 400 x 142.5) / (400 x 0.02 + 400)
    assert reported["SOLUSDT"] == pytest.approx((6000 + 275 + 400 * 142.5) / (400 * 1.02))


def test_cross_pool_liquidation_closes_every_cross_position() -> None:
    exchange = binance_faq_hybrid_account()
    account = exchange.accounts[FAQ_API_KEY]
    events: list[dict[str, Any]] = []
    exchange.listeners.append(lambda _account, event: events.append(event))
    risk = RiskEngine(exchange)

    exchange.mark_prices["BTCUSDT"] = 26_316.89 + 1  # above BTC's FAQ liquidation price
    risk.check()
    assert len(account.open_positions()) == 3
    assert [e["e"] for e in events] == ["MARGIN_CALL"]  # but close: Binance warns
    assert float(events[0]["cw"]) == WALLET
    assert {leg["s"] for leg in events[0]["p"]} == {"BTCUSDT", "ETHUSDT"}

    btc_mark = 26_000.0
    exchange.mark_prices["BTCUSDT"] = btc_mark
    risk.check()
    assert [p.symbol for p in account.open_positions()] == ["SOLUSDT"]  # isolated survives
    orders = {o.symbol: o for o in account.orders}
    assert set(orders) == {"BTCUSDT", "ETHUSDT"}
    assert orders["BTCUSDT"].avg_price == btc_mark and orders["ETHUSDT"].avg_price == ETH_MARK
    assert all(o.type == "LIQUIDATION" for o in orders.values())
    realized = BTC_QTY * (btc_mark - BTC_ENTRY) + ETH_QTY * (ETH_MARK - ETH_ENTRY)
    clearance = (BTC_QTY * btc_mark + ETH_QTY * ETH_MARK) * 0.0125  # Binance liquidationFee
    assert account.cross_wallet["USDT"] == pytest.approx(max(0.0, WALLET + realized - clearance))
    kinds = [(e["e"], e.get("a", {}).get("m") or e.get("o", {}).get("x")) for e in events[1:]]
    assert kinds == [
        ("ORDER_TRADE_UPDATE", "NEW"),
        ("ACCOUNT_UPDATE", "ORDER"),
        ("ORDER_TRADE_UPDATE", "CALCULATED"),
        ("ORDER_TRADE_UPDATE", "NEW"),
        ("ACCOUNT_UPDATE", "ORDER"),
        ("ORDER_TRADE_UPDATE", "CALCULATED"),
        ("ACCOUNT_UPDATE", "INSURANCE_CLEAR"),
    ]


def test_funding_moves_the_backing_wallet_by_rate_times_notional() -> None:
    exchange = binance_faq_hybrid_account()
    exchange.funding_rates.update(BTCUSDT=0.0001, ETHUSDT=0.0002, SOLUSDT=0.0003)
    account = exchange.accounts[FAQ_API_KEY]
    events: list[dict[str, Any]] = []
    exchange.listeners.append(lambda _account, event: events.append(event))
    sol = account.position("SOLUSDT")
    assert sol is not None
    sol_wallet = sol.isolated_wallet

    settle_funding(exchange)

    longs_pay = BTC_QTY * 31_967.27 * 0.0001 + ETH_QTY * ETH_MARK * 0.0002
    assert account.cross_wallet["USDT"] == pytest.approx(WALLET - longs_pay)
    short_receives = 400 * 148.25 * 0.0003
    assert sol.isolated_wallet == pytest.approx(sol_wallet + short_receives)
    assert [e["a"]["m"] for e in events] == ["FUNDING_FEE"] * 3
    assert [len(e["a"]["P"]) for e in events] == [0, 0, 1]  # only isolated carries its leg


FUNDED = """
seed: 9
funding_interval: 5s
symbols:
  BTCUSDT: {start: 65000, funding_rate: 0.001}
  ETHUSDT: {start: 3400, funding_rate: 0.002}
segments: [{duration: 12s}]
accounts:
  - name: funded
    balances: {USDT: 5000}
    positions:
      - {symbol: BTCUSDT, side: long, size: 0.5, leverage: 10}
      - {symbol: ETHUSDT, side: short, size: 2, margin_mode: isolated, isolated_margin: 700}
"""


async def test_venue_settles_funding_at_funding_times() -> None:
    async with SimulatedVenue(parse_scenario(FUNDED), speed=100) as venue:
        times: list[float] = []

        def on_event(_account: SimAccount, event: dict[str, Any]) -> None:
            if event["e"] == "ACCOUNT_UPDATE" and event["a"]["m"] == "FUNDING_FEE":
                times.append(venue.elapsed)

        venue.exchange.listeners.append(on_event)
        await venue.finished.wait()
        account = venue.exchange.accounts[venue.credentials["funded"].api_key]
    assert times == [5, 5, 10, 10]
    assert account.cross_wallet["USDT"] == pytest.approx(5000 - 2 * 0.5 * 65_000 * 0.001)
    eth = account.position("ETHUSDT")
    assert eth is not None and eth.isolated_wallet == pytest.approx(700 + 2 * 2 * 3400 * 0.002)


async def test_flash_crash_at_high_speed_liquidates_the_neglected_isolated_bet() -> None:
    async with SimulatedVenue("flash-crash", speed=200) as venue:
        api_key = venue.credentials["hybrid"].api_key
        async with aiohttp.ClientSession() as http:
            headers = {"X-MBX-APIKEY": api_key}
            async with http.post(f"{venue.base_url}/fapi/v1/listenKey", headers=headers) as reply:
                listen_key = (await reply.json())["listenKey"]
        liquidated_at: list[float] = []

        def on_event(_account: SimAccount, event: dict[str, Any]) -> None:
            if event["e"] == "ORDER_TRADE_UPDATE" and event["o"]["X"] == "FILLED":
                liquidated_at.append(venue.elapsed)

        venue.exchange.listeners.append(on_event)
        async with websockets.connect(f"{venue.ws_url}/ws/{listen_key}") as ws:
            await venue.finished.wait()
            received = [orjson.loads(await ws.recv()) for _ in range(3)]
        account = venue.exchange.accounts[api_key]

    assert venue.elapsed == venue.scenario.duration
    fill = received[2]["o"]
    assert (fill["s"], fill["o"], fill["x"]) == ("AVAXUSDT", "LIQUIDATION", "CALCULATED")
    assert fill["c"].startswith("autoclose-")
    assert len(liquidated_at) == 1 and 30 <= liquidated_at[0] <= 45
    survivors = {p.symbol for p in account.open_positions()}
    assert survivors == {"BTCUSDT", "ETHUSDT", "SOLUSDT", "DOGEUSDT"}
    assert account.cross_wallet["USDT"] == 8500  # the cross pool survived, untouched
