"""Turning what ccxt returns into an AccountSnapshot.

The base adapter uses only ccxt's unified fields, so it works for any exchange ccxt
supports; an exchange with better raw fields gets a subclass that overrides one step.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable, Mapping
from typing import Any, ClassVar, NamedTuple

from monitor.domain import (
    AccountSnapshot,
    AddLimit,
    CrossPool,
    MarginMode,
    MarketInfo,
    Position,
    Side,
    Tier,
    TierBasis,
    TierTable,
)
from monitor.exchange.adapters.parse import number, price_or_unknown, required


async def _no_tiers() -> dict[str, TierTable]:
    return {}


class PoolReading(NamedTuple):
    """Cross pools as read, and the one pool every cross position shares, if any."""

    pools: tuple[CrossPool, ...]
    unified_pool: str | None = None
    margin_available: dict[str, float] | None = None
    """Per coin, what an isolated add may take (`AccountSnapshot.margin_available`)."""


class ExchangeAdapter:
    """Generic ccxt adapter: unified positions, balance and leverage tiers."""

    client_options: ClassVar[dict[str, Any]] = {}
    client_mixins: ClassVar[tuple[type, ...]] = ()
    """Classes put in front of ccxt's exchange class when the account's client is made
    (what ccxt cannot be told by options, e.g. a request header it never sends)."""
    tier_basis: ClassVar[TierBasis] = TierBasis.NOTIONAL
    add_limit: ClassVar[AddLimit] = AddLimit.WALLET_AND_AVAILABLE
    """What the venue lets an isolated add take (carried on every snapshot)."""

    def configure(self, client: Any) -> None:
        """Adjust a fresh client: options that keep ccxt from calling what we never use."""
        client.options.update(self.client_options)

    async def fetch_snapshot(
        self, client: Any, name: str, known_tiers: Mapping[str, TierTable] | None = None
    ) -> AccountSnapshot:
        """Positions, pools and tiers of one account, as of now.

        `known_tiers` are tables the caller already holds (tiers change every few hours,
        positions every second): only symbols missing from it are fetched.
        """
        raw_positions = await self.fetch_positions(client)
        positions = tuple(
            p for p in (self.parse_position(raw, client) for raw in raw_positions) if p
        )
        symbols = sorted({p.symbol for p in positions})
        known = dict(known_tiers or {})
        missing = [s for s in symbols if s not in known]
        reading, fetched = await asyncio.gather(
            self.fetch_pools(client, positions),
            self.fetch_tiers(client, missing, raw_positions) if missing else _no_tiers(),
        )
        tiers = {s: t for s in symbols if (t := known.get(s) or fetched.get(s)) is not None}
        return AccountSnapshot(
            name=name,
            exchange=client.id,
            pools=reading.pools,
            positions=positions,
            tiers=tiers,
            markets={s: self.market_info(client, s) for s in symbols},
            taker_fee_rate=await self.fetch_taker_fee(client, symbols),
            fetched_at=time.time(),
            unified_pool=reading.unified_pool,
            margin_available=dict(reading.margin_available or {}),
            add_limit=self.add_limit,
        )

    async def fetch_positions(self, client: Any) -> list[dict[str, Any]]:
        return await client.fetch_positions()

    def poll_weight(self, *, tiers_due: bool, markets_loaded: bool) -> int:
        """The request weight one `fetch_snapshot` will cost on a venue that counts weight
        per IP (monitor/exchange/budget.py); 0 where the venue counts none."""
        return 0

    def parse_position(self, raw: dict[str, Any], client: Any) -> Position | None:
        """A unified ccxt position; None for an empty one."""
        contracts = number(raw.get("contracts"))
        if not contracts:
            return None
        market = client.market(raw["symbol"])
        side = Side(raw["side"])
        mode = MarginMode(raw.get("marginMode") or "cross")
        return Position(
            symbol=raw["symbol"],
            side=side,
            margin_mode=mode,
            contracts=abs(contracts),
            contract_size=number(raw.get("contractSize"))
            or number(market.get("contractSize"))
            or 1.0,
            entry_price=required(raw.get("entryPrice"), "entry price"),
            mark_price=required(raw.get("markPrice"), "mark price"),
            settle=market.get("settle") or market["quote"],
            inverse=bool(market.get("inverse")),
            leverage=number(raw.get("leverage")),
            isolated_margin=number(raw.get("collateral")) if mode is MarginMode.ISOLATED else None,
            exchange_liquidation_price=price_or_unknown(raw.get("liquidationPrice")),
            exchange_maintenance_margin=number(raw.get("maintenanceMargin")),
            exchange_unrealized_pnl=number(raw.get("unrealizedPnl")),
        )

    async def fetch_pools(
        self, client: Any, positions: tuple[Position, ...]
    ) -> tuple[CrossPool, ...]:
        """Cross wallets per settlement asset from the unified balance.

        ccxt's unified `total` is the wallet on most exchanges; a subclass whose exchange
        folds PnL or isolated margin into it must override this.
        """
        balance = await client.fetch_balance()
        assets = {p.settle for p in positions if p.margin_mode is MarginMode.CROSS}
        totals = balance.get("total") or {}
        return PoolReading(
            tuple(
                CrossPool(asset, wallet)
                for asset in sorted(assets)
                if (wallet := number(totals.get(asset))) is not None
            )
        )

    async def fetch_tiers(
        self, client: Any, symbols: list[str], raw_positions: Iterable[dict[str, Any]]
    ) -> dict[str, TierTable]:
        """Unified leverage tiers where ccxt has them; nothing otherwise.

        Deliberately not ccxt's per-position `maintenanceMarginPercentage`: for isolated
        positions ccxt back-solves it from the exchange's own liquidation price, so "our"
        figure would only echo theirs. A symbol without tiers reads unknown, with a note.
        """
        tiers: dict[str, TierTable] = {}
        if symbols and client.has.get("fetchLeverageTiers"):
            for symbol, rows in (await client.fetch_leverage_tiers(symbols)).items():
                if symbol in symbols and rows:
                    tiers[symbol] = self.parse_tiers(rows)
        return tiers

    def parse_tiers(self, rows: list[dict[str, Any]]) -> TierTable:
        return TierTable(
            tuple(
                Tier(
                    floor=number(row.get("minNotional")) or 0.0,
                    cap=number(row.get("maxNotional")) or float("inf"),
                    maintenance_rate=required(row.get("maintenanceMarginRate"), "maintenance rate"),
                    max_leverage=number(row.get("maxLeverage")),
                )
                for row in rows
            ),
            self.tier_basis,
        )

    async def fetch_taker_fee(self, client: Any, symbols: list[str]) -> float | None:
        """The taker fee from the market table (no request): used to cost reductions."""
        fees = [number(client.market(s).get("taker")) for s in symbols]
        known = [f for f in fees if f is not None]
        return max(known) if known else None

    def market_info(self, client: Any, symbol: str) -> MarketInfo:
        market = client.market(symbol)
        limits = market.get("limits") or {}
        precision = market.get("precision") or {}
        return MarketInfo(
            symbol=symbol,
            amount_step=number(precision.get("amount")),
            min_amount=number((limits.get("amount") or {}).get("min")),
            min_notional=number((limits.get("cost") or {}).get("min")),
        )
