"""Keep the C heap's freed pages: a mark frame's arrays reuse them instead of faulting.

Each frame of the vectorised engine allocates and frees a few hundred numpy arrays, at
1000 accounts some 200 KiB each. glibc's malloc gives the top of its heap back to the
kernel whenever more than its trim threshold lies free there (and serves blocks above its
mmap threshold with fresh mappings); both thresholds adapt, but to the largest block
freed, not to a frame's total. So every frame touched pages the kernel had taken back:
about 200 page faults a frame at 1000 accounts, and up to 900 in a crash frame, each a
trap into the kernel on the tick path (measured with `getrusage` around each frame of
`benchmarks/tick_replay.py --accounts 1000 --step 0.02`: none with this policy).

With it, blocks up to `MMAP_THRESHOLD` come from the heap, and up to `TRIM_THRESHOLD` of
free heap is kept: the process keeps what its busiest frame touched (its resident size
is that peak, not more; pages never touched are never resident), and a frame finds its
pages mapped. Where the C library is not glibc (musl's `mallopt` is a stub, other
systems have none) nothing changes.
"""

from __future__ import annotations

import ctypes
import logging

log = logging.getLogger(__name__)

_M_TRIM_THRESHOLD = -1
_M_TOP_PAD = -2
_M_MMAP_THRESHOLD = -3
"""glibc's `mallopt` parameters (malloc.h)."""

MMAP_THRESHOLD = 32 << 20
"""Blocks below this come from the heap (glibc's own adaptive ceiling on 64-bit)."""
TRIM_THRESHOLD = 128 << 20
"""Free heap kept at its top before any is given back to the kernel."""
TOP_PAD = 16 << 20
"""Grow the heap by this much at a time, so a frame larger than the last one does not
extend it block by block."""


def keep_freed_pages() -> bool:
    """Apply the policy (once is enough; again is harmless). False where the C library
    has no `mallopt` or refused a setting."""
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    settings = (
        (_M_MMAP_THRESHOLD, MMAP_THRESHOLD), (_M_TRIM_THRESHOLD, TRIM_THRESHOLD),
        (_M_TOP_PAD, TOP_PAD),
    )  # fmt: skip
    applied = [mallopt(parameter, value) == 1 for parameter, value in settings]
    if not all(applied):
        log.debug("malloc kept its own trim policy (mallopt refused)")
    return all(applied)
