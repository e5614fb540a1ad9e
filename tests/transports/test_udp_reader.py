"""UDP receive over loopback: every ``add_udp_reader`` overload, truncation, buffers, stop, backpressure."""

import asyncio
import logging
import re
import select
import socket
import struct
import threading
import time

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import spead2
import spead2.recv
import spead2.recv.asyncio
import spead2.send
from spead2.transports import _recvmmsg
from spead2.transports import udp as udp_transport
from tests.helpers import in_order_packets as spead_packets
from tests.helpers.heaps import check_heaps, heap_packets, indexed_group
from tests.helpers.in_order_packets import hostile_streams
from tests.helpers.streams import counting_config
from tests.helpers.tools import is_bound
from tests.helpers.waiting import wait_for, watchdog

TIMEOUT = 10.0


@pytest.fixture(params=["recvmmsg", "recv_into"], autouse=True)
def receive_path(request, monkeypatch):
    """Every test runs with datagrams batched by recvmmsg and with one recv_into each."""
    if request.param == "recv_into":
        monkeypatch.setattr(udp_transport, "make_batch_receiver", lambda *args: None)
    elif _recvmmsg._RECVMMSG is None:
        pytest.skip("recvmmsg is not available here")
    return request.param


# -- helpers ------------------------------------------------------------------------


def free_port(family=socket.AF_INET, kind=socket.SOCK_DGRAM, host="127.0.0.1"):
    with socket.socket(family, kind) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def send_all(packets, address, family=socket.AF_INET, setup=None):
    with socket.socket(family, socket.SOCK_DGRAM) as sock:
        if setup is not None:
            setup(sock)
        for heap in packets:
            for packet in heap:
                sock.sendto(packet, address)


# -- the port overload ------------------------------------------------------------------


@pytest.mark.parametrize("max_packet_size", [1472, 100])
def test_port_overload_blocking(pool, max_packet_size):
    port = free_port()
    stream = spead2.recv.Stream(pool, counting_config())
    stream.add_udp_reader(port, bind_hostname="127.0.0.1")
    send_all(heap_packets(10, max_packet_size=max_packet_size), ("127.0.0.1", port))
    with watchdog(stream):
        heaps = list(stream)
    check_heaps(heaps, 10)
    stats = stream.stats
    assert stats["heaps"] == 10
    assert stats["invalid_packets"] == 0
    assert stats["incomplete_heaps_evicted"] == 0
    if max_packet_size == 100:
        assert stats["packets"] > 30


async def test_port_overload_asyncio(pool):
    stream = spead2.recv.asyncio.Stream(pool, counting_config())
    port = free_port()
    stream.add_udp_reader(port, 9200, 0, "127.0.0.1")  # all positional
    send_all(heap_packets(8), ("127.0.0.1", port))

    async def collect():
        return [heap async for heap in stream]

    check_heaps(await asyncio.wait_for(collect(), TIMEOUT), 8)


def test_port_overload_keywords_and_wildcard(pool):
    port = free_port(host="0.0.0.0")
    stream = spead2.recv.Stream(pool, counting_config())
    stream.add_udp_reader(port=port, max_size=9200, buffer_size=0)
    send_all(heap_packets(3), ("127.0.0.1", port))
    with watchdog(stream):
        check_heaps(list(stream), 3)


def test_ipv6_unicast(pool):
    if not socket.has_ipv6:
        pytest.skip("Python was built without IPv6")
    try:
        port = free_port(socket.AF_INET6, host="::1")
    except OSError as exc:
        pytest.skip(f"no IPv6 loopback here: {exc}")
    stream = spead2.recv.Stream(pool, counting_config())
    stream.add_udp_reader(port, bind_hostname="::1")
    send_all(heap_packets(5), ("::1", port), socket.AF_INET6)
    with watchdog(stream):
        check_heaps(list(stream), 5)


def test_bind_failure_is_runtime_error(pool, caplog):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as taken:
        taken.bind(("127.0.0.1", 0))
        port = taken.getsockname()[1]
        stream = spead2.recv.Stream(pool, counting_config())
        with pytest.raises(RuntimeError, match=r"^bind: Address already in use"):
            # A buffer the kernel caps: the bind failure alone is reported.
            stream.add_udp_reader(port, buffer_size=2**31 - 1, bind_hostname="127.0.0.1")
    stream.stop()
    assert "socket buffer" not in caplog.text


