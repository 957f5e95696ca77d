"""Auto-deleverage of Bybit inverse contracts end to end, on loopback: the daemon,
unmodified ccxt, the Bybit REST dialect server (tests/servers/bybit.py) and the Bybit
public tickers stream on `/v5/public/inverse`.

The account is a UTA 1.0 (unifiedMarginStatus 3): its inverse contracts live in the
inverse derivatives wallet (CONTRACT), each coin margining its own contracts, so the
figures are Binance COIN-M's in Bybit's terms (positionBalance, mmDeduction, and the fee
to close at the bankruptcy price, size / entry x (1 + side / L) x taker in the coin).
Taker 0.00055; 1 contract = 1 USD. Hand figures:

- BTCUSD cross long 30,000 @ 60,000, 10x, mark 58,000; tier 1 (MMR 0.005, value
  30,000 / 58,000 = 0.517 BTC < 150); fee to close 0.5 x 1.1 x 0.00055 = 0.0003025 BTC.
  CONTRACT BTC wallet W = 0.05. Liquidation P solves W + 30,000 (1/60,000 - 1/P) =
  30,000 x 0.005 / P + 0.0003025:  P = 30,150 / (0.05 + 0.5 - 0.0003025) = 54,848.3,
  5.4 % away (critical under the cross default of 8 %). The 12 % target wants P <= 51,040,
  i.e. W >= 30,150 / 51,040 - 0.4996975 = 0.0910 BTC: 0.0410 more than the wallet has.
- The reserve: 0.2 BTC in FUND, at most 0.02 per transfer (FUND -> CONTRACT). With it,
  P = 30,150 / 0.5696975 = 52,922.8 (8.75 %): still short, so a cut of k contracts
  follows. At the mark it books k (1/60,000 - 1/58,000) = -k / 1,740,000 BTC and pays
  k / 58,000 x 0.00055 taker; the fee to close shrinks to (30,000 - k) x 1.0083e-8:
    1.005 (30,000 - k) <= 51,040 (0.5696975 - k x 1.7240778e-5)
    30,150 - 1.005 k <= 29,077.3604 - 0.8799693 k  ->  k >= 1,072.6396 / 0.1250307
    = 8,579.01  ->  8,580 contracts (whole contracts; 8,579 leaves P at 51,040.004).
- ETHUSD isolated long 10,000 @ 3,000, 20x, mark 2,900, tier 1 (MMR 0.01), positionBalance
  0.3 ETH; fee to close 10,000 / 3,000 x 1.05 x 0.00055 = 0.001925 ETH.
  P = 10,100 / (0.3 + 3.333333 - 0.001925) = 2,781.3, 4.1 % away (critical). Surviving
  10 % lower (2,610) needs MM(P) - PnL(P) - 0.3 = 0.0402392 + 0.4980843 - 0.3 =
  0.2383235 ETH, added in Bybit's four decimals: 0.2384 ETH, from the CONTRACT ETH wallet
  (1.3 ETH, 1.0 of it free), which puts P at 10,100 / 3.869808 = 2,609.95.
"""

from __future__ import annotations

from decimal import Decimal

import pytest

from monitor.actions.journal import ActionRow
from monitor.simulator.http import LocalServer
from monitor.venues.bybit.adapter import BybitAdapter
from tests.servers.bybit import (
    TAKER_FEE,
    TEST_KEY,
    BybitState,
    CoinBalance,
    FeeRate,
    Instrument,
    Position,
    RiskTier,
    Ticker,
    create_app,
    hybrid_unified_account,
    make_client,
    move_marks,
)
from tests.servers.faults import OrderFault
from tests.test_actions_sim import until
from tests.test_defense_bybit import defended, settled
from tests.venue_actions import filled

DEFENSE = {
    "mode": "auto",
    "isolated": {"trigger": "critical", "target_distance": 0.10},
    "reserve": {"from": "funding", "asset": "BTC", "max_per_action": 0.02, "max_per_day": 0.1},
    "caps": {"cooldown": 1},
}  # fmt: skip


