"""TCP send streams over loopback: connecting, existing sockets, byte-exact output, EOF on drop,
refused connections, partial writes (sync and asyncio) and round trips through our receiver."""

from __future__ import annotations

import asyncio
import errno
import gc
import socket
import threading

import numpy as np
import pytest

import spead2
import spead2.recv
import spead2.send
from spead2.send import asyncio as send_asyncio
from spead2.send._network_streams import TcpStream
from spead2.transports import udp_send
from spead2.transports.tcp_send import AsyncTcpTransport, TcpTransport
from tests.helpers.heaps import numbered_bytes_heap
from tests.helpers.waiting import wait_for_async, watchdog

TIMEOUT = 10.0


# -- helpers ------------------------------------------------------------------------


def reference_bytes(pool, heaps, config=None) -> bytes:
    """What a BytesStream writes for ``heaps`` = [(heap, cnt), ...]: the expected TCP byte stream."""
    stream = spead2.send.BytesStream(pool, config)
    for heap, cnt in heaps:
        stream.send_heap(heap, cnt=cnt)
    return stream.getvalue()


class Server:
    """A listening loopback socket; :meth:`collect` reads one connection until EOF in a thread."""

    def __init__(self, family=socket.AF_INET, host="127.0.0.1", rcvbuf: int | None = None):
        self.sock = socket.socket(family, socket.SOCK_STREAM)
        if rcvbuf is not None:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.bind((host, 0))
        self.sock.listen()
        self.sock.settimeout(TIMEOUT)
        self.port = self.sock.getsockname()[1]
        self.endpoint = (host, self.port)
        self.data = bytearray()
        self.peer = None
        self.go = threading.Event()
        self.go.set()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            conn, self.peer = self.sock.accept()
        except OSError:  # closed (or timed out) by a test that never connected
            return
        with conn:
            conn.settimeout(TIMEOUT)
            self.go.wait(TIMEOUT)
            while chunk := conn.recv(1 << 20):
                self.data += chunk

    def result(self) -> bytes:
        """Everything received, once the sender has closed the connection."""
        self.thread.join(TIMEOUT)
        assert not self.thread.is_alive(), "no EOF from the sender"
        return bytes(self.data)

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def server():
    s = Server()
    yield s
    s.close()


def refused_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]  # closed again: nothing listens there


def transport_of(stream) -> TcpTransport:
    return stream._transport


# -- synchronous ---------------------------------------------------------------------------


def test_connect_sends_the_byte_stream_and_eof_on_drop(pool, server):
    assert TcpStream.DEFAULT_BUFFER_SIZE == send_asyncio.TcpStream.DEFAULT_BUFFER_SIZE == 212992
    config = spead2.send.StreamConfig(max_packet_size=9000)
    stream = TcpStream(pool, [server.endpoint], config)
    assert stream.num_substreams == 1
    heaps = [(numbered_bytes_heap(30000, i), i + 1) for i in range(3)]
    sizes = [stream.send_heap(h, cnt=c) for h, c in heaps]
    want = reference_bytes(pool, heaps, config)
    assert sum(sizes) == len(want)
    del stream  # closes the connection
    gc.collect()
    assert server.result() == want


def test_existing_socket_is_duplicated(pool, server):
    user = socket.create_connection(server.endpoint, timeout=TIMEOUT)
    stream = TcpStream(pool, user)
    user.close()  # the stream keeps its duplicate open
    heap = numbered_bytes_heap(1000)
    stream.send_heap(heap, cnt=5)
    sock = transport_of(stream).socket
    del stream
    gc.collect()
    assert sock.fileno() == -1
    assert server.result() == reference_bytes(pool, [(heap, 5)])


def test_ipv6_loopback(pool):
    try:
        srv = Server(socket.AF_INET6, "::1")
    except OSError:
        pytest.skip("no IPv6 loopback")
    try:
        heap = numbered_bytes_heap(2000)
        stream = TcpStream(pool, [("::1", srv.port)])
        stream.send_heap(heap, cnt=2)
        del stream
        gc.collect()
        assert srv.result() == reference_bytes(pool, [(heap, 2)])
    finally:
        srv.close()


