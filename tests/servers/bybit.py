"""A local server speaking enough of Bybit's v5 REST dialect for unmodified ccxt `bybit`.

Why it exists: the monitor reads Bybit unified trading accounts (UTA) through ccxt, and
the figures that matter (positionIM, positionMM, liqPrice, accountMMRate, ...) are computed
by the exchange. Tests need an exchange whose figures they choose, reached through the very
code path production uses: ccxt's request building, signing and parsing. Reads compute no
margin: every exchange-computed figure is served exactly as the test set it, so a test can
put an independently derived number there and compare the monitor's own computation
against it. Only a trade, a margin move or a transfer recomputes the figures it touches,
with Bybit's rules as the fixture's docstring derives them (see "Trading bookkeeping").
This module never imports `monitor.engine`.

Wire facts mirrored from ccxt 4.5.90 (`ccxt/async_support/bybit.py`) and Bybit's v5 docs:

- Envelope: `{"retCode":0,"retMsg":"OK","result":{...},"retExtInfo":{},"time":ms}`;
  numbers are strings, except integer enums (`tradeMode`, `positionIdx`, `riskId`, ...).
- Private requests carry `X-BAPI-API-KEY`, `X-BAPI-TIMESTAMP`, `X-BAPI-RECV-WINDOW` and
  `X-BAPI-SIGN` = hex HMAC-SHA256(secret, timestamp + apiKey + recvWindow + payload), the
  payload being the raw query string (GET) or the raw JSON body (POST).
  Unknown key: retCode 10003 with HTTP 401; bad signature: retCode 10004 with HTTP 200 and
  Bybit's `error sign! origin_string[...]` message (the HTTP statuses follow pybit users'
  reports, not a spec); stale timestamp: 10002. ccxt maps 10003/10004 to
  AuthenticationError and 10002 to InvalidNonce.
- An unknown path (or a known path with the wrong method) gets HTTP 404, never an empty 200.

Client settings that work (see `make_client`):

- `options['fetchMarkets'] = {'types': ['linear', 'inverse']}`: ccxt otherwise also loads
  spot and option markets (several more instruments-info calls).
- `has['fetchCurrencies'] = False`: with a key set, load_markets otherwise calls the signed
  `/v5/asset/coin/query-info` first (this server does not serve it: 404).
- `enableRateLimit = False`: nothing to protect locally; keeps tests fast.
- `urls['api'] = rebase_urls(urls['api'], base_url)`: every ccxt entry is
  `https://api.{hostname}`; the v5 paths are appended unchanged.

Endpoints ccxt calls, per method (verified against its source):

- load_markets: GET /v5/market/instruments-info, twice per category (`limit=1000`, and a
  second call with `status=PreLaunch`); /v5/market/time only with
  `options['adjustForTimeDifference']`.
- fetch_positions: GET /v5/position/list (`category=linear&settleCoin=USDT&limit=200`;
  `category=inverse` for inverse; cursor pagination with `{'paginate': True}`).
- fetch_balance: GET /v5/user/query-api and GET /v5/account/info (once, concurrently, to
  detect the UTA), then GET /v5/account/wallet-balance?accountType=UNIFIED.
- fetch_leverage_tiers / fetch_market_leverage_tiers: GET /v5/market/risk-limit
  (the former paginates by cursor over a whole category, linear by default).
- fetch_trading_fee: GET /v5/account/fee-rate?category=..&symbol=..; fetch_trading_fees
  sends no category at all, which this server rejects as a missing required parameter
  (unverified whether live Bybit defaults it; pass `{'category': 'linear'}`).
- fetch_ticker / fetch_tickers: GET /v5/market/tickers (the mark price is in the ticker:
  ccxt bybit has no fetch_mark_price, it raises NotSupported).
- fetch_ohlcv: GET /v5/market/kline (`start` rounded up to the interval, `limit`; rows
  newest first), made from `BybitState.price_history` (monitor/simulator/candles.py).
- create_order(..., {'reduceOnly': True, 'clientOrderId': X[, 'positionIdx': 1|2]}):
  POST /v5/order/create (ccxt sends the client id as `orderLinkId`). Orders fill at once
  at the mark (market, or IOC limit that crosses); see `_order_create`.
- lookup by client id: the raw `privateGetV5OrderRealtime({'category', 'symbol',
  'orderLinkId', 'openOnly': 1})` or `privateGetV5OrderHistory(...)`; ccxt's fetch_order
  wants an orderId and `acknowledged`, and its default realtime call (openOnly 0) lists
  open orders only, so a filled order is not found there.
- add margin: ccxt's add_margin is not implemented for bybit; the raw method
  `privatePostV5PositionAddMargin` posts to /v5/position/add-margin.
- transfer('USDT', amount, 'funding', 'unified', {'transferId': uuid}): POST
  /v5/asset/transfer/inter-transfer; the raw `privateGetV5AssetTransferQueryInterTransferList`
  finds it by transferId, `privateGetV5AssetTransferQueryAccountCoinsBalance`
  (accountType FUND) reads the reserve.
- key permissions: the raw `privateGetV5UserQueryApi` (`readOnly`, `permissions.Wallet`).

Trading state: `BybitState.funding` (the FUND wallet), `ApiKey.wallet` (Wallet permissions),
`hedge_symbols` (positionIdx 1/2), and `fail_next_order` (a `tests.servers.faults`
fault applied to the next order's reply after it filled).

ccxt parsing facts a consumer of this account must know:

- ccxt's position `marginMode` is always None for bybit ("tradeMode was deprecated"): read
  `info['tradeMode']` (0 cross, 1 isolated) yourself.
- `liquidationPrice` is None for a unified cross position (Bybit sends `liqPrice: ""`).
- `info` of fetch_balance is the whole response: the totals are under
  `info['result']['list'][0]`.

Inverse contracts (v5 docs, "Different Account Modes"): a classic (unifiedMarginStatus 1)
or UTA 1.0 (3, 4) account keeps them in the inverse derivatives wallet, accountType
CONTRACT (`BybitState.contract`, coin -> walletBalance), each coin margining its own
contracts; `/v5/account/wallet-balance?accountType=CONTRACT` lists it there. A UTA 2.0
keeps the coin in the unified wallet (its `coins` row). Quantities are contracts of 1 USD;
value, IM, MM, PnL, margin and fees are in the coin. add-margin takes `margin` in the coin
to at most four decimals, from the coin's wallet less what its positions hold;
inter-transfer moves the coin FUND <-> CONTRACT (UTA 1.0) or FUND <-> UNIFIED (UTA 2.0).
Only reduce-only inverse orders are served (opening one is not modelled), and a UTA 2.0's
coin balances and inverse PnL stay out of its USD totals (its collateral value ratios
are not modelled): a UTA 2.0 cross inverse position's figures here are its own only.

Semantics chosen where Bybit is ambiguous (documented, not verified against the live API):
this server lets one UTA hold cross and isolated positions at once, `tradeMode` per position.
On the live UTA 2.0 the margin mode is account-wide (`/v5/account/info` `marginMode`:
REGULAR_MARGIN, ISOLATED_MARGIN, PORTFOLIO_MARGIN) and `tradeMode` is deprecated (always 0),
so a real account is either all cross or all isolated; the mixed fixture deliberately
exercises both pools in one account (set `UnifiedAccount.margin_mode` for the real shapes).
Its `totalMarginBalance` is the cross pool alone (isolated margin excluded), whereas
Bybit documents it as totalWalletBalance + totalPerpUPL for an all-cross account.

The fixture's exchange figures follow Bybit's margin rules in force since 2 Sep 2025 (help
centre, "The New Margin Calculation: Adjustments and Implications"): cross IM and MM, and
isolated MM, at the mark price; isolated IM and the fee to close at entry. `positionIM` and
`positionMM` equal `positionIMByMp` / `positionMMByMp`, as the v5 docs now state.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from decimal import ROUND_DOWN, Decimal, InvalidOperation
from typing import Any

import ccxt.async_support as ccxt_async
import orjson
from aiohttp import web

from monitor.exchange.urls import rebase_urls
from monitor.simulator.bybit_v5.wire import (
    BybitError,
    api_key_row,
    check_signature,
    fund_coins_balance,
    instrument_row,
    limit,
    new_transfer_id,
    order_row,
    paginate,
    position_row,
    risk_limit_row,
    ticker_row,
    transfer_row,
)
from monitor.simulator.bybit_v5.wire import error_reply as _error
from monitor.simulator.bybit_v5.wire import param_error as _param_error
from monitor.simulator.bybit_v5.wire import reply as _ok
from monitor.simulator.candles import candles, window
from tests.servers.faults import OrderFault, transport_fault

# --------------------------------------------------------------------------------------
# State
# --------------------------------------------------------------------------------------


@dataclass
class Instrument:
    """One derivatives instrument as `/v5/market/instruments-info` lists it."""

    symbol: str
    category: str  # "linear" | "inverse"
    base_coin: str
    quote_coin: str
    settle_coin: str
    contract_type: str  # "LinearPerpetual" | "InversePerpetual" | ...
    tick_size: str
    qty_step: str
    min_order_qty: str
    max_order_qty: str
    max_leverage: str
    price_scale: str = "2"
    min_notional_value: str = "5"
    status: str = "Trading"
    launch_time: str = "1585526400000"
    funding_interval: int = 480

    def to_wire(self) -> dict[str, Any]:
        return instrument_row(
            symbol=self.symbol, base=self.base_coin, quote=self.quote_coin,
            tick_size=self.tick_size, qty_step=self.qty_step, min_qty=self.min_order_qty,
            max_qty=self.max_order_qty, max_leverage=self.max_leverage,
            price_scale=self.price_scale, min_notional=self.min_notional_value,
            contract_type=self.contract_type, settle=self.settle_coin, status=self.status,
            launch_time=self.launch_time, funding_interval=self.funding_interval,
        )  # fmt: skip


@dataclass
class RiskTier:
    """One risk-limit tier, Bybit shape; `mm_deduction` is "" on the first tier, as Bybit sends."""

    id: int
    symbol: str
    risk_limit_value: str
    maintenance_margin: str
    initial_margin: str
    max_leverage: str
    mm_deduction: str = ""
    is_lowest_risk: int = 0

    def to_wire(self) -> dict[str, Any]:
        row = risk_limit_row(
            tier_id=self.id, symbol=self.symbol, risk_limit_value=self.risk_limit_value,
            maintenance_margin=self.maintenance_margin, initial_margin=self.initial_margin,
            max_leverage=self.max_leverage, mm_deduction=self.mm_deduction,
        )  # fmt: skip
        return {**row, "isLowestRisk": self.is_lowest_risk, "mmDeduction": self.mm_deduction}


@dataclass
class Ticker:
    """Prices of one instrument; `mark_price` is what margin is computed at."""

    symbol: str
    mark_price: str
    index_price: str
    last_price: str
    funding_rate: str = "0.0001"
    next_funding_time: str = "1767225600000"
    open_interest: str = "0"
    open_interest_value: str = "0"

    def to_wire(self) -> dict[str, Any]:
        return ticker_row(
            symbol=self.symbol, mark=self.mark_price, index=self.index_price,
            last=self.last_price, funding_rate=self.funding_rate,
            next_funding_time=self.next_funding_time, open_interest=self.open_interest,
            open_interest_value=self.open_interest_value,
        )  # fmt: skip


@dataclass
class FeeRate:
    """The account's fee rates on one symbol (`/v5/account/fee-rate`)."""

    symbol: str
    taker: str
    maker: str


