"""A fake clock for the send streams' rate limiting: time moves only when something sleeps."""

from __future__ import annotations

import asyncio

import spead2.send
from spead2.send._stream import AsyncStream


class FakeClock:
    """A clock that only moves when something sleeps on it; ``sleeps`` lists the delays."""

    def __init__(self, start: float = 100.0) -> None:
        self.now = start
        self.sleeps: list[float] = []

    def time(self) -> float:
        return self.now

    def sleep(self, delay: float) -> None:
        self.sleeps.append(delay)
        self.now += delay

    async def async_sleep(self, delay: float) -> None:
        self.sleep(delay)
        await asyncio.sleep(0)  # a real await: other tasks run, as they would while sleeping


def use_fake_clock(stream: spead2.send.Stream, clock: FakeClock) -> None:
    """Make ``stream`` read the time from ``clock`` and sleep on it."""
    stream._clock = clock.time  # type: ignore[attr-defined]
    if isinstance(stream, AsyncStream):
        stream._sleep = clock.async_sleep
        stream._blocking_sleep = clock.sleep
    else:
        stream._sleep = clock.sleep  # type: ignore[attr-defined]
