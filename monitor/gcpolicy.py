"""When the cyclic garbage collector may run: never in the middle of a mark frame.

The daemon's policy, in two parts, both for the tick path's tail latency:

* `gc.freeze()` once the first evaluation is done (daemon/runner.py): the markets,
  modules and first books live as long as the process, and a frozen object is never
  scanned again;
* `COLLECTION_PAUSED` around each frame's handling (feeds/stream.py: parse, marks,
  evaluation, events). A collection is triggered by an allocation once enough young
  containers are alive, and a frame is exactly when many are: Binance's all-market
  array parses into some 560 dicts at once. A collection caught there scans them all
  and promotes them to the older generations, whose collections then cost a
  millisecond each (measured on the tick-latency benchmark: ~1 ms per generation-1
  collection, one every ~170 frames, more in a crash). Paused, the collection the
  frame would have triggered runs at the first allocation after it, when the frame's
  transient objects are gone: it scans only what survived, between frames.

Garbage is still collected (the thresholds are untouched): only its moment moves out
of the frame. A frame makes few reference cycles, and none that outlive it for long.
"""

from __future__ import annotations

import gc
from types import TracebackType


class _Paused:
    """The context manager `COLLECTION_PAUSED` is: one object, entered without
    allocating (a generator-based one allocates two containers on entry, and any
    container allocation may be the one that triggers a collection)."""

    __slots__ = ("_depth", "_resume")

    def __init__(self) -> None:
        self._depth = 0
        self._resume = False

    def __enter__(self) -> None:
        if not self._depth:
            self._resume = gc.isenabled()
            gc.disable()
        self._depth += 1

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._depth -= 1
        if not self._depth and self._resume:
            gc.enable()


COLLECTION_PAUSED = _Paused()
"""No automatic collection inside `with COLLECTION_PAUSED:` (nested blocks are one; a
collector disabled by someone else before the outermost stays disabled)."""