def inverse_position(symbol: str, size: str, entry: str, leverage: str, balance: str) -> Position:
    """A long whose exchange figures `move_marks` computes; isolated when it has a balance."""
    return Position(
        symbol=symbol, category="inverse", side="Buy", size=size, avg_price=entry,
        mark_price=entry, position_value="0", leverage=leverage, trade_mode=1 if balance else 0,
        position_im="0", position_mm="0", position_balance=balance, liq_price="",
        bust_price="", unrealised_pnl="0", cum_realised_pnl="0",
    )  # fmt: skip


def inverse_account() -> BybitState:
    """The UTA 1.0 of the module docstring: BTCUSD cross and ETHUSD isolated, coin wallets."""
    state = hybrid_unified_account()
    state.account.unified_margin_status = 3
    state.api_keys[TEST_KEY].wallet = ["AccountTransfer"]
    state.instruments.append(
        Instrument(
            symbol="ETHUSD",
            category="inverse",
            base_coin="ETH",
            quote_coin="USD",
            settle_coin="ETH",
            contract_type="InversePerpetual",
            tick_size="0.05",
            qty_step="1",
            min_order_qty="1",
            max_order_qty="1000000",
            max_leverage="50.00",
            min_notional_value="",
        )
    )
    state.risk_limits["ETHUSD"] = [
        RiskTier(1, "ETHUSD", "5000", "0.01", "0.02", "50.00", "", 1),
        RiskTier(2, "ETHUSD", "10000", "0.015", "0.03", "33.33", "25"),
    ]
    state.tickers["ETHUSD"] = Ticker("ETHUSD", "2900", "2900.10", "2900.05")
    state.fee_rates["ETHUSD"] = FeeRate("ETHUSD", TAKER_FEE, "0.0002")
    state.account.positions = [
        inverse_position("BTCUSD", "30000", "60000", "10", ""),
        inverse_position("ETHUSD", "10000", "3000", "20", "0.3"),
    ]
    state.contract = {"BTC": Decimal("0.05"), "ETH": Decimal("1.3")}
    state.funding = {"BTC": Decimal("0.2")}
    move_marks(state, {"BTCUSD": "58000", "ETHUSD": "2900"})
    return state


def btc_liquidation(state: BybitState) -> Decimal:
    """Bybit's rule for the BTC pool on the server's state (the module docstring's)."""
    btc = next(p for p in state.account.positions if p.symbol == "BTCUSD")
    q = Decimal(btc.size)
    fee = q / 60_000 * Decimal("1.1") * Decimal(TAKER_FEE)
    return q * Decimal("1.005") / (state.contract["BTC"] + q / 60_000 - fee)


@pytest.mark.parametrize(
    ("status", "pools", "unified", "wallet"),
    [  # UTA 1.0: coin pools, the isolated 0.3 ETH out of ETH's 1.3; UTA 2.0: one USD pool
        (3, {"BTC": 0.05, "ETH": 1.0}, None, "contract"),
        (6, {"USD": 50_000}, "USD", "unified"),
    ],
)
async def test_the_pools_of_inverse_contracts_follow_the_account_mode(
    status, pools, unified, wallet
):
    """A UTA 2.0's inverse cross position shares the unified USD pool (whose figures the
    engine then leaves unknown); a UTA 1.0 keeps it in the CONTRACT wallet, a pool per
    coin. (50,000: the fixture's USDT wallet, with no linear position to count; this
    server keeps inverse PnL out of the USD totals, see its docstring.)"""
    state = inverse_account()
    state.account.unified_margin_status = status
    async with LocalServer(create_app(state)) as server:
        client = make_client(server.base_url)
        adapter = BybitAdapter()
        adapter.configure(client)
        try:
            snapshot = await adapter.fetch_snapshot(client, "uta")
        finally:
            await client.close()
    assert {p.asset: p.wallet_balance for p in snapshot.pools} == pytest.approx(pools)
    assert snapshot.unified_pool == unified
    assert adapter.wallet_of("BTC") == adapter.wallet_of("ETH") == wallet
    assert adapter.wallet_of("USD") == adapter.wallet_of("USDT") == "unified"
    wallets = {r.params.get("accountType") for r in state.requests if "wallet" in r.path}
    assert wallets == ({"CONTRACT"} if status == 3 else {"UNIFIED"})


