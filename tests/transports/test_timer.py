"""Tests for the timerfd sleeper the send streams' rate limiters use."""

from __future__ import annotations

import asyncio
import time

import pytest

from spead2.transports.timer import TimerSleeper


def test_timer_sleeper_waits_at_least_the_delay():
    if not TimerSleeper.available:
        pytest.skip("no timerfd here")
    sleeper = TimerSleeper()
    try:
        for delay in (0.0, 1e-9, 0.002):
            start = time.monotonic()
            sleeper.sleep(delay)
            assert time.monotonic() - start >= delay

        async def run() -> None:
            for delay in (0.0, 0.002):
                start = time.monotonic()
                await sleeper.async_sleep(delay)
                assert time.monotonic() - start >= delay
            # A cancelled sleep leaves the loop clean.
            task = asyncio.ensure_future(sleeper.async_sleep(10.0))
            await asyncio.sleep(0)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            await sleeper.async_sleep(0.001)

        asyncio.run(run())
    finally:
        sleeper.close()
        sleeper.close()
