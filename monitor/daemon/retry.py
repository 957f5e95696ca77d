"""When an account whose read failed is read again.

Trouble that waiting does not cure (network, the exchange down, a broken reply) is retried
at the normal poll cadence: polling every `poll_interval` is the load a healthy account puts
on the exchange anyway, and anything slower leaves the account blind after the exchange is
back (a fault audit measured 29 s blind with the delay grown to 30 s, and with intermittent
resets no recovery at all within a 20 s healthy window, the delay having reached 45 s).
Only what waiting helps backs off: a rate limit (exactly the exchange's Retry-After, else
exponentially up to RATE_LIMIT_CAP) and refused credentials (nothing changes until a person
acts, and a reload rebuilds the account anyway).
"""

from __future__ import annotations

from monitor.backoff import exponential_backoff
from monitor.exchange.errors import ErrorKind

RATE_LIMIT_CAP = 60.0
"""Longest wait after a 429 that named none; a 418 ban's own Retry-After is honoured whole."""
AUTH_CAP = 300.0

TRANSIENT = frozenset({ErrorKind.NETWORK, ErrorKind.EXCHANGE_DOWN, ErrorKind.BAD_REPLY})
"""Kinds retried at the poll cadence, and at once when the venue's stream comes back."""


def retry_delay(
    kind: ErrorKind, failures: int, poll_interval: float, retry_after: float | None = None
) -> float:
    """Seconds during which scheduled polls are skipped after `failures` consecutive
    failures, the last of `kind`; 0 means the next scheduled poll reads again."""
    if kind is ErrorKind.RATE_LIMIT:  # the exchange's word when it gave one: no sooner, no later
        if retry_after is not None:
            return retry_after
        return exponential_backoff(failures, poll_interval, RATE_LIMIT_CAP)
    if kind is ErrorKind.AUTH:
        return exponential_backoff(failures, poll_interval, AUTH_CAP)
    return 0.0
