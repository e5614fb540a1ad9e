"""End-to-end receive streams: real packets from our sender through buffer and inproc readers."""

import asyncio
import gc
import logging
import os
import select
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

import spead2
import spead2.recv
import spead2.recv.asyncio
import spead2.send
import spead2.send.asyncio
from spead2.transports.base import BATCH_BYTES, BATCH_MAX_PACKETS
from tests.helpers.waiting import wait_for, wait_for_async


def make_group():
    group = spead2.send.ItemGroup()
    group.add_item(0x1000, "index", "Heap index", (), format=[("u", 32)])
    group.add_item(0x1001, "data", "Samples", (64,), dtype="<i4")
    group.add_item(0x1002, "text", "Label", (None,), format=[("c", 8)])
    return group


def heap_values(i):
    return i, np.arange(64, dtype="<i4") * i, f"heap-{i}"


def encode_heaps(pool, n, end=True, max_packet_size=1472):
    group = make_group()
    stream = spead2.send.BytesStream(pool, spead2.send.StreamConfig(max_packet_size=max_packet_size))
    for i in range(n):
        index, data, text = heap_values(i)
        group["index"].value = index
        group["data"].value = data
        group["text"].value = text
        stream.send_heap(group.get_heap())
    if end:
        stream.send_heap(group.get_end())
    return stream.getvalue()


def check_heaps(heaps, n):
    group = spead2.ItemGroup()
    seen = []
    for heap in heaps:
        updated = group.update(heap)
        if "index" in updated:
            index, data, text = heap_values(int(updated["index"].value))
            np.testing.assert_array_equal(updated["data"].value, data)
            assert updated["text"].value == text
            seen.append(index)
    assert seen == list(range(n))


def test_buffer_reader_blocking(pool):
    stream = spead2.recv.Stream(pool)
    stream.add_buffer_reader(encode_heaps(pool, 20))
    check_heaps(list(stream), 20)
    stats = stream.stats
    assert stats["heaps"] == 20
    assert stats["packets"] == 21  # the stop heap's packet counts too
    assert stats["incomplete_heaps_evicted"] == 0
    with pytest.raises(spead2.Stopped):
        stream.get()


def test_buffer_reader_multi_packet_heaps(pool):
    stream = spead2.recv.Stream(pool)
    stream.add_buffer_reader(encode_heaps(pool, 10, max_packet_size=128))
    check_heaps(list(stream), 10)
    assert stream.stats["packets"] > 30


async def test_buffer_reader_asyncio_on_running_loop(pool):
    stream = spead2.recv.asyncio.Stream(pool)
    assert stream._core.loop is asyncio.get_running_loop()
    stream.add_buffer_reader(encode_heaps(pool, 15))
    check_heaps([heap async for heap in stream], 15)


async def test_asyncio_stream_built_outside_loop_uses_pool(pool):
    stream = await asyncio.to_thread(spead2.recv.asyncio.Stream, pool)
    assert stream._core.loop is not asyncio.get_running_loop()
    stream.add_buffer_reader(encode_heaps(pool, 5))
    check_heaps([heap async for heap in stream], 5)


def test_inproc_blocking(pool):
    queue = spead2.InprocQueue()
    sender = spead2.send.InprocStream(pool, [queue])
    stream = spead2.recv.Stream(pool)
    stream.add_inproc_reader(queue)
    group = make_group()
    for i in range(8):
        group["index"].value, group["data"].value, group["text"].value = heap_values(i)
        sender.send_heap(group.get_heap())
    queue.stop()
    check_heaps(list(stream), 8)


async def test_inproc_asyncio_concurrent_gets_in_call_order(pool):
    queue = spead2.InprocQueue()
    stream = spead2.recv.asyncio.Stream(pool)
    stream.add_inproc_reader(queue)
    getters = [asyncio.create_task(stream.get()) for _ in range(4)]
    await wait_for_async(lambda: len(stream._core.ring._async_waiters) == 4, "the four gets to wait")
    sender = spead2.send.asyncio.InprocStream(pool, [queue])
    group = make_group()
    for i in range(4):
        group["index"].value, group["data"].value, group["text"].value = heap_values(i)
        await sender.async_send_heap(group.get_heap(descriptors="all", data="all"))
    heaps = await asyncio.wait_for(asyncio.gather(*getters), 10)
    assert [heap.cnt for heap in heaps] == sorted(heap.cnt for heap in heaps)
    queue.stop()
    with pytest.raises(spead2.Stopped):
        await asyncio.wait_for(stream.get(), 10)