@dataclass
class Position:
    """One position row of `/v5/position/list`, every exchange-computed figure explicit.

    `trade_mode`: 0 cross, 1 isolated (deprecated by Bybit, always 0 on UTA 2.0).
    `liq_price` is "" for a unified cross position, as Bybit sends it; `bust_price` is
    deprecated and always "". `position_value` is size x entry price (not read by the
    monitor; unverified whether Bybit moved it to the mark with the 2025 change).
    """

    symbol: str
    category: str
    side: str  # "Buy" | "Sell"
    size: str
    avg_price: str
    mark_price: str
    position_value: str
    leverage: str
    trade_mode: int
    position_im: str
    position_mm: str
    position_balance: str
    liq_price: str
    bust_price: str
    unrealised_pnl: str
    cum_realised_pnl: str
    cur_realised_pnl: str = "0"
    position_idx: int = 0
    risk_id: int = 1
    risk_limit_value: str = ""
    auto_add_margin: int = 0
    position_status: str = "Normal"
    created_time: str = "1735689600000"
    updated_time: str = "1735776000000"
    seq: int = 1
    #: Bybit also sends IM/MM valued at the mark price; omitted from the wire when None.
    position_im_by_mp: str | None = None
    position_mm_by_mp: str | None = None

    def to_wire(self) -> dict[str, Any]:
        return position_row(
            symbol=self.symbol, side=self.side, size=self.size, avg_price=self.avg_price,
            position_value=self.position_value, leverage=self.leverage,
            trade_mode=self.trade_mode, mark_price=self.mark_price, liq_price=self.liq_price,
            position_im=self.position_im, position_mm=self.position_mm,
            position_balance=self.position_balance, unrealised_pnl=self.unrealised_pnl,
            cur_realised_pnl=self.cur_realised_pnl, cum_realised_pnl=self.cum_realised_pnl,
            position_idx=self.position_idx, risk_id=self.risk_id,
            risk_limit_value=self.risk_limit_value, position_status=self.position_status,
            auto_add_margin=self.auto_add_margin, created_time=self.created_time,
            updated_time=self.updated_time, seq=self.seq,
            position_im_by_mp=self.position_im_by_mp, position_mm_by_mp=self.position_mm_by_mp,
        )  # fmt: skip


@dataclass
class CoinBalance:
    """One coin of the unified wallet (`coin[]` of `/v5/account/wallet-balance`)."""

    coin: str
    wallet_balance: str
    equity: str
    usd_value: str
    unrealised_pnl: str
    cum_realised_pnl: str
    total_position_im: str
    total_position_mm: str
    total_order_im: str = "0"
    locked: str = "0"
    borrow_amount: str = "0"
    accrued_interest: str = "0"
    #: Deprecated on UTA 2.0 and sent as ""; ccxt then derives `free` from the IM fields.
    available_to_withdraw: str = ""

    def to_wire(self) -> dict[str, Any]:
        return {
            "availableToBorrow": "",
            "bonus": "0",
            "accruedInterest": self.accrued_interest,
            "availableToWithdraw": self.available_to_withdraw,
            "totalOrderIM": self.total_order_im,
            "equity": self.equity,
            "totalPositionMM": self.total_position_mm,
            "usdValue": self.usd_value,
            "spotHedgingQty": "0",
            "unrealisedPnl": self.unrealised_pnl,
            "collateralSwitch": True,
            "borrowAmount": self.borrow_amount,
            "totalPositionIM": self.total_position_im,
            "walletBalance": self.wallet_balance,
            "cumRealisedPnl": self.cum_realised_pnl,
            "locked": self.locked,
            "marginCollateral": True,
            "coin": self.coin,
        }


@dataclass
class UnifiedAccount:
    """A unified trading account: wallet, exchange-computed totals and positions."""

    coins: list[CoinBalance]
    total_equity: str
    total_wallet_balance: str
    total_margin_balance: str
    total_available_balance: str
    total_initial_margin: str
    total_maintenance_margin: str
    account_im_rate: str
    account_mm_rate: str
    total_perp_upl: str
    positions: list[Position] = field(default_factory=list)
    account_ltv: str = "0"
    #: 5 = UTA 2.0, 6 = UTA 2.0 Pro; ccxt treats >= 5 as "inverse is unified too".
    unified_margin_status: int = 6
    #: Account-wide margin mode as `/v5/account/info` reports it.
    margin_mode: str = "REGULAR_MARGIN"

    def wallet_to_wire(self, coins: set[str] | None) -> dict[str, Any]:
        return {
            "totalEquity": self.total_equity,
            "accountIMRate": self.account_im_rate,
            "totalMarginBalance": self.total_margin_balance,
            "totalInitialMargin": self.total_initial_margin,
            "accountType": "UNIFIED",
            "totalAvailableBalance": self.total_available_balance,
            "accountMMRate": self.account_mm_rate,
            "totalPerpUPL": self.total_perp_upl,
            "totalWalletBalance": self.total_wallet_balance,
            "accountLTV": self.account_ltv,
            "totalMaintenanceMargin": self.total_maintenance_margin,
            "coin": [c.to_wire() for c in self.coins if coins is None or c.coin in coins],
        }


@dataclass
class ApiKey:
    """An API key the server accepts; `read_only` keys may not trade or move margin."""

    key: str
    secret: str
    read_only: bool = True
    user_id: int = 100200300
    #: `permissions.Wallet` as Bybit lists it: "AccountTransfer", "SubMemberTransfer",
    #: "Withdraw". A key with "AccountTransfer" may move FUND -> UNIFIED.
    wallet: list[str] = field(default_factory=list)

    def to_wire(self) -> dict[str, Any]:
        return api_key_row(
            key_id="1",
            api_key=self.key,
            user_id=self.user_id,
            note="marginwatch test key",
            read_only=self.read_only,
            contract_trade=[] if self.read_only else ["Order", "Position"],
            wallet=list(self.wallet),
        )


@dataclass
class RequestRecord:
    """One request as received, so tests can assert exactly which endpoints a client hit."""

    method: str
    path: str
    params: dict[str, Any]
    api_key: str | None


@dataclass
class MarginAdjustment:
    """A successful `POST /v5/position/add-margin` call."""

    symbol: str
    category: str
    margin: str
    position_idx: int


