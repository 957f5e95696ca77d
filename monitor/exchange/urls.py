"""Point a ccxt client at another host (testnet, simulator, test server) keeping every path."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit, urlunsplit


def replace_origin(url: str, origin: str) -> str:
    """Swap scheme://host[:port] of `url` for `origin`, keeping path and query.

    ccxt templates some hosts (`https://api.{hostname}`); those are replaced whole,
    because the placeholder sits in the host part.
    """
    target = urlsplit(origin)
    parts = urlsplit(url)
    return urlunsplit((target.scheme, target.netloc, parts.path, parts.query, parts.fragment))


def rebase_urls(api: Any, origin: str) -> Any:
    """Return ccxt's `urls['api']` structure (dict, list or str) with every origin replaced."""
    if isinstance(api, str):
        return replace_origin(api, origin) if "://" in api else api
    if isinstance(api, dict):
        return {key: rebase_urls(value, origin) for key, value in api.items()}
    if isinstance(api, list):
        return [rebase_urls(value, origin) for value in api]
    return api
