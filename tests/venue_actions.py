"""Decisions and journal rows for the venue executors' tests, made by hand.

An executor test states one exchange request exactly (its kind, symbol, size), so the
decision is written here rather than planned by the policy; what a venue answers is
then checked against the venue's own records.
"""

from __future__ import annotations

from typing import Any

from monitor.actions.decision import Decision, TargetKind, decision_id
from monitor.actions.executor import Executor
from monitor.actions.journal import ActionRow, Journal


def decision(
    kind: str,
    *,
    symbol: str = "",
    side: str = "long",
    margin_mode: str = "cross",
    quantity: float,
    mark: float = 0.0,
    asset: str = "USDT",
    source: str = "",
    position_side: str = "BOTH",
    account: str = "acct",
) -> Decision:
    target = f"{symbol} {side} {margin_mode}" if symbol else f"pool {asset}"
    return Decision(
        id=decision_id(account, target, kind, symbol, quantity, 1.0),  # type: ignore[arg-type]
        account=account,
        target=target,
        target_kind=TargetKind.POSITION if symbol else TargetKind.POOL,
        kind=kind,  # type: ignore[arg-type]
        symbol=symbol,
        side=side,
        position_side=position_side,
        margin_mode=margin_mode,
        asset=asset,
        position_contracts=quantity,
        contract_size=1.0,
        inverse=False,
        quantity=quantity,
        notional=quantity * (mark or 1.0),
        mark=mark,
        ratio_before=None,
        ratio_after=None,
        distance_before=None,
        distance_after=None,
        reaches_target=True,
        snapshot_at=1.0,
        source=source,
    )


def sent(journal: Journal, executor: Executor, made: Decision) -> tuple[dict[str, Any], ActionRow]:
    """Journal `made` as the controller does (planned, then sent) and return its request
    and row, ready for `executor.send` and a lookup."""
    request = executor.request(made, None)
    journal.record(made, "auto", "planned", request)
    journal.advance(made.id, "sent")
    row = journal.get(made.id)
    assert row is not None
    return request, row
