"""`marginwatch demo`: the real daemon against the simulated exchange, in one process.

Nothing is mocked: the simulator serves an exchange's REST and stream dialects (Binance
USD-M, or Bybit v5 with `--venue bybit`) on 127.0.0.1, the daemon talks to it through
unmodified ccxt and its own websocket client, and the scenario's flash crash drives real
level changes and a real liquidation.
"""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
from pathlib import Path

from rich.console import Console, RenderableType
from rich.live import Live
from rich.text import Text

from monitor.config import Config
from monitor.daemon.live import LiveView
from monitor.daemon.service import Daemon
from monitor.simulator.runner import SimulatedVenue

DEFAULT_SCENARIO = "flash-crash"
DEFAULT_SPEED = 2.0
SETTLE_SECONDS = 3.0
"""After the last tick: time for one more account read, so a liquidation the venue
performed at the very end is reconciled and reported before the demo exits."""


def demo_config(venue: SimulatedVenue, state_dir: Path) -> Config:
    """A configuration watching every account of the venue, polling fast for the demo."""
    accounts = [
        {
            "name": name,
            "exchange": venue.dialect.exchange_id,
            "api_key": creds.api_key,
            "secret": creds.secret,
            "rest_url": venue.base_url,
            "ws_url": venue.ws_url,
        }
        for name, creds in venue.credentials.items()
    ]
    return Config.model_validate(
        {
            "state_dir": str(state_dir),
            "daemon": {
                "poll_interval": 2,
                "poll_jitter": 0,
                "feed_stale_after": 5,
                "account_stale_after": 20,
            },
            "accounts": accounts,
        }
    )


def phase_line(venue: SimulatedVenue, name: str) -> str:
    """The demo's part of the live view's status line: scenario, speed, phase, time."""
    scenario = venue.scenario
    phase = scenario.phase_at(venue.elapsed)
    state = "ended" if venue.finished.is_set() else f"phase {phase.number}/{phase.count}"
    return (
        f"{name} {venue.speed:g}x  {state}: {phase.summary}  "
        f"{venue.elapsed:.0f}s/{scenario.duration:.0f}s"
    )


async def run_demo(
    scenario: str = DEFAULT_SCENARIO,
    speed: float = DEFAULT_SPEED,
    console: Console | None = None,
    *,
    venue_name: str = "binance",
) -> int:
    console = console or Console()
    with tempfile.TemporaryDirectory(prefix="marginwatch-demo-") as state:
        async with SimulatedVenue(scenario, speed=speed, venue=venue_name) as venue:
            console.print(
                f"[bold]marginwatch demo[/]: scenario [cyan]{scenario}[/] at {speed:g}x on "
                f"simulated {venue.dialect.label} {venue.base_url} — "
                f"{venue.scenario.description}"
            )
            config = demo_config(venue, Path(state))
            daemon = Daemon(config)
            view = LiveView(daemon, status=lambda: phase_line(venue, scenario))
            await daemon.start()

            def frame(below: int = 1) -> RenderableType:
                """Sized to the terminal now (it may have been resized), `below` lines
                short of it so the frame never scrolls (the last one leaves room for the
                summary, so its status line stays on screen)."""
                return view.render(console, console.width, console.height - below)

            try:
                with Live(frame(), console=console, refresh_per_second=4) as live:
                    while not venue.finished.is_set():
                        with contextlib.suppress(TimeoutError):
                            await asyncio.wait_for(venue.finished.wait(), 0.25)
                        live.update(frame())
                    await asyncio.sleep(SETTLE_SECONDS)
                    summary = Text(f"scenario finished; {finished(view)}")
                    live.update(frame(len(summary.wrap(console, console.width)) + 1))
            finally:
                await daemon.stop()
    console.print(summary)
    return 0


def finished(view: LiveView) -> str:
    """Events by kind, "events: action 3, critical 4, ...": a count beside its label."""
    counts = sorted(view.counts.items())
    return (
        "events: " + ", ".join(f"{name} {count}" for name, count in counts)
        if counts
        else "no events"
    )
