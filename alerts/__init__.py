"""Alert rules, delivery and Telegram: consumes the monitor's events, never the reverse."""