def test_unresolvable_hostname(pool):
    stream = spead2.recv.Stream(pool, counting_config())
    with pytest.raises(RuntimeError, match=r"^resolve: "):
        stream.add_udp_reader(free_port(), bind_hostname="no-such-host.invalid")
    with pytest.raises(RuntimeError, match=r"^resolve: "):
        stream.add_udp_reader("no-such-host.invalid", 7148)
    stream.stop()


# -- overload resolution and argument checks --------------------------------------------


def test_overload_errors(pool):
    stream = spead2.recv.Stream(pool, counting_config())
    for args, kwargs in [
        ((), {}),
        ((7148.0,), {}),
        (("7148",), {}),
        ((7148,), {"bogus": 1}),
        ((7148,), {"port": 7148}),
        ((7148, 9200, 0, "", "extra"), {}),
        (("239.1.2.3", 7148, 9200, 0, 3.5), {}),
    ]:
        with pytest.raises(TypeError, match="incompatible function arguments"):
            stream.add_udp_reader(*args, **kwargs)
    with pytest.raises(ValueError, match="port"):
        stream.add_udp_reader(70000)
    with pytest.raises(ValueError, match="port"):
        stream.add_udp_reader(-1)
    with pytest.raises(ValueError, match="buffer_size"):
        stream.add_udp_reader(free_port(), buffer_size=-1)
    with pytest.raises(ValueError, match="max_size"):
        stream.add_udp_reader(free_port(), max_size=-5)
    stream.stop()


def test_unicast_group_must_match_interface(pool):
    stream = spead2.recv.Stream(pool, counting_config())
    # Resolves to the IPv4 multicast overload, as in the reference.
    with pytest.raises(ValueError, match="^endpoint is not multicast and does not match interface address"):
        stream.add_udp_reader("127.0.0.1", free_port())
    with pytest.raises(ValueError, match="^endpoint is not an IPv4 address"):
        stream.add_udp_reader("ff15::1", free_port())
    with pytest.raises(ValueError, match="^interface address is not an IPv4 address"):
        stream.add_udp_reader("239.1.2.3", free_port(), interface_address="::1")
    with pytest.raises(ValueError, match="^endpoint is not an IPv6 multicast address"):
        stream.add_udp_reader("239.1.2.3", free_port(), interface_index=1)
    with pytest.raises(ValueError, match="^endpoint is not an IPv6 multicast address"):
        stream.add_udp_reader("::1", free_port(), 9200, 0, 0)
    stream.stop()


def test_unicast_group_equal_to_interface(pool):
    port = free_port()
    stream = spead2.recv.Stream(pool, counting_config())
    stream.add_udp_reader("127.0.0.1", port, 9200, 0, "127.0.0.1")
    send_all(heap_packets(3), ("127.0.0.1", port))
    with watchdog(stream):
        check_heaps(list(stream), 3)


def test_wildcard_group_with_default_interface(pool):
    port = free_port(host="0.0.0.0")
    stream = spead2.recv.Stream(pool, counting_config())
    stream.add_udp_reader("0.0.0.0", port, buffer_size=0)
    send_all(heap_packets(3), ("127.0.0.1", port))
    with watchdog(stream):
        check_heaps(list(stream), 3)


# -- the socket overload ------------------------------------------------------------------


def test_socket_overload_caller_closes_theirs(pool):
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    stream = spead2.recv.Stream(pool, counting_config())
    stream.add_udp_reader(sock)
    sock.close()  # the reader has its own duplicate
    send_all(heap_packets(6), ("127.0.0.1", port))
    with watchdog(stream):
        check_heaps(list(stream), 6)
    assert not is_bound(port, socket.SOCK_DGRAM)  # the duplicate was closed when the stream stopped


def test_socket_overload_keeps_caller_socket_blocking(pool):
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    stream = spead2.recv.Stream(pool, counting_config())
    stream.add_udp_reader(socket=sock, max_size=100)
    assert sock.getblocking()
    stream.stop()
    sock.close()


