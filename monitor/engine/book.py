"""An account compiled for repeated evaluation at new mark prices.

`AccountBook(snapshot)` does the per-snapshot work once (model terms, pool grouping);
`evaluate(marks)` does only arithmetic. It is the reference engine: `status`, a daemon
install (a new snapshot) and the tests evaluate with it; the daemon's frames go through
the vectorised engine (monitor/engine/vector), which compiles its columns from this book
and is held to it.
"""

from __future__ import annotations

from collections.abc import Mapping

from monitor.domain import AccountSnapshot, CrossPool, MarginMode
from monitor.engine.legs import Leg
from monitor.engine.models import MarginModel, model_for
from monitor.engine.results import AccountRisk, PoolRisk, PositionRisk, margin_ratio
from monitor.engine.solver import (
    MovingLeg,
    bracket_root_price,
    has_bracket_root,
    move_to,
    nearest_liquidation_move,
    single_leg_move,
)

Marks = Mapping[str, float]

NO_TIERS = "no maintenance tiers published for {symbol}"
NO_ISOLATED_MARGIN = "exchange did not report the isolated margin"
NO_POOL = "exchange did not report a {asset} cross wallet"
UNREACHABLE = "no price liquidates this position"
MIXED_POOL = "pool mixes coin-settled (inverse) contracts with USD figures: not summed"
"""A pool holding inverse contracts beside USD-settled ones, or in a USD-valued unified
pool (Bybit UTA 2.0 cross): the coin PnL would enter it at the coin's USD value and
collateral ratio, which no leg in one unit expresses."""


def _liquidation(
    moving: list[MovingLeg], constant: float, indices: list[int] | None = None
) -> tuple[float | None, float | None, str | None]:
    """(price, distance, note) for legs of one symbol moving together."""
    return _priced(nearest_liquidation_move(moving, constant, indices), moving[0][1])


def _priced(move: float | None, mark: float) -> tuple[float | None, float | None, str | None]:
    if move is None:
        return None, None, UNREACHABLE
    return mark * (1.0 + move), abs(move), None


