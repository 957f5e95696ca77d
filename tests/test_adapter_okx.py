"""The OKX adapter: raw v5 fields to a snapshot, OKX's margin ratio turned into ours.

Figures are derived by hand in each test; the server-backed tests read the dialect test
server (tests/servers/okx.py) through an unmodified ccxt, configured by the adapter.
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterator
from typing import Any

import ccxt.async_support as ccxt
import pytest

from monitor.domain import AccountSnapshot, MarginMode, Side, TierTable
from monitor.engine.book import AccountBook
from monitor.exchange.urls import rebase_urls
from monitor.simulator.http import LocalServer
from monitor.venues.okx.adapter import OkxAdapter, ours_from_okx_ratio
from monitor.venues.registry import adapter_for
from tests.servers import okx
from tests.servers.okx import ETH_USDT, OkxState, OkxTradeFee

ETH_LINEAR = "ETH/USDT:USDT"


class FakeClient:
    """Just the market lookup parse_position needs."""

    def market(self, symbol: str) -> dict[str, Any]:
        assert symbol == ETH_LINEAR
        return {"contractSize": 0.1, "settle": "USDT", "inverse": False}


def raw_position(**info: str) -> dict[str, Any]:
    """An isolated ETH-USDT-SWAP long, as OKX sends it (numbers as strings)."""
    base = {
        "instId": ETH_USDT, "mgnMode": "isolated", "posSide": "net", "pos": "30",
        "avgPx": "2500", "markPx": "2400", "margin": "1000", "upl": "-300", "lever": "10",
        "mmr": "36", "liqPx": "", "mgnRatio": "",
    }  # fmt: skip
    return {"symbol": ETH_LINEAR, "info": base | info}


def test_okx_margin_ratio_is_converted_to_ours():
    # 30 contracts x 0.1 ETH = 3 ETH long, entry 2,500, mark 2,400, isolated margin 1,000;
    # tier mmr 0.005, taker 0.0005:
    #   value = 3 x 2,400 = 7,200; MM = 36; fee = 3.6
    #   equity = 1,000 + 3 x (2,400 - 2,500) = 700
    #   OKX mgnRatio = equity / (MM + fee) = 700 / 39.6 = 17.67... (lower is worse)
    #   ours = (MM + fee) / equity = 39.6 / 700 = 0.05657... = 1 / OKX's
    okx_ratio = 700 / 39.6
    position = OkxAdapter().parse_position(raw_position(mgnRatio=repr(okx_ratio)), FakeClient())

    assert position is not None
    assert position.exchange_margin_ratio == pytest.approx(39.6 / 700, rel=1e-12)
    assert position.exchange_maintenance_margin == 36  # OKX's mmr: without the fee
    assert position.isolated_margin == 1_000
    assert position.exchange_liquidation_price is None  # "" is unknown, never safe
    snapshot = AccountSnapshot(
        "a", "okx", (), (position,), {ETH_LINEAR: TierTable.flat(0.005)}, taker_fee_rate=0.0005
    )
    [ours] = AccountBook(snapshot).evaluate().positions
    assert ours.maintenance_margin == pytest.approx(36, rel=1e-12)  # OKX's own figure
    assert ours.liquidation_fees == pytest.approx(3.6, rel=1e-12)
    assert ours.margin_ratio == pytest.approx(position.exchange_margin_ratio, rel=1e-12)


def test_ratio_conversion_edges():
    assert ours_from_okx_ratio(None) is None
    assert ours_from_okx_ratio(4.0) == 0.25
    assert ours_from_okx_ratio(0.0) == math.inf  # no equity left: past liquidation
    assert ours_from_okx_ratio(-2.0) == math.inf


@pytest.mark.parametrize(
    ("pos_side", "pos", "side"),
    [("net", "-30", Side.SHORT), ("net", "30", Side.LONG), ("short", "30", Side.SHORT)],
)
def test_side_from_net_sign_or_long_short_mode(pos_side, pos, side):
    position = OkxAdapter().parse_position(raw_position(posSide=pos_side, pos=pos), FakeClient())
    assert position is not None
    assert (position.side, position.contracts) == (side, 30)
    assert position.position_side == {"net": "BOTH", "short": "SHORT"}[pos_side]


def test_empty_position_is_skipped():
    assert OkxAdapter().parse_position(raw_position(pos="0"), FakeClient()) is None


def test_tier_includes_its_max_size_as_on_okx():
    """OKX: tier applies while minSz < |pos| <= maxSz; 2,000 contracts is still tier 1."""
    rows = [
        {"info": {"minSz": "0", "maxSz": "2000", "mmr": "0.004", "maxLever": "100"}},
        {"info": {"minSz": "2000", "maxSz": "5000", "mmr": "0.005", "maxLever": "80"}},
    ]
    table = OkxAdapter().parse_tiers(rows)
    assert table.tier_for(2_000).maintenance_rate == 0.004
    assert table.tier_for(2_000.01).maintenance_rate == 0.005
    assert table.tier_for(1).maintenance_rate == 0.004


# --------------------------------------------------------------------------- via the server


@pytest.fixture
def state() -> OkxState:
    return okx.hybrid_account()


@pytest.fixture
async def server(state: OkxState) -> AsyncIterator[LocalServer]:
    async with LocalServer(okx.create_app(state)) as running:
        yield running


async def read_snapshot(server: LocalServer) -> AccountSnapshot:
    client = ccxt.okx(
        {
            "apiKey": okx.FIXTURE_API_KEY,
            "secret": okx.FIXTURE_SECRET,
            "password": okx.FIXTURE_PASSPHRASE,
            "enableRateLimit": False,
        }
    )
    client.urls["api"] = rebase_urls(client.urls["api"], server.base_url)
    adapter = adapter_for("okx")
    adapter.configure(client)
    try:
        await client.load_markets()
        return await adapter.fetch_snapshot(client, "okx-main")
    finally:
        await client.close()


async def test_multi_currency_account_has_one_usd_pool(server, state):
    snapshot = await read_snapshot(server)

    # adjEq 7,750 less the cross ETH short's upl (+200): the wallet our PnL is added to.
    assert snapshot.unified_pool == "USD"
    [pool] = snapshot.pools
    assert (pool.asset, pool.wallet_balance) == ("USD", pytest.approx(7_550))
    assert pool.exchange_margin_ratio == pytest.approx(33 / 7_750)  # 1 / (7,750 / 33)
    assert pool.exchange_maintenance_margin == 30
    swap_queries = [r.query for r in state.requests if r.path == "/api/v5/account/positions"]
    assert swap_queries == [{"instType": "SWAP"}]
    assert "/api/v5/asset/currencies" not in state.paths_called()


async def test_each_currency_carries_what_an_isolated_add_may_take(server, state):
    """The lower of availEq and availBal per currency (`multi_currency_account`): USDT
    availEq 1,100, availBal 2,100; BTC 1 and 1. The USD pool is far larger (adjEq 62,300)."""
    state.account = okx.multi_currency_account().account

    snapshot = await read_snapshot(server)

    assert snapshot.unified_pool == "USD"
    assert snapshot.margin_available == {"USDT": 1_100, "BTC": 1}
    assert snapshot.pools[0].wallet_balance == pytest.approx(62_300 - 200)


async def test_single_currency_account_has_a_pool_per_currency(server, state):
    single = okx.single_currency_account()
    state.account = single.account

    snapshot = await read_snapshot(server)

    # USDT cross equity = eq - isoEq = 11,200 - 3,900 = 7,300; less ETH's upl 200.
    assert snapshot.unified_pool is None
    [pool] = snapshot.pools  # BTC holds no cross position: no pool
    assert (pool.asset, pool.wallet_balance) == ("USDT", pytest.approx(7_100))
    assert pool.exchange_margin_ratio == pytest.approx(33 / 7_300)
    positions = {p.symbol: p for p in snapshot.positions}
    assert positions[ETH_LINEAR].margin_mode is MarginMode.CROSS
    assert positions[ETH_LINEAR].exchange_margin_ratio == pytest.approx(33 / 7_300)


async def test_taker_fee_is_read_per_margin_currency(server, state):
    """USDT-margined swaps pay `takerU`, coin-margined `taker`; ccxt reports `taker` only."""
    state.account.fees["SWAP"] = OkxTradeFee(
        "SWAP", taker=0.0008, maker=0.0002, taker_u=0.0006, maker_u=0.0002
    )
    inverse = state.account.positions.pop()  # only the two USDT-margined swaps are held
    assert inverse.inst_id == okx.BTC_USD
    assert (await read_snapshot(server)).taker_fee_rate == 0.0006

    state.account.positions.append(inverse)  # and now a coin-margined one: the worst rate
    assert (await read_snapshot(server)).taker_fee_rate == 0.0008
