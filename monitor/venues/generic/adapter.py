"""BingX, MEXC and WEEX: read through ccxt, priced by the generic model (never exact).

ccxt 4.5.90's parsers for these three exchanges mislead the base adapter in a few places
(found by reading them against the exchanges' API docs); each class below overrides only
the step that is wrong for its exchange:

- All three fold unrealised PnL into an isolated position's unified `collateral`, while a
  `Position` wants the isolated wallet without it.
- The unified balance `total` is not the cross wallet: for BingX it is
  availableMargin + usedMargin (sometimes equity), for MEXC availableBalance +
  frozenBalance (position margins left out); only WEEX's `total` is its raw `balance`.
  None of them leaves out the isolated margins, which are no part of the cross pool.
- ccxt back-solves a maintenance margin (and from it a maintenance rate) from the
  liquidation price; none of the three reports either, so neither is used.
- MEXC and WEEX positions carry no mark price; WEEX's `size` is in base units although
  ccxt sets `contractSize` to the market's `contractVal`.
- Maintenance rates: BingX publishes tiers per market only (`fetchMarketLeverageTiers`);
  ccxt's MEXC tiers are keyed by contracts but labelled notional, ignore the base risk
  level and have no rate at all for custom tables; WEEX publishes none, so its MM stays
  unknown and the engine says why.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from dataclasses import replace
from typing import Any, ClassVar

from monitor.domain import CrossPool, MarginMode, Position, Tier, TierBasis, TierTable
from monitor.exchange.adapters.base import ExchangeAdapter, PoolReading
from monitor.exchange.adapters.parse import number, required
from monitor.venues.generic.pacing import EndpointPacing


def cross_pools(wallets: dict[str, float], positions: tuple[Position, ...]) -> PoolReading:
    """Cross wallets: each settlement asset's whole wallet less its isolated margins.

    An asset whose wallet, or one of whose isolated margins, is unknown gets no pool, so
    the engine reports its cross figures as unknown instead of guessing.
    """
    pools = []
    for asset in sorted({p.settle for p in positions if p.margin_mode is MarginMode.CROSS}):
        isolated = [
            p.isolated_margin
            for p in positions
            if p.margin_mode is MarginMode.ISOLATED and p.settle == asset
        ]
        wallet = wallets.get(asset)
        if wallet is None or any(margin is None for margin in isolated):
            continue
        pools.append(CrossPool(asset, wallet - sum(m for m in isolated if m is not None)))
    return PoolReading(tuple(pools))


class _SwapVenueAdapter(ExchangeAdapter):
    """What the three share: swap-only clients and the corrections common to their parsers."""

    client_options: ClassVar[dict[str, Any]] = {"defaultType": "swap"}

    def configure(self, client: Any) -> None:
        """Swap by default (all three default to spot) and no currency list: it is never
        used here, and BingX and MEXC fetch it from a signed wallet endpoint."""
        super().configure(client)
        client.has["fetchCurrencies"] = False

    async def fetch_positions(self, client: Any) -> list[dict[str, Any]]:
        """Positions, with the mark price filled in where the exchange's reply lacks it."""
        raw = await client.fetch_positions()
        missing = sorted({p["symbol"] for p in raw if p.get("markPrice") is None})
        if not missing:
            return raw
        marks = await self.fetch_marks(client, missing)
        return [
            {**p, "markPrice": marks.get(p["symbol"])} if p.get("markPrice") is None else p
            for p in raw
        ]

    async def fetch_marks(self, client: Any, symbols: list[str]) -> dict[str, float]:
        """Mark prices for positions that came without one; none by default."""
        return {}

    def parse_position(self, raw: dict[str, Any], client: Any) -> Position | None:
        """The isolated wallet is ccxt's collateral less the uPnL these parsers add to it.

        None of the three exchanges reports a maintenance margin: ccxt's unified one is
        back-solved from the liquidation price, so it is dropped rather than shown as the
        exchange's figure.
        """
        position = super().parse_position(raw, client)
        if position is None:
            return None
        position = replace(position, exchange_maintenance_margin=None)
        if position.isolated_margin is None:
            return position
        pnl = number(raw.get("unrealizedPnl")) or 0.0
        return replace(position, isolated_margin=position.isolated_margin - pnl)

    async def fetch_pools(self, client: Any, positions: tuple[Position, ...]) -> PoolReading:
        return cross_pools(self.wallets(await client.fetch_balance()), positions)

    async def fetch_tiers(
        self, client: Any, symbols: list[str], raw_positions: Iterable[dict[str, Any]]
    ) -> dict[str, TierTable]:
        """None by default: no position of these exchanges carries a maintenance rate, and
        ccxt's `maintenanceMarginPercentage` for them is back-solved from the exchange's
        liquidation price, which would only echo the exchange back as our own figure."""
        return {}

    def wallets(self, balance: dict[str, Any]) -> dict[str, float]:
        """Whole wallet per asset (isolated margins included, uPnL excluded)."""
        totals = balance.get("total") or {}
        return {a: w for a, v in totals.items() if (w := number(v)) is not None}


