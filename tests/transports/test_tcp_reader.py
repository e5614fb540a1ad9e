"""TCP receive over loopback, and the in-place framing of its byte stream."""

import asyncio
import socket
import threading
import time
from types import SimpleNamespace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import spead2
import spead2.recv
import spead2.recv.asyncio
import spead2.send
from spead2.transports import tcp as tcp_transport
from spead2.transports.base import BATCH_PACKETS, GO, PAUSE
from tests.helpers.heaps import check_heaps, heap_packets
from tests.helpers.streams import counting_config
from tests.helpers.waiting import wait_for, wait_for_async, watchdog

TIMEOUT = 10.0


# -- helpers ------------------------------------------------------------------------


def stream_bytes(heaps):
    return b"".join(packet for heap in heaps for packet in heap)


def free_port(host="127.0.0.1"):
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def connect(port, host="127.0.0.1"):
    sock = socket.create_connection((host, port), timeout=TIMEOUT)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def listening(port, host="127.0.0.1"):
    """Whether something listens on ``port`` (a connection attempt is accepted by the kernel)."""
    try:
        with socket.create_connection((host, port), timeout=TIMEOUT):
            return True
    except ConnectionRefusedError:
        return False


# -- the port overload ------------------------------------------------------------------


@pytest.mark.parametrize("max_packet_size", [1472, 100])
def test_port_overload_blocking(pool, max_packet_size):
    port = free_port()
    stream = spead2.recv.Stream(pool, counting_config())
    stream.add_tcp_reader(port, bind_hostname="127.0.0.1")
    with connect(port) as sock:
        sock.sendall(stream_bytes(heap_packets(20, max_packet_size=max_packet_size, end=False)))
    # No stop heap: the connection's end stops the stream.
    with watchdog(stream):
        heaps = list(stream)
    check_heaps(heaps, 20)
    stats = stream.stats
    assert stats["heaps"] == 20
    assert stats["invalid_packets"] == 0
    assert stats["incomplete_heaps_flushed"] == 0


async def test_port_overload_asyncio(pool):
    stream = spead2.recv.asyncio.Stream(pool, counting_config())
    port = free_port()
    stream.add_tcp_reader(port, 65536, 0, "127.0.0.1")
    loop = asyncio.get_running_loop()

    def send():
        with connect(port) as sock:
            sock.sendall(stream_bytes(heap_packets(10)))

    sender = loop.run_in_executor(None, send)

    async def collect():
        return [heap async for heap in stream]

    heaps = await asyncio.wait_for(collect(), TIMEOUT)
    await sender
    check_heaps(heaps, 10)


def test_acceptor_overload_caller_closes_theirs(pool):
    acceptor = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    acceptor.bind(("127.0.0.1", 0))
    acceptor.listen()
    port = acceptor.getsockname()[1]
    stream = spead2.recv.Stream(pool, counting_config())
    stream.add_tcp_reader(acceptor)
    acceptor.close()  # the reader has its own duplicate
    with connect(port) as sock:
        sock.sendall(stream_bytes(heap_packets(5)))
    with watchdog(stream):
        check_heaps(list(stream), 5)


async def test_acceptor_overload_asyncio(pool):
    acceptor = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    acceptor.bind(("127.0.0.1", 0))
    acceptor.listen()
    port = acceptor.getsockname()[1]
    stream = spead2.recv.asyncio.Stream(pool, counting_config())
    stream.add_tcp_reader(acceptor=acceptor, max_size=1000)
    acceptor.close()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(stream_bytes(heap_packets(4)))
    await writer.drain()
    writer.close()

    async def collect():
        return [heap async for heap in stream]

    check_heaps(await asyncio.wait_for(collect(), TIMEOUT), 4)


def test_acceptor_checks(pool):
    stream = spead2.recv.Stream(pool, counting_config())
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        with pytest.raises(TypeError, match="TCP"):
            stream.add_tcp_reader(udp)
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as unbound:
        with pytest.raises(ValueError, match="listening"):
            stream.add_tcp_reader(unbound)
    stream.stop()


