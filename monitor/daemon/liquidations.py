"""One report per liquidation, whichever source sees it first.

The user data stream (monitor/daemon/userstream.py) hears the exchange's liquidation
order; the account state (monitor/daemon/account.py) sees a critical position vanish
between two reads. Both consult the account's ledger before reporting.
"""

from __future__ import annotations

from collections.abc import Iterable


class LiquidationLedger:
    """Which position targets were already reported liquidated, per disappearance.

    Two sources report the same liquidation: the stream's LIQUIDATION order (usually
    first) and the reconciliation of two polls (always, if the position was critical).
    Whichever claims a target first reports it. The claim holds until the target has been
    seen gone and then open again (a new position), so a partial liquidation that leaves
    the position open, or a poll that raced the liquidation, cannot cause a second report.
    """

    def __init__(self) -> None:
        self._claims: dict[str, bool] = {}  # target -> seen gone since the claim

    def claimed(self, target: str) -> bool:
        """Whether this disappearance was already reported as a liquidation."""
        return target in self._claims

    def claim(self, target: str) -> bool:
        """True for the first report of this disappearance: the caller emits."""
        if target in self._claims:
            return False
        self._claims[target] = False
        return True

    def observe(self, open_targets: Iterable[str]) -> None:
        """Record a fresh snapshot's open targets (after reconciling it)."""
        still_open = set(open_targets)
        for target, seen_gone in list(self._claims.items()):
            if target not in still_open:
                self._claims[target] = True
            elif seen_gone:
                del self._claims[target]
