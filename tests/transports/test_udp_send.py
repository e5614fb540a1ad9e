"""UDP send streams over loopback: every constructor form, substreams, packet sizes, errors,
scatter/gather, asyncio backpressure and rate limiting (with a fake clock)."""

from __future__ import annotations

import asyncio
import errno
import gc
import logging
import os
import socket
import struct

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import spead2
import spead2.recv
import spead2.send
from spead2.send import asyncio as send_asyncio
from spead2.send._network_streams import UdpStream
from spead2.send._stream import AsyncStream
from spead2.transports import udp_send
from spead2.transports.timer import TimerSleeper
from spead2.transports.udp_send import AsyncUdpTransport, UdpTransport
from tests.helpers.clock import FakeClock, use_fake_clock
from tests.helpers.heaps import numbered_bytes_heap
from tests.helpers.waiting import watchdog

TIMEOUT = 5.0
STREAM_CLASSES = [UdpStream, send_asyncio.UdpStream]


# -- helpers ------------------------------------------------------------------------


def expected(heap: spead2.send.Heap, cnt: int, max_packet_size: int = 1472) -> list[bytes]:
    return list(spead2.send.PacketGenerator(heap, cnt, max_packet_size))


class Receiver:
    """A plain UDP socket on loopback that collects datagrams."""

    def __init__(self, family: socket.AddressFamily = socket.AF_INET, host: str = "127.0.0.1"):
        self.sock = socket.socket(family, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        self.sock.bind((host, 0))
        self.sock.settimeout(TIMEOUT)
        self.port = self.sock.getsockname()[1]
        self.endpoint = (host, self.port)

    def take(self, n: int) -> list[bytes]:
        return [self.sock.recv(70000) for _ in range(n)]

    def take_from(self, n: int) -> list[tuple[bytes, tuple]]:
        return [self.sock.recvfrom(70000) for _ in range(n)]

    def assert_empty(self) -> None:
        self.sock.setblocking(False)
        with pytest.raises(BlockingIOError):
            self.sock.recv(70000)
        self.sock.settimeout(TIMEOUT)

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.close()


def transport_of(stream: spead2.send.Stream) -> UdpTransport:
    return stream._transport  # type: ignore[attr-defined,no-any-return]


def send_one(stream: spead2.send.Stream, heap: spead2.send.Heap, **kwargs: object) -> int:
    """``send_heap`` on a sync stream, ``async_send_heap`` (awaited) on an asyncio one."""
    if isinstance(stream, AsyncStream):
        async def run() -> int:
            return await stream.async_send_heap(heap, **kwargs)
        return asyncio.run(run())
    return stream.send_heap(heap, **kwargs)  # type: ignore[attr-defined,no-any-return]


# -- bytes on the wire --------------------------------------------------------------------


@pytest.mark.parametrize("cls", STREAM_CLASSES)
def test_datagrams_are_the_generator_packets(pool, receiver, cls):
    stream = cls(pool, [receiver.endpoint])
    assert stream.num_substreams == 1
    heaps = [numbered_bytes_heap(5000, i) for i in range(3)]
    sizes = [send_one(stream, heap, cnt=10 + i) for i, heap in enumerate(heaps)]
    want = [expected(heap, 10 + i) for i, heap in enumerate(heaps)]
    assert sizes == [sum(map(len, packets)) for packets in want]
    for packets in want:
        assert receiver.take(len(packets)) == packets
    receiver.assert_empty()


def test_automatic_cnts_and_heap_rates(pool, receiver):
    stream = UdpStream(pool, [receiver.endpoint])
    stream.set_cnt_sequence(7, 3)
    heap = numbered_bytes_heap(100)
    stream.send_heap(heap)
    stream.send_heap(heap, rate=1e12)
    stream.send_heap(heap)
    got = receiver.take(3)
    assert got == expected(heap, 7) + expected(heap, 10) + expected(heap, 13)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(n_bytes=st.integers(0, 20000), max_packet_size=st.integers(64, 9000))
def test_packets_never_exceed_max_packet_size(pool, receiver, n_bytes, max_packet_size):
    config = spead2.send.StreamConfig(max_packet_size=max_packet_size)
    stream = UdpStream(pool, [receiver.endpoint], config)
    heap = numbered_bytes_heap(n_bytes, descriptors="none")
    want = expected(heap, 1, max_packet_size)
    assert stream.send_heap(heap, cnt=1) == sum(map(len, want))
    got = receiver.take(len(want))
    assert got == want
    assert all(len(packet) <= max_packet_size for packet in got)


def test_scatter_gather_sends_item_memory_without_joining(pool, receiver, monkeypatch):
    """Packets reach the kernel as header bytes plus views of the item's own buffer."""
    data = np.arange(4000, dtype=np.uint8)
    heap = spead2.send.Heap()
    heap.add_item(spead2.Item(0x1000, "x", "", shape=data.shape, dtype=data.dtype, value=data))
    stream = UdpStream(pool, [receiver.endpoint])
    transport = transport_of(stream)
    calls: list[list[object]] = []
    real = transport._sendmsg

    def spy(buffers, *args):
        calls.append(list(buffers))
        return real(buffers, *args)

    transport._sendmsg = spy
    stream.send_heap(heap)
    assert len(calls) == len(expected(heap, 1)) > 1
    views = [b for call in calls for b in call if isinstance(b, memoryview)]
    assert views, "payload was not passed as views"
    # Every view's memory lies inside the item's array (no copy was made).
    base = data.ctypes.data
    for view in views:
        address = np.frombuffer(view, dtype=np.uint8).ctypes.data if len(view) else base
        assert base <= address <= base + data.nbytes
    receiver.take(len(calls))


@pytest.mark.parametrize("cls", STREAM_CLASSES)
def test_packet_with_more_buffers_than_iov_max(pool, receiver, cls):
    """A packet of more than IOV_MAX pieces is still one datagram with the right bytes."""
    heap = spead2.send.Heap()
    n_items = udp_send.IOV_MAX + 50
    for i in range(n_items):
        value = np.full(16, i % 256, dtype=np.uint8)
        heap.add_item(spead2.Item(0x1000 + i, f"x{i}", "", shape=(16,), dtype=np.uint8, value=value))
    config = spead2.send.StreamConfig(max_packet_size=65000)
    want = expected(heap, 1, 65000)
    assert len(want) == 1
    stream = cls(pool, [receiver.endpoint], config)
    send_one(stream, heap, cnt=1)
    assert receiver.take(1) == want


# -- substreams ---------------------------------------------------------------------------


@pytest.mark.parametrize("mode", [spead2.send.GroupMode.ROUND_ROBIN, spead2.send.GroupMode.SERIAL])
def test_substreams_go_to_their_endpoints(pool, mode):
    receivers = [Receiver() for _ in range(3)]
    try:
        stream = UdpStream(pool, [r.endpoint for r in receivers])
        assert stream.num_substreams == 3
        heaps = [numbered_bytes_heap(4000, i) for i in range(3)]
        refs = [spead2.send.HeapReference(h, cnt=i + 1, substream_index=2 - i)
                for i, h in enumerate(heaps)]
        total = stream.send_heaps(refs, mode)
        assert total == sum(len(p) for i, h in enumerate(heaps) for p in expected(h, i + 1))
        for i, heap in enumerate(heaps):
            want = expected(heap, i + 1)
            assert receivers[2 - i].take(len(want)) == want
        for r in receivers:
            r.assert_empty()
        with pytest.raises(OSError) as info:
            stream.send_heap(heaps[0], substream_index=3)
        assert info.value.errno == errno.EINVAL
    finally:
        for r in receivers:
            r.close()


@pytest.mark.parametrize("mode", [spead2.send.GroupMode.ROUND_ROBIN, spead2.send.GroupMode.SERIAL])
def test_group_mode_order_on_the_wire(pool, receiver, mode):
    """Two substreams to one socket show the interleaving: packets alternate in ROUND_ROBIN."""
    stream = UdpStream(pool, [receiver.endpoint, receiver.endpoint])
    heaps = [numbered_bytes_heap(6000, 0), numbered_bytes_heap(6000, 1)]
    refs = [spead2.send.HeapReference(h, cnt=i + 1, substream_index=i) for i, h in enumerate(heaps)]
    stream.send_heaps(refs, mode)
    a, b = expected(heaps[0], 1), expected(heaps[1], 2)
    got = receiver.take(len(a) + len(b))
    if mode is spead2.send.GroupMode.SERIAL:
        assert got == a + b
    else:
        assert got == [p for pair in zip(a, b, strict=True) for p in pair]


# -- constructor forms --------------------------------------------------------------------


@pytest.mark.parametrize("cls", STREAM_CLASSES)
def test_ipv6_loopback(pool, cls):
    try:
        r = Receiver(socket.AF_INET6, "::1")
    except OSError:
        pytest.skip("no IPv6 loopback")
    try:
        stream = cls(pool, [("::1", r.port)])
        heap = numbered_bytes_heap(3000)
        send_one(stream, heap, cnt=5)
        want = expected(heap, 5)
        assert r.take(len(want)) == want
    finally:
        r.close()


def test_localhost_name_resolves(pool, receiver):
    stream = UdpStream(pool, [("localhost", receiver.port)])
    if transport_of(stream).socket.family != socket.AF_INET:
        pytest.skip("localhost resolves to IPv6 first here")
    stream.send_heap(numbered_bytes_heap(10), cnt=1)
    assert receiver.take(1) == expected(numbered_bytes_heap(10), 1)


def test_interface_address_is_the_source(pool, receiver):
    stream = UdpStream(pool, [receiver.endpoint], spead2.send.StreamConfig(), 0, "127.0.0.1")
    sock = transport_of(stream).socket
    assert sock.getsockname()[0] == "127.0.0.1"
    stream.send_heap(numbered_bytes_heap(10))
    (_, source), = receiver.take_from(1)
    assert source == sock.getsockname()


def test_buffer_size(pool, receiver, caplog):
    assert UdpStream.DEFAULT_BUFFER_SIZE == send_asyncio.UdpStream.DEFAULT_BUFFER_SIZE == 524288
    stream = UdpStream(pool, [receiver.endpoint], buffer_size=65536)
    granted = transport_of(stream).socket.getsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF)
    assert granted >= 65536
    with caplog.at_level(logging.WARNING, logger="spead2"):
        UdpStream(pool, [receiver.endpoint], buffer_size=2**40)
    assert "requested socket buffer size 1099511627776 but only received" in caplog.text