def test_socket_overload_rejects_tcp_socket(pool):
    stream = spead2.recv.Stream(pool, counting_config())
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
        with pytest.raises(TypeError, match="UDP"):
            stream.add_udp_reader(tcp)
    stream.stop()


# -- multicast ----------------------------------------------------------------------------

IPV4_GROUP = "239.255.21.17"


def _probe_ipv4_multicast():
    """None if IPv4 multicast looped back on 127.0.0.1 works here, else the reason it does not."""
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as rx, socket.socket(
            socket.AF_INET, socket.SOCK_DGRAM
        ) as tx:
            rx.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            rx.bind((IPV4_GROUP, 0))
            rx.setsockopt(
                socket.IPPROTO_IP,
                socket.IP_ADD_MEMBERSHIP,
                socket.inet_aton(IPV4_GROUP) + socket.inet_aton("127.0.0.1"),
            )
            ipv4_multicast_sender(tx)
            tx.sendto(b"probe", (IPV4_GROUP, rx.getsockname()[1]))
            if not select.select([rx], [], [], 2.0)[0]:
                return "multicast sent on 127.0.0.1 is not looped back"
    except OSError as exc:
        return f"IPv4 multicast on loopback unavailable: {exc}"
    return None


def ipv4_multicast_sender(sock):
    sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton("127.0.0.1"))
    sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_LOOP, 1)
    sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, 0)


@pytest.fixture(scope="module")
def ipv4_multicast():
    reason = _probe_ipv4_multicast()
    if reason is not None:
        pytest.skip(reason)


def _ipv6_sender(index):
    def setup(sock):
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_IF, index)
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_LOOP, 1)
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_HOPS, 0)

    return setup


# Interface-local scope (ff11::): such traffic never leaves the host.
IPV6_GROUP = "ff11::5:1"


@pytest.fixture(scope="module")
def ipv6_multicast_interface():
    """The index of an interface on which looped-back IPv6 multicast works (lo cannot carry it)."""
    if not socket.has_ipv6:
        pytest.skip("Python was built without IPv6")
    reasons = []
    for index, name in socket.if_nameindex():
        try:
            with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as rx, socket.socket(
                socket.AF_INET6, socket.SOCK_DGRAM
            ) as tx:
                rx.bind((IPV6_GROUP, 0, 0, index))
                rx.setsockopt(
                    socket.IPPROTO_IPV6,
                    socket.IPV6_JOIN_GROUP,
                    socket.inet_pton(socket.AF_INET6, IPV6_GROUP) + struct.pack("@I", index),
                )
                _ipv6_sender(index)(tx)
                tx.sendto(b"probe", (IPV6_GROUP, rx.getsockname()[1], 0, index))
                if select.select([rx], [], [], 1.0)[0]:
                    return index
                reasons.append(f"{name}: not looped back")
        except OSError as exc:
            reasons.append(f"{name}: {exc.strerror}")
    pytest.skip("no interface carries looped-back IPv6 multicast: " + "; ".join(reasons))


def test_ipv4_multicast(pool, ipv4_multicast):
    port = free_port()
    stream = spead2.recv.Stream(pool, counting_config())
    stream.add_udp_reader(IPV4_GROUP, port, interface_address="127.0.0.1")
    # A second stream can join the same group and port (the socket is shared-address).
    other = spead2.recv.Stream(pool, counting_config())
    other.add_udp_reader(IPV4_GROUP, port, 9200, 0, "127.0.0.1")
    send_all(heap_packets(5), (IPV4_GROUP, port), setup=ipv4_multicast_sender)
    with watchdog(stream), watchdog(other):
        check_heaps(list(stream), 5)
        check_heaps(list(other), 5)


def test_ipv4_multicast_ignores_unicast_to_same_port(pool, ipv4_multicast):
    port = free_port()
    stream = spead2.recv.Stream(pool, counting_config())
    stream.add_udp_reader(IPV4_GROUP, port, interface_address="127.0.0.1")
    # Bound to the group address: unicast to the port is not for this reader.
    send_all(heap_packets(2, first_cnt=100)[:1], ("127.0.0.1", port))
    send_all(heap_packets(3), (IPV4_GROUP, port), setup=ipv4_multicast_sender)
    with watchdog(stream):
        check_heaps(list(stream), 3)


