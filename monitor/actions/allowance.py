"""What one plan works with: the book and marks it is made on, and the caps as the
plan's own decisions use them up, in order."""

from __future__ import annotations

from dataclasses import dataclass, field

from monitor.actions.decision import Budget, Decision, Kind, Rung, decision_id
from monitor.config.schema import ActionsConfig, ReserveConfig
from monitor.engine.book import AccountBook, Marks
from monitor.engine.legs import Leg
from monitor.engine.sizing import mark_of
from monitor.events import TargetKind

UNIFIED_USD = "USD"
USD_STABLECOINS = ("USDT", "USDC")


@dataclass(frozen=True, slots=True)
class Context:
    account: str
    book: AccountBook
    marks: Marks
    config: ActionsConfig

    @property
    def snapshot_at(self) -> float:
        return self.book.snapshot.fetched_at

    def reserve_for(self, asset: str) -> ReserveConfig | None:
        """The reserve, if it can fund the pool of `asset`: the same asset, or a USD
        stablecoin moved into a unified account's USD-valued pool (Bybit's UTA counts
        USDT and USDC at a collateral value ratio of 1)."""
        reserve = self.config.reserve
        if reserve is None:
            return None
        if reserve.asset == asset:
            return reserve
        unified = self.book.snapshot.unified_pool
        if unified == asset == UNIFIED_USD and reserve.asset in USD_STABLECOINS:
            return reserve
        return None


@dataclass(slots=True)
class Allowance:
    """The budget as one plan's decisions use it up. Transfers have caps of their own
    (`reserve.*`) and are not counted in the notional windows: the add they fund is."""

    per_action: float
    window_left: float
    actions_left: int
    reserve_left: float
    added: dict[str, float]
    refused: dict[str, frozenset[Rung]]
    free: dict[str, float] = field(default_factory=dict)
    """Futures balance an add may use, per asset, once estimated (see isolated.py)."""
    headroom: dict[str, float] = field(default_factory=dict)
    """What of it a move may take before an add lands, per asset (see isolated.py)."""

    @classmethod
    def of(cls, budget: Budget) -> Allowance:
        return cls(
            budget.per_action, budget.window_left, budget.actions_left, budget.reserve_left,
            dict(budget.added), dict(budget.refused),
        )  # fmt: skip

    def refuses(self, target: str, rung: Rung) -> bool:
        return rung in self.refused.get(target, frozenset())

    def take(self, decision: Decision) -> None:
        self.actions_left -= 1
        if decision.kind == "transfer":
            self.reserve_left -= decision.quantity
            if decision.target_kind is not TargetKind.POOL:  # a pool's collateral is its own
                self.free[decision.asset] = self.free.get(decision.asset, 0.0) + decision.quantity
            return
        self.window_left -= decision.notional
        if decision.kind == "add_margin":
            self.added[decision.target] = self.added.get(decision.target, 0.0) + decision.quantity
            self.free[decision.asset] = self.free.get(decision.asset, 0.0) - decision.quantity


def make_decision(
    ctx: Context,
    *,
    target: str,
    target_kind: TargetKind,
    kind: Kind,
    asset: str,
    quantity: float,
    notional: float,
    leg: Leg | None,
    before: tuple[float | None, float | None],
    after: tuple[float | None, float | None],
    reaches_target: bool,
    source: str = "",
    variant: str = "",
) -> Decision:
    """A decision about `leg` (None: a transfer into the pool); `before` and `after`
    are the target's (ratio, distance)."""
    position = leg.position if leg is not None else None
    closes = kind == "reduce" and position is not None and quantity >= position.contracts - 1e-12
    if kind == "reduce" and (position is None or not 0 < quantity <= position.contracts + 1e-12):
        raise AssertionError(f"{target}: a reduction of {quantity} is not reduce-only")
    symbol = position.symbol if position is not None else ""
    return Decision(
        id=decision_id(ctx.account, target, kind, symbol, quantity, ctx.snapshot_at, variant),
        account=ctx.account,
        target=target,
        target_kind=target_kind,
        kind=kind,
        symbol=symbol,
        side=position.side.value if position is not None else "",
        position_side=position.position_side if position is not None else "",
        margin_mode=position.margin_mode.value if position is not None else "cross",
        asset=asset,
        position_contracts=position.contracts if position is not None else 0.0,
        contract_size=position.contract_size if position is not None else 1.0,
        inverse=position.inverse if position is not None else False,
        quantity=quantity,
        notional=notional,
        mark=mark_of(leg, ctx.marks) if leg is not None else 0.0,
        ratio_before=before[0],
        ratio_after=None if closes else after[0],
        distance_before=before[1],
        distance_after=None if closes else after[1],
        reaches_target=reaches_target,
        snapshot_at=ctx.snapshot_at,
        source=source,
        closes=closes,
    )
