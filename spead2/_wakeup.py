"""Waking consumers across threads and loops: the heap and chunk rings, the in-process queue.

A ring is filled on one thread and emptied on others, by blocking calls,
coroutines on any loop, or programs polling a file descriptor:

* :class:`ReadinessFd` is a pipe whose read end is readable exactly while a
  condition holds (a ring's ``fd``, ``data_fd`` and ``space_fd``).
* :func:`wake` resolves futures that may belong to other threads' loops.
"""

from __future__ import annotations

import asyncio
import os

__all__ = ["ReadinessFd", "Waiter", "resolve_future", "running_loop", "wake"]

#: A coroutine waiting on a ring: its loop, and the future it awaits.
Waiter = tuple[asyncio.AbstractEventLoop, "asyncio.Future[None]"]


class ReadinessFd:
    """A pipe whose read end is readable exactly while a condition holds.

    The owner calls :meth:`set` (under its own lock) whenever the condition
    may have changed; only changes cost a system call.
    """

    def __init__(self, readable: bool) -> None:
        self.read_fd, self._write_fd = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self._readable = False
        self.set(readable)

    def set(self, readable: bool) -> None:
        """Make the read end readable (``True``) or not."""
        if readable == self._readable:
            return
        if readable:
            try:
                os.write(self._write_fd, b"\0")
            except BlockingIOError:  # already readable, which is all that matters
                pass
        else:
            try:
                while os.read(self.read_fd, 4096):
                    pass
            except BlockingIOError:
                pass
        self._readable = readable

    def close(self) -> None:
        """Close both ends."""
        os.close(self.read_fd)
        os.close(self._write_fd)


def running_loop() -> asyncio.AbstractEventLoop | None:
    """The calling thread's running loop, or ``None``."""
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


def resolve_future(future: asyncio.Future[None]) -> None:
    """Mark ``future`` done, unless it already is (cancelled by its waiter, say)."""
    if not future.done():
        try:
            future.set_result(None)
        except asyncio.InvalidStateError:
            pass  # cancelled after the check, by a signal handler running between bytecodes


def wake(waiters: list[Waiter]) -> None:
    """Resolve futures that may belong to other threads' loops.

    A future of the calling thread's loop is resolved at once; the others
    through their loops. A closed loop has nobody waiting any more.
    """
    current = running_loop()
    for loop, future in waiters:
        if loop is current:
            resolve_future(future)
        else:
            try:
                loop.call_soon_threadsafe(resolve_future, future)
            except RuntimeError:  # that loop is closed: nobody is waiting any more
                pass
