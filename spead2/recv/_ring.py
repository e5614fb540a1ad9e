"""The bounded ring of completed heaps between a stream's loop and its consumers.

The producer side (the stream's protocol work) runs on one event loop thread.
Consumers may be blocking threads (``get``) or coroutines on any loop
(``get_async``). Three properties matter:

* Consumers are woken once per *batch* of packets (``publish``), not once per
  heap, so a burst of small heaps costs one thread/loop wake-up.
* ``put`` always succeeds, because one packet may complete or evict several
  heaps at once and the sans-IO core cannot wait; but consumers never see more
  than ``capacity`` heaps. Heaps put beyond it are *held* (the reader has them
  in hand, as a blocked reader of the reference has) and enter the ring as
  consumers make room; the first one held calls ``on_block`` (the
  ``worker_blocked`` statistic). Readers check ``full()`` between batches and
  ``wait_space()`` while it holds, so what is held is bounded by one batch.
  A user's stop drops held heaps (they were counted when completed).
* Async waiters are served in call order, cancelled ones are skipped, and a
  heap handed to a waiter that was cancelled meanwhile goes back to the front.
  A heap already waiting is returned without yielding to the loop, but a
  consumer yields at least once every ``capacity`` heaps.
"""

from __future__ import annotations

import asyncio
import threading
from collections import deque
from collections.abc import Callable
from typing import Any

from .._errors import Empty, Stopped
from .._log import logger
from .._wakeup import ReadinessFd, running_loop, wake

_STOPPED_MSG = "ring buffer has been stopped"
#: What a waiter's future gets when the ring stops. Not an exception stored in
#: the future: that exception's traceback would hold the waiting frame, which
#: holds the future — a reference cycle keeping the stream (and its last heap)
#: alive until the cyclic garbage collector happens to run.
_STOPPED = object()
_EMPTY_MSG = "ring buffer is empty"


