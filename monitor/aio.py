"""Asyncio helpers shared by the feeds, the daemon, the alerts and the simulator."""

from __future__ import annotations

import asyncio
from typing import Any


async def cancel_and_wait(*tasks: asyncio.Task[Any]) -> None:
    """Cancel `tasks` and wait until every one has ended.

    Not `with suppress(CancelledError): await task`: a cancellation of the *caller* that
    arrives during that await surfaces as the same exception and is swallowed with the
    task's, so the caller runs on after it was told to stop (a feed that keeps
    reconnecting through a shutdown, a SIGTERM that never completes). `asyncio.wait`
    lets the caller's own cancellation through and raises nothing of the tasks'; a task
    that failed with anything but its cancellation has that failure re-raised here.
    """
    if not tasks:
        return
    for task in tasks:
        task.cancel()
    await asyncio.wait(tasks)
    for task in tasks:
        if not task.cancelled() and (failure := task.exception()) is not None:
            raise failure