@dataclass
class Order:
    """One order as `/v5/order/realtime` and `/v5/order/history` list it.

    Orders here never rest: a market order or an IOC limit order that crosses the mark fills
    in full at the mark price (status Filled); an IOC limit that does not cross is Cancelled
    with nothing filled.
    """

    order_id: str
    order_link_id: str
    symbol: str
    category: str
    side: str
    order_type: str
    qty: str
    price: str
    time_in_force: str
    reduce_only: bool
    position_idx: int
    status: str  # "Filled" | "Cancelled"
    avg_price: str
    cum_exec_qty: str
    cum_exec_value: str
    cum_exec_fee: str
    created_time: str

    def to_wire(self) -> dict[str, Any]:
        return order_row(
            order_id=self.order_id, order_link_id=self.order_link_id, symbol=self.symbol,
            side=self.side, order_type=self.order_type, qty=self.qty, price=self.price,
            time_in_force=self.time_in_force, reduce_only=self.reduce_only,
            position_idx=self.position_idx, status=self.status, avg_price=self.avg_price,
            cum_exec_qty=self.cum_exec_qty, cum_exec_value=self.cum_exec_value,
            cum_exec_fee=self.cum_exec_fee, created_time=self.created_time,
        )  # fmt: skip


@dataclass
class InterTransfer:
    """A completed `POST /v5/asset/transfer/inter-transfer`."""

    transfer_id: str
    coin: str
    amount: str
    from_account_type: str
    to_account_type: str
    timestamp: str

    def to_wire(self) -> dict[str, Any]:
        return transfer_row(
            transfer_id=self.transfer_id,
            coin=self.coin,
            amount=self.amount,
            from_account_type=self.from_account_type,
            to_account_type=self.to_account_type,
            timestamp=self.timestamp,
        )


@dataclass
class BybitState:
    """Everything the server knows; mutate it freely between requests."""

    instruments: list[Instrument]
    risk_limits: dict[str, list[RiskTier]]
    tickers: dict[str, Ticker]
    fee_rates: dict[str, FeeRate]
    account: UnifiedAccount
    api_keys: dict[str, ApiKey]
    #: Every accepted `POST /v5/order/create`, oldest first.
    orders: list[Order] = field(default_factory=list)
    margin_adjustments: list[MarginAdjustment] = field(default_factory=list)
    #: The FUND (funding) wallet by coin: the reserve that inter-transfer draws on.
    funding: dict[str, Decimal] = field(default_factory=dict)
    #: The inverse derivatives wallet (accountType CONTRACT) by coin: walletBalance, which
    #: holds the isolated positions' margin too; classic and UTA 1.0 accounts only.
    contract: dict[str, Decimal] = field(default_factory=dict)
    transfers: list[InterTransfer] = field(default_factory=list)
    #: Symbols in hedge mode (positionIdx 1 = long leg, 2 = short leg); others are one-way.
    hedge_symbols: set[str] = field(default_factory=set)
    #: Fail the reply of the next order (after it filled); cleared when used.
    fail_next_order: OrderFault | None = None
    requests: list[RequestRecord] = field(default_factory=list)
    #: Page size of `/v5/market/risk-limit` (it takes no `limit` parameter).
    risk_limit_page_size: int = 200
    #: symbol -> [(ms, price)], what `/v5/market/kline` makes its candles from.
    price_history: dict[str, list[tuple[int, float]]] = field(default_factory=dict)

    def instrument(self, symbol: str) -> Instrument | None:
        return next((i for i in self.instruments if i.symbol == symbol), None)

    @property
    def inverse_apart(self) -> bool:
        """Whether inverse contracts live in the CONTRACT wallet (classic, UTA 1.0)."""
        return self.account.unified_margin_status in (1, 3, 4)

    def called(self) -> list[tuple[str, str]]:
        """(method, path) of every request so far, in arrival order."""
        return [(r.method, r.path) for r in self.requests]


# --------------------------------------------------------------------------------------
# Fixture
# --------------------------------------------------------------------------------------

TEST_KEY = "mw-test-key"
TEST_SECRET = "mw-test-secret"
TAKER_FEE = "0.00055"
MAKER_FEE = "0.0002"


def _instruments() -> list[Instrument]:
    return [
        Instrument(
            symbol="BTCUSDT",
            category="linear",
            base_coin="BTC",
            quote_coin="USDT",
            settle_coin="USDT",
            contract_type="LinearPerpetual",
            tick_size="0.10",
            qty_step="0.001",
            min_order_qty="0.001",
            max_order_qty="1190.000",
            max_leverage="100.00",
        ),
        Instrument(
            symbol="ETHUSDT",
            category="linear",
            base_coin="ETH",
            quote_coin="USDT",
            settle_coin="USDT",
            contract_type="LinearPerpetual",
            tick_size="0.01",
            qty_step="0.01",
            min_order_qty="0.01",
            max_order_qty="7240.00",
            max_leverage="100.00",
        ),
        Instrument(
            symbol="SOLUSDT",
            category="linear",
            base_coin="SOL",
            quote_coin="USDT",
            settle_coin="USDT",
            contract_type="LinearPerpetual",
            tick_size="0.010",
            qty_step="0.1",
            min_order_qty="0.1",
            max_order_qty="79770.0",
            max_leverage="50.00",
            price_scale="3",
        ),
        Instrument(
            symbol="BTCUSD",
            category="inverse",
            base_coin="BTC",
            quote_coin="USD",
            settle_coin="BTC",
            contract_type="InversePerpetual",
            tick_size="0.50",
            qty_step="1",
            min_order_qty="1",
            max_order_qty="1000000",
            max_leverage="100.00",
            min_notional_value="",
        ),
    ]


def _risk_limits() -> dict[str, list[RiskTier]]:
    """Tier tables; each mmDeduction = previous deduction + previous cap x rate step."""
    return {
        "BTCUSDT": [
            RiskTier(1, "BTCUSDT", "2000000", "0.005", "0.01", "100.00", "", 1),
            RiskTier(2, "BTCUSDT", "4000000", "0.01", "0.02", "50.00", "10000"),
            RiskTier(3, "BTCUSDT", "6000000", "0.015", "0.03", "33.33", "30000"),
            RiskTier(4, "BTCUSDT", "8000000", "0.02", "0.04", "25.00", "60000"),
        ],
        "ETHUSDT": [
            RiskTier(1, "ETHUSDT", "1000000", "0.005", "0.01", "100.00", "", 1),
            RiskTier(2, "ETHUSDT", "2000000", "0.01", "0.02", "50.00", "5000"),
            RiskTier(3, "ETHUSDT", "3000000", "0.015", "0.03", "33.33", "15000"),
        ],
        "SOLUSDT": [
            RiskTier(1, "SOLUSDT", "100000", "0.01", "0.02", "50.00", "", 1),
            RiskTier(2, "SOLUSDT", "200000", "0.015", "0.03", "33.33", "500"),
            RiskTier(3, "SOLUSDT", "300000", "0.02", "0.04", "25.00", "1500"),
        ],
        # Inverse: riskLimitValue and mmDeduction in BTC.
        "BTCUSD": [
            RiskTier(1, "BTCUSD", "150", "0.005", "0.01", "100.00", "", 1),
            RiskTier(2, "BTCUSD", "300", "0.01", "0.02", "50.00", "0.75"),
        ],
    }


