"""The always-on monitor: REST polling on a schedule, mark prices by push, per-tick
recomputation, and a typed stream of events for the alerting layer."""