def _join_ipv4(group: str, interface: str) -> socket.socket | None:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((group, 0))
        mreq = socket.inet_aton(group) + socket.inet_aton(interface)
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, mreq)
    except OSError:
        sock.close()
        return None
    sock.settimeout(TIMEOUT)
    return sock


@pytest.mark.parametrize("cls", STREAM_CLASSES)
def test_ipv4_multicast_on_loopback(pool, cls):
    group = "239.255.41.7"
    sock = _join_ipv4(group, "127.0.0.1")
    if sock is None:
        pytest.skip("cannot join an IPv4 multicast group on the loopback interface")
    try:
        port = sock.getsockname()[1]
        stream = cls(pool, [(group, port)], spead2.send.StreamConfig(), 65536, 3, "127.0.0.1")
        tsock = transport_of(stream).socket
        assert tsock.getsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL) == 3
        assert tsock.getsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, 4) == socket.inet_aton(
            "127.0.0.1"
        )
        heap = numbered_bytes_heap(3000)
        send_one(stream, heap, cnt=9)
        want = expected(heap, 9)
        try:
            got = [sock.recv(70000) for _ in want]
        except TimeoutError:
            pytest.skip("multicast is not delivered on loopback here")
        assert got == want
    finally:
        sock.close()


def test_ttl_only_form(pool):
    stream = UdpStream(pool, [("239.255.41.8", 7148)], ttl=5)
    sock = transport_of(stream).socket
    assert sock.getsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL) == 5
    # Positional, as pybind11 allows: (endpoints, config, buffer_size, ttl).
    stream = UdpStream(pool, [("239.255.41.8", 7148)], None, 0, 7)
    assert transport_of(stream).socket.getsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL) == 7