def hybrid_unified_account() -> BybitState:
    """One UTA holding two cross linear positions (long, short) and one isolated long.

    Fee rates: taker 0.00055, maker 0.0002 on every symbol. Wallet: 50,000 USDT only (USDT
    counts 1:1 as collateral, so no haircut enters the totals).

    How each exchange-computed figure was derived (hand arithmetic, Bybit's rules since
    2 Sep 2025: value and tier at the mark for MM and cross IM; isolated IM and the fee to
    close at entry, the fee at the bankruptcy price entry x (1 -/+ 1/leverage)):

    A. BTCUSDT cross long (tradeMode 0): size 0.5, entry 62,000, mark 65,000, leverage 10.
       value at mark = 32,500 -> tier 1 (cap 2,000,000): MMR 0.005, deduction 0 (sent as "").
       fee to close = 0.5 x 62,000 x (1 - 1/10) x 0.00055 = 15.345
       positionMM = 32,500 x 0.005 - 0 + 15.345 = 177.845
       positionIM = 32,500 / 10 + 15.345 = 3,265.345
       uPnL = (65,000 - 62,000) x 0.5 = 1,500; liqPrice = "" (unified cross).
    B. ETHUSDT cross short (tradeMode 0): size 10, entry 3,000, mark 3,200, leverage 20.
       value at mark = 32,000 -> tier 1: MMR 0.005, deduction 0.
       fee to close = 10 x 3,000 x (1 + 1/20) x 0.00055 = 17.325
       positionMM = 32,000 x 0.005 + 17.325 = 177.325
       positionIM = 32,000 / 20 + 17.325 = 1,617.325
       uPnL = (3,000 - 3,200) x 10 = -2,000.
    C. SOLUSDT isolated long (tradeMode 1): size 1,000, entry 140, mark 150, leverage 5,
       extra margin added 1,180.
       value at mark = 150,000 -> tier 2 (100,000 < value <= 200,000): MMR 0.015, deduction 500.
       fee to close = 1,000 x 140 x (1 - 1/5) x 0.00055 = 61.6
       positionMM = 150,000 x 0.015 - 500 + 61.6 = 1,811.6
       positionIM = 140,000 / 5 + 61.6 = 28,061.6 (at entry)
       positionBalance = IM + extra margin = 28,061.6 + 1,180 = 29,241.6
       liqPrice: positionBalance + uPnL = MM, MM at the liquidation price P (tier 2 there:
         P x 1,000 = 112,000):  29,241.6 + 1,000 (P - 140) = 1,000 P x 0.015 - 500 + 61.6
         -> 985 P = 140,000 - 29,241.6 - 438.4 = 110,320 -> P = 112.
       uPnL = (150 - 140) x 1,000 = 10,000.

    Account (the isolated margin is not part of the cross pool):
       totalWalletBalance = 50,000; totalPerpUPL = 1,500 - 2,000 + 10,000 = 9,500
       totalEquity = USDT equity = 50,000 + 9,500 = 59,500
       totalMarginBalance (cross pool) = 50,000 - 29,241.6 (isolated margin)
         + 1,500 - 2,000 (cross uPnL) = 20,258.4
       totalMaintenanceMargin = 177.845 + 177.325 = 355.17 (cross positions)
       totalInitialMargin = 3,265.345 + 1,617.325 = 4,882.67 (cross positions)
       accountMMRate = 355.17 / 20,258.4 = 0.017531... -> truncated 0.0175
       accountIMRate = 4,882.67 / 20,258.4 = 0.24102... -> truncated 0.2410
       totalAvailableBalance = 20,258.4 - 4,882.67 = 15,375.73
       USDT totalPositionIM = 4,882.67 + 29,241.6 = 34,124.27 (cross IM + isolated margin)
       USDT totalPositionMM = 355.17 + 1,811.6 = 2,166.77 (all positions)
       cumRealisedPnl = opening taker fees: 17.05 + 16.5 + 77 = -110.55.
    """
    positions = [
        Position(
            symbol="BTCUSDT",
            category="linear",
            side="Buy",
            size="0.5",
            avg_price="62000",
            mark_price="65000",
            position_value="31000",
            leverage="10",
            trade_mode=0,
            position_im="3265.345",
            position_mm="177.845",
            position_balance="",
            liq_price="",
            bust_price="",
            unrealised_pnl="1500",
            cum_realised_pnl="-17.05",
            cur_realised_pnl="-17.05",
            risk_id=1,
            risk_limit_value="2000000",
        ),
        Position(
            symbol="ETHUSDT",
            category="linear",
            side="Sell",
            size="10",
            avg_price="3000",
            mark_price="3200",
            position_value="30000",
            leverage="20",
            trade_mode=0,
            position_im="1617.325",
            position_mm="177.325",
            position_balance="",
            liq_price="",
            bust_price="",
            unrealised_pnl="-2000",
            cum_realised_pnl="-16.5",
            cur_realised_pnl="-16.5",
            risk_id=1,
            risk_limit_value="1000000",
        ),
        Position(
            symbol="SOLUSDT",
            category="linear",
            side="Buy",
            size="1000",
            avg_price="140",
            mark_price="150",
            position_value="140000",
            leverage="5",
            trade_mode=1,
            position_im="28061.6",
            position_mm="1811.6",
            position_balance="29241.6",
            liq_price="112",
            bust_price="",
            unrealised_pnl="10000",
            cum_realised_pnl="-77",
            cur_realised_pnl="-77",
            risk_id=2,
            risk_limit_value="200000",
        ),
    ]
    account = UnifiedAccount(
        coins=[
            CoinBalance(
                coin="USDT",
                wallet_balance="50000",
                equity="59500",
                usd_value="59500",
                unrealised_pnl="9500",
                cum_realised_pnl="-110.55",
                total_position_im="34124.27",
                total_position_mm="2166.77",
            )
        ],
        total_equity="59500",
        total_wallet_balance="50000",
        total_margin_balance="20258.4",
        total_available_balance="15375.73",
        total_initial_margin="4882.67",
        total_maintenance_margin="355.17",
        account_im_rate="0.2410",
        account_mm_rate="0.0175",
        total_perp_upl="9500",
        positions=positions,
    )
    instruments = _instruments()
    tickers = {
        "BTCUSDT": Ticker("BTCUSDT", "65000", "65005.12", "65001.50"),
        "ETHUSDT": Ticker("ETHUSDT", "3200", "3200.41", "3200.15"),
        "SOLUSDT": Ticker("SOLUSDT", "150", "150.012", "150.010"),
        "BTCUSD": Ticker("BTCUSD", "65010", "65005.12", "65011.00"),
    }
    fee_rates = {i.symbol: FeeRate(i.symbol, TAKER_FEE, MAKER_FEE) for i in instruments}
    return BybitState(
        instruments=instruments,
        risk_limits=_risk_limits(),
        tickers=tickers,
        fee_rates=fee_rates,
        account=account,
        api_keys={TEST_KEY: ApiKey(TEST_KEY, TEST_SECRET, read_only=False)},
    )


# --------------------------------------------------------------------------------------
# Wire helpers
# --------------------------------------------------------------------------------------


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def _decimal(value: Any, name: str) -> Decimal:
    try:
        return Decimal(str(value))
    except (InvalidOperation, ValueError) as exc:
        raise _param_error(f"params error: {name} invalid") from exc