class HeapRing:
    """Completed heaps waiting for a consumer. See the module docstring."""

    def __init__(
        self,
        capacity: int,
        producer_loop: asyncio.AbstractEventLoop,
        on_block: Callable[[], None] | None = None,
    ) -> None:
        self.capacity = capacity
        self._producer_loop = producer_loop
        self._on_block = on_block
        self._items: deque[Any] = deque()
        # Heaps completed while the ring was full (producer side only adds;
        # consumers move them into _items under the lock).
        self._held: deque[Any] = deque()
        self._lock = threading.Lock()
        # One locked lock per blocked get(), released to wake it (see get()).
        self._sync_waiters: list[threading.Lock] = []
        self._async_waiters: deque[tuple[asyncio.AbstractEventLoop, asyncio.Future[Any]]] = deque()
        self._serve_scheduled: set[asyncio.AbstractEventLoop] = set()
        self._space_waiters: list[asyncio.Future[None]] = []
        self._readiness: ReadinessFd | None = None
        self._stopped = False
        #: Heaps get_async returned without yielding since it last yielded (see there).
        self._taken_in_a_row = 0

    # -- producer side (on the producer loop's thread) -------------------------

    def put(self, item: Any) -> None:
        """Add a heap; consumers see it at the next ``publish`` (or once there is room)."""
        if not self._held and len(self._items) < self.capacity:
            # Without the lock: only this (producer) thread adds to either deque,
            # so neither check can turn false under it; consumers only take.
            self._items.append(item)
            return
        with self._lock:
            if len(self._items) < self.capacity and not self._held:
                self._items.append(item)
                return
            self._held.append(item)
            first = len(self._held) == 1
        if first and self._on_block is not None:
            self._on_block()

    def put_many(self, items: list[Any]) -> None:
        """:meth:`put` each of ``items``, in order, taking the lock at most once."""
        room = 0 if self._held else self.capacity - len(self._items)
        if room >= len(items):
            self._items.extend(items)  # without the lock, as in put
            return
        if room > 0:
            self._items.extend(items[:room])
            items = items[room:]
        with self._lock:
            room = 0 if self._held else self.capacity - len(self._items)
            if room > 0:
                self._items.extend(items[:room])
                items = items[room:]
            first = not self._held and bool(items)
            self._held.extend(items)
        if first and self._on_block is not None:
            self._on_block()

    def holding(self) -> bool:
        """Whether heaps are held beyond the capacity."""
        return bool(self._held)

    def full(self) -> bool:
        """Whether the ring holds ``capacity`` heaps (readers should wait)."""
        return len(self._items) >= self.capacity

    def publish(self) -> None:
        """Wake consumers waiting for heaps (once for everything put since the last call)."""
        with self._lock:
            if not self._items and not self._stopped:
                return
            if self._sync_waiters:
                for waiter in self._sync_waiters:
                    waiter.release()
                self._sync_waiters.clear()
            if self._readiness is not None:
                self._readiness.set(True)
            loops = {loop for loop, _ in self._async_waiters} - self._serve_scheduled
            self._serve_scheduled |= loops
        for loop in loops:
            self._schedule_serve(loop)

    async def wait_space(self) -> None:
        """Wait until the ring is below capacity (or stopped)."""
        with self._lock:
            if len(self._items) < self.capacity or self._stopped:
                return
            waiter = self._producer_loop.create_future()
            self._space_waiters.append(waiter)
        await waiter

    def stop(self, drop_held: bool = False) -> None:
        """No more heaps will come; consumers drain what is left, then get ``Stopped``.

        With ``drop_held`` (a user's stop), heaps held beyond the capacity are
        dropped, as a reader blocked on a full ring drops the heap it holds.
        """
        with self._lock:
            if self._stopped:
                return
            self._stopped = True
            dropped = list(self._held) if drop_held else []
            if drop_held:
                self._held.clear()
        for heap in dropped:
            logger.info("dropped heap %d due to external stop", getattr(heap, "cnt", -1))
        self._release_space()
        self.publish()

    @property
    def stopped(self) -> bool:
        """Whether ``stop`` has been called."""
        return self._stopped

    # -- consumer side (any thread) ---------------------------------------------

    def size(self) -> int:
        """Heaps currently queued."""
        return len(self._items)

    def get_nowait(self) -> Any:
        """The next heap; ``Empty`` if none is queued, ``Stopped`` once stopped and drained."""
        with self._lock:
            return self._pop_locked()

    def get(self) -> Any:
        """The next heap, blocking until one arrives or the ring is stopped and drained.

        The wait is interruptible: Ctrl-C raises ``KeyboardInterrupt`` here.
        """
        while True:
            with self._lock:
                items = self._items
                if items:
                    # _pop_locked inlined for the usual case: one heap per call.
                    item = items.popleft()
                    if self._held or self._space_waiters or (not items and self._readiness is not None):
                        self._after_take_locked()
                    return item
                if self._stopped:
                    return self._pop_locked()
                if self._producer_loop.is_closed():
                    raise RuntimeError(self._closed_loop_message())
                waiter = threading.Lock()
                waiter.acquire()
                self._sync_waiters.append(waiter)
            # Wait holding no lock the producer uses. (In Condition.wait, an exception
            # from a signal handler - Ctrl-C, a SIGTERM handler's SystemExit - can
            # arrive while the lock is being re-acquired; leaving the ``with`` then
            # releases the lock from under the producer's thread.)
            try:
                waiter.acquire()
            except BaseException:
                with self._lock:
                    if waiter in self._sync_waiters:
                        self._sync_waiters.remove(waiter)
                raise

    async def get_async(self) -> Any:
        """Coroutine form of :meth:`get` for the running loop.

        A heap already waiting is returned at once, without yielding to the
        loop, except every ``capacity``-th in a row: a consumer that always
        finds heaps waiting lets the rest of the loop run at least that often
        (yielding for every heap made the consumer of a reader on the same
        loop fall behind it, one heap taken per loop iteration against a
        batch fed, so the ring sat full).
        """
        loop = asyncio.get_running_loop()
        pause = False
        with self._lock:
            if not self._async_waiters and self._items:
                item = self._pop_locked()
                self._taken_in_a_row += 1
                if self._taken_in_a_row >= self.capacity:
                    self._taken_in_a_row = 0
                    pause = True
            elif not self._async_waiters and self._stopped:
                raise Stopped(_STOPPED_MSG)
            elif self._producer_loop.is_closed():
                raise RuntimeError(self._closed_loop_message())
            else:
                item = None
                self._taken_in_a_row = 0  # this consumer waits: the loop runs
                future: asyncio.Future[Any] = loop.create_future()
                self._async_waiters.append((loop, future))
        if item is not None:
            if pause:
                try:
                    await asyncio.sleep(0)
                except asyncio.CancelledError:
                    self._unget(item)
                    raise
            return item
        try:
            item = await future
        except asyncio.CancelledError:
            if future.done() and not future.cancelled() and future.result() is not _STOPPED:
                self._unget(future.result())
            raise
        if item is _STOPPED:
            raise Stopped(_STOPPED_MSG)
        return item

    # -- internals ----------------------------------------------------------------

    def _closed_loop_message(self) -> str:
        return (
            f"this stream belongs to event loop {self._producer_loop!r}, which is closed: "
            "its readers ran there, so no heap can arrive any more. An asyncio stream "
            "created inside a running loop works on that loop only; create it inside "
            "the loop that awaits it (or outside any running loop, to run it on its ThreadPool)"
        )

    def _take_locked(self) -> Any:
        """The first heap of the ring, refilled from those held (``_items`` must not be empty)."""
        item = self._items.popleft()
        if self._held:
            self._items.append(self._held.popleft())
        return item

    def _after_take_locked(self) -> None:
        """What taking a heap from ``_items`` entails: refill from those held, wake a waiting
        reader if there is room, clear the readiness pipe if the ring is empty."""
        if self._held:
            self._items.append(self._held.popleft())
        if self._space_waiters and len(self._items) < self.capacity:
            self._release_space_locked()
        if not self._items and self._readiness is not None:
            self._readiness.set(self._stopped)

    def _pop_locked(self) -> Any:
        if self._items:
            item = self._items.popleft()
            self._after_take_locked()
            return item
        if self._stopped:
            raise Stopped(_STOPPED_MSG)
        raise Empty(_EMPTY_MSG)

    def _requeue_locked(self, item: Any) -> None:
        """Put a taken heap back at the head, as if it had never been taken."""
        self._items.appendleft(item)
        if len(self._items) > self.capacity:
            self._held.appendleft(self._items.pop())

    def _unget(self, item: Any) -> None:
        with self._lock:
            self._requeue_locked(item)
            loops = {loop for loop, _ in self._async_waiters} - self._serve_scheduled
            self._serve_scheduled |= loops
        for loop in loops:
            self._schedule_serve(loop)

    def _schedule_serve(self, loop: asyncio.AbstractEventLoop) -> None:
        if running_loop() is loop:
            self._serve(loop)
        else:
            try:
                loop.call_soon_threadsafe(self._serve, loop)
            except RuntimeError:  # that consumer's loop is closed: its waiters are gone
                with self._lock:
                    self._serve_scheduled.discard(loop)
                    self._async_waiters = deque(w for w in self._async_waiters if w[0] is not loop)

    def _serve(self, loop: asyncio.AbstractEventLoop) -> None:
        """Hand heaps (or Stopped) to ``loop``'s waiters, in call order."""
        with self._lock:
            self._serve_scheduled.discard(loop)
            waiters = self._async_waiters
            while waiters:
                waiter_loop, future = waiters[0]
                if future.done():
                    waiters.popleft()
                    continue
                if waiter_loop is not loop:
                    # Another loop's waiter is first in line: serving later
                    # callers before it would break call order.
                    break
                if self._items:
                    waiters.popleft()
                    item = self._take_locked()
                    try:
                        future.set_result(item)
                    except asyncio.InvalidStateError:
                        # A signal handler runs between bytecodes of this thread:
                        # asyncio.run's SIGINT handler can cancel the waiting task
                        # after the done() check above. The heap stays for the next caller.
                        self._requeue_locked(item)
                elif self._stopped:
                    waiters.popleft()
                    try:
                        future.set_result(_STOPPED)
                    except asyncio.InvalidStateError:
                        pass  # cancelled after the check above, as for a heap
                else:
                    break
            if self._space_waiters and len(self._items) < self.capacity:
                self._release_space_locked()
            more = bool(waiters) and (bool(self._items) or self._stopped)
            next_loop = waiters[0][0] if more else None
            if next_loop is not None and next_loop not in self._serve_scheduled:
                self._serve_scheduled.add(next_loop)
            else:
                next_loop = None
        if next_loop is not None:
            self._schedule_serve(next_loop)

    def _release_space(self) -> None:
        with self._lock:
            self._release_space_locked()

    def _release_space_locked(self) -> None:
        waiters, self._space_waiters = self._space_waiters, []
        wake([(self._producer_loop, waiter) for waiter in waiters])

    # -- readiness file descriptor (``Stream.fd``) ----------------------------------

    def signal_fd(self) -> int:
        """Read end of a pipe that is readable while heaps are queued or the ring is stopped.

        Created on first use, so streams whose ``fd`` nobody asks for pay nothing.
        """
        with self._lock:
            if self._readiness is None:
                self._readiness = ReadinessFd(bool(self._items) or self._stopped)
            return self._readiness.read_fd

    def close_fd(self) -> None:
        """Close the readiness pipe, if one was made."""
        with self._lock:
            readiness, self._readiness = self._readiness, None
        if readiness is not None:
            readiness.close()