def test_ipv6_multicast(pool, ipv6_multicast_interface):
    index = ipv6_multicast_interface
    port = free_port(socket.AF_INET6, host="::")
    stream = spead2.recv.Stream(pool, counting_config())
    stream.add_udp_reader(IPV6_GROUP, port, interface_index=index)
    send_all(heap_packets(5), (IPV6_GROUP, port, 0, index), socket.AF_INET6, _ipv6_sender(index))
    with watchdog(stream):
        check_heaps(list(stream), 5)


def test_ipv6_multicast_positional(pool, ipv6_multicast_interface):
    index = ipv6_multicast_interface
    port = free_port(socket.AF_INET6, host="::")
    stream = spead2.recv.Stream(pool, counting_config())
    stream.add_udp_reader(IPV6_GROUP, port, 9200, 0, index)
    send_all(heap_packets(2), (IPV6_GROUP, port, 0, index), socket.AF_INET6, _ipv6_sender(index))
    with watchdog(stream):
        check_heaps(list(stream), 2)


def test_multicast_bind_hostname_joins_group(pool):
    port = free_port()
    stream = spead2.recv.Stream(pool, counting_config())
    try:
        stream.add_udp_reader(port, buffer_size=0, bind_hostname=IPV4_GROUP)
    except RuntimeError as exc:  # e.g. no route for multicast at all
        pytest.skip(f"cannot join {IPV4_GROUP} on the default interface: {exc}")
    try:
        with open("/proc/net/igmp") as f:
            igmp = f.read()
    except OSError:
        pytest.skip("no /proc/net/igmp to check group membership")
    finally:
        stream.stop()
    # /proc/net/igmp lists groups as little-endian hex.
    assert socket.inet_aton(IPV4_GROUP)[::-1].hex().upper() in igmp


# -- max_size, buffer_size ---------------------------------------------------------------


def single_packet_heap(cnt, samples):
    group = indexed_group()
    group["index"].value = cnt
    group["data"].value = np.arange(samples, dtype="<i4") * (cnt + 1)
    [packet] = spead2.send.PacketGenerator(group.get_heap(descriptors="all", data="all"), cnt + 1, 9000)
    return packet


def test_max_size_drops_and_counts_longer_datagrams(pool, log):
    exact = single_packet_heap(0, 100)
    longer = single_packet_heap(1, 101)  # 4 bytes longer
    end = heap_packets(0)[0]
    port = free_port()
    stream = spead2.recv.Stream(pool, counting_config())
    stream.add_udp_reader(port, max_size=len(exact), bind_hostname="127.0.0.1")
    send_all([[exact], [longer], [exact], end], ("127.0.0.1", port))
    with watchdog(stream):
        heaps = list(stream)
    assert [heap.cnt for heap in heaps] == [1, 1]
    stats = stream.stats
    assert stats["invalid_packets"] == 1
    assert stats["packets"] == 3  # two data packets and the stop packet
    assert "dropped packet due to truncation" in log.text


def test_huge_max_size_accepts_everything(pool):
    port = free_port()
    stream = spead2.recv.Stream(pool, counting_config())
    stream.add_udp_reader(port, max_size=2**40, buffer_size=0, bind_hostname="127.0.0.1")
    send_all(heap_packets(2, samples=15000, max_packet_size=65000), ("127.0.0.1", port))
    with watchdog(stream):
        check_heaps(list(stream), 2, samples=15000)
    assert stream.stats["invalid_packets"] == 0


def test_buffer_size_warning_names_both_sizes(pool, caplog):
    stream = spead2.recv.Stream(pool, counting_config())
    with caplog.at_level(logging.WARNING, logger="spead2"):
        stream.add_udp_reader(free_port(), buffer_size=2**31 - 1, bind_hostname="127.0.0.1")
    match = re.search(r"requested socket buffer size (\d+) but only received (\d+)", caplog.text)
    assert match is not None, caplog.text
    assert int(match.group(1)) == 2**31 - 1
    assert 0 < int(match.group(2)) < 2**31 - 1
    stream.stop()