def test_ipv6_multicast_options(pool):
    try:
        stream = UdpStream(pool, [("ff02::1:7", 7148)], ttl=4, interface_index=1)
    except RuntimeError as exc:
        pytest.skip(f"IPv6 multicast unavailable: {exc}")
    sock = transport_of(stream).socket
    assert sock.family == socket.AF_INET6
    assert sock.getsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_HOPS) == 4
    assert sock.getsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_IF) == 1
    # The TTL-only form sets the IPv6 hop limit.
    stream = UdpStream(pool, [("ff02::1:7", 7148)], ttl=6)
    assert transport_of(stream).socket.getsockopt(
        socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_HOPS
    ) == 6
    with pytest.raises(RuntimeError, match="^set_option: "):
        UdpStream(pool, [("ff02::1:7", 7148)], ttl=4, interface_index=99999)


@pytest.mark.parametrize("cls", STREAM_CLASSES)
def test_existing_socket(pool, receiver, cls):
    user = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    user.bind(("127.0.0.1", 0))
    user.setblocking(False)
    stream = cls(pool, user, [receiver.endpoint, receiver.endpoint])
    assert stream.num_substreams == 2
    source = user.getsockname()
    user.close()  # the stream has its own duplicate
    heap = numbered_bytes_heap(3000)
    send_one(stream, heap, cnt=4, substream_index=1)
    want = expected(heap, 4)
    got = receiver.take_from(len(want))
    assert [data for data, _ in got] == want
    assert {addr for _, addr in got} == {source}


