"""A local exchange speaking Binance USD-M's REST dialect, for unmodified ccxt `binanceusdm`.

Build a `SimExchange` (or take `binance_faq_hybrid_account()`), serve `build_app(exchange)`
with `monitor.simulator.http.LocalServer`, and point ccxt at it with
`rebase_urls(client.urls['api'], server.base_url)` and `options['fetchCurrencies'] = False`.
The same origin serves the websocket streams (`app[STREAMS_KEY]`: mark prices under
`/market`, the user data stream at `/ws/<listenKey>` and `/private/ws`).
"""

from monitor.simulator.binance_usdm.errors import BinanceApiError
from monitor.simulator.binance_usdm.fixtures import (
    FAQ_API_KEY,
    FAQ_SECRET,
    binance_faq_hybrid_account,
    continuous_brackets,
    usdm_markets,
)
from monitor.simulator.binance_usdm.rest import EXCHANGE_KEY, ROUTES, STREAMS_KEY, build_app
from monitor.simulator.binance_usdm.state import (
    Fault,
    SimAccount,
    SimBracket,
    SimExchange,
    SimMarket,
    SimOrder,
    SimPosition,
    SimTransfer,
    SymbolSettings,
    initial_margin,
    maintenance_margin,
    position_notional,
    unrealized_pnl,
)
from monitor.simulator.binance_usdm.streams import StreamHub

__all__ = [
    "EXCHANGE_KEY",
    "FAQ_API_KEY",
    "FAQ_SECRET",
    "ROUTES",
    "STREAMS_KEY",
    "BinanceApiError",
    "Fault",
    "SimAccount",
    "SimBracket",
    "SimExchange",
    "SimMarket",
    "SimOrder",
    "SimPosition",
    "SimTransfer",
    "StreamHub",
    "SymbolSettings",
    "binance_faq_hybrid_account",
    "build_app",
    "continuous_brackets",
    "initial_margin",
    "maintenance_margin",
    "position_notional",
    "unrealized_pnl",
    "usdm_markets",
]
