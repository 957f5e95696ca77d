"""What `marginwatch stress` reads from a venue: the live snapshot (the same read as
`status`, monitor/collect.py), candles through ccxt's `fetch_ohlcv`, and the current
funding rates. Read only: nothing is sent that could change the account.

Candles that cannot be had (a venue without them, a symbol listed yesterday) cost only
the shocks built from them, never the account: each such gap becomes a note.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from monitor.collect import with_snapshot
from monitor.config import AccountConfig
from monitor.domain import AccountSnapshot
from monitor.exchange.errors import ExchangeError
from monitor.exchange.markets import SharedMarkets
from monitor.stress import shocks as sh
from monitor.stress.stats import betas, daily_volatility

STRESS_TIMEOUT = 90.0
"""Snapshot, two candle histories per symbol, a replay per day: more than `status` reads."""
DAY_MS = 86_400_000
BETA_DAYS = 30
REPLAY_TIMEFRAME, REPLAY_CANDLES = "5m", 288


@dataclass(slots=True)
class StressInputs:
    snapshot: AccountSnapshot
    shocks: list[sh.Shock]
    rates: dict[str, float]
    notes: list[str] = field(default_factory=list)


def day_start_ms(day: str) -> int:
    """ "2025-10-10" -> its 00:00 UTC in ms; ValueError for anything else."""
    parsed = datetime.strptime(day, "%Y-%m-%d").replace(tzinfo=UTC)
    return int(parsed.timestamp() * 1000)


def reference_symbol(client: Any, snapshot: AccountSnapshot) -> str | None:
    """The venue's BTC perpetual, in the settlement asset of the book where it can."""
    settles = [p.settle for p in snapshot.positions] + ["USDT", "USDC", "USD"]
    candidates = [
        m for m in client.markets.values()
        if m.get("base") == "BTC" and m.get("swap") and m.get("active", True) is not False
    ]  # fmt: skip
    for settle in settles:
        for market in candidates:
            if market.get("settle") == settle:
                return str(market["symbol"])
    return None


async def _ohlcv(client: Any, symbol: str, timeframe: str, since: int, limit: int) -> list[Any]:
    return list(await client.fetch_ohlcv(symbol, timeframe, since=since, limit=limit))


async def _closes(
    client: Any, symbols: Sequence[str], timeframe: str, since: int, limit: int
) -> dict[str, list[float]]:
    rows = await asyncio.gather(*(_ohlcv(client, s, timeframe, since, limit) for s in symbols))
    return {s: [float(r[4]) for r in rs] for s, rs in zip(symbols, rows, strict=True)}


async def _beta_shocks(
    client: Any, symbols: list[str], ref: str, notes: list[str]
) -> list[sh.Shock]:
    now = int(client.milliseconds())
    closes = await _closes(
        client, [*symbols, ref], "1d", now - (BETA_DAYS + 1) * DAY_MS, BETA_DAYS + 1
    )
    found = betas(closes, ref)
    missing = sorted(s for s, b in found.items() if b is None)
    if found.get(ref) is None:
        notes.append("beta shocks left out: too few daily candles of BTC")
        return []
    if missing:
        notes.append(f"beta 1 assumed (too few daily candles): {', '.join(missing)}")
    scaled = {
        s: (b if b is not None else 1.0) for s, b in found.items() if s != ref or s in symbols
    }
    return [sh.beta_scaled(scaled, move) for move in sh.BETA_MOVES]


