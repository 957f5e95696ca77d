"""One scenario's accounts on another scenario's price paths.

Why: `marginwatch snapshot` writes the trader's real book as a scenario whose prices
stand still; the crash worth rehearsing lives in a built-in scenario. Paths are
relative (drift, volatility and jumps are fractions; each symbol's random walk is seeded
by "<seed>:<symbol>", see prices.py), so putting them on the book's own start prices
rescales them to the book's marks: a -6 % gap stays a -6 % gap from wherever the
market was when the snapshot was taken.
"""

from __future__ import annotations

from monitor.simulator.scenario import Scenario, SymbolSpec


def with_paths(book: Scenario, paths: Scenario) -> Scenario:
    """`book`'s accounts and start prices, moved by `paths`' seed, segments and funding.

    A symbol `paths` describes keeps its own segments and funding rate; any other
    symbol of the book follows `paths`' shared segments (every built-in scenario has
    them) and keeps the book's funding rate.
    """
    symbols = {
        symbol: SymbolSpec(
            start=spec.start,
            funding_rate=paths.symbols[symbol].funding_rate
            if symbol in paths.symbols
            else spec.funding_rate,
            segments=paths.symbols[symbol].segments if symbol in paths.symbols else None,
        )
        for symbol, spec in book.symbols.items()
    }
    return Scenario(
        description=paths.description,
        seed=paths.seed,
        tick_seconds=paths.tick_seconds,
        funding_interval=paths.funding_interval,
        symbols=symbols,
        segments=paths.segments,
        accounts=book.accounts,
    )
