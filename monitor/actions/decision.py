"""What the planner hands on: decisions (one exchange request each), notes, budgets.

A decision carries what it is expected to achieve (the target's liquidation distance and
margin ratio after it), so the journal can hold the prediction next to the measured
figures of the fresh read that follows the fill.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal, NamedTuple

from monitor.domain import Position
from monitor.engine.levels import Level
from monitor.events import TargetKind, position_target
from monitor.formatting import size_of

Kind = Literal["transfer", "add_margin", "reduce"]
Rung = Literal["balance", "reserve"]
"""Where the money of an add comes from; a rung the exchange refused is skipped for a
while (see `Budget.refused`)."""

CLIENT_ID_PREFIX = "mw-"
"""Marks our orders on the exchange; Binance allows 36 characters in all."""
ID_LENGTH = 32
MARGIN_QUANTUM = 0.01
"""Margin and transfers are sized in cents of the settlement asset (USDT)."""
COIN_QUANTUM = 1e-8
"""...or, for coin-margined (inverse) positions, in the coin to eight decimals (Binance
COIN-M's margin and transfer precision)."""


def is_ours(client_id: str | None) -> bool:
    """Whether an exchange order's client id is one this module minted."""
    return bool(client_id) and str(client_id).startswith(CLIENT_ID_PREFIX)


def target_of(position: Position) -> str:
    return position_target(
        position.symbol, position.side.value, position.margin_mode.value, position.position_side
    )


def decision_id(
    account: str,
    target: str,
    kind: Kind,
    symbol: str,
    quantity: float,
    snapshot_at: float,
    variant: str = "",
) -> str:
    """Same account, target, action, size and snapshot -> same id: an evaluation repeated
    on the same snapshot can never produce a second, different-looking action. `variant`
    tells apart the same request on another rung (an add funded by a transfer, after the
    add from the balance was refused on that very snapshot)."""
    text = f"{account}|{target}|{kind}|{symbol}|{quantity:.12g}|{snapshot_at:.6f}"
    text += f"|{variant}" if variant else ""
    return hashlib.sha256(text.encode()).hexdigest()[:ID_LENGTH]


@dataclass(frozen=True, slots=True)
class Decision:
    """One exchange request: a transfer from the reserve into the futures wallet, a
    margin transfer into an isolated position, or one reduce-only order. `notional` is
    what the caps count (money moved, or the value closed at the mark);
    `position_contracts` is the size decided on, re-checked on the exchange right before
    acting (a transfer has no position: its `symbol` is the target's, or empty)."""

    id: str
    account: str
    target: str
    target_kind: TargetKind
    kind: Kind
    symbol: str
    side: str
    """The position's side (long/short); a reduce order trades the other way."""
    position_side: str
    margin_mode: str
    asset: str
    position_contracts: float
    contract_size: float
    inverse: bool
    """With `contract_size`, what one contract is, so a reduction reads in base units."""
    quantity: float
    """Money to move (in `asset`) or contracts to close."""
    notional: float
    """What the caps count: money moved, or the value closed (quote at the mark; the USD
    face value for inverse contracts, and the USD value of coin margin)."""
    mark: float
    ratio_before: float | None
    ratio_after: float | None
    distance_before: float | None
    distance_after: float | None
    """The target's liquidation distance the engine predicts after this decision and
    those before it in the same plan (inf: nothing liquidates it; None: closed)."""
    reaches_target: bool
    snapshot_at: float
    source: str = ""
    """A transfer's reserve wallet (spot | funding)."""
    closes: bool = False
    """A reduce that closes the whole position."""

    @property
    def client_order_id(self) -> str | None:
        """Deterministic, so a lookup after a timeout or a restart finds exactly this
        order; None for transfers, which the exchange gives no id of ours."""
        return CLIENT_ID_PREFIX + self.id if self.kind == "reduce" else None

    @property
    def order_side(self) -> str:
        return "sell" if self.side == "long" else "buy"

    @property
    def name(self) -> str:
        """The position's base asset, as a trader says it (AVAX, not AVAX/USDT:USDT)."""
        return self.symbol.split("/")[0] if self.symbol else self.asset

    def effect(self) -> str:
        """What the plan brings once this step is done, e.g. "→ distance 10.0 %"."""
        if self.closes:
            return "→ position closed"
        if self.kind == "transfer" and self.target_kind is not TargetKind.POOL:
            return "→ futures wallet (for the add that follows)"
        where = "pool distance" if self.target_kind is TargetKind.POOL else "distance"
        return f"→ {where} {percent(self.distance_after)}"

    def step(self) -> str:
        """The request in a trader's words, without its effect."""
        if self.kind == "transfer":
            return f"transfer {money(self.quantity)} {self.asset} from {self.source}"
        if self.kind == "add_margin":
            return f"add {money(self.quantity)} {self.asset} margin to {self.name}"
        verb = "close" if self.closes else "reduce"
        unit = "USD" if self.inverse else self.asset  # an inverse cut's face value
        return (
            f"{verb} {self.name} {self.side} by "
            f"{size_of(self.symbol, self.quantity, self.contract_size, self.inverse)} "
            f"(≈ {self.notional:,.0f} {unit}, reduce-only)"
        )

    def describe(self) -> str:
        return f"{self.step()} {self.effect()}"


def percent(value: float | None) -> str:
    """A distance as people read it; never "inf %"."""
    if value is None:
        return "unknown"
    if math.isinf(value):
        return "none (nothing liquidates it)"
    return f"{value * 100:.1f} %"


def describe_plan(decisions: list[Decision]) -> str:
    """ "transfer 1,500.00 USDT from spot, then add 1,200.00 USDT margin to AVAX →
    distance 10.0 %": each step, and the effect after the last one of each target."""
    parts: list[str] = []
    for i, decision in enumerate(decisions):
        last = i + 1 == len(decisions) or decisions[i + 1].target != decision.target
        parts.append(decision.describe() if last else decision.step())
    return ", then ".join(parts)


@dataclass(frozen=True, slots=True)
class Budget:
    """What the caps still allow, from the journal (guards.budget)."""

    per_action: float
    window_left: float
    """Notional left in both the rolling hour and the rolling day."""
    actions_left: int
    added: Mapping[str, float] = field(default_factory=dict)
    """Margin added to each isolated target in the rolling day."""
    reserve_left: float = 0.0
    """What `reserve.max_per_day` still allows."""
    refused: Mapping[str, frozenset[Rung]] = field(default_factory=dict)
    """target -> rungs the exchange refused lately: the plan goes to the next rung."""


class Note(NamedTuple):
    """Something to tell about a target the policy wanted to defend: why it could not,
    or not fully (critical: the target stays undefended)."""

    target: str
    target_kind: TargetKind
    message: str
    level: Level = Level.WARN


class Plan(NamedTuple):
    decisions: list[Decision]
    notes: list[Note]


def quantum_for(inverse: bool, coin_step: float | None = None) -> float:
    """Money's sizing step: cents, or a coin's eight decimals unless the venue moves coin
    margin in coarser steps (`coin_step`, Bybit's four decimals)."""
    return (coin_step or COIN_QUANTUM) if inverse else MARGIN_QUANTUM


def ceil_money(amount: float, quantum: float = MARGIN_QUANTUM) -> float:
    return round(math.ceil(amount / quantum - 1e-9) * quantum, _decimals(quantum))


def floor_money(amount: float, quantum: float = MARGIN_QUANTUM) -> float:
    if not math.isfinite(amount):
        return amount if amount > 0 else 0.0
    return max(0.0, round(math.floor(amount / quantum + 1e-9) * quantum, _decimals(quantum)))


def _decimals(quantum: float) -> int:
    return max(0, -math.floor(math.log10(quantum) + 1e-9))


def money(amount: float) -> str:
    """An amount of money as sized: cents (1,500.00), or a coin's eight decimals
    (0.01234567) when it has more than two."""
    if abs(amount * 100 - round(amount * 100)) < 1e-6:
        return f"{amount:,.2f}"
    return f"{amount:,.8f}".rstrip("0")
