"""In-memory state of the simulated Binance USD-M exchange.

Plain mutable dataclasses: the REST layer renders them into Binance's JSON, the trading
layer mutates them, and later the scenario engine moves mark prices under them. The few
calculations here apply Binance's own published rules (bracket lookup, uPnL, maintenance
margin = |notional| x rate - cum) and are deliberately independent of the monitor's
margin engine, so that the two can check each other.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Literal

from monitor.simulator.binance_usdm.weights import IpWeights

PositionSide = Literal["BOTH", "LONG", "SHORT"]
MarginType = Literal["cross", "isolated"]

DEFAULT_LEVERAGE = 20


def wall_clock_ms() -> int:
    """Milliseconds since the epoch: the default clock; scenarios may inject their own."""
    return int(time.time() * 1000)


def decimals_of(step: float) -> int:
    """Number of decimal places of a tick or step size (0.001 -> 3, 1 -> 0)."""
    exponent = Decimal(repr(step)).normalize().as_tuple().exponent
    return max(0, -int(exponent))


@dataclass(frozen=True, slots=True)
class SimBracket:
    """One row of Binance's leverageBracket table: applies while floor <= |notional| < cap.

    `cum` is Binance's "maintenance amount": MM = |notional| x maint_rate - cum, chosen by
    Binance so that MM is continuous at every floor.
    """

    floor: float
    cap: float
    maint_rate: float
    cum: float
    max_leverage: int


@dataclass(slots=True)
class SimMarket:
    """A USD-M perpetual as exchangeInfo and leverageBracket describe it."""

    symbol: str
    base: str
    quote: str
    price_tick: float
    qty_step: float
    min_qty: float
    max_qty: float
    market_max_qty: float
    min_notional: float
    brackets: tuple[SimBracket, ...]
    margin_asset: str = ""
    contract_size: float = 1.0
    onboard_time_ms: int = 1569398400000
    liquidation_fee_rate: float = 0.0125
    """Binance's `liquidationFee`: the clearance fee rate charged on a liquidated notional."""

    def __post_init__(self) -> None:
        if not self.margin_asset:
            self.margin_asset = self.quote
        if not self.brackets:
            raise ValueError(f"{self.symbol}: a market needs at least one bracket")

    @property
    def price_precision(self) -> int:
        return decimals_of(self.price_tick)

    @property
    def quantity_precision(self) -> int:
        return decimals_of(self.qty_step)

    def bracket_for(self, notional: float) -> SimBracket:
        """Bracket with floor <= |notional| < cap; the last bracket also takes anything above."""
        size = abs(notional)
        for bracket in self.brackets:
            if size < bracket.cap:
                return bracket
        return self.brackets[-1]

    def max_notional_for_leverage(self, leverage: int) -> float:
        """Largest notional Binance allows at `leverage`: cap of the last bracket that allows it."""
        allowed = [b.cap for b in self.brackets if b.max_leverage >= leverage]
        return max(allowed) if allowed else 0.0


@dataclass(slots=True)
class SimPosition:
    """One position leg. `amount` is signed (short < 0), in contracts of size contract_size.

    `isolated_wallet` is only meaningful for isolated positions: the margin moved into
    the position, excluding its uPnL. `reported_liquidation_price` is what the exchange
    *says*; None renders as Binance's "0" (unknown), which is what monitors must cope with.
    """

    symbol: str
    amount: float
    entry_price: float
    position_side: PositionSide = "BOTH"
    margin_type: MarginType = "cross"
    isolated_wallet: float = 0.0
    leverage: int = DEFAULT_LEVERAGE
    reported_liquidation_price: float | None = None
    update_time_ms: int = 0
    realized_pnl: float = 0.0
    """Accumulated realized PnL of this leg (Binance's `cr` in ACCOUNT_UPDATE)."""

    @property
    def is_isolated(self) -> bool:
        return self.margin_type == "isolated"


def position_notional(market: SimMarket, position: SimPosition, mark: float) -> float:
    """Signed notional at mark (Binance's `notional`: negative for shorts)."""
    return position.amount * market.contract_size * mark


def unrealized_pnl(market: SimMarket, position: SimPosition, mark: float) -> float:
    return position.amount * market.contract_size * (mark - position.entry_price)


def maintenance_margin(market: SimMarket, position: SimPosition, mark: float) -> float:
    """Binance USD-M rule: |notional| x rate - cum, bracket chosen by |notional| at mark."""
    notional = abs(position_notional(market, position, mark))
    bracket = market.bracket_for(notional)
    return notional * bracket.maint_rate - bracket.cum


def initial_margin(market: SimMarket, position: SimPosition, mark: float) -> float:
    """Position initial margin as Binance reports it: |notional at mark| / leverage."""
    return abs(position_notional(market, position, mark)) / position.leverage


