"""Which venues can be acted on, and with what: exchange id -> executor + key-permission
reader. The composer (daemon, drill) looks an account's exchange up here and hands the
result to its `ActionController`; a venue that is absent runs dry runs only, and its
`confirm`/`auto` is refused with a message rather than approximated (an order sent with
the wrong position mode or margin semantics is worse than none).

A venue whose key permissions can be read but that has no executor yet is still absent:
reading a key does not make a venue safe to act on.
"""

from __future__ import annotations

from monitor.actions.executor import VenueExecution
from monitor.venues.binance import permissions as binance_permissions
from monitor.venues.binance.executor import BinanceCoinmExecutor, BinanceUsdmExecutor
from monitor.venues.bybit import permissions as bybit_permissions
from monitor.venues.bybit.executor import BybitExecutor

EXECUTION: dict[str, VenueExecution] = {
    "binanceusdm": VenueExecution(BinanceUsdmExecutor, binance_permissions.read_permissions),
    "binancecoinm": VenueExecution(BinanceCoinmExecutor, binance_permissions.read_permissions),
    "bybit": VenueExecution(BybitExecutor, bybit_permissions.read_permissions),
}


def execution_for(exchange_id: str) -> VenueExecution | None:
    return EXECUTION.get(exchange_id)
