"""`marginwatch snapshot`: a live account's book written as a simulator scenario.

Why: a drill of the built-in book says how a policy treats somebody else's positions.
The trader's own book (sizes, entries, leverage, isolated margins, the cross wallet and
the reserve outside futures) is read once through the same adapter `status` uses and
written in the scenario format (docs/scenarios.md), its marks as start prices, so that
`marginwatch drill --scenario FILE --paths flash-crash` plays the real positions on a
built-in crash rescaled to today's prices.

The simulator is a Binance USD-M venue trading a few USDT perpetuals (scenario.MARKETS):
what it cannot hold (another symbol, an inverse contract) is left out and said, in the
file's header and on stderr, because a drill without a position is a different book.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import yaml

from monitor.collect import fetch_account
from monitor.config import AccountConfig
from monitor.domain import AccountSnapshot, MarginMode, Position
from monitor.exchange.clients import create_client, secret_values
from monitor.exchange.errors import classify
from monitor.exchange.markets import SharedMarkets
from monitor.simulator.prices import round_price
from monitor.simulator.scenario import MARKETS, parse_scenario
from monitor.venues.registry import adapter_for

HOLD_SECONDS = 60
"""The snapshot's own path: prices stand still this long. Drill it with --paths."""
DEFAULT_LEVERAGE = 10
SIMULATED_SETTLE = "USDT"
"""The margin asset of every simulated market (scenario.MARKETS)."""
BINANCE_FAMILY = ("binance", "binanceusdm", "binancecoinm")


@dataclass(slots=True)
class Capture:
    """A scenario document for one account, or the error that prevented it."""

    account: str
    exchange: str
    taken_at: float
    document: dict[str, Any] | None = None
    warnings: list[str] = field(default_factory=list)
    error: str | None = None
    """Why there is no document: the account could not be read, or nothing in it can
    be simulated."""


async def capture(account: AccountConfig, cache_dir: Path | None = None) -> Capture:
    """Read `account` once (positions and pools, then leverage and the reserve where
    the position read lacks them) and describe it as a scenario."""
    markets = SharedMarkets(cache_dir)
    taken_at = time.time()
    result = await fetch_account(account, markets)
    captured = Capture(account.name, account.exchange, taken_at)
    if result.snapshot is None:
        captured.error = str(result.error)
        return captured
    snapshot = result.snapshot
    captured.taken_at = snapshot.fetched_at or taken_at
    assets = {pool.asset for pool in snapshot.pools} | {p.settle for p in snapshot.positions}
    extra = await read_extras(account, markets, snapshot, assets, captured.warnings)
    document = book_document(snapshot, extra, captured.warnings)
    if document["symbols"]:
        captured.document = document
    else:
        captured.error = "no position the simulator can hold: nothing to drill" + "".join(
            f"\n  {warning}" for warning in captured.warnings
        )
    return captured


@dataclass(slots=True)
class Extras:
    """What the position read may not carry: leverage per symbol, the reserve."""

    leverage: dict[str, float] = field(default_factory=dict)
    reserve: dict[str, float] = field(default_factory=dict)
    reserve_wallet: str = "spot"


async def read_extras(
    account: AccountConfig,
    markets: SharedMarkets,
    snapshot: AccountSnapshot,
    assets: set[str],
    warnings: list[str],
) -> Extras:
    """Leverage (ccxt's fetch_leverages, for positions read without it; Binance's
    position read has carried none since positionRisk v3) and the reserve; a read that
    fails is a warning, never the end of the snapshot."""
    extras = Extras()
    adapter = adapter_for(account.exchange)
    client = create_client(account, mixins=adapter.client_mixins)
    adapter.configure(client)
    try:
        key = SharedMarkets.key(account.exchange, account.rest_url, account.sandbox)
        await markets.ensure(client, key)
        missing = sorted({p.symbol for p in snapshot.positions if p.leverage is None})
        if missing and client.has.get("fetchLeverages"):
            try:
                leverages = await client.fetch_leverages(missing)
            except Exception as exc:
                warnings.append(f"leverage could not be read ({_error(exc, account)})")
            else:
                for symbol, entry in leverages.items():
                    value = entry.get("longLeverage") or entry.get("shortLeverage")
                    if value:
                        extras.leverage[symbol] = float(value)
        if account.exchange in BINANCE_FAMILY:
            await _read_reserve(client, account, assets, extras, warnings)
        else:
            warnings.append(
                f"reserve not read: spot/funding wallets are read for Binance only, not "
                f"{account.exchange}; add `reserve: {{USDT: N}}` by hand if you have one"
            )
    finally:
        await client.close()
    return extras


async def _read_reserve(
    client: Any, account: AccountConfig, assets: set[str], extras: Extras, warnings: list[str]
) -> None:
    """Free margin assets in Binance's spot (`GET /api/v3/account`) and funding (`POST
    /sapi/v1/asset/get-funding-asset`) wallets. A scenario account has one reserve wallet:
    the one holding more is kept, the other said."""
    reads = {
        "spot": lambda: client.private_get_account(),
        "funding": lambda: client.sapi_post_asset_get_funding_asset(),
    }
    held: dict[str, dict[str, float]] = {}
    for wallet, read in reads.items():
        try:
            reply = await read()
        except Exception as exc:
            warnings.append(
                f"reserve: the {wallet} wallet could not be read ({_error(exc, account)})"
            )
            continue
        rows = reply.get("balances", []) if isinstance(reply, dict) else reply
        free = {row["asset"]: float(row["free"]) for row in rows if row.get("asset") in assets}
        if any(free.values()):
            held[wallet] = {asset: amount for asset, amount in free.items() if amount > 0}
    if not held:
        return
    wallet = max(held, key=lambda w: sum(held[w].values()))
    for other in held.keys() - {wallet}:
        warnings.append(
            f"reserve: the {other} wallet's {held[other]} is left out (a scenario account "
            f"has one reserve wallet; {wallet} holds more)"
        )
    extras.reserve, extras.reserve_wallet = held[wallet], wallet