async def test_inverse_defense_adds_coin_transfers_coin_and_cuts_contracts(tmp_path):
    state = inverse_account()
    assert state.account.positions[1].liq_price == "2781.29"  # the server agrees by hand
    async with defended(tmp_path, state, DEFENSE) as venue:
        journal = venue.journal

        def defended_both() -> bool:
            rows = journal.rows("uta")
            return bool(filled(rows, "reduce")) and bool(filled(rows, "add_margin"))

        await until(defended_both, 30, "an add to ETHUSD and a cut of BTCUSD")
        await until(lambda: settled(journal), 10, "every row settled")
        rows = journal.rows("uta")

    assert all(r.status == "filled" for r in rows), [(r.kind, r.status, r.detail) for r in rows]
    # One cut: a reduce-only inverse order of 8,580 whole contracts with our orderLinkId,
    # filled in full; the venue has no order of anyone else.
    (cut,) = filled(rows, "reduce")
    (order,) = state.orders
    assert (order.order_link_id, order.category, order.symbol) == (
        cut.client_order_id, "inverse", "BTCUSD",
    )  # fmt: skip
    assert order.reduce_only and order.status == "Filled"
    assert Decimal(order.cum_exec_qty) == Decimal(order.qty) == Decimal(str(cut.quantity))
    assert cut.quantity == 8_580

    # One transfer: 0.02 BTC FUND -> CONTRACT under our transferId.
    (transfer_row,) = filled(rows, "transfer")
    (transfer,) = state.transfers
    assert transfer.transfer_id == transfer_row.request["params"]["transferId"]
    assert (transfer.coin, transfer.from_account_type, transfer.to_account_type) == (
        "BTC", "FUND", "CONTRACT",
    )  # fmt: skip
    assert Decimal(transfer.amount) == Decimal("0.02") == Decimal(str(transfer_row.quantity))
    assert state.funding["BTC"] == Decimal("0.18")

    # One add: 0.2384 ETH into ETHUSD, in the coin, to Bybit's four decimals.
    (add,) = filled(rows, "add_margin")
    assert [(a.symbol, a.category, Decimal(a.margin)) for a in state.margin_adjustments] == [
        ("ETHUSD", "inverse", Decimal("0.2384"))
    ]
    assert add.quantity == 0.2384 and add.request["params"]["margin"] == "0.2384"
    assert "0.2384 ETH" in add.description

    # On the venue: ETH's liquidation at most 2,610 (10 % below 2,900) by Bybit's own
    # re-solved liqPrice, and the BTC pool's at most 51,040 (12 % below 58,000).
    eth = next(p for p in state.account.positions if p.symbol == "ETHUSD")
    assert Decimal(eth.position_balance) == Decimal("0.5384")
    assert Decimal(eth.liq_price) <= Decimal("2610")
    btc = next(p for p in state.account.positions if p.symbol == "BTCUSD")
    assert Decimal(btc.size) == 30_000 - 8_580
    assert btc_liquidation(state) <= Decimal("51040")


def uta2_isolated(free: str = "0") -> BybitState:
    """A UTA 2.0 in isolated margin mode (the account-wide marginMode of UTA 2.0): one
    BTCUSD isolated long 30,000 @ 60,000, 10x, mark 57,000, no margin added:
    positionBalance = IM at entry 0.05 + fee to close 0.0003025 = 0.0503025 BTC; the
    unified wallet's BTC row holds that and `free` BTC more. The reserve: 0.2 BTC in FUND.
    P = 30,150 / (0.0503025 + 0.5 - 0.0003025) = 54,818.2, 3.8 % below 57,000. Surviving
    10 % lower (51,300) wants a positionBalance of 30,150 / 51,300 - 0.4996975 = 0.0880215:
    0.037719 BTC more, 0.0378 in Bybit's four decimals (2,155 USD at the mark, within the
    test's caps). With no free BTC in the wallet it all comes from the reserve, FUND ->
    UNIFIED first; with 0.1 free it comes from the wallet. Then P = 30,150 / (0.0881025
    + 0.4996975) = 51,293.0."""
    state = inverse_account()
    state.account.unified_margin_status = 6
    state.account.margin_mode = "ISOLATED_MARGIN"
    btc = inverse_position("BTCUSD", "30000", "60000", "10", "0.0503025")
    state.account.positions = [btc]
    wallet = str(Decimal("0.0503025") + Decimal(free))
    state.account.coins.append(CoinBalance("BTC", wallet, wallet, "", "0", "0", "0.0503025", "0"))
    state.contract = {}
    move_marks(state, {"BTCUSD": "57000"})
    return state


