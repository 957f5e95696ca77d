"""Loopback ports for tests that run in parallel (pytest-xdist)."""

from __future__ import annotations

import socket

_held: list[socket.socket] = []


def refused_port() -> int:
    """A loopback port that refuses connections, and stays so: bound but never listening,
    and held until the worker exits. A port merely bound and released ("nobody listens
    there") can be handed by the kernel to another worker's server a moment later."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    _held.append(sock)
    return sock.getsockname()[1]
