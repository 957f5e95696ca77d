"""Exchange adapters: ccxt replies in, AccountSnapshot out. One class per exchange."""

from __future__ import annotations

from monitor.exchange.adapters.base import ExchangeAdapter
from monitor.exchange.adapters.binance import BinanceCoinMAdapter, BinanceUsdMAdapter
from monitor.exchange.adapters.bybit import BybitAdapter
from monitor.exchange.adapters.generic_venues import BingxAdapter, MexcAdapter, WeexAdapter
from monitor.exchange.adapters.hyperliquid import HyperliquidAdapter
from monitor.exchange.adapters.okx import OkxAdapter

_ADAPTERS: tuple[type[ExchangeAdapter], ...] = (
    BinanceUsdMAdapter,
    BinanceCoinMAdapter,
    BybitAdapter,
    OkxAdapter,
    HyperliquidAdapter,
    BingxAdapter,
    MexcAdapter,
    WeexAdapter,
)


def adapter_for(exchange_id: str) -> ExchangeAdapter:
    """The adapter for a ccxt exchange id; the generic one for any other exchange."""
    for cls in _ADAPTERS:
        if exchange_id in cls.exchange_ids:
            return cls()
    return ExchangeAdapter()


__all__ = ["ExchangeAdapter", "adapter_for"]
