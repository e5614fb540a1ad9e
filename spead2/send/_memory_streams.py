"""In-memory send streams: :class:`BytesStream` and :class:`InprocStream`, with their transports.

The transports return ``None`` from ``send_packet`` (they never make the
driver wait), so one transport class serves both the synchronous streams
here and the asyncio ``InprocStream`` in :mod:`spead2.send.asyncio`.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Sequence

from .._errors import Stopped
from .._inproc import InprocQueue
from .._thread_pool import ThreadPool
from ._config import StreamConfig
from ._stream import Packet, SyncStream

__all__ = ["BytesStream", "InprocStream"]


def _check_thread_pool(thread_pool: object) -> None:
    # The pool is not used (these streams work in the caller's thread or
    # loop) but is part of the signature, so it is still checked.
    if not isinstance(thread_pool, ThreadPool):
        raise TypeError(f"thread_pool must be a spead2.ThreadPool (got {thread_pool!r})")


class _BytesTransport:
    """Appends every packet to one in-memory byte string."""

    __slots__ = ("data",)

    num_substreams = 1

    def __init__(self) -> None:
        self.data = bytearray()

    def send_packet(self, substream_index: int, packet: Packet) -> None:
        """Append the packet's bytes (one copy, straight from the buffers)."""
        data = self.data
        for buffer in packet:
            data += buffer

    send_packet_blocking = send_packet


class _InprocTransport:
    """Puts each packet on the :class:`~spead2.InprocQueue` of its substream."""

    __slots__ = ("queues", "num_substreams")

    def __init__(self, queues: Sequence[InprocQueue]) -> None:
        if isinstance(queues, (str, bytes)) or not isinstance(queues, Sequence):
            raise TypeError(f"queues must be a list of spead2.InprocQueue (got {queues!r})")
        queue_list = list(queues)
        for queue in queue_list:
            if not isinstance(queue, InprocQueue):
                raise TypeError(f"queues must contain only spead2.InprocQueue (got {queue!r})")
        if not queue_list:
            raise ValueError("queues is empty")
        self.queues = queue_list
        self.num_substreams = len(queue_list)

    def send_packet(self, substream_index: int, packet: Packet) -> None:
        """Add the packet to its queue; a stopped queue is ``OSError(ECANCELED)``, as in the reference."""
        data = packet[0] if len(packet) == 1 else b"".join(packet)
        try:
            self.queues[substream_index].add_packet(data)
        except Stopped:
            raise OSError(errno.ECANCELED, os.strerror(errno.ECANCELED)) from None

    send_packet_blocking = send_packet


class InprocForms:
    """The constructor and ``queues`` of ``InprocStream``, shared by the synchronous and asyncio classes.

    Comes before :class:`SyncStream` or :class:`AsyncStream` in the bases.
    """

    def __init__(
        self,
        thread_pool: ThreadPool,
        queues: Sequence[InprocQueue],
        config: StreamConfig | None = None,
    ) -> None:
        _check_thread_pool(thread_pool)
        self._inproc = _InprocTransport(queues)
        # The driver base that follows in the MRO (SyncStream or AsyncStream).
        super().__init__(config, self._inproc)  # type: ignore[call-arg]

    @property
    def queues(self) -> list[InprocQueue]:
        """The queues, indexed by substream (a new list each time)."""
        return list(self._inproc.queues)


class BytesStream(SyncStream):
    """A stream that collects its packets in memory, back-to-back (as TCP would carry them).

    Rate limiting applies. There is one substream.
    """

    def __init__(self, thread_pool: ThreadPool, config: StreamConfig | None = None) -> None:
        _check_thread_pool(thread_pool)
        self._bytes = _BytesTransport()
        super().__init__(config, self._bytes)

    def getvalue(self) -> bytes:
        """Everything sent so far: the concatenated packets."""
        return bytes(self._bytes.data)


class InprocStream(InprocForms, SyncStream):
    """A stream that puts packets on in-process queues, one queue per substream.

    The queues are not stopped by the stream.
    """
