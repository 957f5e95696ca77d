"""Seeded mark-price paths: the same scenario and seed give the same path, tick for tick.

Each symbol draws from its own generator seeded with "<seed>:<symbol>", so adding a
symbol to a scenario does not change the paths of the others. Within a segment the log
price moves by ln(1 + drift) and has variance volatility² over the segment's duration,
spread evenly over its ticks (a tick spanning two segments takes its share of each);
jumps apply at the first tick at or after their time.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator
from dataclasses import dataclass

from monitor.simulator.scenario import MARKETS, Scenario


@dataclass(frozen=True, slots=True)
class Tick:
    """Marks and funding rates at `time` simulated seconds from the start."""

    time: float
    marks: dict[str, float]
    funding_rates: dict[str, float]


def round_price(symbol: str, price: float) -> float:
    """To the market's tick, as a mark price is quoted."""
    market = MARKETS[symbol]
    return round(round(price / market.price_tick) * market.price_tick, market.price_precision)


@dataclass(frozen=True, slots=True)
class _Window:
    """One segment placed on the symbol's timeline, in per-second rates."""

    start: float
    end: float
    drift_rate: float
    variance_rate: float
    funding_rate: float | None


class SymbolPath:
    """The path of one symbol, advanced tick by tick."""

    def __init__(self, scenario: Scenario, symbol: str) -> None:
        spec = scenario.symbols[symbol]
        self.symbol = symbol
        self._rng = random.Random(f"{scenario.seed}:{symbol}")
        self._log_price = math.log(spec.start)
        self._default_rate = spec.funding_rate
        self._windows: list[_Window] = []
        self._jumps: list[tuple[float, float]] = []
        start = 0.0
        for segment in scenario.segments_for(symbol):
            end = start + segment.duration
            self._windows.append(
                _Window(
                    start,
                    end,
                    math.log1p(segment.drift) / segment.duration,
                    segment.volatility**2 / segment.duration,
                    segment.funding_rate,
                )
            )
            self._jumps += [(start + jump.at, math.log1p(jump.size)) for jump in segment.jumps]
            start = end

    def advance(self, begin: float, end: float) -> float:
        """The mark at `end`, having moved over (begin, end]."""
        mean = variance = 0.0
        for window in self._windows:
            overlap = min(end, window.end) - max(begin, window.start)
            if overlap > 0:
                mean += window.drift_rate * overlap
                variance += window.variance_rate * overlap
        mean += sum(size for at, size in self._jumps if begin < at <= end)
        self._log_price += mean + math.sqrt(variance) * self._rng.gauss(0.0, 1.0)
        return round_price(self.symbol, math.exp(self._log_price))

    def funding_rate(self, time: float) -> float:
        """The rate of the segment running at `time`, else the symbol's own."""
        for window in self._windows:
            if window.start < time <= window.end and window.funding_rate is not None:
                return window.funding_rate
        return self._default_rate


def price_ticks(scenario: Scenario) -> Iterator[Tick]:
    """Every tick of the scenario, from the first after the start to its end."""
    paths = [SymbolPath(scenario, symbol) for symbol in scenario.symbols]
    step = scenario.tick_seconds
    count = math.ceil(scenario.duration / step - 1e-9)
    for index in range(1, count + 1):
        begin, end = (index - 1) * step, min(index * step, scenario.duration)
        yield Tick(
            end,
            {path.symbol: path.advance(begin, end) for path in paths},
            {path.symbol: path.funding_rate(end) for path in paths},
        )
