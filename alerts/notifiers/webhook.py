"""A generic webhook: POST one JSON document per notification.

Body: {"id", "account", "accounts", "level", "kind", "text" (plain), "targets",
"created"}. 2xx = delivered; 408, 425, 429 and 5xx = retry (a numeric Retry-After is
honoured); any other 4xx = permanent (the receiver rejected this document, and
resending it will not change its mind). Connection errors and timeouts retry.

Webhook URLs often carry a secret in their path or query (Slack, Discord, ntfy tokens),
so logs and stored errors name only the scheme and host, and the outbox key is a hash.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from urllib.parse import urlsplit

import aiohttp
import orjson

from alerts.notification import Notification
from alerts.notifiers.base import Destination, PermanentFailure, RetryLater, plain_text

__all__ = ["WebhookDestination", "webhook_document"]

_RETRY_STATUSES = frozenset({408, 425, 429})


def webhook_document(notification: Notification) -> dict[str, object]:
    return {
        "id": notification.id,
        "account": notification.account,
        "accounts": list(getattr(notification, "accounts", ()) or ()),
        "level": notification.level,
        "kind": notification.kind,
        "text": plain_text(notification),
        "targets": list(notification.targets),
        "created": notification.created,
    }


class WebhookDestination(Destination):
    """POST `document(notification)` as JSON; subclasses say what the document is."""

    kind = "webhook"
    """The first word of the key and the label: the outbox keys rows by it."""

    def __init__(
        self, url: str, accounts: Sequence[str] | None = None, *, timeout: float = 10.0
    ) -> None:
        digest = hashlib.sha256(url.encode()).hexdigest()[:12]
        parts = urlsplit(url)
        super().__init__(
            f"{self.kind}:{digest}", f"{self.kind} {parts.scheme}://{parts.hostname}", accounts
        )
        self._url = url
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._session: aiohttp.ClientSession | None = None

    def redact(self, text: str) -> str:
        return text.replace(self._url, self.label)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def document(self, notification: Notification) -> object:
        return webhook_document(notification)

    async def send(self, notification: Notification) -> None:
        if self._session is None:
            self._session = aiohttp.ClientSession(
                timeout=self._timeout, json_serialize=lambda v: orjson.dumps(v).decode()
            )
        try:
            async with self._session.post(
                self._url, json=self.document(notification), allow_redirects=False
            ) as response:
                status = response.status
                retry_after = response.headers.get("Retry-After", "")
                await response.read()
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise RetryLater(self.redact(f"{type(exc).__name__}: {exc}")) from None
        if 200 <= status < 300:
            return
        reason = f"{self.label} answered HTTP {status}"
        if status in _RETRY_STATUSES or status >= 500:
            after = float(retry_after) if retry_after.isdigit() else None
            raise RetryLater(reason, after)
        raise PermanentFailure(reason)