def test_existing_socket_blocking_mode_is_left_alone(pool, receiver):
    user = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        user.setblocking(False)
        UdpStream(pool, user, [receiver.endpoint]).send_heap(numbered_bytes_heap(10))
        assert not os.get_blocking(user.fileno())
        user.setblocking(True)
        send_asyncio.UdpStream(pool, user, [receiver.endpoint])
        assert os.get_blocking(user.fileno())
        receiver.take(1)
    finally:
        user.close()


# -- errors -------------------------------------------------------------------------------


@pytest.mark.parametrize("cls", STREAM_CLASSES)
def test_constructor_errors(pool, receiver, cls):
    with pytest.raises(ValueError, match="^Endpoint list must be non-empty"):
        cls(pool, [])
    with pytest.raises(RuntimeError, match="^resolve: Host not found"):
        cls(pool, [("host.invalid", 7148)])
    with pytest.raises(ValueError, match="^Endpoint does not match protocol of the socket"):
        cls(pool, [("127.0.0.1", 7148), ("::1", 7148)])
    with pytest.raises(ValueError, match="^Endpoint does not match protocol of the socket"):
        cls(pool, [("::1", 7148), ("127.0.0.1", 7148)])
    # The pre-v4 (thread_pool, host, port) form is gone.
    with pytest.raises(TypeError, match="incompatible constructor arguments"):
        cls(pool, "127.0.0.1", 7148)
    with pytest.raises(TypeError, match="incompatible constructor arguments"):
        cls(pool, [("127.0.0.1", "7148")])
    with pytest.raises(TypeError, match="incompatible constructor arguments"):
        cls(pool, [receiver.endpoint], buffer_size="big")
    with pytest.raises(TypeError):
        cls(object(), [receiver.endpoint])
    with pytest.raises(ValueError, match="port must be in the range"):
        cls(pool, [("127.0.0.1", 70000)])
    with pytest.raises(ValueError, match="buffer_size must be in the range"):
        cls(pool, [receiver.endpoint], buffer_size=-1)
    with pytest.raises(ValueError, match="^endpoint is not a multicast address"):
        cls(pool, [("239.1.2.3", 7148), ("127.0.0.1", 7148)], ttl=1)
    with pytest.raises(ValueError, match="^endpoint is not an IPv4 multicast address"):
        cls(pool, [("127.0.0.1", 7148)], ttl=1, interface_address="127.0.0.1")
    with pytest.raises(ValueError, match="^endpoint is not an IPv6 multicast address"):
        cls(pool, [("239.1.2.3", 7148)], ttl=1, interface_index=1)
    with pytest.raises(ValueError, match="multicast hops value out of range"):
        cls(pool, [("239.1.2.3", 7148)], ttl=256)
    with pytest.raises(RuntimeError, match="^bind: "):
        cls(pool, [receiver.endpoint], interface_address="192.0.2.1")
    with pytest.raises(RuntimeError, match="^bind: "):
        cls(pool, [receiver.endpoint], interface_address="::1")
    with pytest.raises(RuntimeError, match="^resolve: Host not found"):
        cls(pool, [receiver.endpoint], interface_address="host.invalid")
    with pytest.raises(RuntimeError, match="^set_option: "):
        cls(pool, [("239.1.2.3", 7148)], ttl=1, interface_address="192.0.2.1")


