"""Waiting for another thread's or process's work: on a condition, with a deadline."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Callable, Iterator

import spead2
import spead2.recv

#: How long a test waits for something that takes milliseconds on an idle machine: long
#: enough for a loaded CI machine, short enough that a hang fails the test, not the suite.
WAIT_TIMEOUT = 10.0
#: How often a condition is looked at again.
POLL_INTERVAL = 0.002


def wait_for[T](condition: Callable[[], T], what: str = "a condition", *, timeout: float = WAIT_TIMEOUT) -> T:
    """Return ``condition()``'s first true value; fail the test if none comes within ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while not (result := condition()):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        # What is awaited happens in another thread or process, which has no event to
        # hand us: look again shortly.
        time.sleep(POLL_INTERVAL)
    return result


async def wait_for_async[T](
    condition: Callable[[], T], what: str = "a condition", *, timeout: float = WAIT_TIMEOUT
) -> T:
    """:func:`wait_for` in a coroutine: the event loop runs while the condition is false."""
    deadline = time.monotonic() + timeout
    while not (result := condition()):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        await asyncio.sleep(POLL_INTERVAL)
    return result


def get_within(stream: spead2.recv.Stream, timeout: float = WAIT_TIMEOUT) -> spead2.recv.HeapBase:
    """The stream's next heap, taken without blocking in ``get()``; fails if none comes in time."""

    def next_heap() -> list[spead2.recv.HeapBase]:
        try:
            return [stream.get_nowait()]  # in a list: true even if a heap were false
        except spead2.Empty:
            return []

    return wait_for(next_heap, "a heap", timeout=timeout)[0]


@contextlib.contextmanager
def watchdog(stream: spead2.recv.Stream, timeout: float = WAIT_TIMEOUT) -> Iterator[None]:
    """Stop ``stream`` if the block has not finished within ``timeout`` (a hang becomes a failure)."""
    timer = threading.Timer(timeout, stream.stop)
    timer.start()
    try:
        yield
    finally:
        timer.cancel()
