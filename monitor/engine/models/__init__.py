"""Exchange margin models: one small class per exchange, each overriding only what differs.

`model_for(exchange_id)` picks the exact model where one exists and the generic model
(clearly marked as such) for every other ccxt exchange.

The table stays here, keyed by ccxt id, so that the engine prices a snapshot alone (the
stress tools, the simulator and the tests build books from snapshots with no exchange
code loaded). Which venues are *declared* exact lives in the venue registry
(monitor/venues/registry.py), which checks at import that its declarations and
`EXACT_MODELS` name the same ids: a venue declared exact with no model here fails there,
loudly, instead of being priced by the generic model.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from monitor.engine.models.base import GenericModel, MarginModel
from monitor.engine.models.binance import BinanceCoinMModel, BinanceUsdMModel
from monitor.engine.models.bybit import BybitModel
from monitor.engine.models.hyperliquid import HyperliquidModel
from monitor.engine.models.okx import OkxModel

EXACT_MODELS: Mapping[str, type[MarginModel]] = MappingProxyType(
    {
        "binanceusdm": BinanceUsdMModel,
        "binancecoinm": BinanceCoinMModel,
        "bybit": BybitModel,
        "hyperliquid": HyperliquidModel,
        "okx": OkxModel,
    }
)


def model_for(exchange_id: str) -> MarginModel:
    """The margin model for a ccxt exchange id; unknown ids get the generic model."""
    return EXACT_MODELS.get(exchange_id, GenericModel)()


__all__ = [
    "EXACT_MODELS",
    "BinanceCoinMModel",
    "BinanceUsdMModel",
    "GenericModel",
    "MarginModel",
    "model_for",
]
