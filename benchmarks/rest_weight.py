"""REST request weight per minute per Binance account, at the default daemon settings.

Goal (issue 4): <= 120 weight/minute per account (5 % of Binance USD-M's 2,400/minute
per IP) while positions are never older than `poll_interval` (10 s by default). The real
`Daemon`, with `DaemonConfig()` defaults, reads the calm scenario's hybrid account on a
`SimulatedVenue` over loopback for `--seconds` of wall time; every REST request the venue
served is weighed with Binance's documented weights. A second daemon then starts on the
same state directory (markets cache warm) to show the startup burst without
exchangeInfo; the baseline is that cold start. Stream connections carry no REST weight.

Weights (REQUEST_WEIGHT, USD-M; pages under
https://developers.binance.com/docs/derivatives/usds-margined-futures/):
  GET  /fapi/v3/positionRisk      5   trade/rest-api/Position-Information-V3
  GET  /fapi/v3/account           5   account/rest-api/Account-Information-V3
  GET  /fapi/v1/leverageBracket   1   account/rest-api/Notional-and-Leverage-Brackets
  GET  /fapi/v1/multiAssetsMargin 30  account/rest-api/Get-Current-Multi-Assets-Mode
  GET  /fapi/v1/exchangeInfo      1   market-data/rest-api/Exchange-Information
                                      (assumption checked only against a client library's
                                      notes: not read on Binance's own page)
  POST /fapi/v1/listenKey         1   assumption: COIN-M's Start-User-Data-Stream page says 1
  PUT  /fapi/v1/listenKey         1   assumption, as POST (the key is kept alive every 30 min)
ccxt's own throttle table gives v3 positionRisk and account a cost of 1, not 5: its rate
limiter under-counts these reads, so the budget must come from Binance's figures.
An endpoint missing from the table is printed as unknown and not counted.

    python benchmarks/rest_weight.py [--seconds 60]
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from itertools import pairwise
from pathlib import Path

from monitor.config import Config, DaemonConfig
from monitor.daemon.events import Event
from monitor.daemon.service import Daemon
from monitor.simulator.runner import SimulatedVenue

WEIGHTS: dict[str, int] = {
    "GET /fapi/v3/positionRisk": 5,
    "GET /fapi/v3/account": 5,
    "GET /fapi/v1/leverageBracket": 1,
    "GET /fapi/v1/multiAssetsMargin": 30,
    "GET /fapi/v1/exchangeInfo": 1,
    "POST /fapi/v1/listenKey": 1,
    "PUT /fapi/v1/listenKey": 1,
}
BINANCE_LIMIT = 2400
GOAL_PER_MINUTE = 120


class TimedLog(list[str]):
    """Drop-in for `SimExchange.requests` that also remembers when each request came."""

    def __init__(self) -> None:
        super().__init__()
        self.times: list[float] = []

    def append(self, item: str) -> None:
        self.times.append(time.monotonic())
        super().append(item)


@dataclass
class Window:
    """What one daemon did between `start` and `end` (time.monotonic())."""

    start: float
    end: float = 0.0
    requests: list[tuple[float, str]] = field(default_factory=list)
    polls: list[float] = field(default_factory=list)  # successful poll completions
    failures: int = 0
    refreshes: int = 0  # polls the user data stream asked for (account changed)

    def rest(self, until: float | None = None) -> list[tuple[float, str]]:
        return [
            (t, r) for t, r in self.requests if not r.startswith("WS ") and t <= (until or self.end)
        ]

    @property
    def first_poll(self) -> float:
        return self.polls[0] if self.polls else self.end


def weigh(requests: list[tuple[float, str]]) -> tuple[int, Counter[str], set[str]]:
    mix = Counter(r for _, r in requests)
    unknown = {r for r in mix if r not in WEIGHTS}
    return sum(WEIGHTS.get(r, 0) * n for r, n in mix.items()), mix, unknown


async def watch(venue: SimulatedVenue, state_dir: Path, seconds: float | None) -> Window:
    """Run a daemon for `seconds`, or (None) until its first successful poll."""
    creds = venue.credentials["hybrid"]
    config = Config.model_validate(
        {"state_dir": str(state_dir), "accounts": [
            {"name": "hybrid", "exchange": "binanceusdm", "api_key": creds.api_key,
             "secret": creds.secret, "rest_url": venue.base_url, "ws_url": venue.ws_url}]}
    )  # fmt: skip
    assert config.daemon == DaemonConfig(), "the goal is stated for the default settings"
    log = TimedLog()
    venue.exchange.requests = log
    events: list[Event] = []
    daemon = Daemon(config, events.append)
    window = Window(time.monotonic())

    def polled(_name: str, error: BaseException | None) -> None:
        if error is None:
            window.polls.append(time.monotonic())
        else:
            window.failures += 1

    for monitor in daemon.monitors:
        monitor.on_poll = polled
    await daemon.start()
    try:
        if seconds is None:
            deadline = time.monotonic() + 30
            while not window.polls and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            await asyncio.sleep(0.5)  # requests still in flight belong to the burst
        else:
            await asyncio.sleep(seconds)
    finally:
        window.end = time.monotonic()
        window.refreshes = sum(s.refreshes for s in getattr(daemon, "user_streams", []))
        await daemon.stop()
    window.requests = list(zip(log.times, log, strict=True))
    return window


def report_window(name: str, window: Window, poll_interval: float, detail: bool) -> None:
    burst_end = window.first_poll + 0.5
    burst, burst_mix, unknown = weigh(window.rest(burst_end))
    total, mix, unknown_later = weigh(window.rest())
    seconds = window.end - window.start
    print(
        f"{name}: {seconds:.1f} s, {len(window.polls)} successful polls "
        f"({window.refreshes} asked for by the user data stream), {window.failures} failed"
    )
    print(f"  startup burst (to first poll) : {burst:4d} weight  {dict(burst_mix)}")
    if detail:
        per_minute = total / (seconds / 60)
        verdict = "ok" if per_minute <= GOAL_PER_MINUTE else "MISSED"
        print(
            f"  whole window                  : {total:4d} weight = {per_minute:6.1f} /min per "
            f"account ({per_minute / BINANCE_LIMIT:.1%} of {BINANCE_LIMIT}; goal <= "
            f"{GOAL_PER_MINUTE}: {verdict})"
        )
        steady, _, _ = weigh([(t, r) for t, r in window.rest() if t > burst_end])
        print(
            f"  after startup (steady)        : {steady / ((window.end - burst_end) / 60):6.1f} "
            "/min; the hourly multiAssetsMargin recheck adds 0.5 /min amortized"
        )
        print("  request mix (count x weight):")
        for request, count in sorted(mix.items()):
            weight = WEIGHTS.get(request)
            print(f"    {count:4d} x {'unknown' if weight is None else f'{weight:3d}'}  {request}")
        ends = [*window.polls, window.end]
        gaps = sorted(b - a for a, b in pairwise(ends))
        print(
            f"  position age (time between successful polls): median "
            f"{gaps[len(gaps) // 2] if gaps else float('nan'):.2f} s, max "
            f"{gaps[-1] if gaps else float('nan'):.2f} s (poll_interval {poll_interval:g} s, "
            f"poll_jitter {DaemonConfig().poll_jitter:g} s)"
        )
    if unknown or unknown_later:
        print(f"  UNKNOWN weight, not counted: {sorted(unknown | unknown_later)}")


async def run(seconds: float) -> None:
    settings = DaemonConfig()
    async with SimulatedVenue("calm", speed=1) as venue:
        with tempfile.TemporaryDirectory() as tmp:
            cold = await watch(venue, Path(tmp), seconds)
            warm = await watch(venue, Path(tmp), None)  # markets cache now on disk
    print(
        f"defaults: poll_interval {settings.poll_interval:g} s, tiers_refresh "
        f"{settings.tiers_refresh:g} s, markets_refresh {settings.markets_refresh:g} s"
    )
    report_window("cold markets cache (baseline)", cold, settings.poll_interval, detail=True)
    report_window("warm markets cache", warm, settings.poll_interval, detail=False)
    cold_burst = weigh(cold.rest(cold.first_poll + 0.5))[0]
    warm_burst = weigh(warm.rest(warm.first_poll + 0.5))[0]
    print(
        f"startup burst cold / warm: {cold_burst} / {warm_burst} weight "
        f"= {cold_burst / max(warm_burst, 1):.2f}x"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="measured wall time")
    asyncio.run(run(parser.parse_args().seconds))


if __name__ == "__main__":
    main()
