"""Exchange adapters: ccxt replies in, AccountSnapshot out. One class per exchange."""

from __future__ import annotations

from monitor.exchange.adapters.base import ExchangeAdapter
from monitor.venues.binance.adapter import BinanceCoinMAdapter, BinanceUsdMAdapter
from monitor.venues.bybit.adapter import BybitAdapter
from monitor.venues.generic.adapter import BingxAdapter, MexcAdapter, WeexAdapter
from monitor.venues.hyperliquid.adapter import HyperliquidAdapter
from monitor.venues.okx.adapter import OkxAdapter

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
