"""Binance USD-M's published liquidation rules, as the simulated exchange applies them.

This is the exchange's side of every end-to-end test, so it is written from Binance's
own documents and shares nothing with the monitor's margin engine (`monitor.engine`):
when the two agree, two implementations agree with the FAQ, not one with itself.

Sources:
- Binance FAQ "How to Calculate Liquidation Price of USDⓈ-M Futures Contracts"
  (the one-way and hedge-mode formulas, and its worked example);
- Binance FAQ "Leverage and Margin of USDⓈ-M Futures": maintenance margin =
  |notional| x maintMarginRatio - cum, bracket of the notional at the mark
  (`state.maintenance_margin`).

A margin pool is what one liquidation decision is made on:
- an isolated leg: its isolated wallet + its own uPnL against its own maintenance margin;
- a cross pool: the cross wallet of one margin asset + the uPnL of every cross leg
  settled in it, against their total maintenance margin (single-asset mode); in
  Multi-Assets mode one pool spans every margin asset, valued 1:1 (see accounting.py).
Isolated wallets are never part of a cross pool (hybrid accounts), and a hedge-mode
symbol's LONG and SHORT legs are two members of the same pool.
Binance liquidates a pool when its margin balance <= its maintenance margin, i.e. when
its margin ratio (maintenance margin / margin balance) reaches 100 %.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable
from dataclasses import dataclass

from monitor.simulator.binance_usdm.state import (
    SimAccount,
    SimBracket,
    SimExchange,
    SimMarket,
    SimPosition,
    maintenance_margin,
    unrealized_pnl,
)

MULTI_ASSETS_POOL = "multi-assets"
"""The key of the one cross pool of a Multi-Assets mode account."""

_BRACKET_EDGE_TOLERANCE = 1e-12
"""Relative slack when checking that a liquidation price lies in the brackets it was
computed with: at a bracket edge both neighbours give the same price (maintenance margin
is continuous there), and rounding must not make both reject it."""


@dataclass(frozen=True, slots=True)
class MarginPool:
    """One liquidation decision's inputs: a cross pool or a single isolated leg."""

    key: str
    """Margin asset ("USDT"), MULTI_ASSETS_POOL, or "SYMBOL:SIDE" for an isolated leg."""
    cross: bool
    wallet: float
    """Cross wallet balance of the pool's asset(s), or the leg's isolated wallet."""
    legs: tuple[SimPosition, ...]
    unrealized_pnl: float
    maint_margin: float

    @property
    def margin_balance(self) -> float:
        return self.wallet + self.unrealized_pnl

    @property
    def margin_ratio(self) -> float:
        """Binance's "Margin Ratio": maintenance margin / margin balance; 1.0 liquidates.

        Infinite once the margin balance is gone while margin is still required."""
        if self.margin_balance > 0:
            return self.maint_margin / self.margin_balance
        return math.inf if self.maint_margin > 0 or self.margin_balance < 0 else 0.0

    @property
    def liquidating(self) -> bool:
        """Binance's liquidation condition: margin balance <= maintenance margin."""
        return bool(self.legs) and self.margin_balance <= self.maint_margin


def _pool(
    exchange: SimExchange, key: str, *, cross: bool, wallet: float, legs: list[SimPosition]
) -> MarginPool:
    upnl = mm = 0.0
    for leg in legs:
        market, mark = exchange.market(leg.symbol), exchange.mark(leg.symbol)
        upnl += unrealized_pnl(market, leg, mark)
        mm += maintenance_margin(market, leg, mark)
    return MarginPool(key, cross, wallet, tuple(legs), upnl, mm)


def isolated_key(position: SimPosition) -> str:
    return f"{position.symbol}:{position.position_side}"


def cross_pool_key(exchange: SimExchange, account: SimAccount, position: SimPosition) -> str:
    """The pool a cross leg draws on: its margin asset, or the one Multi-Assets pool."""
    if account.multi_assets_margin:
        return MULTI_ASSETS_POOL
    return exchange.market(position.symbol).margin_asset


def margin_pools(exchange: SimExchange, account: SimAccount) -> list[MarginPool]:
    """Every pool of the account at the current marks: isolated legs first, then the
    cross pools (every asset with a cross wallet or a cross leg)."""
    open_legs = account.open_positions()
    pools = [
        _pool(exchange, isolated_key(p), cross=False, wallet=p.isolated_wallet, legs=[p])
        for p in open_legs
        if p.is_isolated
    ]
    members: dict[str, list[SimPosition]] = {}
    wallets: dict[str, float] = {}
    for asset, balance in account.cross_wallet.items():
        key = MULTI_ASSETS_POOL if account.multi_assets_margin else asset
        wallets[key] = wallets.get(key, 0.0) + balance
        members.setdefault(key, [])
    for leg in open_legs:
        if not leg.is_isolated:
            members.setdefault(cross_pool_key(exchange, account, leg), []).append(leg)
    pools += [
        _pool(exchange, key, cross=True, wallet=wallets.get(key, 0.0), legs=legs)
        for key, legs in members.items()
    ]
    return pools


