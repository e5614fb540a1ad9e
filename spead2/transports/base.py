"""What a receive transport needs from its stream, and what the stream needs from it.

A reader is created when the user calls ``add_*_reader`` and is started on the
stream's event loop (immediately, or at ``start()`` with ``explicit_start``).
The seam between a reader and the stream is one call: ``sink.feed(batch)``
hands over a batch of packets and answers :data:`GO` (read on),
:data:`PAUSE` (the consumer is behind: lossless readers await
``sink.wait_for_space()``, UDP stops reading and lets the kernel drop) or
:data:`STOP` (the data ended the stream, which is already stopping).
"""

from __future__ import annotations

import asyncio
import inspect
from abc import ABC, abstractmethod
from collections.abc import Buffer, Callable, Sequence
from typing import Any, Final, Protocol

from ..protocols.batch import PacketBatch
from ..protocols.placement import PlacedBatch, Placement

#: Packets a reader hands to the core before publishing heaps and yielding the loop.
BATCH_PACKETS = 64

#: Bytes of packets a reader of memory (``add_buffer_reader``) hands over per
#: batch. Larger than BATCH_PACKETS packets of the usual sizes: where the
#: consumer is another thread, every batch costs two GIL hand-overs, each a
#: thread wake-up (tens of µs in a VM). The ring may overshoot its capacity
#: by the heaps one batch completes, so this also bounds that memory.
BATCH_BYTES = 1 << 21
#: ... and at most this many packets (tiny heaps make many heap objects).
BATCH_MAX_PACKETS = 1024


#: :meth:`Reader.drive_poll`: nothing to do until the reader's ``wake`` is called.
WAIT: Final = -1

#: :meth:`StreamSink.feed`: read on.
GO: Final = 0
#: :meth:`StreamSink.feed`: the consumer is behind; wait for space before feeding more.
PAUSE: Final = 1
#: :meth:`StreamSink.feed`: a packet ended the stream (a stop item); the stream is stopping.
STOP: Final = 2


class PacketConsumer(Protocol):
    """Where a reader's packets go: the heap assembler, or a chunk placer."""

    def add_packet(self, data: Buffer) -> bool:
        """Process one packet; False once the stream must stop. Never raises for bad input."""
        ...

    def add_batch(self, batch: PacketBatch) -> bool:
        """Process the packets of ``batch`` in order, as :meth:`add_packet` would; False once stopped."""
        ...

    def placement(self, limit: int) -> Placement | None:
        """Where the next packets go if they continue the current heap (see :mod:`~spead2.protocols.placement`)."""
        ...

    def add_placed_batch(self, batch: PlacedBatch) -> bool:
        """Account for the packets received in place, then process the rest as :meth:`add_batch`."""
        ...


class StreamSink(Protocol):
    """The stream side of a reader (implemented by the receive stream's core)."""

    loop: asyncio.AbstractEventLoop

    def feed(self, packets: Sequence[Buffer]) -> int:
        """Process a batch of packets, wake consumers once; :data:`GO`, :data:`PAUSE` or :data:`STOP`.

        Each packet is exactly one SPEAD packet; the buffers may be reused
        as soon as this returns. Readers whose packets lie in one buffer pass
        a :class:`~spead2.protocols.batch.PacketBatch`, which takes the core's
        vectorised path.
        """
        ...

    def placement(self, limit: int) -> Placement | None:
        """Where the next ``limit`` packets go if they continue the current heap in order, or None.

        Valid until the next :meth:`feed`, which must then be a
        :class:`~spead2.protocols.placement.PlacedBatch` of this placement
        (see :mod:`spead2.protocols.placement`).
        """
        ...

    async def wait_for_space(self, lossy: bool = False) -> None:
        """Wait (counting ``worker_blocked``) until the ring has room.

        ``lossy``: the source drops data while the reader waits (UDP), which is
        worth a warning; for lossless sources waiting is normal back-pressure.
        """

    def count_invalid(self, n: int = 1) -> None:
        """Count packets the transport dropped before the core saw them."""

    def count_skipped(self, n: int = 1) -> None:
        """Count captured frames that carry no SPEAD packet (not UDP, IP fragments)."""

    def stop_from_reader(self) -> None:
        """A reader reached end of stream (or a stop item): stop the whole stream."""


class Reader(ABC):
    """One source of packets for a receive stream."""

    def __init__(self, sink: StreamSink) -> None:
        self.sink = sink
        self._task: asyncio.Task[None] | None = None
        self.closed = False

    def start(self) -> None:
        """Begin delivering packets (called on the stream's loop)."""
        self._task = self.sink.loop.create_task(self._run())
        self._task.add_done_callback(_report_crash)

    @abstractmethod
    async def _run(self) -> None:
        """Deliver packets until the source ends or the reader is closed."""

    # -- driven without the event loop (see driver.py) --------------------------------

    def drive_poll(self, wake: Callable[[], None]) -> int | None:
        """What the next :meth:`drive_step` waits for, when a blocking consumer on the
        loop's own thread drives this reader: ``None`` (step now), a file
        descriptor (step once it is readable) or :data:`WAIT` (step after
        ``wake()``, which the reader arranges to be called from any thread).

        Readers that only run on the event loop raise ``NotImplementedError``.
        """
        raise NotImplementedError(f"{type(self).__name__} runs only on its event loop")

    def drive_step(self) -> None:
        """Do what the event loop would do next for this reader (one batch at most)."""
        raise NotImplementedError(f"{type(self).__name__} runs only on its event loop")

    def close(self) -> None:
        """Stop delivering and release resources (called on the stream's loop)."""
        self.closed = True
        task = self._task
        if task is None or task.done():
            return
        try:
            current = asyncio.current_task()
        except RuntimeError:  # no running loop: a finaliser after the loop stopped
            current = None
        if task is not current:
            cancel_task(task)


def cancel_task(task: asyncio.Task[Any]) -> None:
    """Cancel a reader's task, also when its loop has closed.

    A task created as the loop shut down (a reader pausing while ``asyncio.run``
    cancelled the other tasks) can never run again once the loop is closed:
    asyncio would report it at garbage collection as "Task was destroyed but it
    is pending!", so it is told not to.
    """
    try:
        task.cancel()
    except RuntimeError:  # the loop is closed: the cancellation cannot be scheduled
        pass
    if task.get_loop().is_closed():
        task._log_destroy_pending = False  # type: ignore[attr-defined]
        coro = task.get_coro()
        if inspect.iscoroutine(coro) and inspect.getcoroutinestate(coro) == inspect.CORO_CREATED:
            coro.close()  # never started: nothing to unwind, no "never awaited" warning


def _report_crash(task: asyncio.Task[None]) -> None:
    if task.cancelled():
        return
    exc = task.exception()
    # SystemExit or KeyboardInterrupt (a signal handler's, raised in whatever task
    # was running) has already left the loop for its runner: not a reader failure.
    if isinstance(exc, Exception):
        from .._log import logger

        logger.error("receive reader failed", exc_info=exc)