@pytest.mark.parametrize("cls", STREAM_CLASSES)
def test_socket_form_errors(pool, cls):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as user:
        with pytest.raises(ValueError, match="^Endpoint does not match protocol of the socket"):
            cls(pool, user, [("::1", 7148)])
        with pytest.raises(ValueError, match="^Endpoint list must be non-empty"):
            cls(pool, user, [])
        # The socket form has no buffer_size.
        with pytest.raises(TypeError, match="incompatible constructor arguments"):
            cls(pool, user, [("127.0.0.1", 7148)], buffer_size=5)
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
        with pytest.raises(TypeError, match="incompatible constructor arguments"):
            cls(pool, tcp, [("127.0.0.1", 7148)])


def test_oversized_datagram_is_emsgsize_and_the_stream_goes_on(pool, receiver):
    config = spead2.send.StreamConfig(max_packet_size=70000)
    stream = UdpStream(pool, [receiver.endpoint], config)
    with pytest.raises(OSError) as info:
        stream.send_heap(numbered_bytes_heap(100000, descriptors="none"))
    assert info.value.errno == errno.EMSGSIZE
    small = numbered_bytes_heap(100, descriptors="none")
    stream.send_heap(small, cnt=3)
    assert receiver.take(1) == expected(small, 3, 70000)


async def test_oversized_datagram_fails_the_future(pool, receiver):
    config = spead2.send.StreamConfig(max_packet_size=70000)
    stream = send_asyncio.UdpStream(pool, [receiver.endpoint], config)
    bad = stream.async_send_heap(numbered_bytes_heap(100000, descriptors="none"))
    small = numbered_bytes_heap(100, descriptors="none")
    good = stream.async_send_heap(small, cnt=3)
    with pytest.raises(OSError) as info:
        await bad
    assert info.value.errno == errno.EMSGSIZE
    assert await good == len(expected(small, 3, 70000)[0])
    assert receiver.sock.recv(70000) == expected(small, 3, 70000)[0]


def test_dropping_the_stream_closes_its_socket(pool, receiver):
    stream = UdpStream(pool, [receiver.endpoint])
    sock = transport_of(stream).socket
    assert sock.fileno() >= 0
    del stream
    gc.collect()
    assert sock.fileno() == -1


# -- asyncio --------------------------------------------------------------------------------


async def test_asyncio_futures_and_flush(pool, receiver):
    stream = send_asyncio.UdpStream(pool, [receiver.endpoint, receiver.endpoint],
                                    spead2.send.StreamConfig(max_heaps=8))
    heaps = [numbered_bytes_heap(3000, i) for i in range(4)]
    futures = [stream.async_send_heap(h, cnt=i + 1, substream_index=i % 2)
               for i, h in enumerate(heaps)]
    refs = [spead2.send.HeapReference(h, cnt=10 + i) for i, h in enumerate(heaps[:2])]
    group = stream.async_send_heaps(refs, spead2.send.GroupMode.ROUND_ROBIN)
    await stream.async_flush()
    assert all(f.done() for f in [*futures, group])
    want = [expected(h, i + 1) for i, h in enumerate(heaps)]
    assert [f.result() for f in futures] == [sum(map(len, p)) for p in want]
    a, b = expected(heaps[0], 10), expected(heaps[1], 11)
    assert group.result() == sum(map(len, a + b))
    got = receiver.take(sum(map(len, want)) + len(a) + len(b))
    assert got == [p for packets in want for p in packets] + [
        p for pair in zip(a, b, strict=True) for p in pair
    ]
    # flush() from the loop's own thread sends everything itself.
    stream.async_send_heap(heaps[0], cnt=99)
    stream.flush()
    assert receiver.take(len(want[0])) == expected(heaps[0], 99)


