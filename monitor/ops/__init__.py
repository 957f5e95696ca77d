"""Running marginwatch as a service: systemd's notify protocol and Prometheus metrics."""