def _error(exc: Exception, account: AccountConfig) -> str:
    return str(classify(exc, secret_values(account)))


def simulator_symbol(position: Position) -> str | None:
    """The simulator's market id for a ccxt unified linear USDT symbol, else None."""
    base, _, rest = position.symbol.partition("/")
    quote, _, settle = rest.partition(":")
    symbol = f"{base}{quote}"
    if position.inverse or settle != quote or symbol not in MARKETS:
        return None
    return symbol


def book_document(snapshot: AccountSnapshot, extras: Extras, warnings: list[str]) -> dict[str, Any]:
    """The scenario mapping (plain data, YAML-ready) for one account snapshot."""
    symbols: dict[str, dict[str, float]] = {}
    positions: list[dict[str, Any]] = []
    for position in snapshot.positions:
        symbol = simulator_symbol(position)
        if symbol is None:
            warnings.append(
                f"left out {position.symbol} {position.side.value} {position.size:g}: the "
                f"simulator trades {', '.join(MARKETS)} (linear USDT perpetuals) only"
            )
            continue
        symbols[symbol] = {"start": round_price(symbol, position.mark_price)}
        leverage = position.leverage or extras.leverage.get(position.symbol)
        positions.append(_position(symbol, position, leverage, warnings))
    if snapshot.unified_pool is not None:
        warnings.append(
            f"the account's one {snapshot.unified_pool} pool (multi-asset/unified) is played "
            f"as a {SIMULATED_SETTLE} wallet of the same amount (the simulator's accounts are "
            "single-asset)"
        )
    balances: dict[str, float] = {}
    for pool in snapshot.pools:
        asset = SIMULATED_SETTLE if pool.asset == snapshot.unified_pool else pool.asset
        if pool.wallet_balance < 0:
            warnings.append(f"{pool.asset} wallet {pool.wallet_balance:g} below 0: played as 0")
        balances[asset] = balances.get(asset, 0.0) + max(0.0, pool.wallet_balance)
    hedge = any(p.position_side in ("LONG", "SHORT") for p in snapshot.positions)
    account: dict[str, Any] = {
        "name": snapshot.name,
        "position_mode": "hedge" if hedge else "one-way",
        "balances": balances or {"USDT": 0.0},
    }
    if extras.reserve:
        account["reserve"] = extras.reserve
        account["reserve_wallet"] = extras.reserve_wallet
    account["positions"] = positions
    return {
        "description": f"{snapshot.name} ({snapshot.exchange}) as of "
        f"{_utc_at(snapshot.fetched_at or time.time())}",
        "seed": 1,
        "tick_seconds": 1,
        "symbols": symbols,
        "segments": [{"duration": f"{HOLD_SECONDS}s"}],
        "accounts": [account],
    }


def _position(
    symbol: str, position: Position, reported: float | None, warnings: list[str]
) -> dict[str, Any]:
    allowed = MARKETS[symbol].brackets[0].max_leverage
    if reported is None:
        leverage = DEFAULT_LEVERAGE
        warnings.append(f"{symbol}: leverage not reported, {leverage}x assumed")
    else:
        leverage = max(1, round(reported))
    if leverage > allowed:
        warnings.append(f"{symbol}: leverage {leverage}x above the simulator's {allowed}x")
        leverage = allowed
    spec: dict[str, Any] = {
        "symbol": symbol,
        "side": position.side.value,
        "size": position.size,
        "entry": position.entry_price,
        "leverage": leverage,
    }
    if position.margin_mode is MarginMode.ISOLATED:
        spec["margin_mode"] = "isolated"
        if position.isolated_margin is not None:
            spec["isolated_margin"] = position.isolated_margin
        else:
            warnings.append(f"{symbol}: isolated margin not reported, entry notional/leverage")
    return spec


def render(captured: Capture) -> str:
    """The scenario file: a header saying what it is and what was left out, then YAML.

    The text is parsed back with the scenario loader before it is returned: a snapshot
    that `drill` would refuse is a bug here, not the user's problem.
    """
    assert captured.document is not None
    header = [
        f"Snapshot of account {captured.account} ({captured.exchange}), "
        f"{_utc_at(captured.taken_at)}.",
        "Marks are the start prices and stand still; rehearse it on a built-in path:",
        "  marginwatch drill --config FILE --scenario THIS_FILE --paths flash-crash",
        "Format: docs/scenarios.md.",
        *(f"NOTE: {warning}" for warning in captured.warnings),
    ]
    body = yaml.safe_dump(captured.document, sort_keys=False, default_flow_style=None, width=100)
    text = "".join(f"# {line}\n" for line in header) + body
    parse_scenario(text, f"snapshot of {captured.account}")
    return text


def _utc_at(epoch: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(epoch))


def write_capture(captured: Capture, out: Path | TextIO) -> None:
    text = render(captured)
    if isinstance(out, Path):
        out.write_text(text, encoding="utf-8")
    else:
        out.write(text)