class BingxAdapter(_SwapVenueAdapter):
    """BingX USDT-M perpetuals (swap v2/v3). Coin-M positions are not read: ccxt's
    fetch_positions returns them only on request, and BingX publishes no Coin-M tiers."""

    def wallets(self, balance: dict[str, Any]) -> dict[str, float]:
        """The raw `balance` of `/swap/v3/user/balance`; `equity` adds the uPnL."""
        rows = (balance.get("info") or {}).get("data") or []
        return {
            row["asset"]: wallet
            for row in rows
            if row.get("asset") and (wallet := number(row.get("balance"))) is not None
        }

    async def fetch_tiers(
        self, client: Any, symbols: list[str], raw_positions: Iterable[dict[str, Any]]
    ) -> dict[str, TierTable]:
        """One `maintMarginRatio` request per linear market; BingX's `maintAmount`
        (a deduction) is dropped by ccxt, which only makes MM larger: the safe side."""
        linear = [s for s in symbols if client.market(s).get("linear")]
        replies = await asyncio.gather(*(client.fetch_market_leverage_tiers(s) for s in linear))
        return {s: self.parse_tiers(rows) for s, rows in zip(linear, replies, strict=True) if rows}


class MexcAdapter(_SwapVenueAdapter):
    """MEXC perpetuals (contract API v1); risk levels keyed by contract count, requests
    paced per endpoint as MEXC limits them (`EndpointPacing`)."""

    tier_basis = TierBasis.CONTRACTS
    client_mixins = (EndpointPacing,)

    def wallets(self, balance: dict[str, Any]) -> dict[str, float]:
        """`equity` - `unrealized` of `/private/account/assets`: `cashBalance` is only the
        withdrawable part and ccxt's total leaves out the margin held by positions."""
        rows = (balance.get("info") or {}).get("data") or []
        wallets = {}
        for row in rows:
            equity, pnl = number(row.get("equity")), number(row.get("unrealized"))
            if row.get("currency") and equity is not None and pnl is not None:
                wallets[row["currency"]] = equity - pnl
        return wallets

    async def fetch_marks(self, client: Any, symbols: list[str]) -> dict[str, float]:
        """MEXC's fair price (its mark): ccxt's mexc parses it into no unified field."""
        requests = (
            client.contractPublicGetFairPriceSymbol({"symbol": client.market_id(s)})
            for s in symbols
        )
        replies = await asyncio.gather(*requests)
        marks = {
            s: number((reply.get("data") or {}).get("fairPrice"))
            for s, reply in zip(symbols, replies, strict=True)
        }
        return {s: m for s, m in marks.items() if m is not None}

    async def fetch_tiers(
        self, client: Any, symbols: list[str], raw_positions: Iterable[dict[str, Any]]
    ) -> dict[str, TierTable]:
        """Risk levels rebuilt from the contract detail `load_markets` already read.

        ccxt keeps each market's `/api/v1/contract/detail` row as its `info`, the same row
        its `fetch_leverage_tiers` would ask for again: that second request costs 100 of
        ccxt's rate-limit units, a 5 s wait on every snapshot for nothing new.
        """
        tables = {s: mexc_risk_levels(client.market(s).get("info") or {}) for s in symbols}
        return {s: t for s, t in tables.items() if t is not None}


def mexc_risk_levels(detail: dict[str, Any]) -> TierTable | None:
    """MEXC's maintenance rates by position size in contracts, from `/contract/detail`.

    A custom table (`riskLimitCustom`: level, maxVol, mmr) is used as published. Otherwise
    level 1 reaches `riskBaseVol` at `maintenanceMarginRate` and each further level (up to
    `riskLevelLimit`) is `riskIncrVol` wider and `riskIncrMmr` higher. ccxt instead starts
    its steps at 0 with `riskIncrVol`, which understates the rate between riskBaseVol and
    riskIncrVol. Limits by value (`riskLimitType` other than BY_VOLUME) are not understood
    here: None, so the figures read unknown rather than wrong.
    """
    if detail.get("riskLimitType", "BY_VOLUME") != "BY_VOLUME":
        return None
    custom = sorted(
        detail.get("riskLimitCustom") or [], key=lambda row: number(row.get("level")) or 0.0
    )
    if custom:
        tiers, floor = [], 0.0
        for row in custom:
            cap = required(row.get("maxVol"), "maxVol")
            rate = required(row.get("mmr"), "mmr")
            tiers.append(Tier(floor, cap, rate, max_leverage=number(row.get("maxLeverage"))))
            floor = cap
        return TierTable(tuple(tiers), TierBasis.CONTRACTS)
    rate = number(detail.get("maintenanceMarginRate"))
    if rate is None:
        return None
    base, step = number(detail.get("riskBaseVol")), number(detail.get("riskIncrVol"))
    levels = int(number(detail.get("riskLevelLimit")) or 1)
    if not base or not step or levels < 2:
        return TierTable.flat(rate, TierBasis.CONTRACTS)
    rate_step = number(detail.get("riskIncrMmr")) or 0.0
    tiers = [Tier(0.0, base, rate)] + [
        Tier(base + (k - 1) * step, base + k * step, rate + k * rate_step) for k in range(1, levels)
    ]
    return TierTable(tuple(tiers), TierBasis.CONTRACTS)


class WeexAdapter(_SwapVenueAdapter):
    """WEEX perpetuals (contract API v3). ccxt's total is the raw `balance`, so only the
    isolated margins come off it; WEEX publishes no maintenance rate, so MM is unknown."""

    async def fetch_marks(self, client: Any, symbols: list[str]) -> dict[str, float]:
        tickers = await client.fetch_mark_prices(symbols)
        marks = {s: number((tickers.get(s) or {}).get("markPrice")) for s in symbols}
        return {s: m for s, m in marks.items() if m is not None}

    def parse_position(self, raw: dict[str, Any], client: Any) -> Position | None:
        """`size` is base units (ccxt's own entry price, openValue / size, relies on it),
        so each 'contract' is one unit whatever `contractVal` says."""
        position = super().parse_position(raw, client)
        return replace(position, contract_size=1.0) if position is not None else None
