"""spead2.transports.DatagramReceiver and TcpReceiver with the standard asyncio calls."""

from __future__ import annotations

import asyncio
import socket

import pytest

import spead2
import spead2.recv
import spead2.recv.asyncio
import spead2.send
from spead2.transports import DatagramReceiver, TcpReceiver
from tests.helpers.heaps import heap_packets, received_indices
from tests.helpers.waiting import wait_for_async

TIMEOUT = 20.0
SAMPLES = 1000


def packets_of(n: int, end: bool = True) -> list[bytes]:
    """The packets of :func:`heap_packets`' heaps of ``SAMPLES`` samples, one after the other."""
    return [p for heap in heap_packets(n, samples=SAMPLES, end=end) for p in heap]


async def collect(stream: spead2.recv.asyncio.Stream) -> list[spead2.recv.HeapBase]:
    async with asyncio.timeout(TIMEOUT):
        return [heap async for heap in stream]


async def test_datagram_endpoint(pool: spead2.ThreadPool) -> None:
    loop = asyncio.get_running_loop()
    config = spead2.recv.StreamConfig()
    config.add_stat("invalid_packets")
    stream = spead2.recv.asyncio.Stream(pool, config)
    transport, protocol = await loop.create_datagram_endpoint(
        lambda: DatagramReceiver(stream, max_size=2000), local_addr=("127.0.0.1", 0)
    )
    address = transport.get_extra_info("sockname")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as tx:
        tx.sendto(b"x" * 3000, address)  # over max_size: dropped and counted
        for packet in packets_of(5, end=False):
            tx.sendto(packet, address)
    heaps = []
    async with asyncio.timeout(TIMEOUT):
        async for heap in stream:
            heaps.append(heap)
            if len(heaps) == 5:
                break
    assert received_indices(heaps, SAMPLES) == list(range(5))
    assert stream.stats["invalid_packets"] == 1
    stream.stop()  # closes the application's transport too
    assert transport.is_closing()


async def test_datagram_endpoint_pauses_at_a_full_ring(pool: spead2.ThreadPool) -> None:
    loop = asyncio.get_running_loop()
    stream = spead2.recv.asyncio.Stream(pool, ring_config=spead2.recv.RingStreamConfig(heaps=1))
    transport, _ = await loop.create_datagram_endpoint(
        lambda: DatagramReceiver(stream), local_addr=("127.0.0.1", 0)
    )
    address = transport.get_extra_info("sockname")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as tx:
        for packet in packets_of(6):
            tx.sendto(packet, address)
    await wait_for_async(lambda: stream.stats["worker_blocked"], "the reader to wait for the consumer", timeout=TIMEOUT)
    heaps = await collect(stream)  # the stop heap ends it; nothing lost on loopback
    assert received_indices(heaps, SAMPLES) == list(range(6))


async def test_tcp_server(pool: spead2.ThreadPool) -> None:
    loop = asyncio.get_running_loop()
    stream = spead2.recv.asyncio.Stream(pool, ring_config=spead2.recv.RingStreamConfig(heaps=2))
    server = await loop.create_server(lambda: TcpReceiver(stream), "127.0.0.1", 0)
    address = server.sockets[0].getsockname()
    data = b"".join(packets_of(8, end=False))

    def send() -> None:
        with socket.create_connection(address, timeout=TIMEOUT) as tx:
            tx.sendall(data)

    sender = loop.run_in_executor(None, send)
    heaps = await collect(stream)  # the connection's end stops the stream
    await sender
    assert received_indices(heaps, SAMPLES) == list(range(8))
    server.close()
    await server.wait_closed()


async def test_tcp_client(pool: spead2.ThreadPool) -> None:
    """create_connection: we connect to a server that sends the stream."""
    loop = asyncio.get_running_loop()
    data = b"".join(packets_of(4))
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()

    def serve() -> None:
        conn, _ = listener.accept()
        with conn:
            conn.sendall(data)

    server = loop.run_in_executor(None, serve)
    stream = spead2.recv.asyncio.Stream(pool)
    transport, _ = await loop.create_connection(
        lambda: TcpReceiver(stream), *listener.getsockname()
    )
    heaps = await collect(stream)
    await server
    listener.close()
    assert received_indices(heaps, SAMPLES) == list(range(4))
    assert transport.is_closing()


async def test_stopped_stream_closes_new_transports(pool: spead2.ThreadPool) -> None:
    loop = asyncio.get_running_loop()
    stream = spead2.recv.asyncio.Stream(pool)
    stream.stop()
    transport, _ = await loop.create_datagram_endpoint(
        lambda: DatagramReceiver(stream), local_addr=("127.0.0.1", 0)
    )
    assert transport.is_closing()


def test_needs_the_streams_own_loop(pool: spead2.ThreadPool) -> None:
    stream = spead2.recv.Stream(pool)  # runs on a pool thread's loop
    with pytest.raises(RuntimeError, match="another event loop"):
        DatagramReceiver(stream)

    async def inside() -> None:
        with pytest.raises(RuntimeError, match="another event loop"):
            TcpReceiver(stream)

    asyncio.run(inside())
    with pytest.raises(TypeError, match="receive stream"):
        DatagramReceiver(object())
    stream.stop()
