"""``ThreadPool``: background threads, each running an event loop.

Blocking (non-asyncio) streams run their protocol work on one of these loops.
The threads are daemons and every pool is stopped by an ``atexit`` hook, so an
interpreter with live streams and pools still exits promptly and quietly.
"""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import os
import threading
import weakref
from collections.abc import Callable, Sequence
from typing import Any

from ._log import logger
from .protocols.arguments import fitting_int

try:
    import uvloop

    _new_loop: Callable[[], asyncio.AbstractEventLoop] = uvloop.new_event_loop
except ImportError:  # pragma: no cover - uvloop is absent on some platforms
    _new_loop = asyncio.new_event_loop



_JOIN_TIMEOUT = 5.0
#: How often a thread waiting for a call on a loop checks that the loop still runs (s).
_LIVENESS_CHECK = 0.05


class _LoopThread:
    """One daemon thread running one event loop forever (until stopped)."""

    def __init__(self, name: str, core: int | None) -> None:
        self.loop = _new_loop()
        self._core = core
        ready = threading.Event()
        self.thread = threading.Thread(target=self._run, args=(ready,), name=name, daemon=True)
        self.thread.start()
        ready.wait()

    def _run(self, ready: threading.Event) -> None:
        if self._core is not None:
            try:
                ThreadPool.set_affinity(self._core)
            except (OSError, ValueError, NotImplementedError) as exc:
                # As the reference: a core that cannot be used is not fatal.
                logger.warning("could not pin %s to CPU %d: %s", self.thread.name, self._core, exc)
        asyncio.set_event_loop(self.loop)
        self.loop.call_soon(ready.set)
        try:
            self.loop.run_forever()
        finally:
            self._cancel_remaining()
            self.loop.close()

    def _cancel_remaining(self) -> None:
        tasks = [task for task in asyncio.all_tasks(self.loop) if not task.done()]
        for task in tasks:
            task.cancel()
        if tasks:
            self.loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))

    def stop(self) -> None:
        if self.thread.is_alive():
            try:
                self.loop.call_soon_threadsafe(self.loop.stop)
            except RuntimeError:  # already closed
                return
            if threading.current_thread() is not self.thread:
                self.thread.join(_JOIN_TIMEOUT)


class ThreadPool:
    """A pool of ``threads`` background event-loop threads.

    ``affinity`` optionally lists CPU cores; thread *i* is pinned to
    ``affinity[i % len(affinity)]``. Streams are placed on the threads in turn.
    """

    def __init__(self, threads: int = 1, affinity: Sequence[int] | None = None) -> None:
        threads = fitting_int(threads, "threads", -(2**31), 2**31 - 1)  # a C int, as in the reference
        if threads < 1:
            raise ValueError(f"at least one thread is required (got threads={threads!r})")
        cores = list(affinity) if affinity else []
        self._threads = [
            _LoopThread(f"spead2-pool-{i}", cores[i % len(cores)] if cores else None)
            for i in range(threads)
        ]
        self._next = 0
        self._lock = threading.Lock()
        self._stopped = False
        _live_pools.add(self)

    @property
    def num_threads(self) -> int:
        """Number of threads in the pool."""
        return len(self._threads)

    def next_loop(self) -> asyncio.AbstractEventLoop:
        """The loop to place the next stream on (round robin)."""
        with self._lock:
            if self._stopped:
                raise RuntimeError("ThreadPool has been stopped")
            thread = self._threads[self._next]
            self._next = (self._next + 1) % len(self._threads)
            return thread.loop

    def stop(self) -> None:
        """Stop the worker threads. Streams still placed on them stop working."""
        with self._lock:
            if self._stopped:
                return
            self._stopped = True
        for thread in self._threads:
            thread.stop()

    @staticmethod
    def set_affinity(core: int) -> None:
        """Pin the calling thread to CPU ``core``."""
        if not hasattr(os, "sched_setaffinity"):
            raise NotImplementedError("thread affinity is not supported on this platform")
        os.sched_setaffinity(0, {core})

    def __del__(self) -> None:
        try:
            self.stop()
        except Exception:  # interpreter teardown: nothing useful left to report to
            pass


_live_pools: weakref.WeakSet[ThreadPool] = weakref.WeakSet()


@atexit.register
def _stop_all_pools() -> None:
    for pool in list(_live_pools):
        pool.stop()


class LoopBusy:
    """The loop's thread is inside a blocking call that does the loop's work itself.

    While one is active, :func:`run_on_loop` from other threads hands its call
    to it (``wake`` interrupts the blocking call's wait, which then calls
    :meth:`run_pending`), instead of queueing it for a loop that cannot run.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, wake: Callable[[], None]) -> None:
        self._loop = loop
        self._wake = wake
        self._calls: list[Callable[[], None]] = []
        self._active = False

    def __enter__(self) -> LoopBusy:
        with _busy_lock:
            self._active = _busy.setdefault(self._loop, self) is self
        return self

    def __exit__(self, *exc: object) -> None:
        if not self._active:
            return  # nested: the outer one serves the calls
        with _busy_lock:
            del _busy[self._loop]
            self._active = False
        self.run_pending()

    def submit(self, call: Callable[[], None]) -> bool:
        """Queue ``call`` for the busy thread (False if it is no longer busy)."""
        with _busy_lock:
            if not self._active:
                return False
            self._calls.append(call)
        self._wake()
        return True

    def run_pending(self) -> None:
        """Run the calls other threads queued (on the loop's thread)."""
        while True:
            with _busy_lock:
                calls, self._calls = self._calls, []
            if not calls:
                return
            for call in calls:
                call()


_busy_lock = threading.Lock()
_busy: dict[asyncio.AbstractEventLoop, LoopBusy] = {}


def run_on_loop[T](loop: asyncio.AbstractEventLoop, func: Callable[..., T], *args: Any) -> T:
    """Run ``func(*args)`` on ``loop``'s thread and return its result (or raise its error).

    Called from the loop's own thread, it runs inline. ``func`` must not block.
    """
    if _loop_thread_is_current(loop) or not loop.is_running():
        # Inline when on the loop's thread, or when the loop is idle (an
        # asyncio stream whose loop has not started or has finished): nothing
        # else can be touching the stream's state then.
        if loop.is_closed():
            raise RuntimeError("the stream's event loop is closed")
        return func(*args)
    done: concurrent.futures.Future[T] = concurrent.futures.Future()

    def call() -> None:
        if not done.set_running_or_notify_cancel():
            return  # the caller gave up: the loop had stopped
        try:
            done.set_result(func(*args))
        except BaseException as exc:
            done.set_exception(exc)

    busy = _busy.get(loop)
    if busy is not None and busy.submit(call):
        return done.result()
    try:
        loop.call_soon_threadsafe(call)
    except RuntimeError as exc:
        raise RuntimeError("the stream's event loop is no longer running") from exc
    # The loop may stop (a ThreadPool.stop() from another thread) after the call
    # was queued but before it ran: then nothing would ever run it. Look again
    # now and then, and fail rather than wait for ever.
    while True:
        try:
            return done.result(_LIVENESS_CHECK)
        except concurrent.futures.TimeoutError:
            if loop.is_running() or not done.cancel():
                continue
            raise RuntimeError(
                "the stream's event loop stopped before the call could run "
                "(was its ThreadPool stopped?)"
            ) from None


def _loop_thread_is_current(loop: asyncio.AbstractEventLoop) -> bool:
    try:
        return asyncio.get_running_loop() is loop
    except RuntimeError:
        return False
