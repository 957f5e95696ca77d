"""The simulated clock the timing tests run on (tests/simclock.py) keeps its promises: timers
fire without waiting, and neither I/O nor a thread's work is outrun by a jump."""

from __future__ import annotations

import asyncio
import time

import pytest
from websockets.asyncio.client import connect
from websockets.asyncio.server import ServerConnection

from tests.simclock import on_simulated_clock
from tests.test_feeds_support import WsServer


@on_simulated_clock
async def test_an_hour_of_sleep_is_an_hour_on_the_loops_clock_only() -> None:
    loop = asyncio.get_running_loop()
    started, real_started = loop.time(), time.monotonic()
    await asyncio.sleep(3600)
    assert loop.time() - started == pytest.approx(3600)
    assert time.monotonic() - real_started < 60


@on_simulated_clock
async def test_a_frame_on_loopback_arrives_at_the_instant_it_was_sent() -> None:
    loop = asyncio.get_running_loop()
    sent_at: list[float] = []

    async def send_after_a_pause(ws: ServerConnection) -> None:
        await asyncio.sleep(5)
        sent_at.append(loop.time())
        await ws.send("mark")
        await ws.wait_closed()

    async with WsServer(send_after_a_pause) as server, connect(server.origin) as ws:
        # The client waits with a timeout far beyond the pause: a jump past the frame
        # would end the wait at the timeout instead.
        assert await asyncio.wait_for(ws.recv(), timeout=3600) == "mark"
        assert loop.time() == sent_at[0]


@on_simulated_clock
async def test_the_clock_stands_still_while_a_thread_works() -> None:
    loop = asyncio.get_running_loop()
    started = loop.time()
    await asyncio.wait_for(loop.run_in_executor(None, time.sleep, 0.05), timeout=1)
    assert loop.time() == started