@dataclass(slots=True)
class SymbolSettings:
    """Per-symbol leverage and margin type, which Binance keeps even without a position."""

    leverage: int = DEFAULT_LEVERAGE
    margin_type: MarginType = "cross"


@dataclass(slots=True)
class SimOrder:
    """A past order, kept so that GET /fapi/v1/order can answer (idempotent retries)."""

    order_id: int
    client_order_id: str
    symbol: str
    side: Literal["BUY", "SELL"]
    position_side: PositionSide
    orig_qty: float
    executed_qty: float
    avg_price: float
    reduce_only: bool
    time_ms: int
    realized_pnl: float = 0.0
    commission: float = 0.0
    status: str = "FILLED"
    type: str = "MARKET"

    @property
    def cum_quote(self) -> float:
        return self.executed_qty * self.avg_price


@dataclass(frozen=True, slots=True)
class SimTransfer:
    """One universal transfer between the account's wallets, as GET /sapi/v1/asset/transfer
    lists it. Binance transfers carry no client id: a caller whose reply was lost finds its
    transfer again by type, time and amount in that history."""

    tran_id: int
    asset: str
    amount: float
    type: str
    """Binance's transfer type, source_destination: MAIN_UMFUTURE, UMFUTURE_FUNDING, ..."""
    time_ms: int
    status: str = "CONFIRMED"
    client_id: str = ""
    """The caller's own id of the transfer where the venue takes one (Bybit's
    `transferId`, which makes a retried transfer idempotent); Binance's carry none."""


@dataclass(slots=True)
class SimAccount:
    """One API key's futures account, and the wallets outside futures that feed it.

    `cross_wallet` holds the cross wallet balance per margin asset and EXCLUDES isolated
    wallets (those live on the positions); Binance's asset `walletBalance` is the sum of both.
    `spot` and `funding` are the free balances of the spot and funding wallets (asset ->
    amount): the reserve a defense may move into futures with a universal transfer.
    """

    api_key: str
    secret: str
    cross_wallet: dict[str, float]
    positions: list[SimPosition] = field(default_factory=list)
    dual_side_position: bool = False
    multi_assets_margin: bool = False
    can_trade: bool = True
    can_withdraw: bool = False
    can_transfer: bool = False
    """Whether the key may make universal transfers (apiRestrictions'
    `permitsUniversalTransfer`); withdrawals are `can_withdraw`, a separate permission."""
    spot: dict[str, float] = field(default_factory=dict)
    funding: dict[str, float] = field(default_factory=dict)
    transfers: list[SimTransfer] = field(default_factory=list)
    maker_fee_rate: float = 0.0002
    taker_fee_rate: float = 0.0005
    symbol_settings: dict[str, SymbolSettings] = field(default_factory=dict)
    orders: list[SimOrder] = field(default_factory=list)
    next_order_id: int = 1000001
    update_time_ms: int = 0
    listen_key: str | None = None
    listen_key_expires_ms: int = 0

    def position(self, symbol: str, position_side: PositionSide = "BOTH") -> SimPosition | None:
        for position in self.positions:
            if position.symbol == symbol and position.position_side == position_side:
                return position
        return None

    def open_positions(self) -> list[SimPosition]:
        return [p for p in self.positions if p.amount != 0]

    def remove_position(self, position: SimPosition) -> None:
        """Drop a closed leg but remember its symbol's leverage and margin type."""
        self.symbol_settings[position.symbol] = self.settings(position.symbol)
        self.positions.remove(position)

    def settings(self, symbol: str) -> SymbolSettings:
        """Settings of a symbol; an open position's own leverage and margin type win."""
        for position in self.positions:
            if position.symbol == symbol:
                return SymbolSettings(position.leverage, position.margin_type)
        return self.symbol_settings.get(symbol) or SymbolSettings()

    def set_leverage(self, symbol: str, leverage: int) -> None:
        self.symbol_settings.setdefault(symbol, self.settings(symbol)).leverage = leverage
        for position in self.positions:
            if position.symbol == symbol:
                position.leverage = leverage

    def set_margin_type(self, symbol: str, margin_type: MarginType) -> None:
        self.symbol_settings.setdefault(symbol, self.settings(symbol)).margin_type = margin_type

    def find_order(self, order_id: int | None, client_order_id: str | None) -> SimOrder | None:
        """Most recent order matching either id (client ids may repeat once filled)."""
        for order in reversed(self.orders):
            if order_id is not None and order.order_id == order_id:
                return order
            if client_order_id is not None and order.client_order_id == client_order_id:
                return order
        return None