async def _sigma_shocks(
    client: Any, symbols: list[str], ref: str, notes: list[str]
) -> list[sh.Shock]:
    longest = max(sh.SIGMA_WINDOWS)
    hours = longest * 24
    now = int(client.milliseconds())
    closes = await _closes(client, [*symbols, ref], "1h", now - (hours + 1) * 3_600_000, hours + 1)
    out: list[sh.Shock] = []
    for days in sh.SIGMA_WINDOWS:
        window = {s: daily_volatility(c[-(days * 24 + 1) :]) for s, c in closes.items()}
        ref_vol = window.pop(ref) if ref not in symbols else window[ref]
        if ref_vol is None:
            notes.append(f"{days}d sigma shocks left out: too few hourly candles of BTC")
            continue
        short = min(len(c) for c in closes.values()) - 1
        if 0 < short < days * 24:
            notes.append(f"{days}d volatility from {short} hourly returns (the venue's limit)")
        missing = sorted(s for s, v in window.items() if v is None)
        if missing:
            notes.append(f"{days}d: BTC's volatility assumed for {', '.join(missing)}")
        vols = {s: (v if v is not None else ref_vol) for s, v in window.items()}
        for down in (True, False):
            out.append(sh.n_sigma(vols, ref_vol, count=sh.SIGMA_COUNT, days=days, down=down))
    return out


async def _replay(client: Any, day: str, symbols: list[str], ref: str) -> sh.Shock:
    since = day_start_ms(day)
    wanted = [*symbols, ref] if ref not in symbols else symbols
    rows = await asyncio.gather(
        *(_ohlcv(client, s, REPLAY_TIMEFRAME, since, REPLAY_CANDLES) for s in wanted)
    )
    candles = {
        s: [tuple(float(x) for x in r[:5]) for r in rs if since <= r[0] < since + DAY_MS]
        for s, rs in zip(wanted, rows, strict=True)
    }
    if not candles[ref]:
        raise ValueError(f"no {REPLAY_TIMEFRAME} candles of {ref} on {day}")
    return sh.replay(day, candles, ref)  # type: ignore[arg-type]


async def _try(notes: list[str], what: str, job: Any) -> Any:
    """A shock family the venue cannot feed is left out with a note, not a failure."""
    try:
        return await job
    except Exception as exc:
        reason = str(exc) if isinstance(exc, ValueError) else f"{type(exc).__name__}: {exc}"
        notes.append(f"{what} left out: {reason}"[:200])
        return None


async def stress_inputs(
    client: Any, snapshot: AccountSnapshot, replay_days: Sequence[str]
) -> StressInputs:
    symbols = sorted({p.symbol for p in snapshot.positions})
    notes: list[str] = []
    shocks = [sh.uniform(symbols, move) for move in sh.UNIFORM_MOVES]
    ref = reference_symbol(client, snapshot)
    if ref is None:
        notes.append("no BTC perpetual on this venue: beta, sigma and replay shocks left out")
    elif symbols:
        shocks += await _try(notes, "beta shocks", _beta_shocks(client, symbols, ref, notes)) or []
        shocks += (
            await _try(notes, "sigma shocks", _sigma_shocks(client, symbols, ref, notes)) or []
        )
        for day in replay_days:
            shock = await _try(notes, f"replay {day}", _replay(client, day, symbols, ref))
            if shock is not None:
                shocks.append(shock)
    rates: dict[str, float] = {}
    if symbols:
        found = await _try(notes, "funding", client.fetch_funding_rates(symbols))
        for symbol, item in (found or {}).items():
            if symbol in symbols and item.get("fundingRate") is not None:
                rates[symbol] = float(item["fundingRate"])
    return StressInputs(snapshot, shocks, rates, notes)


async def read_inputs(
    accounts: Sequence[AccountConfig], replay_days: Sequence[str], cache_dir: Path | None = None
) -> list[StressInputs | ExchangeError]:
    markets = SharedMarkets(cache_dir)

    async def one(account: AccountConfig) -> StressInputs | ExchangeError:
        async def use(client: Any, snapshot: AccountSnapshot) -> StressInputs:
            return await stress_inputs(client, snapshot, replay_days)

        return await with_snapshot(account, markets, use, timeout=STRESS_TIMEOUT)

    return list(await asyncio.gather(*(one(a) for a in accounts)))
