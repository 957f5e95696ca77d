"""Exponential backoff with jitter, shared by account polling and alert delivery.

Jitter keeps many clients that failed together (accounts on one exchange, chats after a
Telegram outage) from retrying in lockstep. Stream feeds keep their own policy (a hard
minimum delay with a symmetric spread; see monitor/feeds/base.py), tuned for reconnects.
"""

from __future__ import annotations

import random
from collections.abc import Callable


def exponential_backoff(
    attempt: int, base: float, cap: float, rng: Callable[[], float] = random.random
) -> float:
    """base x 2^(attempt - 1), capped at `cap`, drawn uniformly from its upper half."""
    ceiling = min(cap, base * 2.0 ** min(max(0, attempt - 1), 60))
    return ceiling * (0.5 + 0.5 * rng())
