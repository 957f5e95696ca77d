"""Markets loaded once per exchange and shared by every account on it, cached on disk.

Markets are large (Binance: thousands of entries) and public: loading them per account
wastes request weight, and reloading them on every restart delays the first evaluation.

A ccxt client's markets are more than `markets` and `currencies`: `load_markets` also
leaves helper state in `client.options` that later calls read (Hyperliquid's
`cachedCurrenciesById` and, when HIP-3 dexes load, `hip3TokensByName`; Binance's margin
pair lists; Kraken's `marketsByAltname`). Whatever options a load adds or changes are
recorded with the table and handed to every client that shares it, from memory or from
disk, for every exchange alike. ccxt's own `set_markets_from_exchange` is not used: it
copies only the options an exchange lists in `marketHelperProps`, and raises KeyError for
a listed one the load never set (Hyperliquid without HIP-3 dexes: `hip3TokensByName`).
"""

from __future__ import annotations

import asyncio
import copy
import hashlib
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

log = logging.getLogger(__name__)

DEFAULT_MAX_AGE = 24 * 3600.0
CACHE_FORMAT = 2
"""Bumped when the file's content changes meaning; an older file is reloaded, not read
(format 1 had no options: restoring it would leave the helpers out again)."""

SHARED_ATTRIBUTES = (
    "markets",
    "markets_by_id",
    "symbols",
    "ids",
    "currencies",
    "currencies_by_id",
    "baseCurrencies",
    "quoteCurrencies",
    "codes",
)
"""What `set_markets` builds on a client: shared by reference, never copied per account."""


@dataclass(slots=True)
class MarketTable:
    """One load: its time, what it produced, and the client that holds the structures."""

    loaded_at: float
    markets: dict[str, Any]
    currencies: dict[str, Any]
    options: dict[str, Any]
    """The entries of `client.options` the load added or changed."""
    source: Any | None = None
    """The client whose structures the others share; None when read from disk."""


def options_set_by_load(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    """The options a load added or changed (compared by value: loads mutate nested
    dicts in place)."""
    return {k: v for k, v in after.items() if k not in before or before[k] != v}


def share(client: Any, source: Any, options: dict[str, Any]) -> None:
    """Give `client` the very same market structures as `source`, and the load's options."""
    for name in SHARED_ATTRIBUTES:
        setattr(client, name, getattr(source, name))
    client.options.update(options)


class SharedMarkets:
    """One markets table per (exchange id, endpoint origin, sandbox flag).

    The origin is part of the key because a simulator or a testnet lists other markets
    than the live exchange.
    """

    def __init__(self, cache_dir: Path | None = None, max_age: float = DEFAULT_MAX_AGE) -> None:
        self._cache_dir = cache_dir
        self._max_age = max_age
        self._tables: dict[str, MarketTable] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    @staticmethod
    def key(exchange_id: str, origin: str | None, sandbox: bool) -> str:
        digest = hashlib.sha256(f"{origin or ''}|{sandbox}".encode()).hexdigest()[:12]
        return f"{exchange_id}-{digest}"

    def _path(self, key: str) -> Path | None:
        return self._cache_dir / f"markets-{key}.json" if self._cache_dir else None

    def _read_disk(self, key: str) -> MarketTable | None:
        path = self._path(key)
        if path is None or not path.exists():
            return None
        try:
            stored = orjson.loads(path.read_bytes())
            if stored.get("format") != CACHE_FORMAT:
                log.info("markets cache %s is of an older format: reloading", path)
                return None
            return MarketTable(
                float(stored["loaded_at"]),
                stored["markets"],
                stored["currencies"],
                stored["options"],
            )
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            log.warning("ignoring unreadable markets cache %s: %s", path, exc)
            return None

    def _write_disk(self, key: str, table: MarketTable) -> None:
        path = self._path(key)
        if path is None:
            return
        document = {
            "format": CACHE_FORMAT,
            "loaded_at": table.loaded_at,
            "markets": table.markets,
            "currencies": table.currencies,
            "options": table.options,
        }
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(".tmp")
            tmp.write_bytes(orjson.dumps(document))
            tmp.replace(path)
        except (OSError, TypeError) as exc:  # TypeError: an option orjson cannot write
            log.warning("could not write markets cache %s: %s", path, exc)

    def _fresh(self, table: MarketTable | None) -> bool:
        return table is not None and time.time() - table.loaded_at < self._max_age

    async def ensure(self, client: Any, key: str, reload: bool = False) -> None:
        """Give `client` its markets: from memory, else disk, else one load per key."""
        lock = self._locks.setdefault(key, asyncio.Lock())
        async with lock:
            table = None if reload else self._tables.get(key)
            if not reload and not self._fresh(table):
                table = self._read_disk(key)
            if reload or table is None or not self._fresh(table):
                table = await self._load(client)
                self._write_disk(key, table)
            elif table.source is None:  # from disk: this client rebuilds the structures
                client.set_markets(table.markets, table.currencies)
                client.options.update(copy.deepcopy(table.options))
                table.source = client
            elif client is not table.source and client.markets is not table.source.markets:
                # the very same dicts: ccxt's set_markets copies every market into each
                # client, which cost megabytes per account
                share(client, table.source, table.options)
            self._tables[key] = table

    @staticmethod
    async def _load(client: Any) -> MarketTable:
        before = copy.deepcopy(client.options)
        await client.load_markets(reload=True)
        options = options_set_by_load(before, client.options)
        return MarketTable(time.time(), client.markets, client.currencies, options, client)
