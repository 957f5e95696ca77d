"""cancel_and_wait: a task told to stop must stop, even while it waits for another."""

from __future__ import annotations

import asyncio

import pytest

from monitor.aio import cancel_and_wait


async def slow_to_unwind() -> None:
    """A task that takes a moment to clean up after its cancellation (a socket close)."""
    try:
        await asyncio.sleep(10)
    except asyncio.CancelledError:
        await asyncio.sleep(0.05)
        raise


async def test_a_caller_cancelled_while_it_waits_stays_cancelled():
    reached_the_end = asyncio.Event()

    async def caller() -> None:
        inner = asyncio.create_task(slow_to_unwind())
        await asyncio.sleep(0)
        await cancel_and_wait(inner)
        reached_the_end.set()  # a swallowed cancellation would get here and run on

    outer = asyncio.create_task(caller())
    await asyncio.sleep(0.01)  # the caller is now waiting for the inner task to unwind
    outer.cancel()
    with pytest.raises(asyncio.CancelledError):
        await outer
    assert not reached_the_end.is_set()


async def test_a_task_that_failed_has_its_failure_raised():
    async def broken() -> None:
        raise RuntimeError("clock crashed")

    task = asyncio.create_task(broken())
    await asyncio.sleep(0)
    with pytest.raises(RuntimeError, match="clock crashed"):
        await cancel_and_wait(task)


async def test_every_task_is_cancelled_and_awaited():
    tasks = [asyncio.create_task(slow_to_unwind()) for _ in range(3)]
    await asyncio.sleep(0)
    await cancel_and_wait(*tasks)
    assert all(task.cancelled() for task in tasks)
    await cancel_and_wait()  # nothing to stop: returns at once
