"""marginwatch: recompute exchange margin locally and warn before liquidation."""
