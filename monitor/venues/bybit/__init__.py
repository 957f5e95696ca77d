"""Bybit v5 (unified trading account)."""
