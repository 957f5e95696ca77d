"""An account compiled for repeated evaluation at new mark prices.

`AccountBook(snapshot)` does the per-snapshot work once (model terms, pool grouping);
`evaluate(marks)` does only arithmetic, so the daemon can call it on every tick, and
`evaluate_pool` / `evaluate_isolated` let it recompute just what a symbol touches.
"""

from __future__ import annotations

from collections.abc import Mapping

from monitor.domain import AccountSnapshot, CrossPool, MarginMode
from monitor.engine.legs import Leg
from monitor.engine.models import MarginModel, model_for
from monitor.engine.results import AccountRisk, PoolRisk, PositionRisk, margin_ratio
from monitor.engine.solver import MovingLeg, liquidation_move, nearest_liquidation_move

Marks = Mapping[str, float]

NO_TIERS = "no maintenance tiers published for {symbol}"
NO_ISOLATED_MARGIN = "exchange did not report the isolated margin"
NO_POOL = "exchange did not report a {asset} cross wallet"
UNREACHABLE = "no price liquidates this position"
MIXED_POOL = "pool mixes linear and inverse contracts: no uniform-move distance"


def _liquidation(
    moving: list[MovingLeg], constant: float
) -> tuple[float | None, float | None, str | None]:
    """(price, distance, note) for legs of one symbol moving together."""
    move = nearest_liquidation_move(moving, constant)
    if move is None:
        return None, None, UNREACHABLE
    mark = moving[0][1]
    return mark * (1.0 + move), abs(move), None


class AccountBook:
    """Compiled legs of one snapshot, grouped the way margin is shared."""

    def __init__(self, snapshot: AccountSnapshot, model: MarginModel | None = None) -> None:
        self.snapshot = snapshot
        self.model = model or model_for(snapshot.exchange)
        self.isolated: list[Leg] = []
        self.cross: dict[str, list[Leg]] = {}
        for position in snapshot.positions:
            leg = self.model.compile(position, snapshot)
            if position.margin_mode is MarginMode.ISOLATED:
                self.isolated.append(leg)
            else:
                self.cross.setdefault(self.model.pool_asset(position), []).append(leg)
        self.pool_assets: list[str] = sorted({p.asset for p in snapshot.pools} | set(self.cross))

    def symbols(self) -> set[str]:
        return {p.symbol for p in self.snapshot.positions}

    def _mark(self, leg: Leg, marks: Marks | None) -> float:
        if marks is not None:
            mark = marks.get(leg.symbol)
            if mark is not None:
                return mark
        return leg.position.mark_price

    def evaluate(self, marks: Marks | None = None) -> AccountRisk:
        pools: list[PoolRisk] = []
        positions: list[PositionRisk] = []
        for asset in self.pool_assets:
            pool, members = self.evaluate_pool(asset, marks)
            pools.append(pool)
            positions.extend(members)
        positions.extend(self.evaluate_isolated(leg, marks) for leg in self.isolated)
        return AccountRisk(
            self.snapshot.name,
            self.snapshot.exchange,
            self.model.name,
            self.model.exact,
            tuple(pools),
            tuple(positions),
        )

    def evaluate_isolated(self, leg: Leg, marks: Marks | None = None) -> PositionRisk:
        """Its own margin plus its own PnL against its own MM."""
        position = leg.position
        mark = self._mark(leg, marks)
        pnl = leg.unrealized_pnl(mark)
        notional = leg.value(mark)
        if not leg.has_margin_terms:
            note = NO_TIERS.format(symbol=leg.symbol)
            return PositionRisk(position, mark, notional, pnl, None, None, None, None, note)
        mm = leg.maintenance_margin(mark)
        wallet = position.isolated_margin
        if wallet is None:
            return PositionRisk(
                position, mark, notional, pnl, mm, None, None, None, NO_ISOLATED_MARGIN
            )
        ratio = margin_ratio(mm, wallet + pnl)
        price, distance, note = _liquidation([(leg, mark)], wallet)
        return PositionRisk(position, mark, notional, pnl, mm, ratio, price, distance, note)

    def evaluate_pool(
        self, asset: str, marks: Marks | None = None
    ) -> tuple[PoolRisk, list[PositionRisk]]:
        """The pool's ratio and distance, and each member's liquidation price with the
        other members held at their marks (Binance's TMM1 / UPNL1 construction)."""
        legs = self.cross.get(asset, [])
        reported: CrossPool | None = self.snapshot.pool(asset)
        moving = [(leg, self._mark(leg, marks)) for leg in legs]
        pnls = [leg.unrealized_pnl(mark) for leg, mark in moving]
        total_pnl = sum(pnls)
        exchange_ratio = reported.exchange_margin_ratio if reported else None
        missing = [leg.symbol for leg in legs if not leg.has_margin_terms]
        if reported is None or missing:
            note = (
                NO_POOL.format(asset=asset)
                if reported is None
                else NO_TIERS.format(symbol=", ".join(missing))
            )
            wallet = reported.wallet_balance if reported else float("nan")
            pool = PoolRisk(
                asset, wallet, total_pnl, wallet + total_pnl, None, None, None, None,
                exchange_ratio, note,
            )  # fmt: skip
            members = [
                PositionRisk(leg.position, mark, leg.value(mark), pnl, None, None, None, None, note)
                for (leg, mark), pnl in zip(moving, pnls, strict=True)
            ]
            return pool, members

        wallet = reported.wallet_balance
        mms = [leg.maintenance_margin(mark) for leg, mark in moving]
        total_mm = sum(mms)
        balance = wallet + total_pnl
        ratio = margin_ratio(total_mm, balance)
        if not moving:
            move, note = None, None
        elif len({leg.inverse for leg in legs}) > 1:
            move, note = None, MIXED_POOL
        else:
            move = nearest_liquidation_move(moving, wallet)
            note = None if move is not None else UNREACHABLE
        pool = PoolRisk(
            asset, wallet, total_pnl, balance, total_mm, ratio, move,
            abs(move) if move is not None else None, exchange_ratio, note,
        )  # fmt: skip

        by_symbol: dict[str, list[int]] = {}
        for i, leg in enumerate(legs):
            by_symbol.setdefault(leg.symbol, []).append(i)
        members: list[PositionRisk] = [None] * len(legs)  # type: ignore[list-item]
        for indices in by_symbol.values():
            group = [moving[i] for i in indices]
            held_still = sum(pnls[i] - mms[i] for i in indices)
            constant = wallet + (total_pnl - total_mm) - held_still
            price, distance, lp_note = _liquidation(group, constant)
            for i in indices:
                leg, mark = moving[i]
                members[i] = PositionRisk(
                    leg.position, mark, leg.value(mark), pnls[i], mms[i], ratio, price,
                    distance, lp_note,
                )  # fmt: skip
        return pool, members


def evaluate_snapshot(snapshot: AccountSnapshot, marks: Marks | None = None) -> AccountRisk:
    """One-shot evaluation, for callers that do not keep a book between ticks."""
    return AccountBook(snapshot).evaluate(marks)


__all__ = ["AccountBook", "evaluate_snapshot", "liquidation_move"]
