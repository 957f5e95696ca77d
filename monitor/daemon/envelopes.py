"""Settle a whole-market frame for every account of an exchange in one vectorised test.

Binance's all-market array moves every symbol every second, so every account holds a
moved symbol on every frame. Visiting each account to learn that its bands and quiet-tick
proofs still hold costs a few microseconds of Python per target, times every target of
every account. Instead each account publishes its envelope (`AccountState.envelope`):
per held symbol, the open interval of marks inside which none of its targets needs
evaluating. Here the envelopes of all accounts sit in flat arrays, one row per (account,
held symbol); a frame gathers the marks into those rows, compares, and reduces per
account. Only the accounts with a mark outside their envelope are visited; the rest are
settled exactly as their own `on_marks` would have settled them.

An account whose envelope is unknown (some target can only be evaluated exactly, or its
symbols changed since the layout) gets an empty interval: it is visited on every frame.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np

from monitor.daemon.account import AccountState

_NEVER = (math.inf, -math.inf)
"""An empty interval: no mark is inside it, so its account is always visited."""


class Envelopes:
    """The envelopes of one exchange group's accounts, laid out for `settle`."""

    def __init__(self, monitors: list[AccountState]) -> None:
        held = [sorted(monitor.symbols()) for monitor in monitors]
        self._monitors = [m for m, symbols in zip(monitors, held, strict=True) if symbols]
        self._rows = [symbols for symbols in held if symbols]
        self._held = [set(rows) for rows in self._rows]
        self._symbols = sorted({s for symbols in self._rows for s in symbols})
        column = {symbol: i for i, symbol in enumerate(self._symbols)}
        self._row_symbol = np.array([column[s] for rows in self._rows for s in rows], np.intp)
        sizes = [len(rows) for rows in self._rows]
        self._starts = np.cumsum([0, *sizes[:-1]], dtype=np.intp)
        self._low = np.full(len(self._row_symbol), math.inf)
        self._high = np.full(len(self._row_symbol), -math.inf)
        self._alarmed = np.zeros(len(self._monitors), bool)
        self._written = [-1] * len(self._monitors)

    def settle(self, prices: Mapping[str, float]) -> tuple[list[AccountState], list[AccountState]]:
        """(accounts to visit with `on_marks`, accounts settled whole with a target
        above OK, which the actions controller must still hear about) at `prices`."""
        self._refresh()
        if not self._monitors:
            return [], []
        get = prices.get
        marks = np.array([get(symbol, math.nan) for symbol in self._symbols])
        at = marks[self._row_symbol]
        inside = (at > self._low) & (at < self._high)  # a missing mark (nan) is outside
        settled = np.logical_and.reduceat(inside, self._starts)
        monitors = self._monitors
        visit = [monitors[i] for i in np.flatnonzero(~settled)]
        alarmed = [monitors[i] for i in np.flatnonzero(settled & self._alarmed)]
        return visit, alarmed

    def _refresh(self) -> None:
        """Rewrite the rows of every account whose envelope may have changed."""
        for i, monitor in enumerate(self._monitors):
            version = monitor.envelope_version
            if version != self._written[i]:
                self._write(i, monitor)
                self._written[i] = version

    def _write(self, i: int, monitor: AccountState) -> None:
        rows = self._rows[i]
        envelope = monitor.envelope()
        bounds, alarmed = envelope if envelope is not None else ({}, False)
        if not bounds.keys() <= self._held[i]:
            bounds = {}  # a symbol this layout does not check: visit always
        pairs = [bounds.get(symbol, _NEVER) for symbol in rows]
        start = int(self._starts[i])
        end = start + len(rows)
        self._low[start:end] = [low for low, _ in pairs]
        self._high[start:end] = [high for _, high in pairs]
        self._alarmed[i] = alarmed