def _fmt(value: Decimal) -> str:
    """Plain decimal string without exponent or trailing zeros ("111.6", not "1.116E+2")."""
    text = format(value, "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def _category(params: dict[str, Any], allowed: tuple[str, ...] = ("linear", "inverse")) -> str:
    category = params.get("category")
    if not category:
        raise _param_error("params error: category is required")
    if category not in allowed:
        raise BybitError(181001, f"category only support {', '.join(allowed)}")
    return str(category)


# --------------------------------------------------------------------------------------
# Handlers
# --------------------------------------------------------------------------------------

Handler = Callable[[BybitState, dict[str, Any], ApiKey | None], Awaitable[dict[str, Any]]]


async def _market_time(state: BybitState, params: dict[str, Any], key: ApiKey | None) -> dict:
    ns = time.time_ns()
    return {"timeSecond": str(ns // 1_000_000_000), "timeNano": str(ns)}


async def _instruments_info(state: BybitState, params: dict[str, Any], key: ApiKey | None) -> dict:
    category = _category(params, ("linear", "inverse", "spot", "option"))
    rows = [i for i in state.instruments if i.category == category]
    if "symbol" in params:
        rows = [i for i in rows if i.symbol == params["symbol"]]
    # Without `status`, Bybit lists trading instruments; ccxt asks for PreLaunch separately.
    status = params.get("status", "Trading")
    rows = [i for i in rows if i.status == status]
    page, nxt = paginate(
        [i.to_wire() for i in rows], limit(params, 500, 1000), params.get("cursor")
    )
    return {"category": category, "list": page, "nextPageCursor": nxt}


async def _tickers(state: BybitState, params: dict[str, Any], key: ApiKey | None) -> dict:
    category = _category(params, ("linear", "inverse", "spot", "option"))
    symbols = [i.symbol for i in state.instruments if i.category == category]
    if "symbol" in params:
        if params["symbol"] not in symbols:
            raise _param_error("Not supported symbols")
        symbols = [params["symbol"]]
    rows = [state.tickers[s].to_wire() for s in symbols if s in state.tickers]
    return {"category": category, "list": rows}


async def _risk_limit(state: BybitState, params: dict[str, Any], key: ApiKey | None) -> dict:
    category = _category(params)
    symbols = [i.symbol for i in state.instruments if i.category == category]
    if "symbol" in params:
        if params["symbol"] not in symbols:
            raise _param_error("Not supported symbols")
        symbols = [params["symbol"]]
    rows = [t.to_wire() for s in symbols for t in state.risk_limits.get(s, [])]
    page, nxt = paginate(rows, state.risk_limit_page_size, params.get("cursor"))
    return {"category": category, "list": page, "nextPageCursor": nxt}


KLINE_INTERVALS = {
    **{str(m): m * 60_000 for m in (1, 3, 5, 15, 30, 60, 120, 240, 360, 720)},
    "D": 86_400_000, "W": 7 * 86_400_000,
}  # fmt: skip
"""Bybit's `interval` values (the calendar month, M, is not served)."""


async def _kline(state: BybitState, params: dict[str, Any], key: ApiKey | None) -> dict:
    """Bybit's candles: rows of seven strings (start, O, H, L, C, volume, turnover),
    newest first; no volume is simulated, so volume and turnover are "0"."""
    category = _category(params, ("linear", "inverse", "spot"))
    symbol = params.get("symbol")
    if not symbol:
        raise _param_error("params error: symbol is required")
    step = KLINE_INTERVALS.get(str(params.get("interval")))
    if step is None:
        raise _param_error("params error: interval invalid")
    start = int(params["start"]) if params.get("start") else None
    end = int(params["end"]) if params.get("end") else None
    rows = window(
        candles(state.price_history.get(symbol, []), step), start, end, limit(params, 200, 1000)
    )
    wire = [
        [str(at), *(_fmt(Decimal(repr(x))) for x in (o, h, lo, c)), "0", "0"]
        for at, o, h, lo, c in reversed(rows)
    ]
    return {"category": category, "symbol": symbol, "list": wire}


async def _query_api(state: BybitState, params: dict[str, Any], key: ApiKey | None) -> dict:
    assert key is not None
    return key.to_wire()


async def _account_info(state: BybitState, params: dict[str, Any], key: ApiKey | None) -> dict:
    return {
        "marginMode": state.account.margin_mode,
        "updatedTime": "1735689600000",
        "unifiedMarginStatus": state.account.unified_margin_status,
        "dcpStatus": "OFF",
        "timeWindow": 10,
        "smpGroup": 0,
        "isMasterTrader": False,
        "spotHedgingStatus": "OFF",
    }


async def _wallet_balance(state: BybitState, params: dict[str, Any], key: ApiKey | None) -> dict:
    account_type = params.get("accountType")
    if not account_type:
        raise _param_error("params error: accountType is required")
    coins = set(str(params["coin"]).split(",")) if params.get("coin") else None
    if account_type == "CONTRACT" and state.inverse_apart:
        return {"list": [_contract_wallet(state, coins)]}
    if account_type != "UNIFIED":
        # A UTA 2.0 has no separate CONTRACT/SPOT wallets.
        raise _param_error("accountType only support UNIFIED.")
    return {"list": [state.account.wallet_to_wire(coins)]}


def _contract_wallet(state: BybitState, coins: set[str] | None) -> dict[str, Any]:
    """The CONTRACT wallet as a classic account lists it: account totals empty, one row
    per coin. equity = walletBalance + uPnL; the positions' IM (an isolated position's
    positionBalance) and MM in the coin; availableToWithdraw = walletBalance - IM."""
    rows = []
    for coin, wallet in sorted(state.contract.items()):
        if coins is not None and coin not in coins:
            continue
        held = [p for p in _inverse_positions(state) if _settle(state, p) == coin]
        upl = sum((Decimal(p.unrealised_pnl) for p in held), Decimal(0))
        im = _coin_held(state, coin)
        mm = sum((Decimal(p.position_mm) for p in held), Decimal(0))
        row = CoinBalance(
            coin=coin, wallet_balance=_fmt(wallet), equity=_fmt(wallet + upl), usd_value="",
            unrealised_pnl=_fmt(upl), cum_realised_pnl="0", total_position_im=_fmt(im),
            total_position_mm=_fmt(mm), available_to_withdraw=_fmt(wallet - im),
        )  # fmt: skip
        rows.append(row.to_wire())
    empty = dict.fromkeys(
        ("totalEquity", "accountIMRate", "totalMarginBalance", "totalInitialMargin",
         "totalAvailableBalance", "accountMMRate", "totalPerpUPL", "totalWalletBalance",
         "accountLTV", "totalMaintenanceMargin"), "",
    )  # fmt: skip
    return {**empty, "accountType": "CONTRACT", "coin": rows}


def _inverse_positions(state: BybitState) -> list[Position]:
    return [p for p in state.account.positions if p.category == "inverse" and Decimal(p.size) != 0]


def _settle(state: BybitState, position: Position) -> str:
    instrument = state.instrument(position.symbol)
    assert instrument is not None
    return instrument.settle_coin


def _margin_held(position: Position) -> str:
    """What a position holds of its wallet: its positionBalance if isolated, else its IM."""
    return position.position_balance if position.trade_mode == 1 else position.position_im


async def _fee_rate(state: BybitState, params: dict[str, Any], key: ApiKey | None) -> dict:
    category = _category(params)
    symbols = [i.symbol for i in state.instruments if i.category == category]
    if "symbol" in params:
        if params["symbol"] not in symbols:
            raise _param_error("Not supported symbols")
        symbols = [params["symbol"]]
    rows = [
        {"symbol": s, "takerFeeRate": f.taker, "makerFeeRate": f.maker}
        for s in symbols
        if (f := state.fee_rates.get(s)) is not None
    ]
    return {"category": category, "list": rows}


def _empty_position(instrument: Instrument) -> dict[str, Any]:
    """What Bybit returns for a symbol queried explicitly without an open position."""
    return Position(
        symbol=instrument.symbol,
        category=instrument.category,
        side="",
        size="0",
        avg_price="0",
        mark_price="0",
        position_value="0",
        leverage="10",
        trade_mode=0,
        position_im="0",
        position_mm="0",
        position_balance="0",
        liq_price="",
        bust_price="",
        unrealised_pnl="0",
        cum_realised_pnl="0",
        position_status="Normal",
    ).to_wire()


async def _position_list(state: BybitState, params: dict[str, Any], key: ApiKey | None) -> dict:
    category = _category(params)
    symbol = params.get("symbol")
    settle = params.get("settleCoin")
    if category == "linear" and not symbol and not settle:
        raise _param_error("params error: symbol or settleCoin is required")
    positions = [p for p in state.account.positions if p.category == category]
    rows: list[dict[str, Any]]
    if symbol:
        instrument = state.instrument(str(symbol))
        if instrument is None or instrument.category != category:
            raise _param_error("Not supported symbols")
        rows = [p.to_wire() for p in positions if p.symbol == symbol]
        if not rows:
            rows = [_empty_position(instrument)]
    else:
        open_rows = []
        for p in positions:
            instrument = state.instrument(p.symbol)
            if settle and (instrument is None or instrument.settle_coin != settle):
                continue
            if Decimal(p.size) != 0:
                open_rows.append(p.to_wire())
        rows = open_rows
    page, nxt = paginate(rows, limit(params, 20, 200), params.get("cursor"))
    return {"category": category, "list": page, "nextPageCursor": nxt}


def _require_write(key: ApiKey | None) -> None:
    if key is None or key.read_only:
        raise BybitError(10005, "Permission denied, please check your API key permissions.")


def _find_position(state: BybitState, category: str, symbol: str, idx: int) -> Position | None:
    for p in state.account.positions:
        key = (p.category, p.symbol, p.position_idx)
        if key == (category, symbol, idx) and Decimal(p.size) != 0:
            return p
    return None


def _position_idx(params: dict[str, Any]) -> int:
    try:
        return int(params.get("positionIdx", 0))
    except (TypeError, ValueError) as exc:
        raise _param_error("params error: positionIdx invalid") from exc


# --------------------------------------------------------------------------------------
# Trading bookkeeping: how a fill or a margin move changes the account
#
# The exchange figures of a touched position are recomputed with the same Bybit rules
# (since 2 Sep 2025) the fixture's docstring derives by hand, and the account totals with
# the relations listed there, so a read after a trade is consistent with the fixture's own
# conventions. Linear USDT contracts only.
# --------------------------------------------------------------------------------------


def _tier_at(state: BybitState, symbol: str, value: Decimal) -> RiskTier:
    tiers = state.risk_limits[symbol]
    return next((t for t in tiers if value <= Decimal(t.risk_limit_value)), tiers[-1])


def _fee_to_close(position: Position, taker: Decimal) -> Decimal:
    """Size x entry x (1 -/+ 1/leverage) x taker: the fee at the bankruptcy price."""
    sign = 1 if position.side == "Buy" else -1
    return (
        Decimal(position.size)
        * Decimal(position.avg_price)
        * (1 - sign / Decimal(position.leverage))
        * taker
    )


def _isolated_liq_price(
    state: BybitState, position: Position, balance: Decimal, fee: Decimal
) -> Decimal:
    """Solve positionBalance + uPnL(P) = MM(P) with MM at P, trying each tier at P in turn.

    long:  P = (q x entry - balance - deduction + fee) / (q x (1 - MMR))
    short: P = (balance + q x entry + deduction - fee) / (q x (1 + MMR))
    """
    q, entry = Decimal(position.size), Decimal(position.avg_price)
    price = Decimal(0)
    floor = Decimal(0)
    for tier in state.risk_limits[position.symbol]:
        rate, deduction = Decimal(tier.maintenance_margin), Decimal(tier.mm_deduction or "0")
        if position.side == "Buy":
            price = (q * entry - balance - deduction + fee) / (q * (1 - rate))
        else:
            price = (balance + q * entry + deduction - fee) / (q * (1 + rate))
        if floor < price * q <= Decimal(tier.risk_limit_value):
            break
        floor = Decimal(tier.risk_limit_value)
    return max(price, Decimal(0)).quantize(Decimal("0.01"))


def _terms(
    state: BybitState, position: Position
) -> tuple[Decimal, Decimal, Decimal, Decimal, Decimal, int]:
    """A position's mark, taker rate, size, entry and leverage, and its side's sign: what
    both repricings (linear and inverse) start from."""
    return (
        Decimal(state.tickers[position.symbol].mark_price),
        Decimal(state.fee_rates[position.symbol].taker),
        Decimal(position.size),
        Decimal(position.avg_price),
        Decimal(position.leverage),
        1 if position.side == "Buy" else -1,
    )


def _reprice_position(state: BybitState, position: Position) -> None:
    """Recompute one position's exchange figures from its size, entry, leverage and mark."""
    if position.category == "inverse":
        _reprice_inverse(state, position)
        return
    mark, taker, q, entry, leverage, sign = _terms(state, position)
    value = q * mark
    tier = _tier_at(state, position.symbol, value)
    fee = _fee_to_close(position, taker)
    mm = value * Decimal(tier.maintenance_margin) - Decimal(tier.mm_deduction or "0") + fee
    im = (q * entry if position.trade_mode == 1 else value) / leverage + fee
    position.mark_price = _fmt(mark)
    position.position_value = _fmt(q * entry)
    position.unrealised_pnl = _fmt(sign * (mark - entry) * q)
    position.risk_id = tier.id
    position.risk_limit_value = tier.risk_limit_value
    position.position_mm = _fmt(mm)
    position.position_im = _fmt(im)
    if position.trade_mode == 1:
        balance = Decimal(position.position_balance)
        position.liq_price = _fmt(_isolated_liq_price(state, position, balance, fee))
    position.updated_time = str(_now_ms())
    position.seq += 1


def _reprice_inverse(state: BybitState, position: Position) -> None:
    """An inverse position's figures, in the coin, by the same rules (since 2 Sep 2025):
    value = size / mark and its tier; fee to close = size / bankruptcy price x taker,
    the long's bankruptcy price entry x L / (L + 1) ("Order Cost", inverse), so
    size / entry x (1 + side / L) x taker; MM = value x MMR - mmDeduction + fee;
    IM = (size / entry if isolated else value) / L + fee; uPnL = side x size x
    (1/entry - 1/mark). An isolated liqPrice solves positionBalance + uPnL(P) = MM(P):
      long:  P = size (1 + MMR) / (positionBalance + size/entry + deduction - fee)
      short: P = size (1 - MMR) / (size/entry - positionBalance - deduction + fee)."""
    mark, taker, q, entry, leverage, sign = _terms(state, position)
    value = q / mark
    tier = _tier_at(state, position.symbol, value)
    fee = q / entry * (1 + sign / leverage) * taker
    mm = value * Decimal(tier.maintenance_margin) - Decimal(tier.mm_deduction or "0") + fee
    im = (q / entry if position.trade_mode == 1 else value) / leverage + fee
    position.mark_price = _fmt(mark)
    position.position_value = _fmt(_coin(q / entry))
    position.unrealised_pnl = _fmt(_coin(sign * q * (1 / entry - 1 / mark)))
    position.risk_id = tier.id
    position.risk_limit_value = tier.risk_limit_value
    position.position_mm = _fmt(_coin(mm))
    position.position_im = _fmt(_coin(im))
    if position.trade_mode == 1:
        balance = Decimal(position.position_balance)
        price = Decimal(0)
        for tier in state.risk_limits[position.symbol]:  # the tier of the value at P
            rate, deduction = Decimal(tier.maintenance_margin), Decimal(tier.mm_deduction or "0")
            if sign > 0:
                price = q * (1 + rate) / (balance + q / entry + deduction - fee)
            else:
                price = q * (1 - rate) / (q / entry - balance - deduction + fee)
            if price > 0 and q / price <= Decimal(tier.risk_limit_value):
                break
        position.liq_price = _fmt(max(price, Decimal(0)).quantize(Decimal("0.01")))
    position.updated_time = str(_now_ms())
    position.seq += 1


def _coin(amount: Decimal) -> Decimal:
    """A coin amount as Bybit shows it: eight decimals."""
    return amount.quantize(Decimal("1e-8"))


def _recompute_totals(state: BybitState) -> None:
    """Account totals from the USDT wallet and the positions (the fixture's relations).
    Inverse positions are the CONTRACT wallet's, in their coin: not counted here."""
    account = state.account
    usdt = next(c for c in account.coins if c.coin == "USDT")
    wallet = Decimal(usdt.wallet_balance)
    open_positions = [
        p for p in account.positions if Decimal(p.size) != 0 and p.category == "linear"
    ]
    cross = [p for p in open_positions if p.trade_mode == 0]
    isolated = [p for p in open_positions if p.trade_mode == 1]
    upl = sum((Decimal(p.unrealised_pnl) for p in open_positions), Decimal(0))
    cross_upl = sum((Decimal(p.unrealised_pnl) for p in cross), Decimal(0))
    iso_margin = sum((Decimal(p.position_balance) for p in isolated), Decimal(0))
    cross_im = sum((Decimal(p.position_im) for p in cross), Decimal(0))
    cross_mm = sum((Decimal(p.position_mm) for p in cross), Decimal(0))
    all_mm = sum((Decimal(p.position_mm) for p in open_positions), Decimal(0))
    margin_balance = wallet - iso_margin + cross_upl
    rate_step = Decimal("0.0001")
    account.total_wallet_balance = _fmt(wallet)
    account.total_perp_upl = _fmt(upl)
    account.total_equity = _fmt(wallet + upl)
    account.total_margin_balance = _fmt(margin_balance)
    account.total_initial_margin = _fmt(cross_im)
    account.total_maintenance_margin = _fmt(cross_mm)
    account.total_available_balance = _fmt(margin_balance - cross_im)
    if margin_balance > 0:
        account.account_im_rate = format(
            (cross_im / margin_balance).quantize(rate_step, ROUND_DOWN)
        )
        account.account_mm_rate = format(
            (cross_mm / margin_balance).quantize(rate_step, ROUND_DOWN)
        )
    usdt.equity = usdt.usd_value = _fmt(wallet + upl)
    usdt.unrealised_pnl = _fmt(upl)
    usdt.total_position_im = _fmt(cross_im + iso_margin)
    usdt.total_position_mm = _fmt(all_mm)


def move_marks(state: BybitState, marks: dict[str, str]) -> None:
    """Set mark prices (market id -> price) and recompute every figure they touch, as the
    exchange would: each position's uPnL, IM, MM and isolated liquidation price, and the
    account totals. A test changing sizes, leverage or wallets calls it with `{}`."""
    for symbol, price in marks.items():
        state.tickers[symbol].mark_price = price
    for position in state.account.positions:
        _reprice_position(state, position)
    _recompute_totals(state)


def _book_usdt(state: BybitState, amount: Decimal, *, realised: bool) -> None:
    """Credit (or debit) the USDT wallet; realised PnL and fees also enter cumRealisedPnl."""
    usdt = next(c for c in state.account.coins if c.coin == "USDT")
    usdt.wallet_balance = _fmt(Decimal(usdt.wallet_balance) + amount)
    if realised:
        usdt.cum_realised_pnl = _fmt(Decimal(usdt.cum_realised_pnl) + amount)


async def _add_margin(state: BybitState, params: dict[str, Any], key: ApiKey | None) -> dict:
    """Move margin into (positive) or out of (negative) an isolated position.

    Bybit v5 docs, "Add Or Reduce Margin" (bybit-exchange.github.io/docs/v5/position/
    manual-add-margin): the reply is the position row plus `category`. positionBalance
    changes by `margin`, liqPrice is re-solved, and the cross pool (totalMarginBalance,
    totalAvailableBalance) shrinks by the same amount; a negative margin is not checked
    against the position's IM here.
    """
    _require_write(key)
    category = _category(params)
    symbol = str(params.get("symbol") or "")
    if state.instrument(symbol) is None:
        raise _param_error("Not supported symbols")
    margin = _decimal(params.get("margin"), "margin")
    if margin != margin.quantize(Decimal("1e-4")):
        raise _param_error("params error: margin supports at most 4 decimal places")
    idx = _position_idx(params)
    position = _find_position(state, category, symbol, idx)
    if position is None:
        raise BybitError(110033, "Margin cannot be set without open position")
    if position.trade_mode != 1:
        raise BybitError(110015, "the position is in cross_margin")
    if margin == 0:
        raise BybitError(110027, "Margin is not modified")
    if category == "inverse":
        coin = _settle(state, position)
        available = _coin_wallet(state, coin) - _coin_held(state, coin)
    else:
        available = Decimal(state.account.total_available_balance)
    if margin > available:
        raise BybitError(110014, "Available balance not enough to add margin")
    position.position_balance = _fmt(Decimal(position.position_balance) + margin)
    _reprice_position(state, position)
    _recompute_totals(state)
    state.margin_adjustments.append(MarginAdjustment(symbol, category, _fmt(margin), idx))
    row = position.to_wire()
    row["category"] = category
    return row


def _check_position_mode(state: BybitState, symbol: str, side: str, idx: int) -> None:
    """Hedge mode wants positionIdx 1 (long leg) or 2 (short leg); one-way wants 0."""
    if symbol in state.hedge_symbols:
        if idx not in (1, 2):
            raise _param_error("position idx not match position mode")
    elif idx != 0:
        raise _param_error("position idx not match position mode")


def _open_or_increase(
    state: BybitState, *, instrument: Instrument, side: str, idx: int, qty: Decimal
) -> None:
    """Add `qty` at the mark to the (side, idx) position, opening it when flat."""
    mark = Decimal(state.tickers[instrument.symbol].mark_price)
    position = _find_position(state, instrument.category, instrument.symbol, idx)
    if position is None:
        isolated = state.account.margin_mode == "ISOLATED_MARGIN"
        position = Position(
            symbol=instrument.symbol,
            category=instrument.category,
            side=side,
            size="0",
            avg_price=_fmt(mark),
            mark_price=_fmt(mark),
            position_value="0",
            leverage="10",
            trade_mode=1 if isolated else 0,
            position_im="0",
            position_mm="0",
            position_balance="0" if isolated else "",
            liq_price="",
            bust_price="",
            unrealised_pnl="0",
            cum_realised_pnl="0",
            position_idx=idx,
            created_time=str(_now_ms()),
        )
        state.account.positions = [
            p
            for p in state.account.positions
            if (p.category, p.symbol, p.position_idx)
            != (instrument.category, instrument.symbol, idx)
        ]
        state.account.positions.append(position)
    old = Decimal(position.size)
    new = old + qty
    position.avg_price = _fmt((old * Decimal(position.avg_price) + qty * mark) / new)
    position.size = _fmt(new)
    if position.trade_mode == 1:
        added = qty * mark / Decimal(position.leverage)
        position.position_balance = _fmt(Decimal(position.position_balance) + added)


def _reduce(state: BybitState, position: Position, qty: Decimal) -> Decimal:
    """Close `qty` of `position` at the mark; returns the realised PnL (before fees).

    An isolated position releases its margin in proportion to the size closed.
    """
    mark = Decimal(state.tickers[position.symbol].mark_price)
    sign = 1 if position.side == "Buy" else -1
    old = Decimal(position.size)
    entry = Decimal(position.avg_price)
    if position.category == "inverse":  # coin PnL of `qty` USD contracts
        realised = sign * qty * (1 / entry - 1 / mark)
    else:
        realised = sign * (mark - entry) * qty
    remaining = old - qty
    position.size = _fmt(remaining)
    if position.trade_mode == 1:
        position.position_balance = _fmt(Decimal(position.position_balance) * remaining / old)
    if remaining == 0:
        state.account.positions.remove(position)
    return realised


def _crosses(order_type: str, side: str, price: Decimal | None, mark: Decimal) -> bool:
    if order_type == "Market" or price is None:
        return True
    return price >= mark if side == "Buy" else price <= mark


async def _order_create(state: BybitState, params: dict[str, Any], key: ApiKey | None) -> dict:
    """Place an order and fill it at once at the mark (market, or IOC limit that crosses).

    Bybit v5 docs, "Place Order" (bybit-exchange.github.io/docs/v5/order/create-order):
    reply `{"orderId", "orderLinkId"}`. Errors: 110017 reduce-only rule not satisfied,
    110007 "ab not enough for new order", 110072 duplicate orderLinkId, 10001 a positionIdx
    that does not match the position mode. A reduce-only quantity above the position size is
    cut to the size (Bybit amends such orders; unverified for every order type). Resting
    (GTC/PostOnly) limit orders are not modelled and are refused as a parameter error.
    """
    _require_write(key)
    category = _category(params)
    symbol = str(params.get("symbol") or "")
    instrument = state.instrument(symbol)
    if instrument is None or instrument.category != category:
        raise _param_error("Not supported symbols")
    inverse = category == "inverse"
    if inverse and params.get("reduceOnly") not in (True, "true"):
        raise _param_error("params error: only reduce-only inverse orders are served here")
    side = params.get("side")
    if side not in ("Buy", "Sell"):
        raise _param_error("params error: side invalid")
    order_type = str(params.get("orderType"))
    if order_type not in ("Market", "Limit"):
        raise _param_error("params error: orderType invalid")
    qty = _decimal(params.get("qty"), "qty")
    if qty <= 0:
        raise _param_error("params error: qty invalid")
    price = None if params.get("price") is None else _decimal(params.get("price"), "price")
    tif = str(params.get("timeInForce") or ("IOC" if order_type == "Market" else "GTC"))
    if order_type == "Limit" and (price is None or tif != "IOC"):
        raise _param_error("params error: only IOC limit orders are served by this test server")
    link_id = str(params.get("orderLinkId") or "")
    if link_id and any(o.order_link_id == link_id for o in state.orders):
        raise BybitError(110072, "OrderLinkedID is duplicate")
    reduce_only = params.get("reduceOnly") in (True, "true")
    idx = _position_idx(params)
    _check_position_mode(state, symbol, str(side), idx)
    hedge = symbol in state.hedge_symbols
    leg_side = {1: "Buy", 2: "Sell"}.get(idx)
    position = _find_position(state, category, symbol, idx)
    reducing = position is not None and position.side != side
    if reduce_only and not reducing:
        raise BybitError(110017, "Reduce-only rule not satisfied")
    if hedge and not reducing and side != leg_side:
        raise BybitError(110017, "Reduce-only rule not satisfied")
    mark = Decimal(state.tickers[symbol].mark_price)
    taker = Decimal(state.fee_rates[symbol].taker)
    close_qty = (
        min(qty, Decimal(position.size)) if reducing and position is not None else Decimal(0)
    )
    open_qty = Decimal(0) if reduce_only or (hedge and reducing) else qty - close_qty
    fill_qty = close_qty + open_qty
    filled = _crosses(order_type, str(side), price, mark)
    if filled and open_qty > 0:
        needed = open_qty * mark / Decimal(position.leverage if position else "10")
        if needed + open_qty * mark * taker > Decimal(state.account.total_available_balance):
            raise BybitError(110007, "ab not enough for new order")
    order = Order(
        order_id=str(uuid.uuid4()),
        order_link_id=link_id,
        symbol=symbol,
        category=category,
        side=str(side),
        order_type=order_type,
        qty=_fmt(qty),
        price=_fmt(price) if price is not None else "0",
        time_in_force=tif,
        reduce_only=reduce_only,
        position_idx=idx,
        status="Cancelled",
        avg_price="0",
        cum_exec_qty="0",
        cum_exec_value="0",
        cum_exec_fee="0",
        created_time=str(_now_ms()),
    )
    if filled:
        fee = fill_qty / mark * taker if inverse else fill_qty * mark * taker
        realised = _reduce(state, position, close_qty) if position and close_qty else Decimal(0)
        if open_qty:
            _open_or_increase(state, instrument=instrument, side=str(side), idx=idx, qty=open_qty)
        if inverse:  # in the coin, into the wallet that margins it
            fee, realised = _coin(fee), _coin(realised)
            _credit_coin(state, instrument.settle_coin, realised - fee)
        else:
            _book_usdt(state, realised - fee, realised=True)
        touched = _find_position(state, category, symbol, idx)
        if touched is not None:
            touched.cur_realised_pnl = _fmt(Decimal(touched.cur_realised_pnl) + realised - fee)
            touched.cum_realised_pnl = _fmt(Decimal(touched.cum_realised_pnl) + realised - fee)
            _reprice_position(state, touched)
        _recompute_totals(state)
        order.status = "Filled"
        order.avg_price = _fmt(mark)
        order.cum_exec_qty = _fmt(fill_qty)
        order.cum_exec_value = _fmt(_coin(fill_qty / mark) if inverse else fill_qty * mark)
        order.cum_exec_fee = _fmt(fee)
    state.orders.append(order)
    return {"orderId": order.order_id, "orderLinkId": order.order_link_id}


CLOSED_STATUSES = ("Filled", "Cancelled", "Rejected")
#: Bybit keeps the most recent 500 closed orders per category for `/v5/order/realtime`.
REALTIME_CLOSED_KEPT = 500


def _order_query(*, history: bool) -> Handler:
    """`/v5/order/realtime` and `/v5/order/history`, filtered orderId > orderLinkId > symbol.

    Bybit v5 docs, "Get Open & Closed Orders" (bybit-exchange.github.io/docs/v5/order/
    open-order): realtime with `openOnly=0` (the default) lists open orders only, even when
    asked by orderLinkId, so a filled market order is NOT found there; `openOnly=1` lists
    the most recent 500 closed orders. "Get Order History" (docs/v5/order/order-list)
    lists every order. Newest first.
    """

    async def handler(state: BybitState, params: dict[str, Any], key: ApiKey | None) -> dict:
        category = _category(params, ("linear", "inverse", "spot", "option"))
        rows = [o for o in state.orders if o.category == category]
        if not history:
            if str(params.get("openOnly", "0")) == "1":
                rows = [o for o in rows if o.status in CLOSED_STATUSES][-REALTIME_CLOSED_KEPT:]
            else:
                rows = [o for o in rows if o.status not in CLOSED_STATUSES]
        if params.get("orderId"):
            rows = [o for o in rows if o.order_id == params["orderId"]]
        elif params.get("orderLinkId"):
            rows = [o for o in rows if o.order_link_id == params["orderLinkId"]]
        elif params.get("symbol"):
            rows = [o for o in rows if o.symbol == params["symbol"]]
        newest_first = [o.to_wire() for o in reversed(rows)]
        page, nxt = paginate(newest_first, limit(params, 20, 50), params.get("cursor"))
        return {"category": category, "list": page, "nextPageCursor": nxt}

    return handler


def _require_wallet(key: ApiKey | None, permission: str) -> None:
    if key is None or key.read_only or permission not in key.wallet:
        raise BybitError(10005, "Permission denied, please check your API key permissions.")


async def _inter_transfer(state: BybitState, params: dict[str, Any], key: ApiKey | None) -> dict:
    """FUND -> UNIFIED (or back) under one UID, idempotent by the caller's `transferId`.

    Bybit v5 docs, "Create Internal Transfer" (bybit-exchange.github.io/docs/v5/asset/
    transfer/create-inter-transfer): reply `{"transferId", "status": "SUCCESS"}`; the id
    must be a UUID the caller generates. Asset error codes (docs "Error Codes", asset):
    131214 "TransferId exist" (a second request with the same id moves nothing),
    131212 insufficient balance, 131211 from == to.
    """
    _require_wallet(key, "AccountTransfer")
    transfer_id = new_transfer_id(params, {t.transfer_id for t in state.transfers})
    coin = str(params.get("coin") or "")
    amount = _decimal(params.get("amount"), "amount")
    source, target = params.get("fromAccountType"), params.get("toAccountType")
    if source == target:
        raise BybitError(131211, "fromAccountType can't be the same as toAccountType")
    coin_wallet = "CONTRACT" if state.inverse_apart else "UNIFIED"
    if coin != "USDT" and {source, target} == {"FUND", coin_wallet}:
        if amount <= 0 or amount != amount.quantize(Decimal("1e-8")):
            raise BybitError(131203, "Request parameter error")
        if source == "FUND":
            if amount > state.funding.get(coin, Decimal(0)):
                raise BybitError(131212, "Insufficient balance")
            state.funding[coin] -= amount
            _credit_coin(state, coin, amount)
        else:
            if amount > _coin_wallet(state, coin) - _coin_held(state, coin):
                raise BybitError(131212, "Insufficient balance")
            _credit_coin(state, coin, -amount)
            state.funding[coin] = state.funding.get(coin, Decimal(0)) + amount
        state.transfers.append(
            InterTransfer(transfer_id, coin, _fmt(amount), str(source), str(target),
                          str(_now_ms()))
        )  # fmt: skip
        return {"transferId": transfer_id, "status": "SUCCESS"}
    if {source, target} != {"FUND", "UNIFIED"} or coin != "USDT" or amount <= 0:
        raise BybitError(131203, "Request parameter error")
    if source == "FUND":
        if amount > state.funding.get(coin, Decimal(0)):
            raise BybitError(131212, "Insufficient balance")
        state.funding[coin] -= amount
        _book_usdt(state, amount, realised=False)
    else:
        if amount > Decimal(state.account.total_available_balance):
            raise BybitError(131212, "Insufficient balance")
        state.funding[coin] = state.funding.get(coin, Decimal(0)) + amount
        _book_usdt(state, -amount, realised=False)
    _recompute_totals(state)
    state.transfers.append(
        InterTransfer(transfer_id, coin, _fmt(amount), str(source), str(target), str(_now_ms()))
    )
    return {"transferId": transfer_id, "status": "SUCCESS"}


def _coin_wallet(state: BybitState, coin: str) -> Decimal:
    """walletBalance of the coin where it margins inverse contracts: CONTRACT on a classic
    or UTA 1.0 account, the unified wallet's coin row on a UTA 2.0."""
    if state.inverse_apart:
        return state.contract.get(coin, Decimal(0))
    row = next((c for c in state.account.coins if c.coin == coin), None)
    return Decimal(row.wallet_balance) if row is not None else Decimal(0)


def _credit_coin(state: BybitState, coin: str, amount: Decimal) -> None:
    """Credit (or debit) that wallet; a UTA 2.0 coin row is made when first credited."""
    if state.inverse_apart:
        state.contract[coin] = state.contract.get(coin, Decimal(0)) + amount
        return
    row = next((c for c in state.account.coins if c.coin == coin), None)
    if row is None:
        row = CoinBalance(coin, "0", "0", "", "0", "0", "0", "0")
        state.account.coins.append(row)
    row.wallet_balance = row.equity = _fmt(Decimal(row.wallet_balance) + amount)


def _coin_held(state: BybitState, coin: str) -> Decimal:
    """What of that wallet the coin's inverse positions hold (margin or IM)."""
    return sum(
        (Decimal(_margin_held(p)) for p in _inverse_positions(state) if _settle(state, p) == coin),
        Decimal(0),
    )


async def _transfer_list(state: BybitState, params: dict[str, Any], key: ApiKey | None) -> dict:
    """`GET /v5/asset/transfer/query-inter-transfer-list`, newest first, by transferId/coin."""
    rows = list(reversed(state.transfers))
    if params.get("transferId"):
        rows = [t for t in rows if t.transfer_id == params["transferId"]]
    if params.get("coin"):
        rows = [t for t in rows if t.coin == params["coin"]]
    page, nxt = paginate([t.to_wire() for t in rows], limit(params, 20, 50), params.get("cursor"))
    return {"list": page, "nextPageCursor": nxt}


async def _account_coins_balance(
    state: BybitState, params: dict[str, Any], key: ApiKey | None
) -> dict:
    """`GET /v5/asset/transfer/query-account-coins-balance?accountType=FUND`: the reserve."""
    balances = {coin: _fmt(amount) for coin, amount in state.funding.items()}
    return fund_coins_balance(params, balances)


PUBLIC: dict[tuple[str, str], Handler] = {
    ("GET", "/v5/market/time"): _market_time,
    ("GET", "/v5/market/instruments-info"): _instruments_info,
    ("GET", "/v5/market/tickers"): _tickers,
    ("GET", "/v5/market/risk-limit"): _risk_limit,
    ("GET", "/v5/market/kline"): _kline,
}

PRIVATE: dict[tuple[str, str], Handler] = {
    ("GET", "/v5/user/query-api"): _query_api,
    ("GET", "/v5/account/info"): _account_info,
    ("GET", "/v5/account/wallet-balance"): _wallet_balance,
    ("GET", "/v5/account/fee-rate"): _fee_rate,
    ("GET", "/v5/position/list"): _position_list,
    ("POST", "/v5/position/add-margin"): _add_margin,
    ("POST", "/v5/order/create"): _order_create,
    ("GET", "/v5/order/realtime"): _order_query(history=False),
    ("GET", "/v5/order/history"): _order_query(history=True),
    ("POST", "/v5/asset/transfer/inter-transfer"): _inter_transfer,
    ("GET", "/v5/asset/transfer/query-inter-transfer-list"): _transfer_list,
    ("GET", "/v5/asset/transfer/query-account-coins-balance"): _account_coins_balance,
}


# --------------------------------------------------------------------------------------
# Authentication and dispatch
# --------------------------------------------------------------------------------------


def _authenticate(state: BybitState, request: web.Request, raw: str) -> ApiKey:
    headers = request.headers
    api_key = headers.get("X-BAPI-API-KEY", "")
    key = state.api_keys.get(api_key)
    if key is None:
        raise BybitError(10003, "API key is invalid.", http_status=401)
    check_signature(headers, secret=key.secret, api_key=api_key, payload=raw, now=_now_ms())
    return key


STATE_KEY = web.AppKey("bybit_state", BybitState)


async def _dispatch(request: web.Request) -> web.Response:
    state = request.app[STATE_KEY]
    route = (request.method, request.path)
    handler = PUBLIC.get(route) or PRIVATE.get(route)
    if handler is None:
        return web.Response(status=404, text="404 page not found")
    raw_body = await request.text() if request.method == "POST" else ""
    params: dict[str, Any]
    if request.method == "POST":
        try:
            params = orjson.loads(raw_body) if raw_body else {}
        except orjson.JSONDecodeError:
            return _error(_param_error("params error: request body is not valid JSON"))
        if not isinstance(params, dict):
            return _error(_param_error("params error: request body must be a JSON object"))
    else:
        params = dict(request.query)
    state.requests.append(
        RequestRecord(request.method, request.path, params, request.headers.get("X-BAPI-API-KEY"))
    )
    try:
        key: ApiKey | None = None
        if route in PRIVATE:
            payload = raw_body if request.method == "POST" else request.rel_url.raw_query_string
            key = _authenticate(state, request, payload)
        result = await handler(state, params, key)
    except BybitError as err:
        return _error(err)
    fault = state.fail_next_order if route == ("POST", "/v5/order/create") else None
    if fault is not None:
        state.fail_next_order = None
        failed = await transport_fault(request, fault)
        return failed or _error(BybitError(10000, "Server Timeout"))
    return _ok(result)


def create_app(state: BybitState) -> web.Application:
    """The aiohttp app; serve it with `LocalServer(create_app(state))`."""
    app = web.Application()
    app[STATE_KEY] = state
    app.router.add_route("*", "/{tail:.*}", _dispatch)
    return app


# --------------------------------------------------------------------------------------
# Client
# --------------------------------------------------------------------------------------


def make_client(base_url: str, key: str = TEST_KEY, secret: str = TEST_SECRET) -> Any:
    """An unmodified ccxt asyncio `bybit` client pointed at `base_url`; close it when done."""
    client = ccxt_async.bybit(
        {
            "apiKey": key,
            "secret": secret,
            "enableRateLimit": False,
            "options": {"fetchMarkets": {"types": ["linear", "inverse"]}},
            # Skips the signed /v5/asset/coin/query-info call in load_markets.
            "has": {"fetchCurrencies": False},
        }
    )
    client.urls["api"] = rebase_urls(client.urls["api"], base_url)
    return client
