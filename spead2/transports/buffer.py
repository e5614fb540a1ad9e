"""Receive from a bytes-like object holding back-to-back packets (as a TCP byte stream would)."""

from __future__ import annotations

import asyncio
from collections.abc import Buffer

from .._log import log_limited
from ..protocols.packet import PacketError, packet_size
from .base import BATCH_BYTES, BATCH_MAX_PACKETS, PAUSE, STOP, Reader, StreamSink


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

    async def _run(self) -> None:
        sink = self.sink
        view = self._view
        end = len(view)
        offset = 0
        while not self.closed:
            batch: list[memoryview] = []
            batch_end = min(end, offset + BATCH_BYTES)
            while offset < batch_end and len(batch) < BATCH_MAX_PACKETS:
                try:
                    size = packet_size(view, offset)
                except PacketError as exc:
                    size = None
                    log_limited(30, "buffer-invalid", "buffer reader: %s; discarding the rest", exc)
                if size is None or offset + size > end:
                    sink.count_invalid()
                    offset = end
                    break
                batch.append(view[offset : offset + size])
                offset += size
            verdict = sink.feed(batch)
            if verdict == STOP:
                return
            if offset >= end:
                sink.stop_from_reader()
                return
            if verdict == PAUSE:
                await sink.wait_for_space()
            else:
                await asyncio.sleep(0)