def test_interface_address_and_buffer_size(pool, server):
    stream = TcpStream(pool, [server.endpoint], None, 65536, "127.0.0.1")
    sock = transport_of(stream).socket
    assert sock.getsockname()[0] == "127.0.0.1"
    assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF) >= 65536
    assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
    del stream, sock
    gc.collect()
    assert server.result() == b""
    assert server.peer[0] == "127.0.0.1"


def test_refused_connection(pool):
    with pytest.raises(ConnectionRefusedError):
        TcpStream(pool, [("127.0.0.1", refused_port())])


def test_constructor_errors(pool, server):
    for endpoints in ([], [server.endpoint, server.endpoint]):
        with pytest.raises(ValueError, match="^endpoints must contain exactly one element"):
            TcpStream(pool, endpoints)
    with pytest.raises(RuntimeError, match="^resolve: Host not found"):
        TcpStream(pool, [("host.invalid", 7148)])
    with pytest.raises(RuntimeError, match="^bind: "):
        TcpStream(pool, [server.endpoint], interface_address="192.0.2.1")
    with pytest.raises(RuntimeError, match="^bind: "):
        TcpStream(pool, [("::1", 7148)], interface_address="127.0.0.1")
    with pytest.raises(ValueError, match="port must be in the range"):
        TcpStream(pool, [("127.0.0.1", -1)])
    with pytest.raises(TypeError, match="incompatible constructor arguments"):
        TcpStream(pool, "127.0.0.1", 7148)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        with pytest.raises(TypeError, match="incompatible constructor arguments"):
            TcpStream(pool, udp)
        with pytest.raises(TypeError, match="incompatible constructor arguments"):
            send_asyncio.TcpStream(pool, udp)
    with pytest.raises(TypeError):
        TcpStream(None, [server.endpoint])
    # Let the server finish (it accepts one connection).
    socket.create_connection(server.endpoint).close()


def test_unconnected_socket_fails_when_sending(pool):
    with socket.socket() as user:
        stream = TcpStream(pool, user)
        with pytest.raises(OSError):
            stream.send_heap(numbered_bytes_heap(10))


def test_peer_going_away_is_an_oserror(pool):
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen()
    try:
        stream = TcpStream(pool, [srv.getsockname()])
        conn, _ = srv.accept()
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\0\0\0\0\0\0\0")
        conn.close()  # reset
        heap = numbered_bytes_heap(100000)
        with pytest.raises(OSError) as info:
            for _ in range(20):
                stream.send_heap(heap)
        assert info.value.errno in (errno.EPIPE, errno.ECONNRESET)
    finally:
        srv.close()


def test_non_blocking_user_socket_partial_writes(pool):
    """A caller's non-blocking socket: the sync stream waits out full buffers, bytes intact."""
    srv = Server(rcvbuf=4096)
    try:
        srv.go.clear()  # the receiver does not read yet
        user = socket.create_connection(srv.endpoint, timeout=TIMEOUT)
        user.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
        user.setblocking(False)
        stream = TcpStream(pool, user, spead2.send.StreamConfig(max_packet_size=65536))
        user.close()
        heaps = [(numbered_bytes_heap(300000, i), i + 1) for i in range(2)]
        threading.Timer(0.05, srv.go.set).start()
        for heap, cnt in heaps:
            stream.send_heap(heap, cnt=cnt)
        del stream
        gc.collect()
        config = spead2.send.StreamConfig(max_packet_size=65536)
        assert srv.result() == reference_bytes(pool, heaps, config)
    finally:
        srv.close()


