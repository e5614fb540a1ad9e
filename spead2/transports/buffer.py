"""Receive from a bytes-like object holding back-to-back packets (as a TCP byte stream would)."""

from __future__ import annotations

import asyncio
from collections.abc import Buffer, Callable

import numpy as np

from .._log import log_limited
from ..protocols.batch import PacketBatch, Run, equal_packets, framed_like
from ..protocols.packet import PacketError, packet_size
from .base import BATCH_BYTES, BATCH_MAX_PACKETS, PAUSE, STOP, Reader, StreamSink

#: Fewest equal packets worth checking with numpy at once.
_MIN_GUESS = 8


class BufferReader(Reader):
    """Feeds the packets of a buffer to the stream, then ends the stream.

    Stops at the end of the buffer or at the first unparsable packet (the rest
    is discarded and counted as one invalid packet). Lossless: pauses while
    the ring is full, checked between batches of :data:`BATCH_BYTES` bytes
    (at most :data:`BATCH_MAX_PACKETS` packets): handing the GIL to the
    consumer and back costs more than a batch, so the ring may overshoot by
    what one batch completes.
    """

    def __init__(self, sink: StreamSink, buffer: Buffer) -> None:
        if isinstance(buffer, str):
            raise TypeError("add_buffer_reader needs a bytes-like object, not str")
        super().__init__(sink)
        self._view = memoryview(buffer).cast("B")
        self._offset = 0  # on self: the event loop and a blocking consumer both drive it

    async def _run(self) -> None:
        while not self.closed:
            verdict = self._feed_batch()
            if verdict == STOP:
                return
            if verdict == PAUSE:
                await self.sink.wait_for_space()
            else:
                await asyncio.sleep(0)

    def _feed_batch(self) -> int:
        """Feed one batch: :data:`GO`, :data:`PAUSE`, or :data:`STOP` once the buffer is done."""
        sink = self.sink
        view = self._view
        end = len(view)
        offset = self._offset
        # The batch as segments of back-to-back packets: (packet size, count).
        batch_start = offset
        sizes: list[int] = []
        counts: list[int] = []
        runs: list[Run] = []  # found while framing (see equal_packets)
        # The longest stretch framed like its first packet, with its header
        # words (see framed_like): (index of its first packet, words).
        framed: tuple[int, np.ndarray] | None = None
        n = 0
        batch_end = min(end, offset + BATCH_BYTES)
        previous = 0
        while offset < batch_end and n < BATCH_MAX_PACKETS:
            try:
                size = packet_size(view, offset)
            except PacketError as exc:
                size = None
                log_limited(30, "buffer-invalid", "buffer reader: %s; discarding the rest", exc)
            if size is None or offset + size > end:
                sink.count_invalid()
                offset = end
                break
            sizes.append(size)
            counts.append(1)
            n += 1
            start = offset
            offset += size
            if size == previous:
                # Two equal packets: guess that more like the second follow and
                # check them all at once.
                room = min(-(-(batch_end - offset) // size), BATCH_MAX_PACKETS - n)
                if room >= _MIN_GUESS:
                    if view[start + 6] == 0 and view[start + 7] == 4:  # only the per-packet items
                        # Framed from the second packet, which may start a run.
                        k, found = equal_packets(view, start, size, room + 1, n - 1)
                        k = max(k - 1, 0)
                        runs += found
                    else:
                        # Framed from the first of the two: its header words
                        # then cover the batch from its start (for single_packet_heaps).
                        k, rows = framed_like(view, start - size, size, room + 1)
                        first = n - 2
                        if k:
                            k -= 1  # the second is counted
                        else:  # the second is not framed like the first
                            k, rows = framed_like(view, start, size, room)
                            first = n - 1
                        if rows is not None and (framed is None or len(rows) > len(framed[1])):
                            framed = (first, rows)
                    if k:
                        sizes.append(size)
                        counts.append(k)
                        n += k
                        offset += k * size
            previous = size
        self._offset = offset
        packet_sizes = np.repeat(np.array(sizes, dtype=np.intp), counts)
        starts = np.empty(n, dtype=np.intp)
        if n:
            starts[0] = batch_start
            np.cumsum(packet_sizes[:-1], out=starts[1:])
            starts[1:] += batch_start
        # The user's buffer, kept; with the runs found while framing.
        verdict = sink.feed(PacketBatch(view, starts, packet_sizes, stable=True, runs=runs, framed=framed))
        if verdict == STOP:
            return STOP
        if offset >= end:
            sink.stop_from_reader()
            return STOP
        return verdict

    def drive_poll(self, wake: Callable[[], None]) -> int | None:
        """Memory is always ready."""
        return None

    def drive_step(self) -> None:
        """One batch, as the event loop would feed it."""
        if not self.closed:
            self._feed_batch()
