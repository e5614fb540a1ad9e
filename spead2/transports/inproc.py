"""Receive from an :class:`spead2.InprocQueue`."""

from __future__ import annotations

from .._inproc import InprocQueue
from .base import BATCH_PACKETS, PAUSE, STOP, Reader, StreamSink


class InprocReader(Reader):
    """Takes packets from an in-process queue until the queue is stopped and drained.

    Lossless: pauses while the ring is full, leaving packets in the queue.
    """

    def __init__(self, sink: StreamSink, queue: InprocQueue) -> None:
        if not isinstance(queue, InprocQueue):
            raise TypeError(f"add_inproc_reader needs an InprocQueue, not {type(queue).__name__}")
        super().__init__(sink)
        self._queue = queue

    async def _run(self) -> None:
        sink = self.sink
        queue = self._queue
        loop = sink.loop
        while not self.closed:
            batch, ended = queue._take(BATCH_PACKETS)
            verdict = sink.feed(batch)
            if verdict == STOP:
                return
            if ended:
                sink.stop_from_reader()
                return
            if not batch:
                await queue._wait(loop)
            elif verdict == PAUSE:
                await sink.wait_for_space()