@dataclass(slots=True)
class Fault:
    """A scripted misbehaviour of one path, for tests of retry and timeout handling.

    `delay_s` is slept first (longer than the client's timeout = a timeout); then, if
    `status` is set, that response is sent instead of the real one. With `execute_first`
    the request is carried out normally and only its reply is delayed: the order exists
    although the client saw a timeout. `times` limits how many requests are affected
    (None = until removed).
    """

    status: int | None = None
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0
    times: int | None = None
    execute_first: bool = False

    @classmethod
    def rate_limited(cls, retry_after_s: int = 1, times: int | None = None) -> Fault:
        return cls(
            status=429,
            body={
                "code": -1003,
                "msg": "Too many requests; current limit of IP(127.0.0.1) request weight "
                "per minute is 2400. Please use WebSocket Streams for live updates to avoid "
                "polling the API.",
            },
            headers={"Retry-After": str(retry_after_s)},
            times=times,
        )

    @classmethod
    def server_error(cls, status: int = 503, times: int | None = None) -> Fault:
        return cls(
            status=status,
            body={"code": -1001, "msg": "Internal error; unable to process your request."},
            times=times,
        )

    @classmethod
    def hang(cls, delay_s: float, times: int | None = None) -> Fault:
        return cls(delay_s=delay_s, times=times)

    @classmethod
    def answer_late(cls, delay_s: float, times: int | None = None) -> Fault:
        """Execute the request, then hold the reply for `delay_s` (a timeout that hides
        a success: the case an order client must never answer with a second order)."""
        return cls(delay_s=delay_s, times=times, execute_first=True)


@dataclass(slots=True)
class SimExchange:
    """The whole simulated venue: markets, prices, accounts, and injected faults."""

    markets: dict[str, SimMarket]
    mark_prices: dict[str, float]
    accounts: dict[str, SimAccount] = field(default_factory=dict)
    index_prices: dict[str, float] = field(default_factory=dict)
    funding_rates: dict[str, float] = field(default_factory=dict)
    faults: dict[str, Fault] = field(default_factory=dict)
    clock_ms: Callable[[], int] = wall_clock_ms
    requests: list[str] = field(default_factory=list)
    """Every request as "METHOD /path", newest last: what a client actually called.
    Websocket connections are logged as "WS /path?query"."""
    next_funding_ms: int | None = None
    """When a scenario schedules funding: the clock time of the next settlement.
    None means Binance's 8-hour grid."""
    next_tran_id: int = 43000126248
    """Binance numbers transfers venue-wide; this is the next `tranId` handed out."""
    price_history: dict[str, list[tuple[int, float]]] = field(default_factory=dict)
    """symbol -> [(clock ms, mark)], oldest first: what the klines endpoint serves.
    `record_marks` appends the current marks; a test may seed a past day."""
    listeners: list[Callable[[SimAccount, dict[str, Any]], None]] = field(default_factory=list)
    weights: IpWeights = field(default_factory=IpWeights)
    """The request-weight counter of the one IP every client comes from (loopback)."""
    """Receivers of user-data events (the user streams); every account mutation that
    Binance reports on the user stream is published here, whoever caused it."""

    def market(self, symbol: str) -> SimMarket:
        return self.markets[symbol]

    def mark(self, symbol: str) -> float:
        return self.mark_prices[symbol]

    def record_marks(self) -> None:
        """Append every current mark to the price history at the venue's clock."""
        now = self.clock_ms()
        for symbol, mark in self.mark_prices.items():
            self.price_history.setdefault(symbol, []).append((now, mark))

    def index(self, symbol: str) -> float:
        return self.index_prices.get(symbol, self.mark_prices[symbol])

    def funding_rate(self, symbol: str) -> float:
        return self.funding_rates.get(symbol, 0.0001)

    def account(self, api_key: str) -> SimAccount | None:
        return self.accounts.get(api_key)

    def add_account(self, account: SimAccount) -> SimAccount:
        self.accounts[account.api_key] = account
        return account

    def publish(self, account: SimAccount, event: dict[str, Any]) -> None:
        """Hand a rendered user-data event to every listener, in the order it happened."""
        for listener in self.listeners:
            listener(account, event)

    def account_for_listen_key(self, listen_key: str) -> SimAccount | None:
        """The account whose live (unexpired) listen key this is."""
        now = self.clock_ms()
        for account in self.accounts.values():
            if account.listen_key == listen_key and now < account.listen_key_expires_ms:
                return account
        return None

    def take_fault(self, path: str) -> Fault | None:
        """The fault scripted for `path`, consuming one of its `times`."""
        fault = self.faults.get(path)
        if fault is None:
            return None
        if fault.times is not None:
            fault.times -= 1
            if fault.times <= 0:
                del self.faults[path]
        return fault
