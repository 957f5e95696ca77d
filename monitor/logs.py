"""Logging that never leaks a secret and keeps chatty libraries quiet.

httpx logs every request URL at INFO (a Bot API URL contains the bot token) and ccxt
logs request headers (the API key) at DEBUG: both are turned down, and every record is
passed through a filter that masks the secret values we know.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import Iterable

import orjson

NOISY_LOGGERS = (
    "ccxt",
    "ccxt.base.exchange",
    "httpx",
    "httpcore",
    "aiohttp.access",
    "websockets",
    "telegram.request",
    "apscheduler",  # "Adding job tentatively", "Added job ...": its bookkeeping, not ours
    "matplotlib",  # "generated new fontManager" on the first /chart of a fresh host
)


class RedactSecrets(logging.Filter):
    """Replace known secret values in a record's final message with ***."""

    def __init__(self, secrets: Iterable[str]) -> None:
        super().__init__()
        self.secrets = sorted({s for s in secrets if s and len(s) >= 4}, key=len, reverse=True)

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        for secret in self.secrets:
            message = message.replace(secret, "***")
        record.msg, record.args = message, None
        if record.exc_info and record.exc_info[1] is not None:
            text = logging.Formatter().formatException(record.exc_info)
            for secret in self.secrets:
                text = text.replace(secret, "***")
            record.exc_text, record.exc_info = text, None
        return True


class OneLineLibraryErrors(logging.Filter):
    """Third-party errors in one line: a Telegram outage makes PTB log a twenty-line
    traceback on every retry, which would bury our own messages in the journal. The
    error and its cause stay; the stack, which points into the library, goes."""

    def __init__(self, prefixes: tuple[str, ...]) -> None:
        super().__init__()
        self.prefixes = prefixes

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and record.name.startswith(self.prefixes):
            exc = record.exc_info[1]
            if exc is not None:
                record.msg = f"{record.getMessage()}: {type(exc).__name__}: {exc}"
                record.args = None
            record.exc_info = None
            record.exc_text = None
        return True


class CancelledJobs(logging.Filter):
    """Drop APScheduler's "Job ... raised an exception: CancelledError": on a stop the
    scheduler cancels the account read in flight, which is the stop doing its job, and
    an ERROR line at every normal shutdown would teach operators to ignore ERRORs."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name.startswith("apscheduler") and record.exc_info:
            return not isinstance(record.exc_info[1], asyncio.CancelledError)
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        doc = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_text:
            doc["exception"] = record.exc_text
        return orjson.dumps(doc).decode()


def configure_logging(level: str = "INFO", fmt: str = "plain", secrets: Iterable[str] = ()) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(CancelledJobs())  # before OneLineLibraryErrors, which drops exc_info
    handler.addFilter(OneLineLibraryErrors(("telegram", "httpx", "httpcore", "apscheduler")))
    handler.addFilter(RedactSecrets(secrets))
    handler.setFormatter(
        JsonFormatter()
        if fmt == "json"
        else logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    )
    # No line shows where a call was made from, nor its thread or process: not looking
    # them up (logging HOWTO, "Optimization") takes a third off every record, which a
    # crash frame at 1000 accounts pays for each of its hundreds of level changes.
    logging._srcfile = None  # type: ignore[attr-defined]
    logging.logThreads = logging.logProcesses = logging.logMultiprocessing = False
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for name in NOISY_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
