"""Rings of chunks: :class:`ChunkRingbuffer` and :class:`ChunkRingPair`.

:class:`ChunkRingbuffer` is the blocking, thread-safe ring of chunks
(``recv.asyncio.ChunkRingbuffer`` adds coroutines on top);
:class:`ChunkRingPair` is the data ring and free ring of a stream or group.
"""

from __future__ import annotations

import asyncio
import threading
from collections import deque
from collections.abc import Iterator

from ..._errors import Empty, Full, Stopped
from ..._wakeup import ReadinessFd, Waiter, wake
from ...protocols.arguments import uint64
from .config import Chunk

__all__ = ["ChunkRingPair", "ChunkRingbuffer"]

_STOPPED_MSG = "ring buffer has been stopped"
_EMPTY_MSG = "ring buffer is empty"
_FULL_MSG = "ring buffer is full"


class ChunkRingbuffer:
    """A bounded, thread-safe ring of :class:`Chunk` objects.

    ``get``/``put`` block; ``get_nowait``/``put_nowait`` raise ``spead2.Empty``
    / ``spead2.Full``; after :meth:`stop` puts raise ``spead2.Stopped`` and
    gets drain what is left, then raise ``spead2.Stopped``. Iterating yields
    chunks until the ring is stopped and drained. ``data_fd`` / ``space_fd``
    are readable while chunks / free space are available (or once stopped).
    """

    def __init__(self, maxsize: int) -> None:
        self._maxsize = uint64(maxsize, "maxsize")
        self._items: deque[Chunk] = deque()
        self._lock = threading.Lock()
        self._not_empty = threading.Condition(self._lock)
        self._not_full = threading.Condition(self._lock)
        self._stopped = False
        self._producers = 0
        self._data_waiters: list[Waiter] = []
        self._space_waiters: list[Waiter] = []
        self._data_fd: ReadinessFd | None = None
        self._space_fd: ReadinessFd | None = None

    # -- state ------------------------------------------------------------------------

    @property
    def maxsize(self) -> int:
        """Capacity of the ring."""
        return self._maxsize

    def qsize(self) -> int:
        """Chunks currently in the ring."""
        return len(self._items)

    def empty(self) -> bool:
        """Whether the ring holds no chunk."""
        return not self._items

    def full(self) -> bool:
        """Whether the ring holds ``maxsize`` chunks."""
        return len(self._items) >= self._maxsize

    @property
    def data_fd(self) -> int:
        """A file descriptor readable while a chunk is available (or the ring is stopped). Do not read it."""
        with self._lock:
            if self._data_fd is None:
                self._data_fd = ReadinessFd(bool(self._items) or self._stopped)
            return self._data_fd.read_fd

    @property
    def space_fd(self) -> int:
        """A file descriptor readable while there is free space (or the ring is stopped). Do not read it."""
        with self._lock:
            if self._space_fd is None:
                self._space_fd = ReadinessFd(len(self._items) < self._maxsize or self._stopped)
            return self._space_fd.read_fd

    # -- consumers ----------------------------------------------------------------------

    def get(self) -> Chunk:
        """The next chunk, blocking until one arrives; ``Stopped`` once stopped and drained."""
        with self._lock:
            while not self._items and not self._stopped:
                self._not_empty.wait()
            return self._pop_locked()

    def get_nowait(self) -> Chunk:
        """The next chunk; ``Empty`` if there is none, ``Stopped`` once stopped and drained."""
        with self._lock:
            return self._pop_locked()

    def __iter__(self) -> Iterator[Chunk]:
        while True:
            try:
                yield self.get()
            except Stopped:
                return

    # -- producers ----------------------------------------------------------------------

    def put(self, chunk: Chunk) -> None:
        """Add a chunk, blocking while the ring is full; ``Stopped`` if the ring is stopped."""
        self._check_chunk(chunk)
        with self._lock:
            while len(self._items) >= self._maxsize and not self._stopped:
                self._not_full.wait()
            self._push_locked(chunk)

    def put_nowait(self, chunk: Chunk) -> None:
        """Add a chunk; ``Full`` if there is no room, ``Stopped`` if the ring is stopped."""
        self._check_chunk(chunk)
        with self._lock:
            if not self._stopped and len(self._items) >= self._maxsize:
                raise Full(_FULL_MSG)
            self._push_locked(chunk)

    def stop(self) -> bool:
        """Stop the ring: puts fail, gets drain what is left. True only for the call that stopped it."""
        with self._lock:
            if self._stopped:
                return False
            self._stopped = True
            self._not_empty.notify_all()
            self._not_full.notify_all()
            waiters = self._data_waiters + self._space_waiters
            self._data_waiters = []
            self._space_waiters = []
            self._update_fds_locked()
        wake(waiters)
        return True

    def add_producer(self) -> None:
        """Register a producer; the ring stops when the last one calls :meth:`remove_producer`."""
        with self._lock:
            self._producers += 1

    def remove_producer(self) -> bool:
        """Unregister a producer; True iff this call stopped the ring (it was the last producer)."""
        with self._lock:
            if self._producers == 0:
                return False
            self._producers -= 1
            if self._producers:
                return False
        return self.stop()

    # -- internals ------------------------------------------------------------------------

    @staticmethod
    def _check_chunk(chunk: object) -> None:
        if not isinstance(chunk, Chunk):
            raise TypeError(f"expected a spead2.recv.Chunk, not {type(chunk).__name__}")
        if chunk.data is None:
            raise ValueError("data buffer is not set")
        if chunk.present is None:
            raise ValueError("present buffer is not set")

    def _push_locked(self, chunk: Chunk) -> None:
        if self._stopped:
            raise Stopped(_STOPPED_MSG)
        self._items.append(chunk)
        self._not_empty.notify()
        waiters = self._data_waiters
        if waiters:
            self._data_waiters = []
            wake(waiters)
        self._update_fds_locked()

    def _pop_locked(self) -> Chunk:
        if self._items:
            chunk = self._items.popleft()
            self._not_full.notify()
            waiters = self._space_waiters
            if waiters:
                self._space_waiters = []
                wake(waiters)
            self._update_fds_locked()
            return chunk
        if self._stopped:
            raise Stopped(_STOPPED_MSG)
        raise Empty(_EMPTY_MSG)

    def _update_fds_locked(self) -> None:
        if self._data_fd is not None:
            self._data_fd.set(bool(self._items) or self._stopped)
        if self._space_fd is not None:
            self._space_fd.set(len(self._items) < self._maxsize or self._stopped)

    def _wait_data(self, loop: asyncio.AbstractEventLoop) -> asyncio.Future[None]:
        """A future (of ``loop``, the caller's) resolved once a chunk may be available or the ring stopped."""
        future: asyncio.Future[None] = loop.create_future()
        with self._lock:
            if self._items or self._stopped:
                future.set_result(None)
            else:
                self._data_waiters = [w for w in self._data_waiters if not w[1].done()]
                self._data_waiters.append((loop, future))
        return future

    def _wait_space(self, loop: asyncio.AbstractEventLoop) -> asyncio.Future[None]:
        """A future (of ``loop``, the caller's) resolved once there may be room or the ring stopped."""
        future: asyncio.Future[None] = loop.create_future()
        with self._lock:
            if len(self._items) < self._maxsize or self._stopped:
                future.set_result(None)
            else:
                self._space_waiters = [w for w in self._space_waiters if not w[1].done()]
                self._space_waiters.append((loop, future))
        return future

    def __del__(self) -> None:
        # getattr: __init__ may have failed before setting them.
        for fd in (getattr(self, "_data_fd", None), getattr(self, "_space_fd", None)):
            if fd is not None:
                try:
                    fd.close()
                except OSError:
                    pass