def test_small_or_default_buffer_size_does_not_warn(pool, caplog):
    stream = spead2.recv.Stream(pool, counting_config())
    with caplog.at_level(logging.WARNING, logger="spead2"):
        stream.add_udp_reader(free_port(), buffer_size=0, bind_hostname="127.0.0.1")
        stream.add_udp_reader(free_port(), buffer_size=65536, bind_hostname="127.0.0.1")
    assert "requested socket buffer size" not in caplog.text
    stream.stop()


# -- start, stop, backpressure ------------------------------------------------------------


def test_explicit_start_holds_udp_reader(pool):
    port = free_port()
    stream = spead2.recv.Stream(pool, spead2.recv.StreamConfig(explicit_start=True))
    stream.add_udp_reader(port, bind_hostname="127.0.0.1")  # bound now: the kernel queues datagrams
    send_all(heap_packets(4), ("127.0.0.1", port))
    # What is checked is that nothing happens: no event to wait for, so a reader that
    # was not held gets this long to read the queued datagrams.
    time.sleep(0.1)
    with pytest.raises(spead2.Empty):
        stream.get_nowait()
    assert stream.stats["packets"] == 0
    stream.start()
    with pytest.raises(RuntimeError, match="Cannot add readers after explicit start"):
        stream.add_udp_reader(free_port(), bind_hostname="127.0.0.1")
    with watchdog(stream):
        check_heaps(list(stream), 4)


class Blaster:
    """Sends ``packets`` (lists of datagrams) to ``port`` over and over, from a thread, until stopped."""

    def __init__(self, packets: list[list[bytes]], port: int) -> None:
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(packets, port))
        self._thread.start()

    def _run(self, packets: list[list[bytes]], port: int) -> None:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as tx:
            while not self._done.is_set():
                for heap in packets:
                    for packet in heap:
                        tx.sendto(packet, ("127.0.0.1", port))

    def stop(self) -> None:
        self._done.set()
        self._thread.join(TIMEOUT)


def test_stop_during_traffic_closes_socket(pool):
    port = free_port()
    stream = spead2.recv.Stream(pool, counting_config())
    stream.add_udp_reader(port, bind_hostname="127.0.0.1")
    sender = Blaster(heap_packets(50, end=False), port)
    try:
        with watchdog(stream):
            for _ in range(20):
                stream.get()
        stopper = threading.Thread(target=stream.stop)
        stopper.start()
        stopper.join(TIMEOUT)
        assert not stopper.is_alive()
        assert not is_bound(port, socket.SOCK_DGRAM)
    finally:
        sender.stop()
    rest = list(stream)  # what was queued stays retrievable, then the stream ends
    assert len(rest) <= stream.ring_config.heaps + 64


def test_add_to_stopped_stream_is_ignored_and_closes_socket(pool):
    port = free_port()
    stream = spead2.recv.Stream(pool, counting_config())
    stream.stop()
    stream.add_udp_reader(port, bind_hostname="127.0.0.1")
    assert not is_bound(port, socket.SOCK_DGRAM)
    with pytest.raises(spead2.Stopped):
        stream.get()


def test_full_ring_pauses_reader_and_resumes(pool, caplog):
    port = free_port()
    stream = spead2.recv.Stream(pool, ring_config=spead2.recv.RingStreamConfig(heaps=2))
    stream.add_udp_reader(port, bind_hostname="127.0.0.1")
    # More than one batch (so the reader must pause), yet few and small enough
    # for the kernel buffer to hold while the ring is full.
    heaps = udp_transport.DATAGRAMS_PER_CALL + 50  # one datagram each
    send_all(heap_packets(heaps), ("127.0.0.1", port))
    wait_for(lambda: stream.stats["worker_blocked"] >= 1)
    # Paused: the ring holds at most one batch beyond its capacity, the rest waits in the kernel.
    assert 2 <= stream.ringbuffer.size() <= 2 + udp_transport.DATAGRAMS_PER_CALL
    with watchdog(stream):
        check_heaps(list(stream), heaps)
    # For UDP a full ring means the kernel may drop datagrams: worth a warning.
    assert caplog.text.count("UDP reader paused by a full ringbuffer") == 1


