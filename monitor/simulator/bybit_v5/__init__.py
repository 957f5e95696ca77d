"""A local exchange speaking Bybit v5's dialect (unified trading account, linear USDT
perpetuals), for unmodified ccxt `bybit` and the monitor's Bybit mark feed.

It serves the same simulated ledger and scenario as the Binance USD-M dialect (prices,
clock, fills, accounts); what is Bybit's own lives here: the wire (`wire.py`,
`render.py`), the risk-limit tables (`markets.py`), Bybit's published margin and
liquidation rules (`rules.py`, independent of the monitor's engine), its liquidations
(`risk.py`), its write endpoints (`trading.py`) and the public tickers stream
(`streams.py`), and what it changes on a scenario's book (`conventions.py`). Serve
`build_app(exchange)` with `monitor.simulator.http.LocalServer`.
"""

from monitor.simulator.bybit_v5.rest import EXCHANGE_KEY, STREAMS_KEY, build_app
from monitor.simulator.bybit_v5.risk import BybitRiskEngine
from monitor.simulator.bybit_v5.streams import TickerStreams

__all__ = ["EXCHANGE_KEY", "STREAMS_KEY", "BybitRiskEngine", "TickerStreams", "build_app"]
