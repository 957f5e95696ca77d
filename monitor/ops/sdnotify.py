"""systemd's notify protocol (sd_notify(3)) in a few stdlib lines.

The unit runs with Type=notify and WatchdogSec=, so systemd only counts the daemon as started
once it says READY=1, and restarts it when WATCHDOG=1 pings stop: a monitor whose event loop
is wedged must not look healthy. The protocol is one datagram per message on the AF_UNIX socket
named by $NOTIFY_SOCKET, so neither libsystemd nor a Python binding is worth depending on.

Every function is a no-op returning False outside systemd (no $NOTIFY_SOCKET), so the daemon
calls them unconditionally and runs the same in a terminal, a container or a test.
"""

from __future__ import annotations

import logging
import os
import socket
import time

log = logging.getLogger(__name__)

# A datagram to systemd is consumed at once; the bound only guards the event loop against a
# manager that has stopped reading, where a lost ping is better than a stalled monitor.
_SEND_TIMEOUT = 1.0


def _address() -> str | None:
    """The socket address from $NOTIFY_SOCKET; '@' names Linux's abstract namespace."""
    path = os.environ.get("NOTIFY_SOCKET", "")
    if path.startswith("@"):
        return "\0" + path[1:]
    if path.startswith("/"):
        return path
    return None  # unset, or a transport we don't speak (vsock: for VMs)


def notify(message: str) -> bool:
    """Send one message ("KEY=value" lines) to systemd; True if it was handed over.

    Failure is reported, never raised: losing a status line must not take the monitor down,
    and the watchdog turns a persistent failure into a restart anyway.
    """
    address = _address()
    if address is None:
        return False
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            sock.settimeout(_SEND_TIMEOUT)
            sock.sendto(message.encode(), address)
    except OSError as exc:
        log.debug("sd_notify to %r failed: %s", address, exc)
        return False
    return True


def ready() -> bool:
    """Startup is complete: systemd finishes `systemctl start` and starts ordered units."""
    return notify("READY=1")


def watchdog() -> bool:
    """Keep-alive ping; send it at about half of watchdog_interval()."""
    return notify("WATCHDOG=1")


def status(text: str) -> bool:
    """One line shown by `systemctl status`.

    Newlines are flattened because each line of a message is a separate assignment: a status
    built from exchange text must not be able to smuggle in READY=1 or WATCHDOG=trigger.
    """
    return notify("STATUS=" + " ".join(text.splitlines()))


def stopping() -> bool:
    """Shutdown has begun, so systemd won't read the coming silence as a hang."""
    return notify("STOPPING=1")


def reloading() -> bool:
    """A configuration reload (SIGHUP) has begun; send ready() when it is done.

    MONOTONIC_USEC lets systemd (Type=notify-reload, v253+) match this reload to its request.
    """
    usec = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
    return notify(f"RELOADING=1\nMONOTONIC_USEC={usec}")


def extend_timeout(seconds: float) -> bool:
    """Ask for more time to start or stop, e.g. while many accounts are still loading."""
    return notify(f"EXTEND_TIMEOUT_USEC={max(0, int(seconds * 1_000_000))}")


def watchdog_interval() -> float | None:
    """Seconds within which systemd expects a WATCHDOG=1, or None when no watchdog is armed.

    Mirrors sd_watchdog_enabled(3): $WATCHDOG_PID, when set, must be our pid, so a child that
    inherited the environment doesn't think it is the one being watched.
    """
    pid = os.environ.get("WATCHDOG_PID")
    if pid is not None and pid.strip() != str(os.getpid()):
        return None
    try:
        usec = int(os.environ.get("WATCHDOG_USEC", ""))
    except ValueError:
        return None
    return usec / 1_000_000 if usec > 0 else None
