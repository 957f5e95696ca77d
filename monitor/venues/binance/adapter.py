"""Binance USD-M and COIN-M: raw positionRisk, account and bracket fields.

ccxt's unified `maintenanceMargin` for Binance ignores `cum`, and its cross `collateral`
is back-solved from the liquidation price; the raw fields are exact, so we read those.
Positions come straight from `positionRisk` rather than through `fetch_positions`, which
would also make every client load and keep the parsed brackets of every symbol (memory
per account, and request weight the daemon does not need: tiers have their own refresh).
"""

from __future__ import annotations

import time
from typing import Any, ClassVar

from monitor.domain import CrossPool, MarginMode, Position, Side, Tier, TierBasis, TierTable
from monitor.exchange.adapters.base import ExchangeAdapter, PoolReading
from monitor.exchange.adapters.parse import number, price_or_unknown, required
from monitor.exchange.budget import WeightLimit
from monitor.exchange.clients import pace_in_window

REQUEST_WEIGHT = WeightLimit("x-mbx-used-weight-1m", 2400, 60.0)
"""Binance USD-M and COIN-M "General Info": REQUEST_WEIGHT 2,400 a minute per IP."""
MULTI_ASSETS_POOL = "USD"
MODE_RECHECK_SECONDS = 3600.0
"""The account mode rarely changes: check it hourly."""
SNAPSHOT_WEIGHT = 5 + 5
"""positionRisk v3 (5) and account v3 (5), Binance's documented REQUEST_WEIGHT."""
MODE_WEIGHT = 5
"""account v2, which carries `multiAssetsMargin` (Binance, "Account Information V2",
weight 5): the dedicated `GET /fapi/v1/multiAssetsMargin` weighs 30, and at 200 accounts
on one IP that alone was 6,000 weight of every restart."""


PACING_WINDOW_MS = 60_000.0
PACING_UNITS = 1_200
"""ccxt's own pace for Binance (rateLimit 50 ms: 1,200 cost units a minute, half the
2,400 request weight an IP may use in Binance's one-minute windows), kept over a minute
(`pace_in_window`) instead of ccxt's leaky bucket, in which the universal transfer
(cost 6) held the add-margin it funds some 0.3 s behind it: at drill speed 8, 2.4 s of
market."""


class BinanceUsdMAdapter(ExchangeAdapter):
    client_options: ClassVar[dict[str, Any]] = {"fetchCurrencies": False}

    def __init__(self) -> None:
        self._mode: tuple[bool, float] | None = None  # (multi-assets on, checked at)

    def configure(self, client: Any) -> None:
        """Skip the currency list, and pace over a minute (`PACING_UNITS`)."""
        super().configure(client)
        pace_in_window(client, window_ms=PACING_WINDOW_MS, units=PACING_UNITS)

    async def fetch_positions(self, client: Any) -> list[dict[str, Any]]:
        return await client.fapiPrivateV3GetPositionRisk()

    def poll_weight(self, *, tiers_due: bool, markets_loaded: bool) -> int:
        """positionRisk + account, the mode check when due (5), leverageBracket when the
        tiers are due (1, whatever the symbols: Binance's page says 1) and exchangeInfo
        when the markets are not loaded (1)."""
        due = self._mode is None or time.monotonic() - self._mode[1] >= MODE_RECHECK_SECONDS
        return SNAPSHOT_WEIGHT + MODE_WEIGHT * due + int(tiers_due) + int(not markets_loaded)

    def parse_position(self, raw: dict[str, Any], client: Any) -> Position | None:
        """One raw positionRisk row (v3 USD-M, or COIN-M's); None for an empty one."""
        amount = number(raw.get("positionAmt"))
        if not amount:
            return None
        market = client.safe_market(raw["symbol"], None, None, "swap")
        position_side = raw.get("positionSide") or "BOTH"
        if position_side == "BOTH":
            side = Side.LONG if amount > 0 else Side.SHORT
        else:
            side = Side.LONG if position_side == "LONG" else Side.SHORT
        # v3 rows carry no marginType: an isolated position is one with an isolated wallet
        margin_type = raw.get("marginType")
        wallet = number(raw.get("isolatedWallet")) or 0.0
        isolated = margin_type == "isolated" if margin_type else wallet != 0.0
        return Position(
            symbol=market["symbol"],
            side=side,
            margin_mode=MarginMode.ISOLATED if isolated else MarginMode.CROSS,
            contracts=abs(amount),
            contract_size=number(market.get("contractSize")) or 1.0,
            entry_price=required(raw.get("entryPrice"), "entryPrice"),
            mark_price=required(raw.get("markPrice"), "markPrice"),
            settle=market.get("settle") or raw.get("marginAsset") or market["quote"],
            inverse=bool(market.get("inverse")),
            leverage=number(raw.get("leverage")),
            initial_margin=number(raw.get("positionInitialMargin")),
            isolated_margin=wallet if isolated else None,
            position_side=position_side,
            exchange_liquidation_price=price_or_unknown(raw.get("liquidationPrice")),
            exchange_maintenance_margin=number(raw.get("maintMargin")),
            exchange_unrealized_pnl=number(raw.get("unRealizedProfit")),
        )

    async def fetch_account(self, client: Any) -> dict[str, Any]:
        return await client.fapiPrivateV3GetAccount()

    async def multi_assets(self, client: Any) -> bool:
        if self._mode is not None and time.monotonic() - self._mode[1] < MODE_RECHECK_SECONDS:
            return self._mode[0]
        reply = await client.fapiPrivateV2GetAccount()
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

    tier_basis = TierBasis.CONTRACTS

    async def fetch_positions(self, client: Any) -> list[dict[str, Any]]:
        return await client.dapiPrivateGetPositionRisk()

    async def fetch_account(self, client: Any) -> dict[str, Any]:
        return await client.dapiPrivateGetAccount()

    async def multi_assets(self, client: Any) -> bool:
        return False

    @staticmethod
    def _bounds(info: dict[str, Any]) -> tuple[float, float]:
        return number(info.get("qtyFloor")) or 0.0, number(info.get("qtyCap")) or float("inf")
