"""Every other ccxt exchange: read through ccxt, priced by the generic model."""