async def test_asyncio_get_cancelled_by_timeouts_loses_no_heap(pool):
    """``asyncio.wait_for(stream.get(), t)`` timing out, again and again, loses no heap.

    The heaps arrive a few packets at a time while the consumer gives up its
    ``get()`` after 0, 10 µs or 100 µs, so cancellations land before, while
    and just after heaps are handed over.
    """
    n = 300
    packets = list(_split_packets(encode_heaps(pool, n)))
    queue = spead2.InprocQueue()
    stream = spead2.recv.asyncio.Stream(pool)
    stream.add_inproc_reader(queue)

    async def feed():
        for i, packet in enumerate(packets):
            queue.add_packet(packet)
            if i % 5 == 0:
                await asyncio.sleep(0.0001)
        queue.stop()

    feeder = asyncio.create_task(feed())
    heaps = []
    timeouts = 0
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            heaps.append(await asyncio.wait_for(stream.get(), (0, 1e-5, 1e-4)[timeouts % 3]))
        except TimeoutError:
            timeouts += 1
        except spead2.Stopped:
            break
    await feeder
    assert timeouts > 0  # cancellations really happened
    check_heaps(heaps, n)


async def test_asyncio_cancelled_async_for_task_leaves_the_heap_for_the_next(pool):
    queue = spead2.InprocQueue()
    stream = spead2.recv.asyncio.Stream(pool)
    stream.add_inproc_reader(queue)

    async def first_heap():
        async for heap in stream:
            return heap

    waiting = asyncio.create_task(first_heap())
    await wait_for_async(lambda: stream._core.ring._async_waiters, "the task to wait inside async for")
    waiting.cancel()
    for packet in _split_packets(encode_heaps(pool, 3)):
        queue.add_packet(packet)
    queue.stop()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    heaps = [heap async for heap in stream]
    check_heaps(heaps, 3)


def test_explicit_start_holds_readers(pool):
    stream = spead2.recv.Stream(pool, spead2.recv.StreamConfig(explicit_start=True))
    stream.add_buffer_reader(encode_heaps(pool, 3))
    # What is checked is that nothing happens: no event to wait for, so a reader that
    # was not held gets this long to deliver.
    time.sleep(0.05)
    with pytest.raises(spead2.Empty):
        stream.get_nowait()
    stream.start()
    stream.start()  # harmless
    with pytest.raises(RuntimeError, match="Cannot add readers after explicit start"):
        stream.add_inproc_reader(spead2.InprocQueue())
    check_heaps(list(stream), 3)


def test_start_is_noop_without_explicit_start(pool):
    stream = spead2.recv.Stream(pool)
    stream.start()
    stream.add_buffer_reader(encode_heaps(pool, 2))
    check_heaps(list(stream), 2)


def test_user_stop_keeps_queued_heaps_and_ignores_new_readers(pool):
    queue = spead2.InprocQueue()
    stream = spead2.recv.Stream(pool, ring_config=spead2.recv.RingStreamConfig(heaps=8))
    stream.add_inproc_reader(queue)
    packets = encode_heaps(pool, 3, end=False)
    for packet in _split_packets(packets):
        queue.add_packet(packet)
    wait_for(lambda: stream.ringbuffer.size() >= 3, "3 heaps in the ring")
    stream.stop()
    stream.stop()  # idempotent
    stream.add_inproc_reader(spead2.InprocQueue())  # silently ignored
    check_heaps(list(stream), 3)
    with pytest.raises(spead2.Stopped):
        stream.get_nowait()


def _split_packets(data):
    from spead2.protocols.packet import packet_size

    view = memoryview(data)
    offset = 0
    while offset < len(view):
        size = packet_size(view, offset)
        yield bytes(view[offset : offset + size])
        offset += size


def test_backpressure_is_lossless(pool, caplog):
    n = 3 * BATCH_MAX_PACKETS  # several reader batches
    stream = spead2.recv.Stream(pool, ring_config=spead2.recv.RingStreamConfig(heaps=2))
    stream.add_buffer_reader(encode_heaps(pool, n))
    heaps = []
    for heap in stream:
        heaps.append(heap)
        if len(heaps) % 500 == 0:
            time.sleep(0.02)  # let the ring fill so the reader has to wait
    check_heaps(heaps, n)
    assert stream.stats["worker_blocked"] > 0
    assert stream.stats["heaps"] == n
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]  # a buffer loses nothing by waiting


def test_ring_occupancy_bounded_by_capacity_plus_batch(pool):
    stream = spead2.recv.Stream(pool, ring_config=spead2.recv.RingStreamConfig(heaps=3))
    data = encode_heaps(pool, 14000)
    per_heap = len(data) / 14001
    assert len(data) > 2 * BATCH_BYTES
    stream.add_buffer_reader(data)
    wait_for(lambda: stream.stats["worker_blocked"], "the reader to wait for room in the ring")
    assert stream.ringbuffer.capacity() == 3
    # A reader of memory looks at the ring between batches (BATCH_BYTES, at
    # most BATCH_MAX_PACKETS packets), so the ring fills and overshoots by what
    # one batch completes, no more. (These heaps are one small packet each.)
    assert 3 <= stream.ringbuffer.size() <= 3 + min(BATCH_BYTES / per_heap, BATCH_MAX_PACKETS)
    assert stream.stats["worker_blocked"] >= 1
    check_heaps(list(stream), 14000)


