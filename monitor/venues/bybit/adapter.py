"""Bybit v5 unified trading account (UTA): raw position, wallet and risk-limit fields.

What ccxt 4.5.90 leaves to us (see tests/servers/bybit.py for the wire):
- `marginMode` is None on every position. On UTA 2.0 the mode is account-wide
  (`/v5/account/info` marginMode) and `tradeMode` is deprecated, always 0; older and
  classic accounts still mark an isolated position with tradeMode 1. We read both.
- `fetch_positions` reads one category, and for linear one settle coin, per call.
- ccxt's `free` is not Bybit's available balance: the pool comes from the raw
  wallet-balance totals.
- Portfolio margin prices MM by stress scenarios, not by tiers: refused, not guessed.

Inverse contracts (v5 docs, "Different Account Modes"; `unifiedMarginStatus` of
`/v5/account/info`): a UTA 2.0 (5, 6) trades them inside the unified account, margin
shared; a UTA 1.0 (3, 4) and a classic account (1) keep them in the inverse derivatives
wallet (accountType CONTRACT), where each coin margins its own contracts and cross
positions of one coin share that coin's wallet, as on Binance COIN-M. Those pools are
read per coin from `/v5/account/wallet-balance?accountType=CONTRACT`. A UTA 2.0 in
isolated margin mode margins each contract in its settlement coin ("single asset mode"),
so the free coin of its unified wallet (the coin's row) is what an isolated inverse add
draws on: reported as that coin's pool too.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable
from dataclasses import replace
from typing import Any

from monitor.domain import AddLimit, CrossPool, MarginMode, Position, Tier, TierTable
from monitor.exchange.adapters.base import ExchangeAdapter, PoolReading
from monitor.exchange.adapters.parse import number, required
from monitor.exchange.budget import AccountAllowance
from monitor.exchange.clients import pace_in_window

REQUEST_ALLOWANCE = AccountAllowance("x-bapi-limit-status", "x-bapi-limit-reset-timestamp")
"""Bybit v5 "Rate Limit": per UID and endpoint, the requests left in the window and the
reset time (ms) on every reply."""

IP_WINDOW_MS = 5_000.0
IP_REQUESTS = 600
"""Bybit v5 "Rate Limit Rules": 600 requests per IP in a rolling 5 s window; the rest is
per UID and per endpoint (`REQUEST_ALLOWANCE`). ccxt's default pacing adds every
endpoint's cost into one bucket refilled at 50 a second, so one inter-transfer (cost 50,
for that endpoint's own limit) held the add-margin behind it for a second. Paced over
Bybit's own window instead (`pace_in_window`): every request costs at least 1, so no more
than 600 go out in a window."""

UNIFIED_POOL = "USD"
"""Every cross position of a UTA draws on one USD-valued pool."""

INVERSE_APART = (1, 3, 4)
"""unifiedMarginStatus of accounts whose inverse contracts live in the CONTRACT wallet:
classic (1), UTA 1.0 (3) and UTA 1.0 Pro (4)."""
ISOLATED_ACCOUNT = "ISOLATED_MARGIN"
PORTFOLIO_ACCOUNT = "PORTFOLIO_MARGIN"
ISOLATED_TRADE_MODE = 1
POSITION_SIDES = {1: "LONG", 2: "SHORT"}
"""positionIdx of hedge-mode legs; 0 is one-way mode."""

FEE_MAX_AGE = 3600.0
"""Seconds a symbol's fee rate is reused: it changes with the VIP level, not per poll."""

POSITION_QUERIES: tuple[dict[str, str], ...] = (
    {"subType": "linear", "settleCoin": "USDT"},
    {"subType": "linear", "settleCoin": "USDC"},
    {"subType": "inverse"},
)


