"""Hyperliquid: read-only monitoring of a wallet address from raw `clearinghouseState`.

Every `/info` query is public, so an account needs only `wallet_address` (ccxt's
`walletAddress`, sent as `user`): no key is ever used.

ccxt's unified fields do not fit our snapshot: its isolated `collateral` is `marginUsed`,
which includes uPnL, and its balance `total` is the whole account value, isolated margins
included, not the cross pool. The raw fields are exact, so we read those. Hyperliquid's
ledgers hold `rawUsd` (cash minus szi x entry) and value a position at szi x mark, so
equity = rawUsd + szi x mark (`accountValue`; for an isolated position `marginUsed`).
Splitting that into our wallet + uPnL, szi x (mark - entryPx), gives:

- isolated wallet = leverage.rawUsd + szi x entryPx;
- cross wallet = crossMarginSummary.totalRawUsd + sum(szi x entryPx) over cross positions.

Sources: Hyperliquid's LiquidationPx example (hyperliquid-dex/ts-examples) computes an
isolated position's value as `ntli + rawUsd`; the docs' clearinghouseState example has
marginUsed 4.967826 = rawUsd -95.059824 + positionValue 100.02765, with uPnL -0.0134.
The split needs no mark, so it holds exactly whatever mark the engine evaluates at.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, ClassVar

from monitor.domain import CrossPool, MarginMode, Position, Side, TierTable
from monitor.engine.models.hyperliquid import flat_tiers, maintenance_tiers
from monitor.exchange.adapters.base import ExchangeAdapter, PoolReading
from monitor.exchange.adapters.parse import number, price_or_unknown, required

CROSS_ASSET = "USDC"
"""The main perp dex's only collateral: one cross pool per address."""

FLAT_TABLE_IDS_BELOW = 50
"""Hyperliquid docs, "Margin tiers": a margin table id under 50 is a single tier at that
max leverage, and `meta` does not list it."""


def _entry_notional(entry: dict[str, Any]) -> float:
    """szi x entryPx: what opening the position took out of the rawUsd ledger."""
    return required(entry.get("szi"), "szi") * required(entry.get("entryPx"), "entryPx")


def margin_table(
    asset: dict[str, Any], tables: dict[int, list[dict[str, Any]]]
) -> TierTable | None:
    """The tiers of one `meta` universe entry; None when its table is unknown.

    A listed table gives its tiers; an unlisted id under 50 is a single tier at that
    leverage; a `meta` without table ids falls back to the asset's maxLeverage. An
    unlisted tiered id is left unknown rather than guessed as flat.
    """
    table_id = asset.get("marginTableId")
    if table_id in tables:
        return maintenance_tiers(
            (
                required(t.get("lowerBound"), "lowerBound"),
                required(t.get("maxLeverage"), "maxLeverage"),
            )
            for t in tables[table_id]
        )
    if table_id is not None and table_id >= FLAT_TABLE_IDS_BELOW:
        return None
    leverage = number(table_id if table_id is not None else asset.get("maxLeverage"))
    return flat_tiers(leverage) if leverage else None


class HyperliquidAdapter(ExchangeAdapter):
    client_options: ClassVar[dict[str, Any]] = {"fetchMarkets": {"types": ["swap"]}}

    def __init__(self) -> None:
        self._state: dict[str, Any] = {}
        """The last `clearinghouseState`: positions and the cross summary come from one
        reply, so they are read once per snapshot and always agree with each other."""

    async def fetch_positions(self, client: Any) -> list[dict[str, Any]]:
        self._state = await client.publicPostInfo(
            {"type": "clearinghouseState", "user": client.walletAddress}
        )
        return [
            {
                "symbol": client.safe_market(client.coin_to_market_id(entry.get("coin")))["symbol"],
                "info": row,
            }
            for row in self._state.get("assetPositions") or []
            if (entry := row.get("position") or {})
        ]

    def configure(self, client: Any) -> None:
        """Main-dex perps only: fetch_positions reads the main dex, so spot markets, HIP-3
        dexes (one `meta` query each) and the spot token list are requests for nothing."""
        super().configure(client)
        client.has["fetchCurrencies"] = False

    def parse_position(self, raw: dict[str, Any], client: Any) -> Position | None:
        entry = (raw.get("info") or {}).get("position") or {}
        szi = required(entry.get("szi"), "szi")
        if not szi:
            return None
        leverage = entry.get("leverage") or {}
        mode = MarginMode(leverage.get("type") or "cross")
        isolated = None
        if mode is MarginMode.ISOLATED and (raw_usd := number(leverage.get("rawUsd"))) is not None:
            isolated = raw_usd + _entry_notional(entry)
        size = abs(szi)
        return Position(
            symbol=raw["symbol"],
            side=Side.LONG if szi > 0 else Side.SHORT,
            margin_mode=mode,
            contracts=size,
            contract_size=1.0,
            entry_price=required(entry.get("entryPx"), "entryPx"),
            mark_price=required(entry.get("positionValue"), "positionValue") / size,
            settle=client.market(raw["symbol"])["settle"],
            leverage=number(leverage.get("value")),
            isolated_margin=isolated,
            exchange_liquidation_price=price_or_unknown(entry.get("liquidationPx")),
            exchange_unrealized_pnl=number(entry.get("unrealizedPnl")),
        )

    async def fetch_pools(self, client: Any, positions: tuple[Position, ...]) -> PoolReading:
        """The cross ledger, wallet excluding uPnL (module docstring); Hyperliquid's ratio
        crossMaintenanceMarginUsed / cross accountValue, already our direction."""
        state = self._state
        summary = state.get("crossMarginSummary") or {}
        entries = [row.get("position") or {} for row in state.get("assetPositions") or []]
        wallet = required(summary.get("totalRawUsd"), "crossMarginSummary.totalRawUsd") + sum(
            _entry_notional(entry)
            for entry in entries
            if (entry.get("leverage") or {}).get("type") == MarginMode.CROSS
        )
        mm = number(state.get("crossMaintenanceMarginUsed"))
        value = number(summary.get("accountValue"))
        ratio = mm / value if mm is not None and value and value > 0 else None
        return PoolReading((CrossPool(CROSS_ASSET, wallet, ratio, mm),))

    async def fetch_tiers(
        self, client: Any, symbols: list[str], raw_positions: Iterable[dict[str, Any]]
    ) -> dict[str, TierTable]:
        """Each held asset's margin table, from `meta` (tables change: never cached here)."""
        if not symbols:
            return {}
        meta = await client.publicPostInfo({"type": "meta"})
        tables = {int(i): t.get("marginTiers") or [] for i, t in meta.get("marginTables") or []}
        universe = {asset.get("name"): asset for asset in meta.get("universe") or []}
        coins = {raw["symbol"]: (raw.get("info") or {}).get("position", {}).get("coin")
                 for raw in raw_positions}  # fmt: skip
        tiers: dict[str, TierTable] = {}
        for symbol in symbols:
            asset = universe.get(coins.get(symbol))
            table = margin_table(asset, tables) if asset is not None else None
            if table is not None:
                tiers[symbol] = table
        return tiers
