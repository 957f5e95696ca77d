"""Markets loaded once per exchange and shared by every account on it, cached on disk.

Markets are large (Binance: thousands of entries) and public: loading them per account
wastes request weight, and reloading them on every restart delays the first evaluation.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from pathlib import Path
from typing import Any

import orjson

log = logging.getLogger(__name__)

DEFAULT_MAX_AGE = 24 * 3600.0


class SharedMarkets:
    """One markets table per (exchange id, endpoint origin, sandbox flag).

    The origin is part of the key because a simulator or a testnet lists other markets
    than the live exchange.
    """

    def __init__(self, cache_dir: Path | None = None, max_age: float = DEFAULT_MAX_AGE) -> None:
        self._cache_dir = cache_dir
        self._max_age = max_age
        self._tables: dict[str, tuple[float, dict[str, Any]]] = {}
        self._sources: dict[str, Any] = {}
        """Per key, the client whose market structures the others share."""
        self._locks: dict[str, asyncio.Lock] = {}

    @staticmethod
    def key(exchange_id: str, origin: str | None, sandbox: bool) -> str:
        digest = hashlib.sha256(f"{origin or ''}|{sandbox}".encode()).hexdigest()[:12]
        return f"{exchange_id}-{digest}"

    def _path(self, key: str) -> Path | None:
        return self._cache_dir / f"markets-{key}.json" if self._cache_dir else None

    def _read_disk(self, key: str) -> tuple[float, dict[str, Any]] | None:
        path = self._path(key)
        if path is None or not path.exists():
            return None
        try:
            stored = orjson.loads(path.read_bytes())
            return float(stored["loaded_at"]), stored["markets"]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            log.warning("ignoring unreadable markets cache %s: %s", path, exc)
            return None

    def _write_disk(self, key: str, loaded_at: float, markets: dict[str, Any]) -> None:
        path = self._path(key)
        if path is None:
            return
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(".tmp")
            tmp.write_bytes(orjson.dumps({"loaded_at": loaded_at, "markets": markets}))
            tmp.replace(path)
        except OSError as exc:
            log.warning("could not write markets cache %s: %s", path, exc)

    def _fresh(self, entry: tuple[float, dict[str, Any]] | None) -> bool:
        return entry is not None and time.time() - entry[0] < self._max_age

    async def ensure(self, client: Any, key: str, reload: bool = False) -> None:
        """Give `client` its markets: from memory, else disk, else one load per key."""
        lock = self._locks.setdefault(key, asyncio.Lock())
        async with lock:
            entry = None if reload else self._tables.get(key)
            if not reload and not self._fresh(entry):
                entry = self._read_disk(key)
            if reload or not self._fresh(entry):
                markets = await client.load_markets(reload=True)
                entry = (time.time(), markets)
                self._write_disk(key, *entry)
            assert entry is not None
            self._tables[key] = entry
            source = self._sources.get(key)
            if source is not None and source.markets is entry[1]:
                if client is not source:
                    # share the very same dicts: ccxt's set_markets copies every market
                    # into each client, which cost megabytes per account
                    client.set_markets_from_exchange(source)
                return
            if client.markets is not entry[1]:
                client.set_markets(entry[1])
                entry = (entry[0], client.markets)
                self._tables[key] = entry
            self._sources[key] = client