# =====================================================================================
# ChunkRingPair
# =====================================================================================


def _check_ring(name: str, value: object) -> ChunkRingbuffer:
    if not isinstance(value, ChunkRingbuffer):
        raise TypeError(f"{name} must be a spead2.recv.ChunkRingbuffer, not {type(value).__name__}")
    return value


def _zero_present(chunk: Chunk) -> None:
    present = chunk.present
    if present is not None:
        view = memoryview(present).cast("B")
        view[:] = bytes(len(view))


class ChunkRingPair:
    """A data ring (full chunks out) and a free ring (empty chunks in)."""

    def __init__(self, data_ringbuffer: ChunkRingbuffer, free_ringbuffer: ChunkRingbuffer) -> None:
        self._data_ring = _check_ring("data_ringbuffer", data_ringbuffer)
        self._free_ring = _check_ring("free_ringbuffer", free_ringbuffer)

    @property
    def data_ringbuffer(self) -> ChunkRingbuffer:
        """The ring the stream puts finished chunks into."""
        return self._data_ring

    @property
    def free_ringbuffer(self) -> ChunkRingbuffer:
        """The ring the stream takes empty chunks from."""
        return self._free_ring

    def add_free_chunk(self, chunk: Chunk) -> None:
        """Zero ``chunk.present`` and put the chunk in the free ring.

        ``spead2.Full`` if the free ring is full (size it for every chunk);
        if the free ring is stopped the chunk is silently dropped.
        """
        if not isinstance(chunk, Chunk):
            raise TypeError(f"expected a spead2.recv.Chunk, not {type(chunk).__name__}")
        _zero_present(chunk)
        try:
            self._free_ring.put_nowait(chunk)
        except Stopped:
            pass