class FlakySocket:
    """Wraps a real UDP socket; its first ``busy`` sendmsg calls fail with ``error``
    (by default a full socket buffer)."""

    def __init__(self, sock: socket.socket, busy: int, error: type[OSError] = BlockingIOError):
        self.sock = sock
        self.busy = busy
        self.error = error
        self.family = sock.family

    def fileno(self) -> int:
        return self.sock.fileno()

    def sendmsg(self, buffers, ancdata=(), flags=0, address=None):
        if self.busy:
            self.busy -= 1
            raise self.error(errno.EAGAIN, "busy")
        return self.sock.sendmsg(buffers, ancdata, flags, address)

    def close(self) -> None:
        self.sock.close()


async def test_async_transport_waits_for_a_full_socket(receiver):
    real = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    flaky = FlakySocket(real, busy=3)
    transport = AsyncUdpTransport(flaky, [receiver.endpoint])  # type: ignore[arg-type]
    first = transport.send_packet(0, [b"first-", memoryview(b"packet")])
    assert first is not None and not first.done()
    await asyncio.wait_for(first, TIMEOUT)
    assert flaky.busy == 0
    assert transport.send_packet(0, [b"second"]) is None
    assert receiver.take(2) == [b"first-packet", b"second"]
    transport.close()


def test_sync_transport_waits_for_a_full_socket(receiver):
    flaky = FlakySocket(socket.socket(socket.AF_INET, socket.SOCK_DGRAM), busy=2)
    transport = UdpTransport(flaky, [receiver.endpoint])  # type: ignore[arg-type]
    transport.send_packet(0, [b"a", b"b"])
    assert flaky.busy == 0
    assert receiver.take(1) == [b"ab"]
    transport.close()


@pytest.mark.parametrize("transport_cls", [UdpTransport, AsyncUdpTransport])
async def test_stale_icmp_error_is_retried_once(receiver, transport_cls):
    """ECONNREFUSED reported for an earlier datagram does not lose this one; twice in a row
    is a real error."""
    flaky = FlakySocket(socket.socket(socket.AF_INET, socket.SOCK_DGRAM), busy=1,
                        error=ConnectionRefusedError)
    transport = transport_cls(flaky, [receiver.endpoint])
    result = transport.send_packet(0, [b"kept"])
    if result is not None:
        await asyncio.wait_for(result, TIMEOUT)
    assert receiver.take(1) == [b"kept"]
    flaky.busy = 2
    with pytest.raises(ConnectionRefusedError):
        result = transport.send_packet(0, [b"lost"])
        if result is not None:
            await asyncio.wait_for(result, TIMEOUT)
    transport.close()


async def test_blocking_send_finishes_a_waiting_packet_first(receiver):
    real = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    flaky = FlakySocket(real, busy=1)
    transport = AsyncUdpTransport(flaky, [receiver.endpoint])  # type: ignore[arg-type]
    waiting = transport.send_packet(0, [b"one"])
    assert waiting is not None
    transport.send_packet_blocking(0, [b"two"])
    assert waiting.done() and waiting.exception() is None
    assert receiver.take(2) == [b"one", b"two"]
    transport.close()


async def test_asyncio_stream_backpressure_delivers_in_order(pool, receiver):
    stream = send_asyncio.UdpStream(pool, [receiver.endpoint])
    transport = transport_of(stream)
    flaky = FlakySocket(transport.socket, busy=5)
    transport._sendmsg = flaky.sendmsg
    heap = numbered_bytes_heap(6000)
    sizes = await asyncio.gather(*(stream.async_send_heap(heap, cnt=i + 1) for i in range(3)))
    want = [expected(heap, i + 1) for i in range(3)]
    assert sizes == [sum(map(len, p)) for p in want]
    assert flaky.busy == 0
    assert receiver.take(sum(map(len, want))) == [p for packets in want for p in packets]


# -- our own receiver ------------------------------------------------------------------------


