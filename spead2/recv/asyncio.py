"""Asyncio receive stream: ``await stream.get()`` and ``async for heap in stream``."""

from __future__ import annotations

import asyncio as _asyncio

from .._errors import Stopped
from .._thread_pool import ThreadPool
from ..protocols.heaps import HeapBase
from . import _stream
from .chunk.asyncio_ring import ChunkRingbuffer

__all__ = ["ChunkRingbuffer", "Stream"]


class Stream(_stream.Stream):
    """A receive stream for asyncio programs.

    Constructed inside a running loop, the stream's protocol work runs on that
    loop (no thread hop at all); constructed outside one, it runs on a thread
    of ``thread_pool``. Either way :meth:`get` is a coroutine, several may be
    pending at once and they are served in call order.
    """

    def _select_loop(self, thread_pool: ThreadPool) -> _asyncio.AbstractEventLoop:
        try:
            return _asyncio.get_running_loop()
        except RuntimeError:
            return thread_pool.next_loop()

    def _drives_itself(self) -> bool:
        """Whether a blocking call must run the readers itself: it is on the loop's
        thread (or the loop is not running at all), so nothing else will."""
        loop = self._core.loop
        if loop.is_closed():
            return False
        try:
            return _asyncio.get_running_loop() is loop
        except RuntimeError:
            return not loop.is_running()

    def get_nowait(self) -> HeapBase:
        """The next heap; ``spead2.Empty`` if none is ready, ``spead2.Stopped`` at the end.

        On the stream's own loop, first feeds the stream whatever its readers
        can read without waiting (the loop cannot, while it runs the caller).
        """
        if self._drives_itself():
            return self._core.get_driven(block=False)
        return self._core.ring.get_nowait()

    def __next__(self) -> HeapBase:
        """Blocking iteration, as on any receive stream (``for heap in stream``).

        From another thread it waits for the loop to deliver. On the stream's
        own loop (inside a coroutine, say) nothing else can run the readers,
        so it runs them itself until a heap is ready or the stream ends; the
        loop carries on from there once the coroutine yields.
        """
        try:
            if self._drives_itself():
                return self._core.get_driven(block=True)
            return self._core.ring.get()
        except Stopped:
            raise StopIteration from None

    async def get(self) -> HeapBase:  # type: ignore[override]
        """The next heap; raises ``spead2.Stopped`` once stopped and drained."""
        return await self._core.ring.get_async()

    def __aiter__(self) -> Stream:
        return self

    async def __anext__(self) -> HeapBase:
        try:
            return await self._core.ring.get_async()
        except Stopped:
            raise StopAsyncIteration from None
