"""Blocking use of an asyncio receive stream: ``for heap in stream`` and ``get_nowait()``.

Each reader is tested both ways: on the stream's own loop, inside a
coroutine that never yields (the blocking call runs the readers itself), and
from another thread while the loop runs (the call waits for the loop).
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time

import pytest

import spead2
import spead2.recv
import spead2.recv.asyncio
import spead2.send
import spead2.transports.base
from tests.helpers.heaps import heap_packets, received_indices
from tests.helpers.waiting import get_within, wait_for_async

TIMEOUT = 20.0
READERS = ["udp", "tcp", "inproc", "buffer"]


class Source:
    """A reader of one kind on ``stream``, and a way to send it packets (with no await)."""

    def __init__(self, kind: str, stream: spead2.recv.asyncio.Stream) -> None:
        self.kind = kind
        self.stream = stream
        self._buffer: list[bytes] = []
        self._tx: socket.socket | None = None
        if kind == "udp":
            sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 22)
            sock.bind(("127.0.0.1", 0))
            self._address = sock.getsockname()
            stream.add_udp_reader(sock)
            sock.close()
        elif kind == "tcp":
            listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            listener.bind(("127.0.0.1", 0))
            listener.listen()
            self._address = listener.getsockname()
            stream.add_tcp_reader(listener)
            listener.close()
        elif kind == "inproc":
            self._queue = spead2.InprocQueue()
            stream.add_inproc_reader(self._queue)

    def send(self, heaps: list[list[bytes]]) -> None:
        """Hand the packets over (the buffer reader gets them all at :meth:`finish`)."""
        packets = [p for heap in heaps for p in heap]
        if self.kind == "udp":
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as tx:
                for packet in packets:
                    tx.sendto(packet, self._address)
        elif self.kind == "tcp":
            if self._tx is None:
                # A blocking connect: the kernel completes it, the loop never sees it.
                self._tx = socket.create_connection(self._address, timeout=TIMEOUT)
            self._tx.sendall(b"".join(packets))
        elif self.kind == "inproc":
            for packet in packets:
                self._queue.add_packet(packet)
        else:
            self._buffer += packets

    def finish(self) -> None:
        """No more packets: close the connection / stop the queue / add the buffer reader."""
        if self.kind == "tcp" and self._tx is not None:
            self._tx.close()
        elif self.kind == "inproc":
            self._queue.stop()
        elif self.kind == "buffer":
            self.stream.add_buffer_reader(b"".join(self._buffer))


def watchdog(stream: spead2.recv.asyncio.Stream, seconds: float = TIMEOUT) -> threading.Timer:
    """Stops the stream (from another thread) if a test hangs, so it fails instead."""
    timer = threading.Timer(seconds, stream.stop)
    timer.daemon = True
    timer.start()
    return timer


# -- on the stream's own loop ---------------------------------------------------------


@pytest.mark.parametrize("kind", READERS)
async def test_blocking_iteration_on_own_loop(pool: spead2.ThreadPool, kind: str) -> None:
    """Send everything, then ``for heap in stream`` inside the coroutine: every heap, in order."""
    stream = spead2.recv.asyncio.Stream(pool, ring_config=spead2.recv.RingStreamConfig(heaps=2))
    source = Source(kind, stream)
    source.send(heap_packets(12))  # more heaps than the ring holds: the reader must go on
    source.finish()
    timer = watchdog(stream)
    heaps = list(stream)  # never yields to the loop
    timer.cancel()
    assert received_indices(heaps) == list(range(12))
    stats = stream.stats
    assert stats["heaps"] == 12
    assert stats["incomplete_heaps_evicted"] == stats["incomplete_heaps_flushed"] == 0


@pytest.mark.parametrize("kind", READERS)
async def test_blocking_then_loop_carries_on(pool: spead2.ThreadPool, kind: str) -> None:
    """Some heaps taken by blocking calls, the rest by ``async for``: none lost or repeated."""
    stream = spead2.recv.asyncio.Stream(pool, ring_config=spead2.recv.RingStreamConfig(heaps=1))
    source = Source(kind, stream)
    source.send(heap_packets(10))
    source.finish()
    timer = watchdog(stream)
    first = [next(stream) for _ in range(4)]
    rest = [heap async for heap in stream]
    timer.cancel()
    assert received_indices(first + rest) == list(range(10))


@pytest.mark.parametrize("kind", ["udp", "tcp", "inproc"])
async def test_loop_receives_first_then_blocking_takes_over(
    pool: spead2.ThreadPool, kind: str
) -> None:
    """The loop has been running the reader (TCP: accepted and connected) when blocking starts."""
    stream = spead2.recv.asyncio.Stream(pool, ring_config=spead2.recv.RingStreamConfig(heaps=2))
    source = Source(kind, stream)
    heaps = heap_packets(10)
    source.send(heaps[:4])
    await wait_for_async(lambda: stream.stats["heaps"] >= 2, "the loop to receive", timeout=TIMEOUT)
    source.send(heaps[4:])
    source.finish()
    timer = watchdog(stream)
    received = list(stream)  # never yields to the loop again
    timer.cancel()
    assert received_indices(received) == list(range(10))


@pytest.mark.parametrize("kind", ["udp", "tcp", "inproc"])
async def test_get_nowait_on_own_loop_reads_what_has_arrived(
    pool: spead2.ThreadPool, kind: str
) -> None:
    stream = spead2.recv.asyncio.Stream(pool)
    source = Source(kind, stream)
    with pytest.raises(spead2.Empty):
        stream.get_nowait()  # nothing sent yet: does not wait
    source.send(heap_packets(1, end=False))
    heap = get_within(stream, TIMEOUT)  # the kernel may take a moment to pass the packets on
    assert received_indices([heap]) == [0]
    stream.stop()


async def test_incomplete_heaps_as_on_the_normal_path(pool: spead2.ThreadPool) -> None:
    """A heap missing a packet comes out as an IncompleteHeap when the stop item flushes it."""
    stream = spead2.recv.asyncio.Stream(
        pool, ring_config=spead2.recv.RingStreamConfig(contiguous_only=False)
    )
    source = Source("udp", stream)
    heaps = heap_packets(3, samples=1000)  # several packets per heap
    assert len(heaps[1]) > 1
    heaps[1] = heaps[1][:-1]
    source.send(heaps)
    timer = watchdog(stream)
    received = list(stream)
    timer.cancel()
    assert [type(h).__name__ for h in received] == ["Heap", "Heap", "IncompleteHeap"]
    assert [h.cnt for h in received] == [1, 3, 2]
    assert stream.stats["incomplete_heaps_flushed"] == 1


@pytest.mark.parametrize("kind", ["udp", "tcp", "inproc"])
async def test_stop_then_blocking_iteration_drains_and_ends(
    pool: spead2.ThreadPool, kind: str
) -> None:
    stream = spead2.recv.asyncio.Stream(pool)
    source = Source(kind, stream)
    source.send(heap_packets(2, end=False))
    timer = watchdog(stream)
    assert received_indices([next(stream)]) == [0]
    stream.stop()
    assert received_indices(list(stream)) == [1]  # queued before the stop: still delivered
    timer.cancel()


async def test_stop_from_another_thread_ends_a_blocked_iteration(pool: spead2.ThreadPool) -> None:
    """The blocking call serves calls from other threads: stop() does not wait for the loop."""
    stream = spead2.recv.asyncio.Stream(pool)
    Source("udp", stream)  # nothing will arrive
    stopper = threading.Timer(0.2, stream.stop)
    stopper.start()
    started = time.monotonic()
    assert list(stream) == []
    stopper.join()
    assert time.monotonic() - started < TIMEOUT


async def test_reader_added_from_another_thread_while_blocked(pool: spead2.ThreadPool) -> None:
    stream = spead2.recv.asyncio.Stream(pool)
    data = b"".join(p for heap in heap_packets(3) for p in heap)
    adder = threading.Timer(0.1, stream.add_buffer_reader, [data])
    adder.start()
    timer = watchdog(stream)
    assert received_indices(list(stream)) == [0, 1, 2]
    timer.cancel()
    adder.join()


async def test_not_started_stream_raises_instead_of_hanging(pool: spead2.ThreadPool) -> None:
    stream = spead2.recv.asyncio.Stream(pool, spead2.recv.StreamConfig(explicit_start=True))
    Source("inproc", stream)
    with pytest.raises(RuntimeError, match="explicit_start"):
        next(stream)
    with pytest.raises(spead2.Empty):
        stream.get_nowait()
    stream.stop()


async def test_reader_that_runs_only_on_the_loop_is_named(pool: spead2.ThreadPool) -> None:
    stream = spead2.recv.asyncio.Stream(pool)

    class LoopOnly(spead2.transports.base.Reader):  # like the pcap reader: loop-only
        async def _run(self) -> None:
            await asyncio.sleep(3600)

    stream._add_reader(LoopOnly)
    with pytest.raises(RuntimeError, match="LoopOnly"):
        next(stream)
    stream.stop()


# -- from another thread ----------------------------------------------------------------


@pytest.mark.parametrize("kind", READERS)
async def test_blocking_iteration_from_another_thread(pool: spead2.ThreadPool, kind: str) -> None:
    """The loop runs here; a thread iterates with blocking calls and waits for the loop."""
    stream = spead2.recv.asyncio.Stream(pool, ring_config=spead2.recv.RingStreamConfig(heaps=2))
    source = Source(kind, stream)
    consumer = asyncio.create_task(asyncio.to_thread(list, stream))
    await wait_for_async(lambda: stream._core.ring._sync_waiters, "the thread to wait in get()")
    source.send(heap_packets(12))
    source.finish()
    heaps = await asyncio.wait_for(consumer, TIMEOUT)
    assert received_indices(heaps) == list(range(12))


def test_blocking_iteration_with_the_loop_in_another_thread() -> None:
    """An asyncio stream whose loop runs in another thread: plain blocking use from this one."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        pool = spead2.ThreadPool()

        async def make() -> spead2.recv.asyncio.Stream:
            return spead2.recv.asyncio.Stream(pool)

        stream = asyncio.run_coroutine_threadsafe(make(), loop).result(TIMEOUT)
        assert stream._core.loop is loop
        queue = spead2.InprocQueue()
        stream.add_inproc_reader(queue)
        for packet in (p for heap in heap_packets(5) for p in heap):
            queue.add_packet(packet)
        timer = watchdog(stream)
        assert received_indices(list(stream)) == list(range(5))
        timer.cancel()
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(TIMEOUT)
        loop.close()


def test_stream_of_a_loop_that_is_not_running() -> None:
    """Made inside a loop that has finished: blocking iteration still runs its readers."""
    pool = spead2.ThreadPool()
    loop = asyncio.new_event_loop()
    try:

        async def make() -> spead2.recv.asyncio.Stream:
            stream = spead2.recv.asyncio.Stream(pool)
            stream.add_buffer_reader(b"".join(p for heap in heap_packets(3) for p in heap))
            return stream

        stream = loop.run_until_complete(make())
        assert received_indices(list(stream)) == [0, 1, 2]
    finally:
        loop.close()