def test_round_trip_through_recv_stream(pool):
    port = Receiver().port  # a free port (the socket is dropped)
    recv = spead2.recv.Stream(pool)
    recv.add_udp_reader(port, bind_hostname="127.0.0.1")
    stream = UdpStream(pool, [("127.0.0.1", port)])
    group = spead2.send.ItemGroup()
    group.add_item(0x1000, "values", "", (1000,), dtype=np.int32)
    for i in range(5):
        group["values"].value = np.arange(1000, dtype=np.int32) * i
        stream.send_heap(group.get_heap())
    stream.send_heap(group.get_end())
    received = spead2.ItemGroup()
    seen = []
    with watchdog(recv, TIMEOUT):
        for heap in recv:
            received.update(heap)
            seen.append(received["values"].value.copy())
    assert len(seen) == 5
    for i, values in enumerate(seen):
        np.testing.assert_array_equal(values, np.arange(1000) * i)


# -- rate limiting (fake clock: no wall-clock assertions) ------------------------------------


@pytest.mark.parametrize("cls", STREAM_CLASSES)
def test_rate_limit_schedule(pool, receiver, cls):
    """1 MB/s with 64 KiB bursts: a ~100 kB heap waits once, for its first burst."""
    clock = FakeClock(50.0)
    config = spead2.send.StreamConfig(rate=1e6, burst_size=65536)
    stream = cls(pool, [receiver.endpoint], config)
    use_fake_clock(stream, clock)
    heap = numbered_bytes_heap(100000, descriptors="none")
    size = send_one(stream, heap)
    assert size == sum(map(len, expected(heap, 1))) > 100000
    assert len(clock.sleeps) == 1
    assert clock.now - 50.0 == pytest.approx(0.0665, abs=0.001)
    # rate=0 for one heap: unlimited; a per-heap rate overrides the stream's.
    send_one(stream, heap, rate=0)
    assert len(clock.sleeps) == 1
    receiver.take(2 * len(expected(heap, 1)))


def test_rate_limit_matches_bytes_stream(pool, receiver):
    """The UDP stream waits exactly as a BytesStream with the same config does."""
    config = spead2.send.StreamConfig(rate=5e6, burst_size=10000, burst_rate_ratio=1.5,
                                      max_packet_size=1000)
    heaps = [numbered_bytes_heap(n, descriptors="none") for n in (20000, 500, 30000)]
    clocks = []
    for stream in (UdpStream(pool, [receiver.endpoint], config),
                   spead2.send.BytesStream(pool, config)):
        clock = FakeClock(50.0)
        use_fake_clock(stream, clock)
        stream.send_heap(heaps[0])
        stream.send_heap(heaps[1], rate=1e6)
        stream.send_heaps([spead2.send.HeapReference(h, rate=r)
                           for h, r in ((heaps[2], -1.0), (heaps[0], 2e6))],
                          spead2.send.GroupMode.ROUND_ROBIN)
        clocks.append(clock)
    assert len(clocks[0].sleeps) > 5
    assert clocks[0].sleeps == pytest.approx(clocks[1].sleeps)


def test_streams_sleep_with_a_timer(pool, receiver):
    stream = UdpStream(pool, [receiver.endpoint])
    if not TimerSleeper.available:
        pytest.skip("no timerfd here")
    assert stream._sleep.__self__.__class__ is TimerSleeper  # type: ignore[attr-defined]
    astream = send_asyncio.UdpStream(pool, [receiver.endpoint])
    assert astream._sleep.__self__.__class__ is TimerSleeper  # type: ignore[attr-defined]


def test_header_struct_sanity(pool, receiver):
    """The first packet of a heap starts with the SPEAD magic and carries the heap cnt."""
    stream = UdpStream(pool, [receiver.endpoint])
    stream.send_heap(numbered_bytes_heap(10), cnt=0x123456)
    packet = receiver.take(1)[0]
    assert packet[:4] == bytes([0x53, 0x04, 0x03, 0x05])
    (n_items,) = struct.unpack_from(">H", packet, 6)
    pointers = [struct.unpack_from(">Q", packet, 8 + 8 * i)[0] for i in range(n_items)]
    assert 0x8000010000123456 in pointers


def test_send_on_a_closed_stream_is_a_clear_error(pool, receiver):
    """Its socket released under a sending thread: a library error, not EBADF from sendmsg."""
    stream = UdpStream(pool, [receiver.endpoint])
    heap = spead2.send.ItemGroup().get_start()
    stream.send_heap(heap)
    transport_of(stream).close()
    with pytest.raises(RuntimeError, match="send stream has been closed"):
        stream.send_heap(heap)
