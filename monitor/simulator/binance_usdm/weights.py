"""Binance USD-M's request-weight limit per IP, as the venue enforces it.

Binance counts the weight of every `/fapi` request from one IP in fixed one-minute
windows (2,400 a minute: `rateLimits` of exchangeInfo), reports the window's count on
every reply in `X-MBX-USED-WEIGHT-1M`, answers a request past the limit with HTTP 429
(code -1003) and `Retry-After`, and bans an IP that keeps sending after a 429 with HTTP
418 for two minutes at first, growing with repeat offences up to three days (USD-M
"General Info", "IP Limits"). Every request the simulator serves comes from loopback:
one IP, one counter, shared by all its accounts, as on a real server.

Weights (REQUEST_WEIGHT, pages under developers.binance.com/docs/derivatives/
usds-margined-futures/): positionRisk v3 5, account v3 5, leverageBracket 1,
multiAssetsMargin 30, exchangeInfo 1, listenKey 1, premiumIndex 1 (10 without symbol),
ticker/price 1 (2 without symbol), commissionRate 20, positionSide/dual 30, symbolConfig
5, order query 1, new order 0 on the IP limit (orders have their own counters). Requests
refused with 429 or 418 are not counted.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

USED_WEIGHT_HEADER = "X-MBX-USED-WEIGHT-1M"
LIMIT_PER_MINUTE = 2400
FIRST_BAN_WINDOWS = 2
"""Binance's first ban lasts two minutes: two windows."""

_FIXED: dict[tuple[str, str], int] = {
    ("GET", "/fapi/v3/positionRisk"): 5,
    ("GET", "/fapi/v2/positionRisk"): 5,
    ("GET", "/fapi/v3/account"): 5,
    ("GET", "/fapi/v2/account"): 5,
    ("GET", "/fapi/v3/balance"): 5,
    ("GET", "/fapi/v2/balance"): 5,
    ("GET", "/fapi/v1/leverageBracket"): 1,
    ("GET", "/fapi/v1/multiAssetsMargin"): 30,
    ("GET", "/fapi/v1/positionSide/dual"): 30,
    ("GET", "/fapi/v1/symbolConfig"): 5,
    ("GET", "/fapi/v1/commissionRate"): 20,
    ("GET", "/fapi/v1/exchangeInfo"): 1,
    ("GET", "/fapi/v1/time"): 1,
    ("GET", "/fapi/v1/ping"): 1,
    ("GET", "/fapi/v1/order"): 1,
    ("POST", "/fapi/v1/order"): 0,
    ("POST", "/fapi/v1/listenKey"): 1,
    ("PUT", "/fapi/v1/listenKey"): 1,
    ("DELETE", "/fapi/v1/listenKey"): 1,
    ("POST", "/fapi/v1/positionMargin"): 1,
    ("POST", "/fapi/v1/leverage"): 1,
    ("POST", "/fapi/v1/marginType"): 1,
}
_BY_SYMBOL: dict[tuple[str, str], tuple[int, int]] = {
    ("GET", "/fapi/v1/premiumIndex"): (1, 10),
    ("GET", "/fapi/v1/ticker/price"): (1, 2),
}
"""(with `symbol`, without): endpoints that weigh more when they answer for every symbol."""


def request_weight(method: str, path: str, has_symbol: bool) -> int:
    """The weight Binance charges for one request; 1 for a path not listed here."""
    by_symbol = _BY_SYMBOL.get((method, path))
    if by_symbol is not None:
        return by_symbol[0] if has_symbol else by_symbol[1]
    return _FIXED.get((method, path), 1)


@dataclass(slots=True)
class Verdict:
    """What the venue does with one request: serve it (status None) or refuse it."""

    used: int
    """The window's weight after this request, for the reply's header."""
    status: int | None = None
    retry_after: int = 0
    """Seconds until the request may succeed (the window's end, or the ban's)."""


@dataclass(slots=True)
class IpWeights:
    """The one loopback IP's weight counter. `window_s` and `limit` are Binance's
    (60 s, 2,400); tests shrink them to exercise the limit in seconds."""

    limit: int = LIMIT_PER_MINUTE
    window_s: float = 60.0
    clock: Callable[[], float] = time.time
    _window: int = -1
    _used: int = 0
    _warned_in: int = -1
    """The window in which a 429 was last sent: sending on in it earns a ban."""
    _banned_until: float = 0.0
    _bans: int = 0
    history: list[tuple[float, int]] = field(default_factory=list, repr=False)
    """(time, weight) of every request charged: for benchmarks and tests."""
    refusals: dict[int, int] = field(default_factory=dict)
    """Status (429, 418) -> how many requests were refused with it."""

    def admit(self, weight: int) -> Verdict:
        verdict = self._judge(weight)
        if verdict.status is not None:
            self.refusals[verdict.status] = self.refusals.get(verdict.status, 0) + 1
        return verdict

    def _judge(self, weight: int) -> Verdict:
        now = self.clock()
        window = math.floor(now / self.window_s)
        if window != self._window:
            self._window, self._used = window, 0
        if now < self._banned_until:
            return Verdict(self._used, 418, math.ceil(self._banned_until - now))
        if self._used + weight > self.limit:
            if self._warned_in == window:  # kept sending after a 429: banned
                self._bans += 1
                ban = FIRST_BAN_WINDOWS * self.window_s * 2 ** (self._bans - 1)
                self._banned_until = now + ban
                return Verdict(self._used, 418, math.ceil(ban))
            self._warned_in = window
            left = (window + 1) * self.window_s - now
            return Verdict(self._used, 429, max(1, math.ceil(left)))
        self._used += weight
        self.history.append((now, weight))
        return Verdict(self._used)

    @property
    def bans(self) -> int:
        return self._bans


def refusal_body(status: int, limit: int, banned_until_ms: int) -> dict[str, object]:
    """Binance's bodies for 429 and 418 (code -1003 for both)."""
    if status == 418:
        return {
            "code": -1003,
            "msg": f"Way too many requests; IP(127.0.0.1) banned until {banned_until_ms}. "
            "Please use the websocket for live updates to avoid bans.",
        }
    return {
        "code": -1003,
        "msg": "Too many requests; current limit of IP(127.0.0.1) request weight per minute "
        f"is {limit}. Please use WebSocket Streams for live updates to avoid "
        "polling the API.",
    }
