"""A position compiled for fast evaluation: its PnL and maintenance margin at any mark.

An exchange model decides the terms (tier table, fee add-ons, whether MM is priced at
entry); a leg only evaluates them. Legs are built once per snapshot and reused on every
mark-price tick, so the per-tick work is arithmetic only.
"""

from __future__ import annotations

from monitor.domain import Position, TierBasis, TierTable


class Leg:
    """Terms of one position in its pool's settlement asset.

    For linear contracts `qty` is base units and value = qty x mark (quote asset);
    for inverse, `qty` is USD face and value = qty / mark (coin).
    MM at a mark = value x (rate + rate_extra) - amount + mm_constant, with the tier
    chosen by value (notional basis) or by contract count; `mm_fixed`, when set,
    replaces that with a figure that does not move with the mark (Bybit isolated).

    `rate_extra` is a rate the exchange keeps apart from its own maintenance margin but
    counts in its liquidation condition (OKX's fees to close): a leg's "MM" here, and
    everything solved from it, includes that term, because it is what equity must stay
    above; the results (engine/results.py) report it apart as `liquidation_fees`.
    """

    __slots__ = (
        "basis",
        "consts",
        "contracts",
        "entry",
        "floors",
        "inverse",
        "mm_constant",
        "mm_fixed",
        "position",
        "qty",
        "rate_extra",
        "sign",
        "slopes",
        "symbol",
        "tier_moves",
        "tiers",
    )

    def __init__(
        self,
        position: Position,
        tiers: TierTable | None,
        rate_extra: float = 0.0,
        mm_constant: float = 0.0,
        mm_fixed: float | None = None,
    ) -> None:
        self.position = position
        self.symbol = position.symbol
        self.sign = position.side.sign
        self.qty = position.size
        self.contracts = position.contracts
        self.entry = position.entry_price
        self.inverse = position.inverse
        self.tiers = tiers
        self.basis = tiers.basis if tiers is not None else TierBasis.NOTIONAL
        self.rate_extra = rate_extra
        self.mm_constant = mm_constant
        self.mm_fixed = mm_fixed
        self.slopes, self.consts = self._lines()
        self.tier_moves = (
            mm_fixed is None and tiers is not None and self.basis is TierBasis.NOTIONAL
        )
        """Whether a price move can change this leg's tier (value-keyed, priced at mark)."""
        self.floors: tuple[float, ...] = tuple(t.floor for t in tiers.tiers) if tiers else ()

    def _lines(self) -> tuple[tuple[float, ...], tuple[float, ...]]:
        """Per tier, the constants of equity - MM as a line in the solver's variable t.

        Linear: a = mark x slope + const, b = mark x slope (t = fractional move).
        Inverse: a = const, b = slope / mark (t = 1 / (1 + move)).
        Computed once per snapshot, so each solver step is two multiplications a leg.
        """
        s_qty = self.sign * self.qty
        if self.mm_fixed is not None or self.tiers is None:
            fixed = self.mm_fixed or 0.0
            if self.inverse:
                return (-s_qty,), (s_qty / self.entry - fixed,)
            return (s_qty,), (-s_qty * self.entry - fixed,)
        slopes, consts = [], []
        for tier in self.tiers.tiers:
            rate = tier.maintenance_rate + self.rate_extra
            amount = tier.maintenance_amount - self.mm_constant
            if self.inverse:
                slopes.append(-(s_qty + self.qty * rate))
                consts.append(s_qty / self.entry + amount)
            else:
                slopes.append(s_qty - self.qty * rate)
                consts.append(-s_qty * self.entry + amount)
        return tuple(slopes), tuple(consts)

    def line(self, mark: float, index: int) -> tuple[float, float]:
        """(a, b) of this leg's share of equity - MM = a + b t in tier `index`."""
        if self.mm_fixed is not None or self.tiers is None:
            index = 0
        if self.inverse:
            return self.consts[index], self.slopes[index] / mark
        slope = mark * self.slopes[index]
        return slope + self.consts[index], slope

    @property
    def has_margin_terms(self) -> bool:
        """False when neither a tier table nor a fixed MM is known: MM is then unknown."""
        return self.tiers is not None or self.mm_fixed is not None

    def value(self, mark: float) -> float:
        """Position value in the settlement asset at `mark`."""
        return self.qty / mark if self.inverse else self.qty * mark

    def unrealized_pnl(self, mark: float) -> float:
        if self.inverse:
            return self.sign * self.qty * (1.0 / self.entry - 1.0 / mark)
        return self.sign * self.qty * (mark - self.entry)

    def tier_index(self, mark: float) -> int:
        assert self.tiers is not None
        key = self.contracts if self.basis is TierBasis.CONTRACTS else self.value(mark)
        return self.tiers.index_for(key)

    def state(self, mark: float) -> tuple[float, int, float, float]:
        """(unrealised PnL, tier index, MM, value) at `mark` in one call: the per-tick path."""
        qty = self.qty
        if self.inverse:
            value = qty / mark
            pnl = self.sign * qty * (1.0 / self.entry - 1.0 / mark)
        else:
            value = qty * mark
            pnl = self.sign * (value - qty * self.entry)
        if self.mm_fixed is not None:
            return pnl, 0, self.mm_fixed, value
        tiers = self.tiers
        assert tiers is not None
        index = tiers.index_for(self.contracts if self.basis is TierBasis.CONTRACTS else value)
        tier = tiers.tiers[index]
        mm = value * (tier.maintenance_rate + self.rate_extra) - tier.maintenance_amount
        return pnl, index, mm + self.mm_constant, value

    def maintenance_margin(self, mark: float) -> float:
        if self.mm_fixed is not None:
            return self.mm_fixed
        assert self.tiers is not None
        return self.maintenance_margin_in_tier(mark, self.tier_index(mark))

    def maintenance_margin_in_tier(self, mark: float, index: int) -> float:
        if self.mm_fixed is not None:
            return self.mm_fixed
        assert self.tiers is not None
        tier = self.tiers.tiers[index]
        rate = tier.maintenance_rate + self.rate_extra
        return self.value(mark) * rate - tier.maintenance_amount + self.mm_constant