async def test_stop_during_traffic_asyncio(pool):
    port = free_port()
    stream = spead2.recv.asyncio.Stream(pool, counting_config())  # runs on this loop: stop() closes inline
    stream.add_udp_reader(port, bind_hostname="127.0.0.1")
    sender = Blaster(heap_packets(20, end=False), port)
    try:
        for _ in range(10):
            await asyncio.wait_for(stream.get(), TIMEOUT)
        stream.stop()
        assert not is_bound(port, socket.SOCK_DGRAM)
    finally:
        await asyncio.to_thread(sender.stop)
    with pytest.raises(spead2.Stopped):
        while True:
            await asyncio.wait_for(stream.get(), TIMEOUT)


# -- payloads received in place (recvmmsg aimed at the heap's buffer) -----------------------

RAW_STOP = spead_packets.packet(999, 0, 0, b"", [spead_packets.imm(spead_packets.STOP_ID, 2, 48)])


def receive_over_loopback(pool, packets, zero_copy, batch, max_size, out_of_order=False):
    """Heaps and statistics of a stream reading ``packets`` (queued before it starts) from a socket."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    sock.bind(("127.0.0.1", 0))
    with sock, socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender:
        for data in [*packets, RAW_STOP]:
            sender.sendto(data, sock.getsockname())
        config = spead2.recv.StreamConfig(max_heaps=2, allow_out_of_order=out_of_order)
        ring = spead2.recv.RingStreamConfig(heaps=64, contiguous_only=False,
                                            incomplete_keep_payload_ranges=True)
        stream = spead2.recv.Stream(pool, config, ring)
        saved = udp_transport._ZERO_COPY, udp_transport.DATAGRAMS_PER_CALL
        udp_transport._ZERO_COPY, udp_transport.DATAGRAMS_PER_CALL = zero_copy, batch
        try:
            stream.add_udp_reader(sock, max_size=max_size)
        finally:
            udp_transport._ZERO_COPY, udp_transport.DATAGRAMS_PER_CALL = saved
        records = []
        with watchdog(stream):
            for heap in stream:
                if isinstance(heap, spead2.recv.IncompleteHeap):
                    records.append(("incomplete", heap.cnt, heap.heap_length, heap.received_length,
                                    heap.payload_ranges))
                else:
                    records.append(("heap", heap.cnt, [(item.id, bytes(item)) for item in heap.get_items()]))
        stream.stop()
    return records, dict(stream.stats.items())


@pytest.fixture
def placed_counter(monkeypatch):
    """How many datagrams were received in place (confirmed in their predicted place)."""
    total = [0]
    confirm = udp_transport.confirmed_count

    def counting(*args):
        placed = confirm(*args)
        total[0] += placed
        return placed

    monkeypatch.setattr(udp_transport, "confirmed_count", counting)
    return total


def test_in_order_heaps_are_received_in_place_over_loopback(pool, receive_path, placed_counter):
    packets = spead_packets.heap_packets(1, 512 * 40, 512) + spead_packets.heap_packets(2, 512 * 40 + 100, 512)
    plain = receive_over_loopback(pool, packets, False, 16, 1000)
    assert placed_counter[0] == 0
    placed = receive_over_loopback(pool, packets, True, 16, 1000)
    assert placed == plain
    assert [r[:2] for r in plain[0]] == [("heap", 1), ("heap", 2)]
    if receive_path == "recvmmsg":
        # Every batch but the one starting each heap (its first packet also carries
        # the item pointer, so its payload is shorter than the next ones').
        assert placed_counter[0] >= len(packets) - 2 * 16


@pytest.mark.parametrize("receive_path", ["recvmmsg"], indirect=True)
@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(stream=hostile_streams(plens=[64, 200], habs=[48], max_packets=40, stops=False),
       batch=st.integers(2, 24), out_of_order=st.booleans())
def test_received_in_place_or_not_the_heaps_and_statistics_are_identical(
    pool, receive_path, stream, batch, out_of_order
):
    packets, plen = stream
    max_size = plen + 48 + 16  # longer datagrams are dropped as truncated
    plain = receive_over_loopback(pool, packets, False, batch, max_size, out_of_order)
    placed = receive_over_loopback(pool, packets, True, batch, max_size, out_of_order)
    assert placed == plain
