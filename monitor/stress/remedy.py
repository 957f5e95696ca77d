"""The smallest change that lets a book survive a chosen shock.

For each pool or isolated position the shock liquidates, three alternatives:
- margin to add: the deepest shortfall of equity below MM along the path. Equity - MM
  is concave along each straight segment, so its minimum is at a waypoint: exact.
- a position to move to isolated (pools only): each member in turn, with its share of
  the wallet; the candidate that saves the pool at the smallest total loss.
- leverage to cut: the largest fraction of every position of the target that can be
  kept (closing at today's marks, which realises that part's PnL into the wallet),
  found by bisection to 0.1 %.
Trading fees and slippage of the change itself are left out.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from monitor.domain import AccountSnapshot, MarginMode
from monitor.engine.book import AccountBook
from monitor.stress.modes import isolate, pool_asset
from monitor.stress.play import Target, marks_at, path_of, play, start_marks, surplus
from monitor.stress.shocks import Shock

KEEP_STEPS = 10  # 2**-10 < 0.1 %


@dataclass(frozen=True, slots=True)
class Remedy:
    target: str
    add_margin: float
    """Margin to add to the pool or the position, settlement asset (rounded up to cents)."""
    isolate: str | None
    """A cross position whose move to isolated saves its pool; None if none does."""
    isolate_loss: float | None
    """Total loss (all assets summed) under the shock after that move."""
    keep: float
    """Fraction of the target's positions that can be kept (1 - the cut)."""


def margin_needed(book: AccountBook, target: Target, shock: Shock) -> float:
    base = start_marks(book)
    deepest = 0.0
    for point in path_of(shock):
        value = surplus(book, target, marks_at(base, point, point, 0.0))
        if value is not None:
            deepest = min(deepest, value)
    if deepest >= 0.0:
        return 0.0
    # strictly more than the shortfall (equity = MM still liquidates), to the cent above
    return (math.floor(-deepest * 100 + 1e-6) + 1) / 100


def _survives(snapshot: AccountSnapshot, name: str, shock: Shock) -> bool:
    return all(item.target.name != name for item in play(AccountBook(snapshot), shock).liquidations)


def _best_isolation(
    snapshot: AccountSnapshot, target: Target, shock: Shock
) -> tuple[str | None, float | None]:
    best: tuple[str | None, float | None] = (None, None)
    for symbol in target.symbols:
        moved = isolate(snapshot, {symbol})
        outcome = play(AccountBook(moved), shock)
        if any(item.target.name == target.name for item in outcome.liquidations):
            continue
        loss = sum(outcome.losses.values())
        if best[1] is None or loss < best[1]:
            best = (symbol, loss)
    return best


def scaled(snapshot: AccountSnapshot, target: Target, keep: float) -> AccountSnapshot:
    """The target's positions cut to `keep` of their size at today's marks."""
    realised: dict[str, float] = {}
    positions = []
    for p in snapshot.positions:
        mine = p.symbol in target.symbols and (
            (p.margin_mode is MarginMode.ISOLATED) is (not target.is_pool)
        )
        if mine:
            sign = p.side.sign
            if p.inverse:
                pnl = sign * p.size * (1 / p.entry_price - 1 / p.mark_price)
            else:
                pnl = sign * p.size * (p.mark_price - p.entry_price)
            cut = (1.0 - keep) * pnl
            if target.is_pool:
                asset = pool_asset(snapshot, p)
                realised[asset] = realised.get(asset, 0.0) + cut
                p = replace(p, contracts=p.contracts * keep)
            else:
                p = replace(
                    p,
                    contracts=p.contracts * keep,
                    isolated_margin=(p.isolated_margin or 0.0) + cut,
                )
        positions.append(p)
    pools = tuple(
        replace(pool, wallet_balance=pool.wallet_balance + realised.get(pool.asset, 0.0))
        for pool in snapshot.pools
    )
    return replace(snapshot, pools=pools, positions=tuple(positions))


def keepable(snapshot: AccountSnapshot, target: Target, shock: Shock) -> float:
    low, high = 0.0, 1.0
    for _ in range(KEEP_STEPS):
        mid = (low + high) / 2
        if _survives(scaled(snapshot, target, mid), target.name, shock):
            low = mid
        else:
            high = mid
    return low


def remedies(snapshot: AccountSnapshot, shock: Shock) -> list[Remedy]:
    book = AccountBook(snapshot)
    out = []
    for item in play(book, shock).liquidations:
        target = item.target
        add = margin_needed(book, target, shock)
        symbol, loss = _best_isolation(snapshot, target, shock) if target.is_pool else (None, None)
        out.append(Remedy(target.name, add, symbol, loss, keepable(snapshot, target, shock)))
    return out