def test_buffer_reader_hands_over_a_whole_batch_before_pausing(pool):
    """One GIL hand-over per batch: the reader does not stop mid-batch at a full ring."""
    stream = spead2.recv.Stream(pool, ring_config=spead2.recv.RingStreamConfig(heaps=3))
    data = encode_heaps(pool, 2 * BATCH_MAX_PACKETS)  # one small packet per heap
    assert len(data) < BATCH_BYTES  # so the packet count ends the batch
    stream.add_buffer_reader(data)
    wait_for(lambda: stream.stats["worker_blocked"], "the reader to wait for room in the ring")
    # The whole batch is processed (and counted); the ring shows its capacity,
    # the rest is held by the reader until the consumer makes room.
    assert stream.stats["heaps"] == BATCH_MAX_PACKETS
    assert stream.ringbuffer.size() == 3
    assert len(list(stream)) == 2 * BATCH_MAX_PACKETS  # nothing lost


def test_one_consumer_wakeup_per_batch(pool):
    """64 single-packet heaps arriving in one reader batch are published (woken) once."""
    n = 64
    queue = spead2.InprocQueue()
    for packet in _split_packets(encode_heaps(pool, n, end=False)):
        queue.add_packet(packet)
    stream = spead2.recv.Stream(
        pool,
        spead2.recv.StreamConfig(explicit_start=True),
        spead2.recv.RingStreamConfig(heaps=n),
    )
    stream.add_inproc_reader(queue)
    ring = stream._core.ring
    heaps_at_publish = []
    original = ring.publish
    ring.publish = lambda: (heaps_at_publish.append(ring.size()), original())[1]
    stream.start()
    heaps = [stream.get() for _ in range(n)]
    assert len(heaps) == n
    assert heaps_at_publish[0] == n


def test_inproc_backpressure_is_counted_not_warned(pool, caplog):
    """An in-process queue waits for the consumer (lossless): counted, no "ring full" warning."""
    n = 200
    queue = spead2.InprocQueue()
    for packet in _split_packets(encode_heaps(pool, n)):
        queue.add_packet(packet)
    stream = spead2.recv.Stream(pool, ring_config=spead2.recv.RingStreamConfig(heaps=2))
    stream.add_inproc_reader(queue)
    wait_for(lambda: stream.stats["worker_blocked"], "the reader to wait for room in the ring")
    assert stream.stats["worker_blocked"] >= 1
    check_heaps(list(stream), n)
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


def test_stop_heap_ends_stream_and_is_not_delivered(pool):
    stream = spead2.recv.Stream(pool)
    data = encode_heaps(pool, 2) + encode_heaps(pool, 2)  # heaps after the first stop are ignored
    stream.add_buffer_reader(data)
    heaps = list(stream)
    assert len(heaps) == 2
    assert not any(heap.is_end_of_stream() for heap in heaps)


def test_stop_on_stop_item_false_delivers_it(pool):
    stream = spead2.recv.Stream(pool, spead2.recv.StreamConfig(stop_on_stop_item=False))
    stream.add_buffer_reader(encode_heaps(pool, 2))
    heaps = list(stream)
    assert len(heaps) == 3 and heaps[-1].is_end_of_stream()


def test_fd_becomes_readable(pool):
    stream = spead2.recv.Stream(pool)
    fd = stream.fd
    assert select.select([fd], [], [], 0)[0] == []
    stream.add_buffer_reader(encode_heaps(pool, 1))
    assert select.select([fd], [], [], 10)[0] == [fd]


def test_dropped_stream_stops_itself(pool):
    queue = spead2.InprocQueue()
    stream = spead2.recv.Stream(pool)
    stream.add_inproc_reader(queue)
    core = stream._core
    del stream
    gc.collect()
    wait_for(lambda: core.stopped, "the dropped stream to stop", timeout=5)
    assert core.stopped and core.ring.stopped and not core.readers


def test_constructor_type_errors(pool):
    with pytest.raises(TypeError, match="thread_pool"):
        spead2.recv.Stream(None)
    with pytest.raises(TypeError, match="config"):
        spead2.recv.Stream(pool, spead2.recv.RingStreamConfig())
    stream = spead2.recv.Stream(pool)
    with pytest.raises(TypeError):
        stream.add_buffer_reader("not bytes")
    with pytest.raises(TypeError):
        stream.add_inproc_reader(object())
    stream.stop()


