"""Asyncio send streams: ``async_send_heap(s)`` return futures, work happens on the running loop.

These are subclasses of :class:`spead2.send.Stream` (through the private
:class:`~spead2.send._stream.AsyncStream` driver) but not of the synchronous
stream classes, and have no ``send_heap``/``send_heaps``. Network streams
(``UdpStream``, ``TcpStream``) subclass ``AsyncStream`` the same way, with a
transport implementing the ``AsyncTransport`` interface described in
:mod:`spead2.send._stream`.
"""

from __future__ import annotations

from collections.abc import Sequence

from .._inproc import InprocQueue
from .._thread_pool import ThreadPool
from ._config import StreamConfig
from ._memory_streams import _check_thread_pool, _InprocTransport
from ._stream import AsyncStream

__all__ = ["InprocStream"]


class InprocStream(AsyncStream):
    """Asyncio stream that puts packets on in-process queues, one queue per substream.

    The queues are not stopped by the stream.
    """

    def __init__(
        self,
        thread_pool: ThreadPool,
        queues: Sequence[InprocQueue],
        config: StreamConfig | None = None,
    ) -> None:
        _check_thread_pool(thread_pool)
        self._inproc = _InprocTransport(queues)
        super().__init__(config, self._inproc)

    @property
    def queues(self) -> list[InprocQueue]:
        """The queues, indexed by substream (a new list each time)."""
        return list(self._inproc.queues)