def test_packet_with_more_buffers_than_iov_max(pool, server):
    heap = spead2.send.Heap()
    for i in range(udp_send.IOV_MAX + 50):
        value = np.full(16, i % 256, dtype=np.uint8)
        heap.add_item(spead2.Item(0x1000 + i, f"x{i}", "", shape=(16,), dtype=np.uint8, value=value))
    config = spead2.send.StreamConfig(max_packet_size=65000)
    assert len(list(spead2.send.PacketGenerator(heap, 1, 65000))) == 1
    stream = TcpStream(pool, [server.endpoint], config)
    stream.send_heap(heap, cnt=1)
    del stream
    gc.collect()
    assert server.result() == reference_bytes(pool, [(heap, 1)], config)


def test_send_heaps_round_robin(pool, server):
    config = spead2.send.StreamConfig(max_packet_size=4000)
    stream = TcpStream(pool, [server.endpoint], config)
    heaps = [numbered_bytes_heap(20000, i) for i in range(3)]
    refs = [spead2.send.HeapReference(h, cnt=i + 1) for i, h in enumerate(heaps)]
    stream.send_heaps(refs, spead2.send.GroupMode.ROUND_ROBIN)
    expect = spead2.send.BytesStream(pool, config)
    expect.send_heaps(refs, spead2.send.GroupMode.ROUND_ROBIN)
    del stream
    gc.collect()
    assert server.result() == expect.getvalue()


# -- asyncio -------------------------------------------------------------------------------


async def test_asyncio_connect(pool, server):
    config = spead2.send.StreamConfig(max_packet_size=9000, max_heaps=8)
    stream = await send_asyncio.TcpStream.connect(pool, [server.endpoint], config)
    assert isinstance(stream, send_asyncio.TcpStream)
    assert not isinstance(stream, TcpStream)
    heaps = [(numbered_bytes_heap(20000, i), i + 1) for i in range(4)]
    futures = [stream.async_send_heap(h, cnt=c) for h, c in heaps]
    sizes = await asyncio.gather(*futures)
    want = reference_bytes(pool, heaps, config)
    assert sum(sizes) == len(want)
    assert sizes[0] == len(reference_bytes(pool, heaps[:1], config))
    del stream, futures
    gc.collect()
    assert await asyncio.to_thread(server.result) == want


async def test_asyncio_connect_errors(pool, server):
    with pytest.raises(ConnectionRefusedError):
        await send_asyncio.TcpStream.connect(pool, [("127.0.0.1", refused_port())])
    with pytest.raises(ValueError, match="^endpoints must contain exactly one element"):
        await send_asyncio.TcpStream.connect(pool, [])
    with pytest.raises(RuntimeError, match="^resolve: Host not found"):
        await send_asyncio.TcpStream.connect(pool, [("host.invalid", 7148)])
    with pytest.raises(RuntimeError, match="^bind: "):
        await send_asyncio.TcpStream.connect(pool, [server.endpoint], None, 0, "192.0.2.1")
    stream = await send_asyncio.TcpStream.connect(
        pool, [server.endpoint], interface_address="127.0.0.1"
    )
    assert transport_of(stream).socket.getsockname()[0] == "127.0.0.1"
    assert transport_of(stream).socket.getblocking()
    del stream
    gc.collect()
    assert await asyncio.to_thread(server.result) == b""


async def test_asyncio_existing_socket(pool, server):
    user = socket.create_connection(server.endpoint, timeout=TIMEOUT)
    stream = send_asyncio.TcpStream(pool, user, spead2.send.StreamConfig(max_packet_size=2000))
    user.close()
    heap = numbered_bytes_heap(5000)
    assert await stream.async_send_heap(heap, cnt=3) > 5000
    del stream
    gc.collect()
    expect = reference_bytes(pool, [(heap, 3)], spead2.send.StreamConfig(max_packet_size=2000))
    assert await asyncio.to_thread(server.result) == expect