class BybitAdapter(ExchangeAdapter):
    add_limit = AddLimit.AVAILABLE
    """An add takes from the available balance (margin balance - cross IM), not from
    Binance's wallet - MM: with the cross positions' `positionIM` below, the planner
    subtracts exactly what Bybit does."""

    def __init__(self) -> None:
        self._fees: dict[str, tuple[float, float | None]] = {}
        """symbol -> (read at, taker rate): the daemon keeps one adapter per account."""
        self.inverse_apart = False
        """Whether this account keeps inverse contracts in the CONTRACT wallet (classic,
        UTA 1.0), as the last read of `/v5/account/info` said."""
        self.contract_coins: frozenset[str] = frozenset()
        """The coins margining those contracts at the last read (BTC for BTCUSD)."""
        self.isolated_account = False
        """Whether the account is a UTA in isolated margin mode (at the last read)."""

    def configure(self, client: Any) -> None:
        """Load derivatives markets only, skip the signed currency list we never use, and
        throttle over Bybit's own 5 s window (`IP_WINDOW_MS`)."""
        fetch_markets = client.options.get("fetchMarkets") or {}
        client.options["fetchMarkets"] = {**fetch_markets, "types": ["linear", "inverse"]}
        client.has["fetchCurrencies"] = False
        pace_in_window(client, window_ms=IP_WINDOW_MS, units=IP_REQUESTS)

    async def fetch_positions(self, client: Any) -> list[dict[str, Any]]:
        """Every open linear (USDT, USDC) and inverse position, with ccxt's missing
        `marginMode` filled in from the account's mode and the position's tradeMode."""
        account, *batches = await asyncio.gather(
            client.privateGetV5AccountInfo(),
            *(client.fetch_positions(None, {**q, "paginate": True}) for q in POSITION_QUERIES),
        )
        info = account.get("result") or {}
        account_mode = info.get("marginMode")
        self.inverse_apart = info.get("unifiedMarginStatus") in INVERSE_APART
        self.isolated_account = account_mode == ISOLATED_ACCOUNT
        if account_mode == PORTFOLIO_ACCOUNT:
            raise ValueError("Bybit portfolio margin: MM comes from stress tests, not modelled")
        positions = []
        for raw in (p for batch in batches for p in batch):
            trade_mode = (raw.get("info") or {}).get("tradeMode")
            isolated = account_mode == ISOLATED_ACCOUNT or trade_mode == ISOLATED_TRADE_MODE
            positions.append({**raw, "marginMode": "isolated" if isolated else "cross"})
        return positions

    def parse_position(self, raw: dict[str, Any], client: Any) -> Position | None:
        """Raw Bybit fields; `size` is base units (linear) or USD contracts (inverse), so
        the contract size is 1 (ccxt takes an inverse one from minOrderQty)."""
        position = super().parse_position(raw, client)
        if position is None:
            return None
        info = raw.get("info") or {}
        mm = number(info.get("positionMM"))
        pnl = number(info.get("unrealisedPnl"))
        margin = None
        ratio = None
        initial = None
        if position.margin_mode is MarginMode.ISOLATED:
            margin = isolated_margin(info)
            if mm is not None and pnl is not None and margin + pnl > 0:
                ratio = mm / (margin + pnl)
        else:  # what the available balance subtracts: IM at the mark plus the fee to close
            initial = number(info.get("positionIM"))
        return replace(
            position,
            contract_size=1.0,
            isolated_margin=margin,
            initial_margin=initial,
            position_side=POSITION_SIDES.get(info.get("positionIdx"), "BOTH"),
            exchange_maintenance_margin=mm,
            exchange_unrealized_pnl=pnl,
            exchange_margin_ratio=ratio,
        )

    def wallet_of(self, asset: str) -> str:
        """ccxt's name of the wallet margining `asset` (a transfer's destination): the
        CONTRACT wallet for the coins of inverse contracts kept apart, else UNIFIED (where
        a UTA 1.0 keeps its USDT and USDC contracts)."""
        return "contract" if asset in self.contract_coins else "unified"

    async def fetch_pools(self, client: Any, positions: tuple[Position, ...]) -> PoolReading:
        """The unified cross pool, and the coin pools of inverse contracts margined in
        their coin: kept apart (CONTRACT), or in a UTA 2.0 in isolated margin mode."""
        by_coin = self.inverse_apart or self.isolated_account
        in_coin = [p for p in positions if p.inverse and by_coin]
        self.contract_coins = frozenset(p.settle for p in in_coin if self.inverse_apart)
        unified = await self._unified_pool(
            client, [p for p in positions if p.margin_mode is MarginMode.CROSS and p not in in_coin]
        )
        wallet = "CONTRACT" if self.inverse_apart else "UNIFIED"
        coins = await self._coin_pools(client, in_coin, wallet) if in_coin else ()
        return PoolReading(unified + coins, UNIFIED_POOL if unified else None)

    async def _coin_pools(
        self, client: Any, positions: list[Position], account_type: str
    ) -> tuple[CrossPool, ...]:
        """One pool per coin of that wallet: its walletBalance (deposits plus realised
        PnL, no uPnL) holds the isolated positions' margin too, which is not the cross
        pool's, so that is taken out (Binance's crossWalletBalance)."""
        settles = sorted({p.settle for p in positions})
        reply = await client.privateGetV5AccountWalletBalance(
            {"accountType": account_type, "coin": ",".join(settles)}
        )
        rows = {row.get("coin"): row for row in reply["result"]["list"][0].get("coin") or []}
        pools = []
        for coin in settles:
            row = rows.get(coin)
            if row is None:
                continue  # no wallet row: the pool stays unknown
            isolated = sum(
                p.isolated_margin or 0.0
                for p in positions
                if p.settle == coin and p.margin_mode is MarginMode.ISOLATED
            )
            wallet = required(row.get("walletBalance"), "walletBalance") - isolated
            pools.append(CrossPool(coin, wallet))
        return tuple(pools)

    async def _unified_pool(self, client: Any, cross: list[Position]) -> tuple[CrossPool, ...]:
        """The unified cross pool, from the raw wallet-balance totals.

        Bybit's totalMarginBalance is the cross margin balance in USD (wallet plus the
        cross positions' uPnL); the engine adds its own uPnL at the marks, so the wallet
        is that balance minus the uPnL Bybit counted in it.
        accountMMRate = totalMaintenanceMargin / totalMarginBalance, liquidation at 1:
        already our direction (Bybit truncates it to 4 decimals).
        """
        if not cross:
            return ()
        reply = await client.privateGetV5AccountWalletBalance({"accountType": "UNIFIED"})
        totals = reply["result"]["list"][0]
        balance = required(totals.get("totalMarginBalance"), "totalMarginBalance")
        counted = sum(  # an inverse uPnL is in its coin: the pool then reads unknown anyway
            required(p.exchange_unrealized_pnl, "unrealisedPnl") for p in cross if not p.inverse
        )
        pool = CrossPool(
            UNIFIED_POOL,
            balance - counted,
            number(totals.get("accountMMRate")),
            number(totals.get("totalMaintenanceMargin")),
        )
        return (pool,)

    async def fetch_tiers(
        self, client: Any, symbols: list[str], raw_positions: Iterable[dict[str, Any]]
    ) -> dict[str, TierTable]:
        """`/v5/market/risk-limit` per symbol: ccxt's all-symbols call reads one category."""
        replies = await asyncio.gather(*(client.fetch_market_leverage_tiers(s) for s in symbols))
        return {s: self.parse_tiers(rows) for s, rows in zip(symbols, replies, strict=True) if rows}

    def parse_tiers(self, rows: list[dict[str, Any]]) -> TierTable:
        """Raw risk limits: each tier holds position values up to its riskLimitValue, from
        the previous tier's; mmDeduction ("" on the first tier) keeps MM continuous."""
        infos = sorted(
            (row.get("info") or {} for row in rows),
            key=lambda info: required(info.get("riskLimitValue"), "riskLimitValue"),
        )
        tiers, floor = [], 0.0
        for info in infos:
            cap = required(info.get("riskLimitValue"), "riskLimitValue")
            tiers.append(
                Tier(
                    floor=floor,
                    cap=cap,
                    maintenance_rate=required(info.get("maintenanceMargin"), "maintenanceMargin"),
                    maintenance_amount=number(info.get("mmDeduction")) or 0.0,
                    max_leverage=number(info.get("maxLeverage")),
                )
            )
            floor = cap
        return TierTable(tuple(tiers), self.tier_basis)

    async def fetch_taker_fee(self, client: Any, symbols: list[str]) -> float | None:
        """The account's taker rate (`/v5/account/fee-rate`); the highest across the
        symbols held, since the snapshot carries one rate and a higher fee is the safer MM."""
        now = time.monotonic()
        stale = [s for s in symbols if s not in self._fees or now - self._fees[s][0] >= FEE_MAX_AGE]
        fees = await asyncio.gather(*(client.fetch_trading_fee(s) for s in stale))
        for symbol, fee in zip(stale, fees, strict=True):
            self._fees[symbol] = (now, number(fee.get("taker")))
        known = [rate for s in symbols if (rate := self._fees[s][1]) is not None]
        return max(known) if known else None


def isolated_margin(info: dict[str, Any]) -> float:
    """An isolated position's own wallet, excluding uPnL: our `isolated_margin`.

    `positionBalance` is the margin Bybit holds in the position: IM at entry, the
    reserved fee to close, and any margin added. It excludes uPnL, and Bybit liquidates
    where positionBalance + uPnL = MM, the fee sitting on both sides. Bybit deprecated
    the field in favour of `positionIM`, so that is the fallback when it is empty.
    """
    balance = number(info.get("positionBalance"))
    if balance:
        return balance
    return required(info.get("positionIM"), "positionIM")