def _symbol_groups(legs: list[Leg]) -> list[list[int]]:
    """Indices of legs sharing a symbol: hedge-mode LONG and SHORT legs move together."""
    groups: dict[str, list[int]] = {}
    for i, leg in enumerate(legs):
        groups.setdefault(leg.symbol, []).append(i)
    return list(groups.values())


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
                asset = snapshot.unified_pool or self.model.pool_asset(position)
                self.cross.setdefault(asset, []).append(leg)
        self.pool_assets: list[str] = sorted({p.asset for p in snapshot.pools} | set(self.cross))
        self._groups: dict[str, list[list[int]]] = {
            asset: _symbol_groups(legs) for asset, legs in self.cross.items()
        }
        self._mixed_pools = {
            a
            for a, legs in self.cross.items()
            if len({g.inverse for g in legs}) > 1
            or any(g.inverse and g.position.settle != a for g in legs)
        }
        self._roots: dict[Leg, float] = {}
        """Isolated leg -> its liquidation price, where it is mark-independent."""

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
        if not leg.has_margin_terms:
            note = NO_TIERS.format(symbol=leg.symbol)
            pnl, value = leg.unrealized_pnl(mark), leg.value(mark)
            return PositionRisk(position, mark, value, pnl, None, None, None, None, note, None)
        pnl, index, mm, value = leg.state(mark)
        fees = value * leg.rate_extra
        wallet = position.isolated_margin
        if wallet is None:
            return PositionRisk(
                position, mark, value, pnl, mm - fees, None, None, None, NO_ISOLATED_MARGIN, fees
            )
        ratio = margin_ratio(mm, wallet + pnl)
        price, distance, note = _priced(self._isolated_move(leg, mark, index, wallet), mark)
        return PositionRisk(
            position, mark, value, pnl, mm - fees, ratio, price, distance, note, fees
        )

    def _isolated_move(self, leg: Leg, mark: float, index: int, wallet: float) -> float | None:
        """An isolated position's liquidation price does not depend on the mark (its
        wallet is its own): where a bracket root applies it is found once per snapshot
        and each tick only measures the distance to it, to the same last bit."""
        if not has_bracket_root(leg):
            return single_leg_move(leg, mark, index, wallet)
        return move_to(self._root(leg, wallet), mark, leg.sign)

    def _root(self, leg: Leg, wallet: float) -> float:
        root = self._roots.get(leg)
        if root is None:
            far_side = len(leg.tiers.tiers) - 1 if leg.sign > 0 else 0  # type: ignore[union-attr]
            root = self._roots[leg] = bracket_root_price(leg, far_side, wallet)
        return root

    def evaluate_pool(
        self, asset: str, marks: Marks | None = None
    ) -> tuple[PoolRisk, list[PositionRisk]]:
        """The pool's ratio and distance, and each member's liquidation price with the
        other members held at their marks (Binance's TMM1 / UPNL1 construction)."""
        legs = self.cross.get(asset, [])
        reported: CrossPool | None = self.snapshot.pool(asset)
        if marks is None:
            moving = [(leg, leg.position.mark_price) for leg in legs]
        else:
            get = marks.get
            moving = [(leg, get(leg.symbol) or leg.position.mark_price) for leg in legs]
        exchange_ratio = reported.exchange_margin_ratio if reported else None
        missing = [leg.symbol for leg in legs if not leg.has_margin_terms]
        if reported is None:
            return self._unknown_pool(asset, reported, moving, NO_POOL.format(asset=asset))
        if missing:
            note = NO_TIERS.format(symbol=", ".join(missing))
            return self._unknown_pool(asset, reported, moving, note)
        if asset in self._mixed_pools:
            return self._unknown_pool(asset, reported, moving, MIXED_POOL)

        wallet = reported.wallet_balance
        states = [leg.state(mark) for leg, mark in moving]
        total_pnl = total_mm = total_fees = 0.0
        indices, fees = [], []
        for (leg, _), (pnl, index, mm, value) in zip(moving, states, strict=True):
            total_pnl += pnl
            total_mm += mm
            indices.append(index)
            fee = value * leg.rate_extra  # kept apart from MM by the exchange (OKX)
            fees.append(fee)
            total_fees += fee
        balance = wallet + total_pnl
        ratio = margin_ratio(total_mm, balance)
        if not moving:
            move, note = None, None
        else:
            move = nearest_liquidation_move(moving, wallet, indices)
            note = None if move is not None else UNREACHABLE
        distance = abs(move) if move is not None else None
        pool = PoolRisk(
            asset, wallet, total_pnl, balance, total_mm - total_fees, ratio, move, distance,
            exchange_ratio, note, total_fees,
        )  # fmt: skip
        free = wallet + total_pnl - total_mm
        members: list[PositionRisk] = [None] * len(legs)  # type: ignore[list-item]
        for group in self._groups.get(asset, []):
            if len(group) == 1:
                i = group[0]
                leg, mark = moving[i]
                pnl, index, mm, value = states[i]
                single = single_leg_move(leg, mark, index, free - pnl + mm)
                price, far, lp_note = _priced(single, mark)
                members[i] = PositionRisk(
                    leg.position, mark, value, pnl, mm - fees[i], ratio, price, far, lp_note,
                    fees[i],
                )  # fmt: skip
                continue
            held = sum(states[i][0] - states[i][2] for i in group)
            price, far, lp_note = _liquidation(
                [moving[i] for i in group], free - held, [indices[i] for i in group]
            )
            for i in group:
                leg, mark = moving[i]
                pnl, _, mm, value = states[i]
                members[i] = PositionRisk(
                    leg.position, mark, value, pnl, mm - fees[i], ratio, price, far, lp_note,
                    fees[i],
                )  # fmt: skip
        return pool, members

    def _unknown_pool(
        self,
        asset: str,
        reported: CrossPool | None,
        moving: list[MovingLeg],
        note: str,
    ) -> tuple[PoolRisk, list[PositionRisk]]:
        """A pool whose figures cannot be summed honestly: its ratios are unknown too."""
        pnls = [leg.unrealized_pnl(mark) for leg, mark in moving]
        wallet = reported.wallet_balance if reported else float("nan")
        total_pnl = sum(pnls)
        exchange_ratio = reported.exchange_margin_ratio if reported else None
        pool = PoolRisk(
            asset, wallet, total_pnl, wallet + total_pnl, None, None, None, None,
            exchange_ratio, note, None,
        )  # fmt: skip
        members = [
            PositionRisk(
                leg.position, mark, leg.value(mark), pnl, None, None, None, None, note, None
            )
            for (leg, mark), pnl in zip(moving, pnls, strict=True)
        ]
        return pool, members


def evaluate_snapshot(snapshot: AccountSnapshot, marks: Marks | None = None) -> AccountRisk:
    """One-shot evaluation, for callers that do not keep a book between ticks."""
    return AccountBook(snapshot).evaluate(marks)


__all__ = ["AccountBook", "evaluate_snapshot"]