def liquidation_price(
    exchange: SimExchange, pool: MarginPool, position: SimPosition
) -> float | None:
    """The liquidation price Binance reports for `position` (positionRisk
    `liquidationPrice`): the mark of its symbol at which its pool's margin balance equals
    its maintenance margin, every other symbol held at its mark. None (reported as "0")
    when no positive price liquidates it.

    Binance's FAQ formula, hedge-mode form (one-way is the BOTH leg alone):

        LP = (WB - TMM1 + UPNL1 + cumB + cumL + cumS
              - Side1BOTH x Pos1BOTH x EP1BOTH - Pos1LONG x EP1LONG + Pos1SHORT x EP1SHORT)
             / (Pos1BOTH x MMR_B + Pos1LONG x MMR_L + Pos1SHORT x MMR_S
                - Side1BOTH x Pos1BOTH - Pos1LONG + Pos1SHORT)

    WB: the cross wallet (or the isolated wallet); TMM1, UPNL1: maintenance margin and
    uPnL of the pool's other symbols at their marks (0 for isolated). The legs that move
    are the position's symbol in its pool (both hedge legs when cross, the leg alone when
    isolated). Each leg's bracket is the one of its notional AT the liquidation price, as
    the FAQ asks to check, so every bracket choice is tried and kept only if the price it
    gives lies in it. Of the prices left (a hedged pair can have one on each side), the
    nearest to the mark is the one the market reaches first.
    """
    moving = [leg for leg in pool.legs if leg.symbol == position.symbol]
    market, mark = exchange.market(position.symbol), exchange.mark(position.symbol)
    others_mm = others_upnl = 0.0
    for leg in pool.legs:
        if leg.symbol != position.symbol:
            other_market, other_mark = exchange.market(leg.symbol), exchange.mark(leg.symbol)
            others_mm += maintenance_margin(other_market, leg, other_mark)
            others_upnl += unrealized_pnl(other_market, leg, other_mark)
    candidates = faq_liquidation_prices(
        market, moving, wallet=pool.wallet, others_mm=others_mm, others_upnl=others_upnl
    )
    return min(candidates, key=lambda price: abs(price - mark), default=None)


def faq_liquidation_prices(
    market: SimMarket,
    legs: Iterable[SimPosition],
    *,
    wallet: float,
    others_mm: float,
    others_upnl: float,
) -> list[float]:
    """Every positive price at which the FAQ formula holds with the brackets its legs'
    notionals fall in at that price.

    Between two consecutive bracket edges (of any leg) every leg keeps one bracket, so
    the formula gives one price there; it is a liquidation price only if it lies between
    those edges.
    """
    legs = list(legs)
    sizes = [abs(leg.amount) * market.contract_size for leg in legs]
    edges = sorted({cap / size for size in sizes for cap in _bracket_caps(market)})
    prices: list[float] = []
    for low, high in itertools.pairwise([0.0, *edges, math.inf]):
        inside = (low + high) / 2 if high < math.inf else 2 * low + 1
        brackets = [market.bracket_for(size * inside) for size in sizes]
        price = _faq_formula(legs, sizes, brackets, wallet - others_mm + others_upnl)
        if price is None or price <= 0:
            continue
        slack = _BRACKET_EDGE_TOLERANCE * price
        in_brackets = low - slack <= price <= high + slack
        if in_brackets and not any(math.isclose(price, p, rel_tol=1e-9) for p in prices):
            prices.append(price)
    return prices


def _bracket_caps(market: SimMarket) -> list[float]:
    """Notionals where the bracket changes (the last bracket has no upper edge)."""
    return [bracket.cap for bracket in market.brackets[:-1]]


def _faq_formula(
    legs: list[SimPosition], sizes: list[float], brackets: list[SimBracket], equity: float
) -> float | None:
    """The FAQ formula with fixed brackets; `equity` = WB - TMM1 + UPNL1.

    Each leg enters as Side x Pos (Side +1 for BOTH long and LONG, -1 for BOTH short and
    SHORT), which is the FAQ's hedge-mode numerator and denominator term by term."""
    numerator, denominator = equity, 0.0
    for leg, size, bracket in zip(legs, sizes, brackets, strict=True):
        side = 1.0 if leg.amount > 0 else -1.0
        numerator += bracket.cum - side * size * leg.entry_price
        denominator += size * bracket.maint_rate - side * size
    if denominator == 0:
        return None
    return numerator / denominator
