"""Auto-deleverage: decide (policy), check (guards), journal, execute, per account
(controller). Off unless configured; `dry_run` by default only says what it would do."""