def test_overload_errors(pool):
    stream = spead2.recv.Stream(pool, counting_config())
    for args, kwargs in [((), {}), (("7148",), {}), ((7148.5,), {}), ((7148,), {"interface_index": 1})]:
        with pytest.raises(TypeError, match="incompatible function arguments"):
            stream.add_tcp_reader(*args, **kwargs)
    with pytest.raises(ValueError, match="port"):
        stream.add_tcp_reader(65536)
    stream.stop()


def test_bind_failure_is_runtime_error(pool, caplog):
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        stream = spead2.recv.Stream(pool, counting_config())
        with pytest.raises(RuntimeError, match=r"^bind: Address already in use"):
            # A buffer the kernel caps: the bind failure alone is reported.
            stream.add_tcp_reader(
                taken.getsockname()[1], buffer_size=2**31 - 1, bind_hostname="127.0.0.1"
            )
    stream.stop()
    assert "socket buffer" not in caplog.text


def test_unresolvable_hostname(pool):
    stream = spead2.recv.Stream(pool, counting_config())
    with pytest.raises(RuntimeError, match=r"^resolve: "):
        stream.add_tcp_reader(free_port(), bind_hostname="no-such-host.invalid")
    stream.stop()


def test_ipv6(pool):
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as probe:
            probe.bind(("::1", 0))
            port = probe.getsockname()[1]
    except OSError as exc:
        pytest.skip(f"no IPv6 loopback here: {exc}")
    stream = spead2.recv.Stream(pool, counting_config())
    stream.add_tcp_reader(port, bind_hostname="::1")
    with connect(port, "::1") as sock:
        sock.sendall(stream_bytes(heap_packets(3)))
    with watchdog(stream):
        check_heaps(list(stream), 3)


# -- connection handling ------------------------------------------------------------------


def test_accepts_exactly_one_connection(pool):
    port = free_port()
    stream = spead2.recv.Stream(pool, counting_config())
    stream.add_tcp_reader(port, bind_hostname="127.0.0.1")
    with connect(port) as first:
        first.sendall(stream_bytes(heap_packets(1, end=False)))
        with watchdog(stream):
            stream.get()  # the connection was accepted, so the listener is closed
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT).close()
        first.sendall(stream_bytes(heap_packets(2, end=False)[1:]))
    with watchdog(stream):
        check_heaps(list(stream), 1, first=1)


def test_empty_connection_stops_stream(pool):
    port = free_port()
    stream = spead2.recv.Stream(pool, counting_config())
    stream.add_tcp_reader(port, bind_hostname="127.0.0.1")
    connect(port).close()
    with watchdog(stream), pytest.raises(spead2.Stopped):
        stream.get()
    assert stream.stats["packets"] == 0
    assert stream.stats["invalid_packets"] == 0


