"""A scenario played live: REST and streams on 127.0.0.1, prices and risk on a clock.

`speed` is simulated seconds per wall second. Timestamps on the wire stay on the wall
clock, because ccxt signs requests with the local time and Binance rejects a timestamp
outside recvWindow; only the scenario's own schedule (ticks, funding) runs fast. The next
funding time the venue reports is therefore the wall time at which it will happen.

    async with SimulatedVenue("flash-crash", speed=100) as venue:
        ...  # point a client at venue.base_url / venue.ws_url
        await venue.finished.wait()

With `hold=True` the opening book is served (REST, and its marks on the streams every
tick) but the clock waits for `start()`: a test whose scenario moves at fixed simulated
times starts it once the process under test is watching, however long that process took
to start on a busy machine.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from monitor.aio import cancel_and_wait
from monitor.simulator.binance_usdm import SimExchange
from monitor.simulator.build import build_exchange
from monitor.simulator.dialects import DIALECTS, RiskCheck, Streams
from monitor.simulator.funding import settle_funding
from monitor.simulator.http import LOOPBACK, LocalServer
from monitor.simulator.prices import Tick, price_ticks
from monitor.simulator.scenario import Scenario, load_scenario

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Credentials:
    """One simulated account's test key pair."""

    name: str
    api_key: str
    secret: str


class SimulatedVenue:
    """Serve a scenario's venue and run its clock, price path and risk engine."""

    def __init__(
        self,
        scenario: Scenario | str | Path,
        speed: float = 1.0,
        port: int = 0,
        *,
        on_tick: Callable[[Tick], None] | None = None,
        venue: str = "binance",
        hold: bool = False,
    ) -> None:
        """`on_tick` hears every tick once it is applied (marks, funding, liquidations);
        `venue` is the dialect served (`dialects.DIALECTS`: binance, bybit); with `hold`
        the clock waits for `start()` (see the module's docstring)."""
        if speed <= 0:
            raise ValueError(f"speed must be positive, not {speed}")
        self.scenario = scenario if isinstance(scenario, Scenario) else load_scenario(scenario)
        self.speed = speed
        self.dialect = DIALECTS[venue]
        self.exchange: SimExchange = build_exchange(self.scenario)
        self.dialect.prepare(self.exchange, self.scenario)
        served = self.dialect.serve(self.exchange)
        app = served.app
        self.streams: Streams = served.streams
        self.risk: RiskCheck = served.risk
        self.credentials: dict[str, Credentials] = {
            spec.name: Credentials(spec.name, *spec.credentials) for spec in self.scenario.accounts
        }
        self.finished = asyncio.Event()
        """Set when the scenario's last tick has been applied; the venue keeps serving
        (REST, and the final marks on the streams) until the context exits."""
        self.elapsed = 0.0
        """Simulated seconds played so far."""
        self._server = LocalServer(app, port)
        self._on_tick = on_tick
        self._task: asyncio.Task[None] | None = None
        self._go = asyncio.Event()
        if not hold:
            self._go.set()

    @property
    def base_url(self) -> str:
        return self._server.base_url

    @property
    def ws_url(self) -> str:
        return f"ws://{LOOPBACK}:{self._server.port}"

    def start(self) -> None:
        """Start the clock of a venue made with `hold=True` (else it runs already)."""
        self._go.set()

    async def __aenter__(self) -> SimulatedVenue:
        await self._server.start()
        self.risk.check()  # reported liquidation prices of the opening book
        self.exchange.record_marks()
        self._task = asyncio.create_task(self._run(), name="simulated-venue-clock")
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Stop the clock and the server; a crash of the clock is re-raised here."""
        try:
            if self._task is not None:
                await cancel_and_wait(self._task)
        finally:
            await self._server.stop()

    async def _run(self) -> None:
        try:
            await self._opening()
            await self._play()
        except Exception:
            log.exception("the simulated venue's clock failed at %.1fs", self.elapsed)
            raise
        finally:
            self.finished.set()
        await self._hold()

    async def _opening(self) -> None:
        """Until `start()`: the opening marks published every tick, as `_hold` does after
        the end, so a monitor's feed is live while it waits."""
        interval = self.scenario.tick_seconds / self.speed
        while not self._go.is_set():
            self.streams.publish_marks()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._go.wait(), interval)

    async def _play(self) -> None:
        """Apply every tick on schedule: marks, funding when due, then the risk checks."""
        loop = asyncio.get_running_loop()
        started, started_ms = loop.time(), self.exchange.clock_ms()
        interval = self.scenario.funding_interval
        next_funding = interval
        self.exchange.next_funding_ms = started_ms + round(next_funding / self.speed * 1000)
        for tick in price_ticks(self.scenario):
            await asyncio.sleep(max(0.0, started + tick.time / self.speed - loop.time()))
            self.elapsed = tick.time
            self.exchange.mark_prices.update(tick.marks)
            self.exchange.record_marks()
            self.exchange.funding_rates.update(tick.funding_rates)
            while next_funding <= tick.time + 1e-9:
                settle_funding(self.exchange)
                next_funding += interval
                self.exchange.next_funding_ms = started_ms + round(next_funding / self.speed * 1000)
            self.streams.publish_marks()
            self.risk.check()
            if self._on_tick is not None:
                self._on_tick(tick)

    async def _hold(self) -> None:
        """After the last tick the marks hold but are still published every tick: a live
        exchange's streams never go quiet, and a monitor watching the venue must not
        report its feed as stale just because the scenario ended."""
        while True:
            await asyncio.sleep(self.scenario.tick_seconds / self.speed)
            self.streams.publish_marks()
