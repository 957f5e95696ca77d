"""The status report: levels per target, the JSON document, and the exit status.

Exit status follows monitoring-plugin convention, worst first: 2 critical (or
imminent), 3 unknown
(an account failed or a figure could not be computed), 1 warn, 0 ok. Unknown outranks
warn because a monitor that cannot see must never read as calmer than one that can.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from monitor.config import Thresholds
from monitor.domain import MarginMode
from monitor.engine.levels import Level, level_for
from monitor.engine.results import PoolRisk, PositionRisk

if TYPE_CHECKING:  # collect reads the exchanges (ccxt): judging a result needs none of it
    from monitor.collect import AccountResult

EXIT_OK, EXIT_WARN, EXIT_CRITICAL, EXIT_UNKNOWN = 0, 1, 2, 3


@dataclass(frozen=True, slots=True)
class Assessed:
    """An account's result with the level of each pool and position."""

    result: AccountResult
    pool_levels: tuple[Level, ...]
    position_levels: tuple[Level, ...]
    thresholds: Thresholds | None = None
    """The levels' thresholds, so a screen can say which one each level reached."""


def assess(result: AccountResult, thresholds: Thresholds) -> Assessed:
    if result.risk is None:
        return Assessed(result, (), (), thresholds)
    pools = tuple(
        level_for(p.margin_ratio, p.liquidation_distance, thresholds.cross)
        for p in result.risk.pools
    )
    positions = tuple(
        level_for(
            p.margin_ratio,
            p.liquidation_distance,
            thresholds.isolated
            if p.position.margin_mode is MarginMode.ISOLATED
            else thresholds.cross,
        )
        for p in result.risk.positions
    )
    return Assessed(result, pools, positions, thresholds)


def exit_status(assessed: Sequence[Assessed]) -> int:
    levels = [lvl for a in assessed for lvl in (*a.pool_levels, *a.position_levels)]
    if any(lvl >= Level.CRITICAL for lvl in levels):
        return EXIT_CRITICAL
    if any(a.result.error for a in assessed) or Level.UNKNOWN in levels:
        return EXIT_UNKNOWN
    if any(lvl is Level.WARN for lvl in levels):
        return EXIT_WARN
    return EXIT_OK


def finite(value: float | None) -> float | None:
    """JSON has no infinity: an unbounded ratio is reported as null with a note."""
    return value if value is not None and math.isfinite(value) else None


def _pool_json(pool: PoolRisk, level: Level) -> dict[str, Any]:
    return {
        "asset": pool.asset,
        "wallet_balance": finite(pool.wallet_balance),
        "unrealized_pnl": pool.unrealized_pnl,
        "margin_balance": finite(pool.margin_balance),
        "maintenance_margin": pool.maintenance_margin,
        "liquidation_fees": pool.liquidation_fees,
        "margin_ratio": finite(pool.margin_ratio),
        "exchange_margin_ratio": pool.exchange_margin_ratio,
        "liquidation_move": pool.liquidation_move,
        "liquidation_distance": pool.liquidation_distance,
        "level": level,
        "note": pool.note or unbounded_note(pool.margin_ratio),
    }


def _position_json(risk: PositionRisk, level: Level) -> dict[str, Any]:
    p = risk.position
    return {
        "symbol": p.symbol,
        "side": p.side.value,
        "margin_mode": p.margin_mode.value,
        "position_side": p.position_side,
        "contracts": p.contracts,
        "contract_size": p.contract_size,
        "notional": risk.notional,
        "settle": p.settle,
        "entry_price": p.entry_price,
        "mark_price": risk.mark_price,
        "unrealized_pnl": risk.unrealized_pnl,
        "exchange_unrealized_pnl": p.exchange_unrealized_pnl,
        "maintenance_margin": risk.maintenance_margin,
        "exchange_maintenance_margin": p.exchange_maintenance_margin,
        "liquidation_fees": risk.liquidation_fees,
        "isolated_margin": p.isolated_margin,
        "leverage": p.leverage,
        "margin_ratio": finite(risk.margin_ratio),
        "exchange_margin_ratio": p.exchange_margin_ratio,
        "liquidation_price": risk.liquidation_price,
        "exchange_liquidation_price": p.exchange_liquidation_price,
        "liquidation_distance": risk.liquidation_distance,
        "level": level,
        "note": risk.note or unbounded_note(risk.margin_ratio),
    }


def unbounded_note(ratio: float | None) -> str | None:
    if ratio is not None and not math.isfinite(ratio):
        return "margin balance is zero or negative: at or past liquidation"
    return None


def account_json(assessed: Assessed) -> dict[str, Any]:
    result = assessed.result
    risk = result.risk
    doc: dict[str, Any] = {
        "name": result.account.name,
        "exchange": result.account.exchange,
        "ok": result.error is None,
        "error": str(result.error) if result.error else None,
        "error_kind": result.error.kind.value if result.error else None,
        "model": risk.model if risk else None,
        "exact": risk.exact if risk else None,
        "fetched_at": result.snapshot.fetched_at if result.snapshot else None,
        "pools": [],
        "positions": [],
    }
    if risk is not None:
        doc["pools"] = [
            _pool_json(p, lvl) for p, lvl in zip(risk.pools, assessed.pool_levels, strict=True)
        ]
        doc["positions"] = [
            _position_json(p, lvl)
            for p, lvl in zip(risk.positions, assessed.position_levels, strict=True)
        ]
    return doc


def status_json(assessed: Sequence[Assessed]) -> dict[str, Any]:
    return {"accounts": [account_json(a) for a in assessed], "exit_status": exit_status(assessed)}
