"""Read every configured account once, concurrently, and evaluate it.

One account's failure never stops the others: it becomes an error on that account's
result, typed and scrubbed of secrets. Accounts on one host share its request budget
(monitor/exchange/budget.py), as in the daemon: 200 Binance accounts read at once would
be 3,400 weight in a second, a 429 and then a ban, so the reads past the budget wait for
the next minute (before their timeout starts).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from monitor.config import AccountConfig
from monitor.domain import AccountSnapshot
from monitor.engine.book import AccountBook
from monitor.engine.results import AccountRisk
from monitor.exchange.adapters import adapter_for
from monitor.exchange.budget import Budgets, HostBudget
from monitor.exchange.clients import create_client, secret_values
from monitor.exchange.errors import ErrorKind, ExchangeError, classify
from monitor.exchange.markets import SharedMarkets

DEFAULT_ACCOUNT_TIMEOUT = 30.0


@dataclass(frozen=True, slots=True)
class AccountResult:
    """Either a snapshot and its evaluation, or the error that prevented them."""

    account: AccountConfig
    snapshot: AccountSnapshot | None
    risk: AccountRisk | None
    error: ExchangeError | None


async def fetch_account(
    account: AccountConfig,
    markets: SharedMarkets,
    timeout: float = DEFAULT_ACCOUNT_TIMEOUT,
    budget: HostBudget | None = None,
) -> AccountResult:
    adapter = adapter_for(account.exchange)
    client = create_client(account)
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
        return AccountResult(account, snapshot, AccountBook(snapshot).evaluate(), None)
    except TimeoutError:
        error = ExchangeError(ErrorKind.NETWORK, f"no complete reply within {timeout:g} s")
        return AccountResult(account, None, None, error)
    except Exception as exc:
        return AccountResult(account, None, None, classify(exc, secret_values(account)))
    finally:
        if budget is not None:
            budget.observe(account.name, getattr(client, "last_response_headers", None))
        await client.close()


async def fetch_all(
    accounts: Sequence[AccountConfig], cache_dir: Path | None = None
) -> list[AccountResult]:
    markets = SharedMarkets(cache_dir)
    budgets = Budgets()
    return list(
        await asyncio.gather(
            *(
                fetch_account(a, markets, budget=budgets.for_account(a.exchange, a.rest_url))
                for a in accounts
            )
        )
    )
