"""The exchange dialects the simulator speaks over one price and risk core.

A dialect turns the shared ledger (`SimExchange`, built from a scenario) into a venue:
its app (REST and streams on one origin), the stream hub the clock publishes marks on,
and the risk engine that liquidates by that exchange's own published rules. Everything
else (scenario, price paths, clock, funding, fills, accounts) is shared. The ledger's
classes and the websocket gate were written with the Binance dialect and still live in
`binance_usdm/state.py` and `binance_usdm/sockets.py`; every dialect uses them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from aiohttp import web

from monitor.simulator import binance_usdm, bybit_v5
from monitor.simulator.binance_usdm.state import SimExchange
from monitor.simulator.bybit_v5.conventions import adopt, scenario_problems
from monitor.simulator.catalogue import VENUES
from monitor.simulator.risk import RiskEngine
from monitor.simulator.scenario import Scenario, ScenarioError


class Streams(Protocol):
    """What the clock and the stream-fault tests use of a dialect's stream hub."""

    @property
    def open_connections(self) -> int: ...

    def publish_marks(self) -> None: ...

    async def drop_all(self, *, graceful: bool = False) -> int: ...

    def refuse(self, seconds: float, *, handshake: bool = True) -> None: ...


class RiskCheck(Protocol):
    def check(self) -> None: ...


@dataclass(frozen=True, slots=True)
class Served:
    app: web.Application
    streams: Streams
    risk: RiskCheck


@dataclass(frozen=True, slots=True)
class Dialect:
    name: str
    """The `--venue` value."""
    label: str
    """How the banner names the venue."""
    exchange_id: str
    """The ccxt id a monitor configures for it."""
    serve: Callable[[SimExchange], Served]
    prepare: Callable[[SimExchange, Scenario], None]
    """Adjust the freshly built ledger to the venue's conventions (fees, wallets)."""
    problems: Callable[[Scenario], list[str]]
    """What in a valid scenario this venue would refuse (one line each, with its path)."""

    def check(self, scenario: Scenario) -> None:
        """Raise ScenarioError listing every problem of `scenario` on this venue."""
        problems = self.problems(scenario)
        if problems:
            raise ScenarioError(problems)


def _serve_binance(exchange: SimExchange) -> Served:
    app = binance_usdm.build_app(exchange)
    return Served(app, app[binance_usdm.STREAMS_KEY], RiskEngine(exchange))


def _serve_bybit(exchange: SimExchange) -> Served:
    app = bybit_v5.build_app(exchange)
    return Served(app, app[bybit_v5.STREAMS_KEY], bybit_v5.BybitRiskEngine(exchange))


def _as_built(exchange: SimExchange, scenario: Scenario) -> None:
    """Binance's ledger is the scenario's as built."""


def _binance_problems(scenario: Scenario) -> list[str]:
    """None: scenarios are validated against Binance's markets when they load."""
    return []


DIALECTS: dict[str, Dialect] = {
    "binance": Dialect(
        "binance", "Binance USD-M", "binanceusdm", _serve_binance, _as_built, _binance_problems
    ),
    "bybit": Dialect(
        "bybit", "Bybit v5 (unified account)", "bybit", _serve_bybit, adopt, scenario_problems
    ),
}
assert tuple(DIALECTS) == VENUES, "catalogue.VENUES names the dialects for the CLI"
