"""Binance futures, by the published FAQ formulas.

USD-M: MM = |notional| x maintMarginRatio - cum, bracket by notional at the mark.
COIN-M: MM (coin) = contracts x face / mark x maintMarginRatio - cum, bracket by the
contract count (qtyFloor / qtyCap). Both are exactly the base model's terms; the
classes exist to name the model and to mark it exact.
"""

from __future__ import annotations

from monitor.engine.models.base import MarginModel


class BinanceUsdMModel(MarginModel):
    name = "binance-usdm"
    exact = True


class BinanceCoinMModel(MarginModel):
    name = "binance-coinm"
    exact = True
