"""Build ccxt clients for configured accounts: credentials, endpoints, timeouts."""

from __future__ import annotations

from typing import Any, Protocol

import ccxt.async_support as ccxt_async

from monitor.exchange.replies import checked_client_class
from monitor.exchange.urls import rebase_urls

DEFAULT_TIMEOUT_MS = 10_000


class Secretish(Protocol):
    def reveal(self) -> str: ...


class AccountAccess(Protocol):
    """What building a client needs from an account's configuration."""

    name: str
    exchange: str
    api_key: Secretish | None
    secret: Secretish | None
    password: Secretish | None
    private_key: Secretish | None
    wallet_address: str | None
    sandbox: bool
    rest_url: str | None


def secret_values(account: AccountAccess) -> list[str]:
    """Every secret of the account in clear, for scrubbing error messages and logs."""
    secrets = (account.api_key, account.secret, account.password, account.private_key)
    return [s.reveal() for s in secrets if s]


def create_client(
    account: AccountAccess,
    options: dict[str, Any] | None = None,
    timeout_ms: int = DEFAULT_TIMEOUT_MS,
    mixins: tuple[type, ...] = (),
) -> Any:
    """A ccxt asyncio client for the account, pointed at `rest_url` when one is set; its
    broken replies (HTML, truncated JSON, 5xx) raise typed errors (exchange/replies.py).
    `mixins`: what the venue's adapter puts in front of ccxt's class (`client_mixins`)."""
    factory = checked_client_class(getattr(ccxt_async, account.exchange), mixins)
    params: dict[str, Any] = {"enableRateLimit": True, "timeout": timeout_ms}
    if account.api_key is not None:
        params["apiKey"] = account.api_key.reveal()
    if account.secret is not None:
        params["secret"] = account.secret.reveal()
    if account.password is not None:
        params["password"] = account.password.reveal()
    if account.private_key is not None:
        params["privateKey"] = account.private_key.reveal()
    if account.wallet_address:
        params["walletAddress"] = account.wallet_address
    client = factory(params)
    if account.sandbox:
        client.set_sandbox_mode(True)
    if account.rest_url:
        client.urls["api"] = rebase_urls(client.urls["api"], account.rest_url)
    return client


def pace_in_window(client: Any, *, window_ms: float, units: float) -> None:
    """Pace `client` as its venue counts: at most `units` of ccxt's request cost in any
    rolling `window_ms`. ccxt's default leaky bucket makes the request after an
    expensive one wait out its cost, whatever endpoint it is for: a reserve transfer
    then holds the add-margin it funds while the position runs toward liquidation.
    The window keeps the pace ccxt allows over it and lets a defense's few requests go
    at once."""
    client.rateLimiterAlgorithm = "rollingWindow"
    client.rollingWindowSize = window_ms
    client.rateLimit = window_ms / units  # ccxt holds window / rateLimit units
    client.tokenBucket = None
    client.init_rest_rate_limiter()