def test_peer_closes_mid_packet(pool, log):
    port = free_port()
    stream = spead2.recv.Stream(pool, counting_config())
    stream.add_tcp_reader(port, bind_hostname="127.0.0.1")
    whole = heap_packets(2, end=False)
    split = heap_packets(3, samples=200, max_packet_size=400, end=False)[2]  # several packets
    assert len(split) >= 3
    data = stream_bytes(whole) + split[0] + split[1][: len(split[1]) // 2]
    with connect(port) as sock:
        sock.sendall(data)
    with watchdog(stream):
        heaps = list(stream)
    check_heaps(heaps, 2)
    stats = stream.stats
    assert stats["packets"] == 3  # two whole heaps and the first packet of the third
    assert stats["invalid_packets"] == 1  # the cut packet
    assert stats["incomplete_heaps_flushed"] == 1
    assert "middle of a packet" in log.text


def test_packets_spanning_reads(pool):
    port = free_port()
    stream = spead2.recv.Stream(pool, counting_config())
    stream.add_tcp_reader(port, bind_hostname="127.0.0.1")
    data = stream_bytes(heap_packets(3, samples=20, max_packet_size=100))
    sizes = [1, 2, 3, 5, 7, 11, 13]
    with connect(port) as sock:
        offset = 0
        i = 0
        while offset < len(data):
            chunk = data[offset : offset + sizes[i % len(sizes)]]
            sock.sendall(chunk)
            offset += len(chunk)
            i += 1
            if i % 4 == 0:
                time.sleep(0.001)  # let the receiver see the pieces separately
    with watchdog(stream):
        check_heaps(list(stream), 3, samples=20)
    assert stream.stats["invalid_packets"] == 0


def test_packet_larger_than_read_buffer(pool):
    samples = tcp_transport.READ_BUFFER  # 4 bytes each: 4x the initial buffer in one packet
    port = free_port()
    stream = spead2.recv.Stream(pool, counting_config())
    stream.add_tcp_reader(port, max_size=8 * samples, bind_hostname="127.0.0.1")
    heaps = heap_packets(2, samples=samples, max_packet_size=8 * samples)
    assert max(len(p) for heap in heaps for p in heap) > tcp_transport.READ_BUFFER
    with connect(port) as sock:
        sock.sendall(stream_bytes(heaps))
    with watchdog(stream):
        check_heaps(list(stream), 2, samples=samples)


def test_oversized_packets_skipped_across_reads(pool, log):
    port = free_port()
    small = heap_packets(1, samples=10, end=False)[0][0]
    big = heap_packets(2, samples=5000, max_packet_size=30000, end=False)[1][0]
    assert len(big) > 20000
    end = heap_packets(0)[0][0]
    stream = spead2.recv.Stream(pool, counting_config())
    stream.add_tcp_reader(port, max_size=len(small), bind_hostname="127.0.0.1")
    with connect(port) as sock:
        sock.sendall(small)
        for i in range(0, len(big), 1000):  # the skipped packet arrives in many reads
            sock.sendall(big[i : i + 1000])
            if i % 5000 == 0:
                time.sleep(0.001)  # let the receiver see the skipped packet in several reads
        sock.sendall(small + end)
        with watchdog(stream):
            heaps = list(stream)
    assert [heap.cnt for heap in heaps] == [1, 1]  # exactly max_size is accepted
    assert stream.stats["invalid_packets"] == 1
    assert "dropping packet due to truncation" in log.text


def test_invalid_header_resynchronises(pool, log):
    port = free_port()
    heaps = heap_packets(3)
    data = stream_bytes(heaps[:1]) + b"\x00" * 24 + stream_bytes(heaps[1:])
    stream = spead2.recv.Stream(pool, counting_config())
    stream.add_tcp_reader(port, bind_hostname="127.0.0.1")
    with connect(port) as sock:
        sock.sendall(data)
    with watchdog(stream):
        check_heaps(list(stream), 3)
    assert "discarding packet due to invalid header" in log.text
    assert stream.stats["invalid_packets"] == 1  # one run of garbage


# -- start, stop, backpressure, several readers ------------------------------------------


def test_explicit_start_holds_tcp_reader(pool):
    port = free_port()
    stream = spead2.recv.Stream(pool, spead2.recv.StreamConfig(explicit_start=True))
    stream.add_tcp_reader(port, bind_hostname="127.0.0.1")
    with connect(port) as sock:  # the kernel completes the handshake and queues the bytes
        sock.sendall(stream_bytes(heap_packets(4)))
    # What is checked is that nothing happens: no event to wait for, so a reader that
    # was not held gets this long to read the queued bytes.
    time.sleep(0.1)
    with pytest.raises(spead2.Empty):
        stream.get_nowait()
    assert stream.stats["packets"] == 0
    stream.start()
    with watchdog(stream):
        check_heaps(list(stream), 4)


def test_stop_during_traffic_closes_sockets(pool):
    port = free_port()
    stream = spead2.recv.Stream(pool, counting_config())
    stream.add_tcp_reader(port, bind_hostname="127.0.0.1")
    data = stream_bytes(heap_packets(100, end=False))
    failure = []

    def blast():
        try:
            with connect(port) as sock:
                while True:
                    sock.sendall(data)
        except OSError as exc:
            failure.append(exc)

    sender = threading.Thread(target=blast)
    sender.start()
    try:
        with watchdog(stream):
            for _ in range(50):
                stream.get()
        stopper = threading.Thread(target=stream.stop)
        stopper.start()
        stopper.join(TIMEOUT)
        assert not stopper.is_alive()
    finally:
        sender.join(TIMEOUT)
    # The connection was closed under the sender, and nothing listens any more.
    assert not sender.is_alive()
    assert failure and isinstance(failure[0], (ConnectionResetError, BrokenPipeError))
    assert not listening(port)
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as again:
        again.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        again.bind(("127.0.0.1", port))


def test_add_to_stopped_stream_is_ignored_and_closes_socket(pool):
    port = free_port()
    stream = spead2.recv.Stream(pool, counting_config())
    stream.stop()
    stream.add_tcp_reader(port, bind_hostname="127.0.0.1")
    assert not listening(port)


def test_backpressure_is_lossless(pool, caplog):
    port = free_port()
    n = 300
    stream = spead2.recv.Stream(pool, counting_config(), spead2.recv.RingStreamConfig(heaps=2))
    stream.add_tcp_reader(port, bind_hostname="127.0.0.1")
    data = stream_bytes(heap_packets(n, samples=256, max_packet_size=512))

    def send():
        with connect(port) as sock:
            sock.sendall(data)

    sender = threading.Thread(target=send)
    sender.start()
    wait_for(lambda: stream.stats["worker_blocked"] >= 1)  # the reader waits for the consumer
    heaps = []
    with watchdog(stream, 30):
        for heap in stream:
            heaps.append(heap)
            if len(heaps) % 50 == 0:
                time.sleep(0.02)  # a slow consumer
    sender.join(TIMEOUT)
    check_heaps(heaps, n, samples=256)
    assert not [r for r in caplog.records if "full" in r.getMessage()]  # back-pressure is normal over TCP
    stats = stream.stats
    assert stats["incomplete_heaps_evicted"] == 0
    assert stats["invalid_packets"] == 0


async def test_backpressure_is_lossless_asyncio(pool):
    stream = spead2.recv.asyncio.Stream(
        pool, ring_config=spead2.recv.RingStreamConfig(heaps=1)
    )
    port = free_port()
    stream.add_tcp_reader(port, bind_hostname="127.0.0.1")
    _, writer = await asyncio.open_connection("127.0.0.1", port)
    # More than the read buffer holds, so reading must resume after pauses; no stop
    # heap, so the stream ends only when the connection's end has been read.
    writer.write(stream_bytes(heap_packets(100, samples=1000, max_packet_size=1500, end=False)))
    writer.close()

    async def collect():
        await wait_for_async(lambda: stream.stats["worker_blocked"], "the reader to wait for the consumer")
        heaps = []
        async for heap in stream:
            heaps.append(heap)
            if len(heaps) % 20 == 0:
                await asyncio.sleep(0.02)  # the scenario: a slow consumer
        return heaps

    check_heaps(await asyncio.wait_for(collect(), 30), 100, samples=1000)


def test_several_readers_of_different_kinds(pool):
    udp_port = free_port()
    tcp_port = free_port()
    queue = spead2.InprocQueue()
    stream = spead2.recv.Stream(pool, spead2.recv.StreamConfig(max_heaps=4))
    stream.add_udp_reader(udp_port, bind_hostname="127.0.0.1")
    stream.add_tcp_reader(tcp_port, bind_hostname="127.0.0.1")
    stream.add_inproc_reader(queue)
    received = {}

    def take(count):
        with watchdog(stream):
            for _ in range(count):
                heap = stream.get()
                received[heap.cnt] = heap

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        for heap in heap_packets(5, end=False, first_cnt=100):
            for packet in heap:
                udp.sendto(packet, ("127.0.0.1", udp_port))
    for heap in heap_packets(5, end=False, first_cnt=200):
        for packet in heap:
            queue.add_packet(packet)
    take(10)
    with connect(tcp_port) as sock:
        sock.sendall(stream_bytes(heap_packets(5, end=False, first_cnt=300)))
    # The TCP connection's end stops the whole stream, UDP and inproc readers included.
    with watchdog(stream):
        for heap in stream:
            received[heap.cnt] = heap
    assert sorted(received) == [*range(100, 105), *range(200, 205), *range(300, 305)]
    queue.stop()


# -- the framing protocol on its own ------------------------------------------------------


class FakeSink:
    """Records what the framing protocol hands to the stream."""

    def __init__(self, capacity=None):
        self.packets = []
        self.batches = []
        self.invalid = 0
        self.stopped = False
        self.capacity = capacity
        self.loop = None

    def feed(self, packets):
        if packets:
            self.packets += [bytes(p) for p in packets]
            self.batches.append(len(packets))
        return PAUSE if self.ring_full() else GO

    def ring_full(self):
        return self.capacity is not None and len(self.packets) >= self.capacity

    def count_invalid(self, n=1):
        self.invalid += n

    def stop_from_reader(self):
        self.stopped = True


def feed(protocol, data, chunks):
    """Deliver ``data`` through get_buffer/buffer_updated, cut at ``chunks`` sizes (cycled)."""
    offset = 0
    i = 0
    while offset < len(data):
        buffer = protocol.get_buffer(-1)
        assert len(buffer) > 0
        size = min(len(buffer), chunks[i % len(chunks)], len(data) - offset)
        buffer[:size] = data[offset : offset + size]
        protocol.buffer_updated(size)
        offset += size
        i += 1


def make_protocol(sink, max_size, capacity=tcp_transport.READ_BUFFER, min_read=64):
    reader = SimpleNamespace(sink=sink, closed=False)
    return tcp_transport._FramingProtocol(reader, max_size, capacity, min_read)


# Packets of a few hundred bytes to a few KiB; the protocols get a 1 KiB buffer,
# so partial packets are moved to the front and the buffer grows.
PACKETS = [
    p
    for heaps in (
        heap_packets(6, samples=300, max_packet_size=700, end=False),
        heap_packets(3, samples=1000, max_packet_size=5000, first_cnt=50),
    )
    for heap in heaps
    for p in heap
]


@settings(max_examples=150, deadline=None)
@given(
    chunks=st.lists(st.integers(1, 3000), min_size=1, max_size=20),
    garbage_at=st.lists(st.integers(0, len(PACKETS)), max_size=3, unique=True),
    max_size=st.sampled_from([100, 500, 700, 3000, 65536]),
)
def test_framing_any_chunking(chunks, garbage_at, max_size):
    """Whatever the read boundaries, exactly the packets within max_size come out, intact."""
    data = b""
    for i, packet in enumerate(PACKETS):
        if i in garbage_at:
            data += b"\xff" * 16
        data += packet
    if len(PACKETS) in garbage_at:
        data += b"\xff" * 16
    sink = FakeSink()
    protocol = make_protocol(sink, max_size, capacity=1024)
    feed(protocol, data, chunks)
    expected = [p for p in PACKETS if len(p) <= max_size]
    assert sink.packets == expected
    oversized = len(PACKETS) - len(expected)
    assert sink.invalid == oversized + len(garbage_at)
    assert sum(sink.batches) == len(expected)
    assert all(0 < n <= 64 for n in sink.batches)
    # Never more than the largest packet accepted (or the initial size) is buffered.
    assert len(protocol._buffer) <= max(1024, max((len(p) for p in expected), default=0))


def test_framing_exercises_moves_and_growth():
    sink = FakeSink()
    protocol = make_protocol(sink, 65536, capacity=1024)
    buffers = set()
    sizes = set()
    original = protocol.get_buffer

    def get_buffer(sizehint):
        view = original(sizehint)
        buffers.add(id(protocol._buffer))
        sizes.add(len(protocol._buffer))
        return view

    protocol.get_buffer = get_buffer
    feed(protocol, b"".join(PACKETS), [333])
    assert sink.packets == PACKETS
    assert len(buffers) > 2  # partial packets were moved (and the buffer grown)
    assert max(sizes) >= max(len(p) for p in PACKETS)


class _NoTaskLoop:
    """A loop whose tasks never run: the protocol's wait for room stays pending."""

    def create_task(self, coro):
        coro.close()
        return SimpleNamespace(add_done_callback=lambda cb: None)


def pausable_protocol(capacity):
    """A protocol over a FakeSink of ``capacity`` heaps, and the list of its pause_reading calls."""
    sink = FakeSink(capacity=capacity)
    sink.loop = _NoTaskLoop()
    protocol = make_protocol(sink, 65536)
    paused = []
    protocol._transport = SimpleNamespace(pause_reading=lambda: paused.append(True))
    return sink, protocol, paused


def test_framing_pauses_when_ring_full():
    sink, protocol, paused = pausable_protocol(3)
    # The ring is looked at between batches: a whole batch goes in, then reading pauses.
    small = [p for p in PACKETS if len(p) <= 800]
    many = (small * (BATCH_PACKETS // len(small) + 1))[: BATCH_PACKETS + 10]
    assert len(b"".join(many)) < len(protocol.get_buffer(-1))  # arrives in one read
    feed(protocol, b"".join(many), [1 << 20])
    assert len(sink.packets) == BATCH_PACKETS  # the rest stays buffered, not lost
    assert paused == [True]
    sink.capacity = None
    assert protocol._process() is False
    assert sink.packets == many


def test_framing_pauses_after_a_short_batch_that_fills_the_ring():
    sink, protocol, paused = pausable_protocol(3)
    feed(protocol, b"".join(PACKETS[:6]), [100000])
    assert sink.packets == PACKETS[:6]
    assert paused == [True]  # no more data is read until the consumer makes room


def test_framing_counts_partial_packet_at_eof():
    sink = FakeSink()
    protocol = make_protocol(sink, 65536)
    feed(protocol, PACKETS[0] + PACKETS[1][:10], [7])
    protocol.connection_lost(None)
    assert sink.packets == [PACKETS[0]]
    assert sink.invalid == 1
    assert sink.stopped


def test_framing_huge_header_is_bounded():
    """A header announcing 65535 item pointers needs at most 512 KiB before it can be judged."""
    sink = FakeSink()
    protocol = make_protocol(sink, 1000, capacity=1024)
    header = bytes([0x53, 0x04, 0x02, 0x06, 0, 0, 0xFF, 0xFF])
    feed(protocol, header + b"\x00" * (8 * 65535), [65536])
    # No PAYLOAD_LENGTH among the pointers: invalid header, resynchronise past it.
    assert sink.invalid == 1
    assert len(protocol._buffer) == 8 + 8 * 65535
    feed(protocol, PACKETS[0], [len(PACKETS[0])])
    assert sink.packets == [PACKETS[0]]


def _header_announcing(payload_length: int) -> bytes:
    """A 40-byte SPEAD-64-48 packet header (4 pointers) announcing ``payload_length`` bytes."""
    immediate = 1 << 63
    pointers = [
        immediate | (0x01 << 48) | 1,  # HEAP_CNT
        immediate | (0x02 << 48) | payload_length,  # HEAP_SIZE
        immediate | (0x03 << 48) | 0,  # PAYLOAD_OFFSET
        immediate | (0x04 << 48) | payload_length,  # PAYLOAD_LENGTH
    ]
    header = bytes([0x53, 0x04, 0x02, 0x06, 0, 0, 0, 4])
    return header + b"".join(p.to_bytes(8, "big") for p in pointers)


def test_framing_memory_follows_bytes_received_with_a_large_max_size():
    """A header announcing a huge packet costs memory only as its bytes arrive."""
    sink = FakeSink()
    protocol = make_protocol(sink, 1 << 30, capacity=1024)
    announced = 64 << 20
    payload = bytes(range(256)) * (3 * 4096)  # 3 MiB of the 64 MiB announced
    feed(protocol, _header_announcing(announced), [40])
    protocol.get_buffer(-1)
    assert len(protocol._buffer) == 1024  # not the 64 MiB the header asks for
    received = 40
    for chunk in range(0, len(payload), 100_000):
        part = payload[chunk : chunk + 100_000]
        feed(protocol, part, [65536])
        received += len(part)
        protocol.get_buffer(-1)
        # At most about twice what arrived (growth by doubling), plus the read margin.
        assert len(protocol._buffer) <= 2 * received + 1024 + 64
    assert sink.packets == []
    # The whole packet still comes out intact once it has all arrived.
    sink2 = FakeSink()
    protocol2 = make_protocol(sink2, 1 << 30, capacity=1024)
    packet = _header_announcing(len(payload)) + payload
    feed(protocol2, packet + PACKETS[0], [65536])
    assert sink2.packets == [packet, PACKETS[0]]
    # ... and the buffer goes back to its usual size once the large packet is consumed.
    protocol2.get_buffer(-1)
    assert len(protocol2._buffer) == 1024