async def test_asyncio_backpressure_waits_for_the_receiver(pool):
    """With the receiver stalled, a heap larger than the socket buffers stays pending (its
    tail queued as views); once the receiver reads, it completes and the bytes are exact."""
    srv = Server(rcvbuf=8192)
    try:
        srv.go.clear()
        config = spead2.send.StreamConfig(max_packet_size=65536)
        stream = await send_asyncio.TcpStream.connect(pool, [srv.endpoint], config, 8192)
        transport = transport_of(stream)
        heaps = [(numbered_bytes_heap(2_000_000, i), i + 1) for i in range(2)]
        futures = [stream.async_send_heap(h, cnt=c) for h, c in heaps]
        await wait_for_async(lambda t=transport: t._queue, "a send queue to build up")
        assert transport._queue, "the kernel took 4 MB through 8 KiB buffers"
        assert not futures[0].done()
        srv.go.set()
        sizes = await asyncio.wait_for(asyncio.gather(*futures), TIMEOUT)
        want = reference_bytes(pool, heaps, config)
        assert sum(sizes) == len(want)
        assert not transport._queue
        del stream, futures, transport
        gc.collect()
        assert await asyncio.to_thread(srv.result) == want
    finally:
        srv.close()


async def test_asyncio_flush_on_the_loop_finishes_a_queued_tail(pool):
    srv = Server(rcvbuf=8192)
    try:
        srv.go.clear()
        config = spead2.send.StreamConfig(max_packet_size=65536)
        stream = await send_asyncio.TcpStream.connect(pool, [srv.endpoint], config, 8192)
        transport = transport_of(stream)
        heaps = [(numbered_bytes_heap(1_000_000, i), i + 1) for i in range(2)]
        futures = [stream.async_send_heap(h, cnt=c) for h, c in heaps]
        await wait_for_async(lambda t=transport: t._backlog is not None, "a backlog")
        assert transport._backlog is not None
        srv.go.set()
        stream.flush()  # blocks this (the loop's) thread until everything is written
        assert all(f.done() for f in futures)
        want = reference_bytes(pool, heaps, config)
        assert sum(f.result() for f in futures) == len(want)
        await asyncio.sleep(0)  # let the parked driver task wake and finish
        del stream, futures, transport
        gc.collect()
        assert await asyncio.to_thread(srv.result) == want
    finally:
        srv.close()


async def test_async_transport_partial_write_then_error(pool):
    """A broken connection while a tail is queued fails the waiting future and clears the queue."""
    a, b = socket.socketpair()
    a.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    transport = AsyncTcpTransport(a)
    payload = memoryview(bytes(1 << 20))
    waiting = transport.send_packet(0, [b"header", payload])
    assert waiting is not None and transport._queue
    b.close()
    with pytest.raises(OSError):
        await asyncio.wait_for(waiting, TIMEOUT)
    assert not transport._queue
    transport.close()


# -- our own receiver ------------------------------------------------------------------------


def test_round_trip_through_recv_stream(pool):
    port = refused_port()
    recv = spead2.recv.Stream(pool)
    recv.add_tcp_reader(port, bind_hostname="127.0.0.1")
    stream = TcpStream(pool, [("127.0.0.1", port)], spead2.send.StreamConfig(max_packet_size=8192))
    group = spead2.send.ItemGroup()
    group.add_item(0x1000, "values", "", (20000,), dtype=np.int32)
    for i in range(5):
        group["values"].value = np.arange(20000, dtype=np.int32) * i
        stream.send_heap(group.get_heap())
    del stream  # EOF ends the receive stream
    gc.collect()
    received = spead2.ItemGroup()
    seen = []
    with watchdog(recv, TIMEOUT):
        for heap in recv:
            received.update(heap)
            seen.append(received["values"].value.copy())
    assert len(seen) == 5
    for i, values in enumerate(seen):
        np.testing.assert_array_equal(values, np.arange(20000) * i)


def test_send_on_a_closed_stream_is_a_clear_error(pool, server):
    """Its socket released under a sending thread: a library error, not EBADF from sendmsg."""
    stream = TcpStream(pool, [server.endpoint])
    stream.send_heap(numbered_bytes_heap(100))
    transport_of(stream).close()
    with pytest.raises(RuntimeError, match="send stream has been closed"):
        stream.send_heap(numbered_bytes_heap(100))
