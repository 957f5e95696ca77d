"""MEXC's request limits as MEXC counts them: per endpoint, not one bucket for all.

MEXC's contract API v1 publishes a limit on each endpoint (mexcdevelop.github.io/apidocs/
contract_v1_en): "Rate limit: 20 times / 2 seconds" on the market and account endpoints,
and "1 times / 5 seconds" on the contract detail (`/api/v1/contract/detail`, which
`load_markets` reads). ccxt 4.5.90 writes these as costs in one leaky bucket shared by
every endpoint (2 and 100 units at 20 a second), so the request after the detail, to any
endpoint, waits out the detail's 5 s: every `marginwatch status` of a MEXC account, and a
daemon's next poll after its markets are read again. Here each endpoint (ccxt's path
template, so `fair_price/{symbol}` counts every symbol together) is paced in its own
rolling window at MEXC's figures, and the shared bucket is not used.
"""

from __future__ import annotations

from typing import Any

from ccxt.async_support.base.throttler import Throttler

ENDPOINT_WINDOW_MS = 2_000.0
ENDPOINT_REQUESTS = 20
"""MEXC contract API: 20 requests per 2 s on each endpoint."""
PATH_WINDOWS: dict[str, tuple[float, int]] = {"detail": (5_000.0, 1)}
"""ccxt path -> (window in ms, requests in it), where MEXC publishes its own: the
contract detail, once per 5 s."""


class EndpointPacing:
    """Put in front of ccxt's mexc class (`MexcAdapter.client_mixins`): `fetch2` waits
    for the endpoint's own window instead of ccxt's bucket."""

    async def throttle(self, cost: Any = None) -> None:
        """ccxt's one bucket for every endpoint: not used (see `fetch2`)."""

    async def fetch2(
        self,
        path: str,
        api: Any = "public",
        method: str = "GET",
        params: Any = None,
        config: Any = None,
    ) -> Any:
        if self.enableRateLimit:  # type: ignore[attr-defined]
            await self._endpoint_window(path, api)(1)
        return await super().fetch2(  # type: ignore[misc]
            path, api, method, {} if params is None else params, config or {}
        )

    def _endpoint_window(self, path: str, api: Any) -> Throttler:
        windows: dict[tuple[str, str], Throttler] = self.__dict__.setdefault(
            "_endpoint_windows", {}
        )
        key = (str(api), path)
        if key not in windows:
            window_ms, requests = PATH_WINDOWS.get(path, (ENDPOINT_WINDOW_MS, ENDPOINT_REQUESTS))
            windows[key] = Throttler(
                {"algorithm": "rollingWindow", "windowSize": window_ms,
                 "rateLimit": window_ms / requests, "cost": 1}
            )  # fmt: skip
        return windows[key]
