"""MEXC paced per endpoint, as MEXC publishes its limits (monitor/venues/generic/pacing.py).

MEXC allows the contract detail once per 5 s, on that endpoint alone; ccxt's one bucket
made every other endpoint wait out those 5 s after `load_markets`. Checked by order of
arrival at the MEXC test server, never by wall-clock time: a second detail read waits
for its window while a request to another endpoint goes, and is answered, before it.
"""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

from monitor.exchange.clients import create_client
from monitor.simulator.http import LocalServer
from monitor.venues.generic.adapter import MexcAdapter
from tests.servers import mexc

DETAIL = "/api/v1/contract/detail"


def account(url: str) -> SimpleNamespace:
    return SimpleNamespace(
        name="mexc", exchange="mexc", api_key=SimpleNamespace(reveal=lambda: mexc.FIXTURE_API_KEY),
        secret=SimpleNamespace(reveal=lambda: mexc.FIXTURE_SECRET), password=None,
        private_key=None, wallet_address=None, sandbox=False, rest_url=url,
    )  # fmt: skip


async def test_the_detail_window_holds_the_detail_alone() -> None:
    state = mexc.hybrid_account()
    adapter = MexcAdapter()
    async with LocalServer(mexc.create_app(state)) as server:
        client = create_client(account(server.base_url), mixins=adapter.client_mixins)
        adapter.configure(client)
        try:
            await client.load_markets()
            assert [r.path for r in state.requests].count(DETAIL) == 1
            again = asyncio.create_task(client.contractPublicGetDetail())
            await asyncio.sleep(0)  # the second detail queues first
            balance = await client.fetch_balance()
            paths = [r.path for r in state.requests]
            assert not again.done() and paths.count(DETAIL) == 1, paths
            assert paths[-1] == "/api/v1/private/account/assets" and balance["info"]["success"]
            again.cancel()
        finally:
            await client.close()
