"""Exchange adapters: ccxt replies in, AccountSnapshot out.

Venue-neutral pieces only: the base adapter (ccxt's unified fields, which works for any
exchange) and number parsing. Each exchange's own adapter lives in its venue package
(monitor/venues/<venue>/adapter.py); `monitor.venues.registry.adapter_for` picks one.
"""
