"""Exchange margin models: one small class per exchange, each overriding only what differs.

`model_for(exchange_id)` picks the exact model where one exists and the generic model
(clearly marked as such) for every other ccxt exchange.
"""

from __future__ import annotations

from monitor.engine.models.base import GenericModel, MarginModel
from monitor.engine.models.binance import BinanceCoinMModel, BinanceUsdMModel
from monitor.engine.models.bybit import BybitModel
from monitor.engine.models.hyperliquid import HyperliquidModel
from monitor.engine.models.okx import OkxModel

_MODELS: dict[str, type[MarginModel]] = {
    "binanceusdm": BinanceUsdMModel,
    "binancecoinm": BinanceCoinMModel,
    "bybit": BybitModel,
    "hyperliquid": HyperliquidModel,
    "okx": OkxModel,
}


def model_for(exchange_id: str) -> MarginModel:
    """The margin model for a ccxt exchange id; unknown ids get the generic model."""
    return _MODELS.get(exchange_id, GenericModel)()


__all__ = ["BinanceCoinMModel", "BinanceUsdMModel", "GenericModel", "MarginModel", "model_for"]
