"""The add-margin that a reserve transfer funds goes out right behind it on Bybit (issue
#15): unmodified ccxt, paced as the Bybit adapter configures it, against the simulated
Bybit v5 over loopback.

ccxt's default pacing is one leaky bucket for every endpoint, refilled at 1 unit per
rateLimit (20 ms), each request taking its endpoint's cost: an inter-transfer costs 50
(ccxt's figure for that endpoint's own limit), so the bucket stands at 1 - 50 = -49
after it and the add-margin behind it waits 49 x 20 ms = 980 ms: two ticks of the drill
at speed 2, during which crash-revert's AVAX gapped through its liquidation. Bybit counts
its limits per IP in a rolling 5 s window (600 requests) and otherwise per UID and
endpoint, so the adapter paces over that window: 5,000 ms / (5,000 / 600) ms = 600
units, which a defense's requests (the transfer's 50, the add's 5, a read's 5 + 3 x 5 +
1 = 21 before and after) fill to 97: every one goes at once.
"""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from monitor.config import Secret
from monitor.exchange.clients import create_client
from monitor.simulator.runner import SimulatedVenue
from monitor.simulator.scenario import parse_scenario
from monitor.venues.bybit.adapter import BybitAdapter
from tests.test_defense_sim_bybit import ENDANGERED, SOL

WINDOW_UNITS = 600
TRANSFER_COST, ADD_COST = 50, 5


async def test_the_add_a_transfer_funds_is_not_held_behind_it(tmp_path):
    book = parse_scenario(ENDANGERED.format(wallet=2693.84, sol=SOL))
    async with SimulatedVenue(book, speed=1, venue="bybit") as venue:
        (creds,) = venue.credentials.values()
        access = SimpleNamespace(
            name="uta", exchange="bybit", api_key=Secret(creds.api_key),
            secret=Secret(creds.secret),
            password=None, private_key=None, wallet_address=None, sandbox=False,
            rest_url=venue.base_url,
        )  # fmt: skip
        client = create_client(access)
        adapter = BybitAdapter()
        adapter.configure(client)
        try:
            await client.load_markets()
            await adapter.fetch_snapshot(client, "uta")  # a read, as before a step
            await client.transfer("USDT", 100, "funding", "unified")
            await client.privatePostV5PositionAddMargin(
                {"category": "linear", "symbol": "SOLUSDT", "margin": "100", "positionIdx": 0}
            )
            throttler = client.throttler
        finally:
            await client.close()
        account = venue.exchange.accounts[creds.api_key]
        sol = account.position("SOLUSDT")

    assert throttler.config["algorithm"] == "rollingWindow"
    assert throttler.config["maxWeight"] == pytest.approx(WINDOW_UNITS)
    costs = [stamp["cost"] for stamp in throttler.timestamps]
    assert costs[-2:] == [TRANSFER_COST, ADD_COST]
    # the window admits a request while what it holds plus the request's cost fits:
    # everything sent here fits at once, so nothing waited
    assert sum(costs) <= WINDOW_UNITS
    assert sol is not None and sol.isolated_wallet == pytest.approx(2_806.16 + 100)
    assert account.funding["USDT"] == pytest.approx(10_000 - 100)
