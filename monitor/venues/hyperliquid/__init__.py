"""Hyperliquid perpetuals."""
