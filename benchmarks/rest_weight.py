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
  GET  /fapi/v2/account           5   account/rest-api/Account-Information-V2 (carries
                                      `multiAssetsMargin`: the mode check since issue 12)
  GET  /fapi/v1/exchangeInfo      1   market-data/rest-api/Exchange-Information
                                      (assumption checked only against a client library's
                                      notes: not read on Binance's own page)
  POST /fapi/v1/listenKey         1   assumption: COIN-M's Start-User-Data-Stream page says 1
  PUT  /fapi/v1/listenKey         1   assumption, as POST (the key is kept alive every 30 min)
ccxt's own throttle table gives v3 positionRisk and account a cost of 1, not 5: its rate
limiter under-counts these reads, so the budget must come from Binance's figures.
An endpoint missing from the table is printed as unknown and not counted.

Goal (issue 12): 200 Binance accounts on one IP within half the budget (<= 6 weight a
minute per account, 1,200 of 2,400), positions never staler than the user data stream,
never a 429 or 418. The fleet run starts the real `Daemon` with 200 accounts (each with
keys, so each has a user data stream) against one `SimulatedVenue` whose IP counter is
Binance's (2,400 per window, 429 then 418 past it). Time is compressed by `--compress`
(default 10): the venue's window and the budget's are 60 s / 10, and `reconcile_interval`
120 s / 10, so one window stands for one Binance minute and weight per window is weight
per minute. What runs on a clock longer than the run (the hourly account-mode
recheck, the 30-minute listen-key keepalive, the 4-hour tier refresh) is added amortized.
Staleness: reduce-only orders on a sample of accounts, placed by the owner's own ccxt
client; the time until the daemon's snapshot shows the new size (median, p99, max), with
REST's own cadence beside it. Baseline: the cold single account above (the same process).

    python benchmarks/rest_weight.py [--seconds 60] [--accounts 200] [--windows 6]
"""

from __future__ import annotations

import argparse
import asyncio
import math
import random
import statistics
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field, replace
from itertools import pairwise
from pathlib import Path

import ccxt.async_support as ccxt

from monitor.bus import Polled
from monitor.config import Config, DaemonConfig
from monitor.daemon.service import Daemon
from monitor.events import Event
from monitor.exchange.budget import HostBudget
from monitor.exchange.urls import rebase_urls
from monitor.simulator.binance_usdm.weights import IpWeights
from monitor.simulator.runner import SimulatedVenue
from monitor.simulator.scenario import parse_scenario
from monitor.venues.binance.adapter import REQUEST_WEIGHT

WEIGHTS: dict[str, int] = {
    "GET /fapi/v3/positionRisk": 5,
    "GET /fapi/v3/account": 5,
    "GET /fapi/v1/leverageBracket": 1,
    "GET /fapi/v1/multiAssetsMargin": 30,
    "GET /fapi/v2/account": 5,
    "GET /fapi/v1/exchangeInfo": 1,
    "POST /fapi/v1/listenKey": 1,
    "PUT /fapi/v1/listenKey": 1,
}
BINANCE_LIMIT = 2400
GOAL_PER_MINUTE = 120
FLEET_GOAL_PER_MINUTE = 6
AMORTIZED = {
    "account-mode hourly recheck (5 / 60 min)": 5 / 60,
    "listen-key keepalive (1 / 30 min)": 1 / 30,
    "leverageBracket with the tiers (1 / 240 min)": 1 / 240,
}
"""Per account per minute, for the periodic reads whose period is longer than the run."""


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


async def watch(
    venue: SimulatedVenue,
    state_dir: Path,
    seconds: float | None,
    settings: dict[str, float] | None = None,
) -> Window:
    """Run a daemon for `seconds`, or (None) until its first successful poll; `settings`
    override the defaults (only for the REST-alone baseline of the fleet)."""
    creds = venue.credentials["hybrid"]
    config = Config.model_validate(
        {"state_dir": str(state_dir), "daemon": settings or {}, "accounts": [
            {"name": "hybrid", "exchange": "binanceusdm", "api_key": creds.api_key,
             "secret": creds.secret, "rest_url": venue.base_url, "ws_url": venue.ws_url}]}
    )  # fmt: skip
    if settings is None:
        assert config.daemon == DaemonConfig(), "the goal is stated for the default settings"
    log = TimedLog()
    venue.exchange.requests = log
    events: list[Event] = []
    daemon = Daemon(config, events.append)
    window = Window(time.monotonic())

    def polled(read: Polled) -> None:
        if read.error is None:
            window.polls.append(time.monotonic())
        else:
            window.failures += 1

    daemon.bus.subscribe(Polled, polled)
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
            "/min; the hourly account-mode recheck adds 0.1 /min amortized"
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


def fleet_scenario(accounts: int) -> str:
    """`accounts` quiet accounts, each a cross BTC long, on one venue."""
    rows = "".join(
        f"  - name: acct{i:03d}\n    balances: {{USDT: 20000}}\n    positions:\n"
        f"      - {{symbol: BTCUSDT, side: long, size: 0.{i % 9 + 1}, leverage: 5}}\n"
        for i in range(accounts)
    )
    return (
        "description: a fleet of quiet accounts on one IP\nseed: 5\ntick_seconds: 1\n"
        "symbols:\n  BTCUSDT: {start: 60000}\nsegments:\n"
        "  - {duration: 3600s, volatility: 0.0001}\naccounts:\n" + rows
    )


@dataclass
class Fleet:
    """What the fleet run measured."""

    accounts: int
    window_s: float
    startup_windows: float
    per_window: list[int]  # REST weight the venue counted, per whole steady window
    steady_weight: int  # over the whole steady span
    steady_windows: float  # its length in windows
    refusals: dict[int, int]
    waits: int
    skipped: int
    latencies: list[float]  # order placed -> the daemon's snapshot shows it (s)
    by_stream: int  # of those, seen before any REST read of that account
    stream_updates: int


def _compressed(settings: DaemonConfig, compress: float) -> dict[str, float]:
    """The default cadences, `compress` times faster."""
    return {
        "poll_interval": max(1.0, settings.poll_interval / compress),
        "poll_jitter": settings.poll_jitter / compress,
        "reconcile_interval": settings.reconcile_interval / compress,
    }


async def fleet(accounts: int, compress: float, windows: int, sample: int) -> Fleet:
    """The real daemon over `accounts` accounts on one simulated IP, time compressed."""
    minute = 60.0 / compress
    scenario = parse_scenario(fleet_scenario(accounts))
    async with SimulatedVenue(scenario, speed=1) as venue:
        venue.exchange.weights = IpWeights(limit=BINANCE_LIMIT, window_s=minute)
        with tempfile.TemporaryDirectory() as tmp:
            config = Config.model_validate(
                {"state_dir": tmp, "daemon": _compressed(DaemonConfig(), compress),
                 "accounts": [
                    {"name": name, "exchange": "binanceusdm", "api_key": c.api_key,
                     "secret": c.secret, "rest_url": venue.base_url, "ws_url": venue.ws_url}
                    for name, c in venue.credentials.items()]}
            )  # fmt: skip
            daemon = Daemon(config, lambda _event: None)
            shared = HostBudget(
                "binanceusdm sim", replace(REQUEST_WEIGHT, window_s=minute),
                config.daemon.request_budget,
            )  # fmt: skip
            for cadence in daemon.cadences.values():  # the compressed window, one budget
                cadence.budget = shared
            started = time.monotonic()
            await daemon.start()
            try:
                while not all(s.current for s in daemon.user_streams):
                    await asyncio.sleep(0.1)
                startup = (time.monotonic() - started) / minute
                await asyncio.sleep(2 * minute)  # past the streams' first syncing reads
                steady_from = time.time()
                await asyncio.sleep(windows * minute)
                steady_to = time.time()
                latencies, reads, applied = await _orders(venue, daemon, sample)
            finally:
                await daemon.stop()
    history = venue.exchange.weights.history
    first, last = math.ceil(steady_from / minute), math.floor(steady_to / minute)
    per_window = Counter({w: 0 for w in range(first, last)})
    for at, weight in history:
        window = math.floor(at / minute)
        if first <= window < last:
            per_window[window] += weight
    steady = sum(weight for at, weight in history if steady_from <= at < steady_to)
    return Fleet(
        accounts, minute, startup, [per_window[w] for w in sorted(per_window)], steady,
        (steady_to - steady_from) / minute, dict(venue.exchange.weights.refusals),
        shared.waits, sum(c.skipped for c in daemon.cadences.values()), latencies, reads,
        applied,
    )  # fmt: skip


async def _orders(
    venue: SimulatedVenue, daemon: Daemon, sample: int
) -> tuple[list[float], int, int]:
    """Reduce-only sells on `sample` random accounts, one after another: the delay until
    the daemon's snapshot shows each, how many showed before any REST read of their
    account, and the updates the streams applied meanwhile."""
    monitors = {m.name: m for m in daemon.monitors}
    applied_before = sum(s.updates_applied for s in daemon.user_streams)
    latencies, by_stream = [], 0
    for name in random.Random(11).sample(sorted(monitors), sample):
        monitor, credentials = monitors[name], venue.credentials[name]
        client = ccxt.binanceusdm({"apiKey": credentials.api_key, "secret": credentials.secret})
        client.urls["api"] = rebase_urls(client.urls["api"], venue.base_url)
        client.options["fetchCurrencies"] = False
        try:
            before, read_before = _contracts(monitor), daemon.cadences[name].last_read
            started = time.monotonic()
            await client.create_order(
                "BTC/USDT:USDT", "market", "sell", 0.001, None, {"reduceOnly": True}
            )
            while _contracts(monitor) == before:
                await asyncio.sleep(0.001)
            latencies.append(time.monotonic() - started)
            by_stream += daemon.cadences[name].last_read == read_before
        finally:
            await client.close()
    applied = sum(s.updates_applied for s in daemon.user_streams) - applied_before
    return latencies, by_stream, applied


def _contracts(monitor: object) -> float | None:
    snapshot = monitor.snapshot  # type: ignore[attr-defined]
    return next((p.contracts for p in snapshot.positions), None) if snapshot else None


def report_fleet(result: Fleet, baseline_per_minute: float, compress: float) -> None:
    settings = DaemonConfig()
    per_account = [w / result.accounts for w in result.per_window] or [float("nan")]
    amortized = sum(AMORTIZED.values())
    mean = result.steady_weight / result.steady_windows / result.accounts
    median = statistics.median(per_account)
    p99 = sorted(per_account)[min(len(per_account) - 1, round(0.99 * (len(per_account) - 1)))]
    total = mean + amortized
    fleet_minute = total * result.accounts
    verdict = "ok" if total <= FLEET_GOAL_PER_MINUTE else "MISSED"
    print(
        f"fleet: {result.accounts} binanceusdm accounts with keys on one IP, time compressed "
        f"{compress:g}x (a window of {result.window_s:g} s = one Binance minute), "
        f"reconcile_interval {settings.reconcile_interval:g} s, request_budget "
        f"{settings.request_budget:g}"
    )
    print(
        f"  startup (every stream live and synced): {result.startup_windows:.1f} Binance "
        f"minutes, the budget slowing {result.waits} reads; 429/418 from the venue: "
        f"{result.refusals or 'none'}"
    )
    print(
        f"  steady REST weight per account per minute: {mean:.2f} over "
        f"{result.steady_windows:.1f} minutes; per whole minute median {median:.2f}, "
        f"p99 {p99:.2f} (IP totals {result.per_window})"
    )
    print("  + amortized: " + ", ".join(f"{name} {value:.3f}" for name, value in AMORTIZED.items()))
    print(
        f"  = {total:.2f} /min per account, {fleet_minute:,.0f} /min for the IP "
        f"({fleet_minute / BINANCE_LIMIT:.1%} of {BINANCE_LIMIT}; goal <= "
        f"{FLEET_GOAL_PER_MINUTE} per account, half the budget: {verdict}); "
        f"{result.skipped} scheduled reads skipped while streams kept accounts current"
    )
    print(
        f"  vs baseline (the single account read every poll_interval "
        f"{settings.poll_interval:g} s, REST alone): {baseline_per_minute:.1f} /min per "
        f"account = {baseline_per_minute / total:.1f}x more; at that rate "
        f"{result.accounts} accounts would need {baseline_per_minute * result.accounts:,.0f}"
        f" /min, past the limit from {BINANCE_LIMIT / baseline_per_minute:.0f} accounts"
    )
    lat = sorted(result.latencies)
    if lat:
        lat_p99 = lat[min(len(lat) - 1, round(0.99 * (len(lat) - 1)))]
        print(
            f"  position age after a change ({len(lat)} reduce-only orders on random "
            f"accounts): median {statistics.median(lat) * 1e3:.1f} ms, p99 "
            f"{lat_p99 * 1e3:.1f} ms, max {lat[-1] * 1e3:.1f} ms; {result.by_stream} of "
            f"{len(lat)} shown by the stream before any REST read of the account "
            f"({result.stream_updates} updates applied); REST alone: up to "
            f"{settings.reconcile_interval:g} s"
        )


async def run(seconds: float, accounts: int, compress: float, windows: int) -> None:
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
    if accounts:
        async with SimulatedVenue("calm", speed=1) as venue:
            with tempfile.TemporaryDirectory() as tmp:
                every_poll = {"reconcile_interval": 1.0}  # each scheduled read runs
                rest_alone = await watch(venue, Path(tmp), seconds, every_poll)
        burst_end = rest_alone.first_poll + 0.5
        steady = weigh([(t, r) for t, r in rest_alone.rest() if t > burst_end])[0]
        baseline = steady / ((rest_alone.end - burst_end) / 60)
        result = await fleet(accounts, compress, windows, sample=min(20, accounts))
        report_fleet(result, baseline, compress)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="measured wall time")
    parser.add_argument("--accounts", type=int, default=200, help="fleet size (0: skip)")
    parser.add_argument("--compress", type=float, default=10.0, help="fleet time compression")
    parser.add_argument("--windows", type=int, default=6, help="steady Binance minutes")
    args = parser.parse_args()
    asyncio.run(run(args.seconds, args.accounts, args.compress, args.windows))


if __name__ == "__main__":
    main()
