"""A simulated clock for asyncio tests whose subject is time: backoff, staleness, keepalives.

`SimulatedClockLoop` is asyncio's own selector loop with one difference: its clock stands
still while anything is ready to run, and when nothing is, it jumps straight to the next
timer instead of waiting for it. Ten seconds of backoff take milliseconds, and the code
under test reads exactly the times it would read live, because asyncio's sleeps, timeouts
and `loop.time()` all read this clock (the feeds time everything with `loop.time()`).

Real sockets still work, which is the point: the servers on loopback and the code under
test run in this loop, so a frame one side sends is in the other's socket before the
loop next looks. Before every jump the loop still gives in-flight I/O a moment of real
time, and it never jumps while work it handed to a thread is running; only CPU time and
those moments are free, as if the machine were infinitely fast.

Not for code that reads the wall clock or `time.monotonic()` for its deadlines (APScheduler,
ccxt's throttle): that code would see time stand still while its timers fire early.
"""

from __future__ import annotations

import asyncio
import functools
import selectors
import time
from collections.abc import Callable, Coroutine
from concurrent.futures import Executor
from typing import Any, ParamSpec

P = ParamSpec("P")

IN_FLIGHT_GRACE = 0.002
"""Real seconds the loop waits for I/O before each jump. Loopback delivers a write into the
peer's socket within the sending call, so this only covers a scheduler hiccup."""


class _Clock:
    def __init__(self) -> None:
        # Started where the real monotonic clock is, so stamps look like live ones.
        self.now = time.monotonic()


class _JumpingSelector(selectors.DefaultSelector):  # type: ignore[misc,valid-type]
    """Waits for I/O as usual; a wait that would only end on a timer moves the clock."""

    def __init__(self, clock: _Clock, busy_threads: Callable[[], int]) -> None:
        super().__init__()
        self._clock = clock
        self._busy_threads = busy_threads

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        if timeout is not None and timeout <= 0:
            return super().select(0)
        if self._busy_threads():
            # A thread's result arrives through the loop's self-pipe: wait for it in real
            # time, clock stopped, so no timer fires early while it works.
            return super().select(IN_FLIGHT_GRACE)
        events = super().select(IN_FLIGHT_GRACE)
        if events or timeout is None:
            return events or super().select(None)
        self._clock.now += timeout
        return []


class SimulatedClockLoop(asyncio.SelectorEventLoop):
    """An event loop on a simulated clock (see the module's docstring)."""

    def __init__(self) -> None:
        self._clock = _Clock()
        self._threads_running = 0
        super().__init__(_JumpingSelector(self._clock, lambda: self._threads_running))

    def time(self) -> float:
        return self._clock.now

    def run_in_executor(  # type: ignore[override]
        self, executor: Executor | None, func: Callable[..., Any], *args: Any
    ) -> asyncio.Future[Any]:
        future = super().run_in_executor(executor, func, *args)
        self._threads_running += 1

        def done(_: asyncio.Future[Any]) -> None:
            self._threads_running -= 1

        future.add_done_callback(done)
        return future


def on_simulated_clock(
    test: Callable[P, Coroutine[Any, Any, None]],
) -> Callable[P, None]:
    """Run an async test in its own `SimulatedClockLoop` (instead of pytest-asyncio's loop).

    The test takes sync fixtures only: an async fixture would run in another loop.
    """

    @functools.wraps(test)
    def run(*args: P.args, **kwargs: P.kwargs) -> None:
        with asyncio.Runner(loop_factory=SimulatedClockLoop) as runner:
            runner.run(test(*args, **kwargs))

    return run
