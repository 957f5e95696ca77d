"""Binance USD-M and COIN-M futures."""
