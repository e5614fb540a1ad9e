"""spead2._wakeup: readiness pipes and waking waiters on other threads' loops."""

from __future__ import annotations

import asyncio
import os
import select
import threading

import pytest

from spead2._wakeup import ReadinessFd, resolve_future, running_loop, wake


def readable(fd: int) -> bool:
    return bool(select.select([fd], [], [], 0)[0])


def test_readiness_fd_is_readable_exactly_while_set() -> None:
    ready = ReadinessFd(False)
    assert not readable(ready.read_fd)
    ready.set(True)
    ready.set(True)  # setting it again changes nothing: one clear empties it
    assert readable(ready.read_fd)
    ready.set(False)
    assert not readable(ready.read_fd)
    fd = ready.read_fd
    ready.close()
    with pytest.raises(OSError):
        os.fstat(fd)


def test_readiness_fd_starts_readable() -> None:
    ready = ReadinessFd(True)
    try:
        assert readable(ready.read_fd)
    finally:
        ready.close()


async def test_wake_resolves_waiters_of_this_loop_and_of_another_thread() -> None:
    here = asyncio.get_running_loop()
    assert running_loop() is here
    other = asyncio.new_event_loop()
    thread = threading.Thread(target=other.run_forever, daemon=True)
    thread.start()
    try:
        mine: asyncio.Future[None] = here.create_future()
        theirs: asyncio.Future[None] = asyncio.run_coroutine_threadsafe(
            _make_future(), other
        ).result(timeout=5)
        cancelled: asyncio.Future[None] = here.create_future()
        cancelled.cancel()
        wake([(here, mine), (other, theirs), (here, cancelled)])
        assert mine.done()  # this loop's waiter: at once
        await asyncio.wait_for(asyncio.wrap_future(
            asyncio.run_coroutine_threadsafe(asyncio.wait_for(theirs, 5), other)
        ), 5)
        assert theirs.done() and not theirs.cancelled()
    finally:
        other.call_soon_threadsafe(other.stop)
        thread.join(5)
        other.close()


async def _make_future() -> asyncio.Future[None]:
    return asyncio.get_running_loop().create_future()


def test_wake_skips_closed_loops() -> None:
    loop = asyncio.new_event_loop()
    future: asyncio.Future[None] = loop.create_future()
    loop.close()
    assert running_loop() is None
    wake([(loop, future)])  # nobody can wait on a closed loop: no error
    assert not future.done()


def test_resolve_future_leaves_done_futures_alone() -> None:
    loop = asyncio.new_event_loop()
    try:
        future: asyncio.Future[None] = loop.create_future()
        future.cancel()
        resolve_future(future)
        assert future.cancelled()
        pending: asyncio.Future[None] = loop.create_future()
        resolve_future(pending)
        assert pending.done() and pending.result() is None
    finally:
        loop.close()