def test_config_is_copied(pool):
    config = spead2.recv.StreamConfig(max_heaps=7)
    stream = spead2.recv.Stream(pool, config)
    config.max_heaps = 9
    assert stream.config.max_heaps == 7
    stream.config.max_heaps = 11
    assert stream.config.max_heaps == 7
    stream.stop()


@pytest.mark.skipif(sys.platform == "win32", reason="needs POSIX signals")
def test_ctrl_c_interrupts_blocking_get():
    code = textwrap.dedent(
        """
        import spead2, spead2.recv
        stream = spead2.recv.Stream(spead2.ThreadPool())
        stream.add_inproc_reader(spead2.InprocQueue())
        print("waiting", flush=True)
        try:
            stream.get()
        except KeyboardInterrupt:
            print("interrupted", flush=True)
        """
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        cwd=os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
    )
    try:
        assert proc.stdout.readline().strip() == "waiting"
        # "waiting" is printed just before the blocking get(), which shows nothing from
        # outside: this gives the child time to be inside it when the signal comes.
        time.sleep(0.2)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=10)
    finally:
        proc.kill()
    assert out.strip() == "interrupted", err
    assert proc.returncode == 0, err


def test_asyncio_stream_stopped_after_its_loop_closed_releases_sockets(pool):
    import socket

    async def make():
        stream = spead2.recv.asyncio.Stream(pool)
        stream.add_udp_reader(0, bind_hostname="127.0.0.1")
        stream.add_tcp_reader(0, bind_hostname="127.0.0.1")
        return stream

    stream = asyncio.run(make())  # the stream's loop is closed when this returns
    sockets = [reader._sock for reader in stream._core.readers if hasattr(reader, "_sock")]
    listeners = [reader._listener for reader in stream._core.readers if hasattr(reader, "_listener")]
    assert sockets and listeners
    ports = [s.getsockname()[1] for s in sockets + listeners]
    stream.stop()
    assert stream._core.stopped and not stream._core.readers
    assert all(s.fileno() == -1 for s in sockets + listeners)
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.bind(("127.0.0.1", ports[0]))  # the port is free again
    udp.close()
    with pytest.raises(spead2.Stopped):
        stream.get_nowait()


async def test_ended_asyncio_stream_is_freed_without_the_cycle_collector(pool):
    """An ``async for`` that ran to the stream's end leaves no reference cycle behind.

    Regression: waiters were failed with an exception stored in their future,
    whose traceback held the waiting frame and so the future, the stream and
    its last heap, until the cyclic collector ran (51 MiB over a benchmark's
    sequence of streams).
    """
    import weakref

    gc.collect()
    gc.disable()
    try:
        queue = spead2.InprocQueue()
        stream = spead2.recv.asyncio.Stream(pool)
        stream.add_inproc_reader(queue)

        async def feed():
            # The scenario: the consumer is already waiting when packets and the end come.
            await asyncio.sleep(0.02)
            for packet in _split_packets(encode_heaps(pool, 3, end=False)):
                queue.add_packet(packet)
            await asyncio.sleep(0.02)
            queue.stop()  # reaches the consumer through a waiter's future

        feeder = asyncio.create_task(feed())
        heaps = [heap async for heap in stream]
        await feeder
        assert len(heaps) == 3
        core = weakref.ref(stream._core)
        del stream, heaps
        assert core() is None
    finally:
        gc.enable()


def test_awaiting_a_stream_whose_loop_has_closed_raises_at_once(pool):
    """Created in one asyncio.run, awaited in a later one: heaps already queued, then an error."""
    queue = spead2.InprocQueue()

    async def make():
        stream = spead2.recv.asyncio.Stream(pool)
        stream.add_inproc_reader(queue)
        for packet in spead2.send.PacketGenerator(make_group().get_heap(), 1, 1472):
            queue.add_packet(packet)
        await wait_for_async(lambda: stream.ringbuffer.size(), "a heap in the ring")
        return stream

    stream = asyncio.run(make())
    for packet in spead2.send.PacketGenerator(make_group().get_heap(), 2, 1472):
        queue.add_packet(packet)  # would need the closed loop to be received

    async def consume():
        heap = await asyncio.wait_for(stream.get(), 5)
        assert heap.cnt == 1  # what had arrived is still delivered
        with pytest.raises(RuntimeError, match="belongs to event loop .* which is closed"):
            await asyncio.wait_for(stream.get(), 5)

    asyncio.run(consume())
    stream.stop()
    with pytest.raises(spead2.Stopped):
        stream.get_nowait()


def test_blocking_get_on_a_stream_whose_pool_was_stopped_raises():
    pool = spead2.ThreadPool()
    stream = spead2.recv.Stream(pool)
    stream.add_inproc_reader(spead2.InprocQueue())
    pool.stop()
    with pytest.raises(RuntimeError, match="which is closed"):
        stream.get()  # no heap can ever arrive: it used to wait for ever
