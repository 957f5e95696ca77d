"""Binance USD-M and COIN-M: raw positionRisk, account and bracket fields.

ccxt's unified `maintenanceMargin` for Binance ignores `cum`, and its cross `collateral`
is back-solved from the liquidation price; the raw fields are exact, so we read those.
"""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Any, ClassVar

from monitor.domain import CrossPool, MarginMode, Position, Tier, TierBasis, TierTable
from monitor.exchange.adapters.base import ExchangeAdapter, PoolReading
from monitor.exchange.adapters.parse import number, required

MULTI_ASSETS_POOL = "USD"
MODE_RECHECK_SECONDS = 3600.0
"""The account mode rarely changes and its endpoint weighs 30: check it hourly."""


class BinanceUsdMAdapter(ExchangeAdapter):
    exchange_ids = ("binanceusdm",)
    client_options: ClassVar[dict[str, Any]] = {"fetchCurrencies": False}

    def __init__(self) -> None:
        self._mode: tuple[bool, float] | None = None  # (multi-assets on, checked at)

    def parse_position(self, raw: dict[str, Any], client: Any) -> Position | None:
        position = super().parse_position(raw, client)
        if position is None:
            return None
        info = raw.get("info") or {}
        isolated = (
            required(info.get("isolatedWallet"), "isolatedWallet")
            if position.margin_mode is MarginMode.ISOLATED
            else None
        )
        return replace(
            position,
            isolated_margin=isolated,
            position_side=info.get("positionSide") or "BOTH",
            exchange_maintenance_margin=number(info.get("maintMargin")),
            exchange_unrealized_pnl=number(info.get("unRealizedProfit")),
        )

    async def fetch_account(self, client: Any) -> dict[str, Any]:
        return await client.fapiPrivateV3GetAccount()

    async def multi_assets(self, client: Any) -> bool:
        if self._mode is not None and time.monotonic() - self._mode[1] < MODE_RECHECK_SECONDS:
            return self._mode[0]
        reply = await client.fapiPrivateGetMultiAssetsMargin()
        mode = bool(reply.get("multiAssetsMargin"))
        self._mode = (mode, time.monotonic())
        return mode

    async def fetch_pools(
        self, client: Any, positions: tuple[Position, ...]
    ) -> tuple[CrossPool, ...]:
        """Cross wallets exclude isolated margins; in Multi-Assets mode one USD pool."""
        account = await self.fetch_account(client)
        isolated_mm: dict[str, float] = {}
        for p in positions:
            if p.margin_mode is MarginMode.ISOLATED and p.exchange_maintenance_margin:
                isolated_mm[p.settle] = (
                    isolated_mm.get(p.settle, 0.0) + p.exchange_maintenance_margin
                )
        if await self.multi_assets(client):
            wallet = required(account.get("totalCrossWalletBalance"), "totalCrossWalletBalance")
            mm = number(account.get("totalMaintMargin"))
            balance = number(account.get("totalMarginBalance"))
            ratio = mm / balance if mm is not None and balance else None
            return PoolReading(
                (CrossPool(MULTI_ASSETS_POOL, wallet, ratio, mm),), MULTI_ASSETS_POOL
            )
        pools = []
        for row in account.get("assets") or []:
            wallet = number(row.get("crossWalletBalance"))
            if wallet is None:
                continue
            asset = row["asset"]
            mm = number(row.get("maintMargin"))
            cross_mm = mm - isolated_mm.get(asset, 0.0) if mm is not None else None
            cross_balance = wallet + (number(row.get("crossUnPnl")) or 0.0)
            ratio = cross_mm / cross_balance if cross_mm is not None and cross_balance > 0 else None
            if wallet or cross_mm:
                pools.append(CrossPool(asset, wallet, ratio, cross_mm))
        return PoolReading(tuple(pools))

    def parse_tiers(self, rows: list[dict[str, Any]]) -> TierTable:
        """Raw brackets, with Binance's `cum`, which the unified rows drop."""
        tiers = []
        for row in rows:
            info = row.get("info") or {}
            floor, cap = self._bounds(info)
            tiers.append(
                Tier(
                    floor=floor,
                    cap=cap,
                    maintenance_rate=required(info.get("maintMarginRatio"), "maintMarginRatio"),
                    maintenance_amount=number(info.get("cum")) or 0.0,
                    max_leverage=number(info.get("initialLeverage")),
                )
            )
        return TierTable(tuple(tiers), self.tier_basis)

    @staticmethod
    def _bounds(info: dict[str, Any]) -> tuple[float, float]:
        return number(info.get("notionalFloor")) or 0.0, number(info.get("notionalCap")) or float(
            "inf"
        )


class BinanceCoinMAdapter(BinanceUsdMAdapter):
    """COIN-M: brackets by contract count, wallets in coin, one pool per coin."""

    exchange_ids = ("binancecoinm",)
    tier_basis = TierBasis.CONTRACTS

    async def fetch_account(self, client: Any) -> dict[str, Any]:
        return await client.dapiPrivateGetAccount()

    async def multi_assets(self, client: Any) -> bool:
        return False

    @staticmethod
    def _bounds(info: dict[str, Any]) -> tuple[float, float]:
        return number(info.get("qtyFloor")) or 0.0, number(info.get("qtyCap")) or float("inf")
