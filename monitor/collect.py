"""Read every configured account once, concurrently, and evaluate it.

One account's failure never stops the others: it becomes an error on that account's
result, typed and scrubbed of secrets. Accounts on one host share its request budget
(monitor/exchange/budget.py), as in the daemon: 200 Binance accounts read at once would
be 3,400 weight in a second, a 429 and then a ban, so the reads past the budget wait for
the next minute (before their timeout starts).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from monitor.config import AccountConfig
from monitor.domain import AccountSnapshot
from monitor.engine.book import AccountBook
from monitor.engine.results import AccountRisk
from monitor.exchange.budget import Budgets, HostBudget
from monitor.exchange.clients import create_client, secret_values
from monitor.exchange.errors import ErrorKind, ExchangeError, classify
from monitor.exchange.markets import SharedMarkets
from monitor.venues.registry import adapter_for, venue_for

DEFAULT_ACCOUNT_TIMEOUT = 30.0
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class AccountResult:
    """Either a snapshot and its evaluation, or the error that prevented them."""

    account: AccountConfig
    snapshot: AccountSnapshot | None
    risk: AccountRisk | None
    error: ExchangeError | None


async def with_snapshot(
    account: AccountConfig,
    markets: SharedMarkets,
    use: Callable[[Any, AccountSnapshot], Awaitable[T]],
    *,
    timeout: float = DEFAULT_ACCOUNT_TIMEOUT,
    budget: HostBudget | None = None,
) -> T | ExchangeError:
    """Read the account's snapshot (within its host's request budget) and hand it, with
    the still-open client, to `use` (`stress` fetches candles on the same client); any
    failure, `use`'s included, comes back as a typed error scrubbed of the secrets."""
    adapter = adapter_for(account.exchange)
    client = create_client(account, mixins=adapter.client_mixins)
    adapter.configure(client)
    key = SharedMarkets.key(account.exchange, account.rest_url, account.sandbox)
    try:
        if budget is not None:
            await budget.acquire(
                account.name, adapter.poll_weight(tiers_due=True, markets_loaded=False)
            )
        async with asyncio.timeout(timeout):
            await markets.ensure(client, key)
            snapshot = await adapter.fetch_snapshot(client, account.name)
            return await use(client, snapshot)
    except TimeoutError:
        return ExchangeError(ErrorKind.NETWORK, f"no complete reply within {timeout:g} s")
    except Exception as exc:
        return classify(exc, secret_values(account))
    finally:
        if budget is not None:
            budget.observe(account.name, getattr(client, "last_response_headers", None))
        await client.close()


async def fetch_account(
    account: AccountConfig,
    markets: SharedMarkets,
    timeout: float = DEFAULT_ACCOUNT_TIMEOUT,
    budget: HostBudget | None = None,
) -> AccountResult:
    async def evaluate(_client: Any, snapshot: AccountSnapshot) -> AccountResult:
        return AccountResult(account, snapshot, AccountBook(snapshot).evaluate(), None)

    outcome = await with_snapshot(account, markets, evaluate, timeout=timeout, budget=budget)
    if isinstance(outcome, ExchangeError):
        return AccountResult(account, None, None, outcome)
    return outcome


async def fetch_all(
    accounts: Sequence[AccountConfig], cache_dir: Path | None = None
) -> list[AccountResult]:
    markets = SharedMarkets(cache_dir)
    budgets = Budgets()
    return list(
        await asyncio.gather(
            *(
                fetch_account(
                    a,
                    markets,
                    budget=budgets.for_account(
                        a.exchange, a.rest_url, venue_for(a.exchange).request_limit
                    ),
                )
                for a in accounts
            )
        )
    )