@pytest.mark.parametrize("free", ["0", "0.1"])
async def test_a_uta2_isolated_inverse_position_is_funded_in_its_coin(tmp_path, free):
    state = uta2_isolated(free)
    assert state.account.positions[0].liq_price == "54818.18"  # the server agrees by hand
    defense = {
        **DEFENSE,
        "isolated": {"trigger": "critical", "target_distance": 0.10,
                     "max_add_per_action": 3000, "max_add_per_position": 5000},
        "reserve": {"from": "funding", "asset": "BTC", "max_per_action": 0.05,
                    "max_per_day": 0.1},
    }  # fmt: skip
    async with defended(tmp_path, state, defense) as venue:
        await until(lambda: bool(filled(venue.journal.rows("uta"), "add_margin")), 30, "an add")
        await until(lambda: settled(venue.journal), 10, "every row settled")
        rows = venue.journal.rows("uta")
    if free == "0":  # all of it from the reserve, moved first
        assert [(r.kind, r.status) for r in rows] == [
            ("transfer", "filled"), ("add_margin", "filled"),
        ]  # fmt: skip
        (transfer,) = state.transfers
        assert transfer.transfer_id == rows[0].request["params"]["transferId"]
        assert (transfer.coin, transfer.amount) == ("BTC", "0.0378")
        assert (transfer.from_account_type, transfer.to_account_type) == ("FUND", "UNIFIED")
        assert state.funding["BTC"] == Decimal("0.1622")
    else:  # from the wallet's free BTC, the reserve untouched
        assert [(r.kind, r.status) for r in rows] == [("add_margin", "filled")]
        assert not state.transfers and state.funding["BTC"] == Decimal("0.2")
    assert [(a.symbol, a.category, a.margin) for a in state.margin_adjustments] == [
        ("BTCUSD", "inverse", "0.0378")
    ]
    assert rows[-1].request["params"]["margin"] == "0.0378" and not state.orders
    btc = state.account.positions[0]
    assert Decimal(btc.position_balance) == Decimal("0.0881025")
    assert Decimal(btc.liq_price) <= Decimal("51300")


def only_btc(state: BybitState) -> BybitState:
    state.account.positions = state.account.positions[:1]
    state.contract = {"BTC": Decimal("0.05")}
    return state


@pytest.mark.parametrize("fault", [OrderFault.HANG, OrderFault.VENUE_TIMEOUT])
async def test_an_inverse_cut_whose_reply_is_lost_after_the_fill_is_placed_once(tmp_path, fault):
    """The server fills the cut of BTCUSD, then the reply never comes (ccxt times out
    after 1 s) or says retCode 10000: the row is unknown, looked up by its orderLinkId
    (category inverse) and found filled; exactly one order was placed."""
    state = only_btc(inverse_account())
    state.fail_next_order = fault
    cut = {"mode": "auto", "caps": {"cooldown": 600}}
    async with defended(tmp_path, state, cut, request_timeout=1.0) as venue:
        await until(lambda: bool(venue.journal.rows("uta")), 20, "a decision")
        await until(lambda: settled(venue.journal), 20, "the decision settled")
        rows: list[ActionRow] = venue.journal.rows("uta")
    (row,) = rows
    assert row.status == "filled", row.detail
    (order,) = state.orders
    assert (order.order_link_id, order.category) == (row.client_order_id, "inverse")
    assert order.status == "Filled" and order.reduce_only
    creates = [r for r in state.called() if r == ("POST", "/v5/order/create")]
    assert len(creates) == 1
    lookups = [
        r.params for r in state.requests if r.path in ("/v5/order/realtime", "/v5/order/history")
    ]
    assert lookups and all(p["category"] == "inverse" for p in lookups)
    assert all(p["orderLinkId"] == row.client_order_id for p in lookups)
