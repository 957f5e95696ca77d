"""A monitor of the monitor: GET a push monitor's URL while healthy (`daemon.heartbeat_url`).

The convention of healthchecks.io, Uptime Kuma and the like: the monitored process calls a
secret URL every so often, and the service pages when the calls stop. So marginwatch dying,
hanging, losing its network or going blind all page the same way, from outside the
machine. While unhealthy the heartbeat is withheld, or `heartbeat_fail_url` is called to
page at once (healthchecks.io: "<url>/fail"; Uptime Kuma: "<url>?status=down").

Never in the monitoring path: a task of its own, each request bounded well inside the
interval, failures logged at WARNING (the service will page on the silence anyway). The
URL embeds the check's secret, so logs show only its scheme and host.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from urllib.parse import urlsplit

import aiohttp

__all__ = ["Heartbeat", "redacted"]

log = logging.getLogger(__name__)


def redacted(url: str) -> str:
    """`https://hc-ping.com/…`: where it goes, without the secret path or query."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}/…"


class Heartbeat:
    """Runs until cancelled: every `interval`, GET `url` if `healthy()`, else `fail_url`.

    `healthy()` may answer None for "not yet known" (starting, reloading): nothing is sent
    then, so a slow first evaluation of many accounts never calls `fail_url`.
    """

    def __init__(
        self,
        url: str,
        interval: float,
        healthy: Callable[[], bool | None],
        *,
        fail_url: str | None = None,
    ) -> None:
        self.url = url
        self.fail_url = fail_url
        self.interval = interval
        self.healthy = healthy
        self.timeout = aiohttp.ClientTimeout(total=min(10.0, interval / 2))
        self.sent = 0
        self.failed = 0
        self._last_ok: bool | None = None

    async def run(self) -> None:
        async with aiohttp.ClientSession(timeout=self.timeout) as session:
            while True:
                await asyncio.sleep(self.interval)
                healthy = self.healthy()
                if healthy is None:
                    continue
                if healthy != self._last_ok and self._last_ok is not None:
                    log.warning(
                        "heartbeat to %s: %s", redacted(self.url),
                        "resumed (healthy again)" if healthy else "withheld: unhealthy",
                    )  # fmt: skip
                self._last_ok = healthy
                url = self.url if healthy else self.fail_url
                if url is not None:
                    await self._get(session, url)

    async def _get(self, session: aiohttp.ClientSession, url: str) -> None:
        try:
            async with session.get(url, allow_redirects=False) as response:
                await response.read()
                status = response.status
        except (TimeoutError, aiohttp.ClientError) as exc:
            self.failed += 1
            log.warning("heartbeat to %s failed: %s", redacted(url), type(exc).__name__)
            return
        if 200 <= status < 300:
            self.sent += 1
            log.debug("heartbeat to %s: HTTP %d", redacted(url), status)
        else:
            self.failed += 1
            log.warning("heartbeat to %s answered HTTP %d", redacted(url), status)
