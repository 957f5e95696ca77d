"""One package per exchange: everything about talking to that venue."""
