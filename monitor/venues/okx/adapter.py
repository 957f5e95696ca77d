"""OKX v5: positions, pools, tiers and fees from the raw fields OKX sends.

ccxt's unified `collateral` and `marginRatio` for OKX are its own calculations, and its
trading fee reads the coin-margined `taker` even for USDT-margined swaps; the raw fields
are OKX's, so every figure here comes from `info`. OKX's `mgnRatio` runs the other way
from ours (equity / (MM + fees), liquidation at 1, lower is worse): it is converted to
ours, 1 / mgnRatio, before it goes beside our figure. See monitor/engine/models/okx.py
for how account modes map to pools.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Iterable
from typing import Any, ClassVar

from monitor.domain import CrossPool, MarginMode, Position, Side, Tier, TierBasis, TierTable
from monitor.exchange.adapters.base import ExchangeAdapter, PoolReading
from monitor.exchange.adapters.parse import number, price_or_unknown, required
from monitor.venues.okx.client import OrderDeadline

UNIFIED_POOL = "USD"
UNIFIED_LEVELS = frozenset({"3", "4"})
"""acctLv of multi-currency (3) and portfolio (4) margin: one USD cross pool."""

_POSITION_SIDES = {"long": "LONG", "short": "SHORT"}
_FEE_FIELDS = {"USDT": "takerU", "USDC": "takerUSDC"}
"""Raw trade-fee field per linear settlement currency; coin-margined swaps use `taker`."""


def ours_from_okx_ratio(okx_ratio: float | None) -> float | None:
    """OKX's equity / (MM + fees) as ours, (MM + fees) / equity.

    A non-positive OKX ratio means no equity left: past liquidation, infinitely bad.
    """
    if okx_ratio is None:
        return None
    return 1.0 / okx_ratio if okx_ratio > 0 else math.inf


class OkxAdapter(ExchangeAdapter):
    client_options: ClassVar[dict[str, Any]] = {
        "defaultType": "swap",
        "fetchMarkets": {"types": ["swap"]},
    }
    tier_basis = TierBasis.CONTRACTS
    client_mixins = (OrderDeadline,)

    def configure(self, client: Any) -> None:
        """Swaps only; no signed currency list (load_markets would call /asset/currencies)."""
        super().configure(client)
        client.has["fetchCurrencies"] = False

    async def fetch_positions(self, client: Any) -> list[dict[str, Any]]:
        return await client.fetch_positions(params={"instType": "SWAP"})

    def parse_position(self, raw: dict[str, Any], client: Any) -> Position | None:
        info = raw.get("info") or {}
        pos = number(info.get("pos"))
        if not pos:
            return None
        market = client.market(raw["symbol"])
        pos_side = info.get("posSide") or "net"  # net (one-way) mode signs `pos` instead
        side = (Side.LONG if pos > 0 else Side.SHORT) if pos_side == "net" else Side(pos_side)
        mode = MarginMode(info["mgnMode"])
        return Position(
            symbol=raw["symbol"],
            side=side,
            margin_mode=mode,
            contracts=abs(pos),
            contract_size=required(market.get("contractSize"), "ctVal"),
            entry_price=required(info.get("avgPx"), "avgPx"),
            mark_price=required(info.get("markPx"), "markPx"),
            settle=market["settle"],
            inverse=bool(market.get("inverse")),
            leverage=number(info.get("lever")),
            isolated_margin=(
                required(info.get("margin"), "margin") if mode is MarginMode.ISOLATED else None
            ),
            position_side=_POSITION_SIDES.get(pos_side, "BOTH"),
            exchange_liquidation_price=price_or_unknown(info.get("liqPx")),
            exchange_maintenance_margin=number(info.get("mmr")),
            exchange_unrealized_pnl=number(info.get("upl")),
            exchange_margin_ratio=ours_from_okx_ratio(number(info.get("mgnRatio"))),
        )

    async def fetch_pools(self, client: Any, positions: tuple[Position, ...]) -> PoolReading:
        """Per-currency cross pools, or one USD pool in multi-currency / portfolio mode.

        A wallet excludes uPnL: the cross equity OKX reports less the exchange's uPnL of
        the cross positions on it, so our equity at the reported marks is OKX's.
        """
        config, balance = await asyncio.gather(
            client.private_get_account_config(), client.fetch_balance()
        )
        level = str(config["data"][0].get("acctLv"))
        account = balance["info"]["data"][0]
        available = margin_available(account.get("details") or [])
        cross = [p for p in positions if p.margin_mode is MarginMode.CROSS]
        if level in UNIFIED_LEVELS:
            equity = required(account.get("adjEq"), "adjEq")
            linear_pnl = sum(_reported_pnl(p) for p in cross if not p.inverse)
            pool = CrossPool(
                UNIFIED_POOL,
                equity - linear_pnl,
                ours_from_okx_ratio(number(account.get("mgnRatio"))),
                number(account.get("mmr")),
            )
            return PoolReading((pool,), UNIFIED_POOL, available)
        pools = []
        for detail in account.get("details") or []:
            ccy = detail["ccy"]
            members = [p for p in cross if p.settle == ccy]
            if not members:
                continue
            equity = required(detail.get("eq"), "eq") - (number(detail.get("isoEq")) or 0.0)
            pools.append(
                CrossPool(
                    ccy,
                    equity - sum(_reported_pnl(p) for p in members),
                    ours_from_okx_ratio(number(detail.get("mgnRatio"))),
                    number(detail.get("mmr")),
                )
            )
        return PoolReading(tuple(pools), margin_available=available)

    async def fetch_tiers(
        self, client: Any, symbols: list[str], raw_positions: Iterable[dict[str, Any]]
    ) -> dict[str, TierTable]:
        """Position tiers per symbol, for the margin mode the symbol is held in."""
        modes: dict[str, str] = {}
        for raw in raw_positions:
            mode = (raw.get("info") or {}).get("mgnMode")
            if raw.get("symbol") in symbols and mode:
                modes.setdefault(raw["symbol"], mode)
        replies = await asyncio.gather(
            *(
                client.fetch_market_leverage_tiers(s, {"marginMode": modes.get(s, "cross")})
                for s in symbols
            )
        )
        return {s: self.parse_tiers(rows) for s, rows in zip(symbols, replies, strict=True) if rows}

    def parse_tiers(self, rows: list[dict[str, Any]]) -> TierTable:
        """Raw `minSz`/`maxSz`/`mmr`. OKX brackets include their upper bound
        (minSz < |pos| <= maxSz) where ours include their floor: each floor moves up by
        one float step, so a size of exactly maxSz stays in the lower bracket, as on OKX."""
        tiers = []
        for row in rows:
            info = row.get("info") or {}
            floor = number(info.get("minSz")) or 0.0
            tiers.append(
                Tier(
                    floor=math.nextafter(floor, math.inf) if floor else 0.0,
                    cap=number(info.get("maxSz")) or math.inf,
                    maintenance_rate=required(info.get("mmr"), "mmr"),
                    max_leverage=number(info.get("maxLever")),
                )
            )
        return TierTable(tuple(tiers), self.tier_basis)

    async def fetch_taker_fee(self, client: Any, symbols: list[str]) -> float | None:
        """The highest taker rate among the held swaps' fee schedules.

        OKX quotes coin-margined (`taker`), USDT-margined (`takerU`) and USDC-margined
        (`takerUSDC`) rates apart, negative when charged. The snapshot carries one rate,
        so where they differ the highest is used: MM errs towards danger, never safety.
        """
        replies = await asyncio.gather(*(client.fetch_trading_fee(s) for s in symbols))
        rates = []
        for symbol, reply in zip(symbols, replies, strict=True):
            market = client.market(symbol)
            field = "taker" if market.get("inverse") else _FEE_FIELDS.get(market["settle"], "taker")
            info = reply.get("info") or {}
            rates.append(-required(info.get(field), f"trade fee {field}"))
        return max(rates) if rates else None


def _reported_pnl(position: Position) -> float:
    """OKX's own uPnL of a position: it is what its reported equity contains."""
    return required(position.exchange_unrealized_pnl, f"upl of {position.symbol}")


def margin_available(details: Iterable[dict[str, Any]]) -> dict[str, float]:
    """Per currency, what OKX lets move into an isolated position now: the lower of the
    currency's `availEq` and `availBal` (a currency without either is left out).

    OKX checks an isolated add (`margin-balance` type add) against the margin currency's
    own available balance and refuses more with 59301 "Margin adjustment failed for
    exceeding the max limit", whatever the account's USD-valued equity in multi-currency
    (acctLv 3) or portfolio (4) margin: BTC collateral backs cross positions there but
    never becomes USDT in an isolated one. `availBal` leaves out unrealised profit,
    `availEq` the cross positions' initial margin; the lower is what is safe to ask for.
    """
    available: dict[str, float] = {}
    for detail in details:
        figures = [number(detail.get(key)) for key in ("availEq", "availBal")]
        known = [figure for figure in figures if figure is not None]
        if known and detail.get("ccy"):
            available[str(detail["ccy"])] = min(known)
    return available
