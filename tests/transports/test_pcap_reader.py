"""add_udp_pcap_file_reader: capture files written by tests/helpers/pcap_files.py, replayed into streams."""

import gc
import logging
import os
import queue
import shutil
import struct
import subprocess
import threading
import time
import warnings

import numpy as np
import pytest

import spead2
import spead2.recv
import spead2.recv.asyncio
import spead2.send
from spead2.transports.pcap import READ_FRAMES
from tests.helpers import pcap_files as pf
from tests.helpers.streams import counting_config
from tests.helpers.waiting import get_within

TIMEOUT = 30
PcapStream = spead2.recv.Stream
PcapAsyncStream = spead2.recv.asyncio.Stream




def make_group():
    group = spead2.send.ItemGroup()
    group.add_item(0x1000, "index", "Heap index", (), format=[("u", 32)])
    group.add_item(0x1001, "data", "Samples", (600,), dtype="<i4")
    return group


def heap_values(i):
    return i, np.arange(600, dtype="<i4") * (i + 1)


def heap_packets(n, *, first=0, end=False, max_packet_size=1472):
    """The SPEAD packets (one list per heap) of heaps ``first .. first+n-1``; 2 packets each."""
    group = make_group()
    heaps = []
    for i in range(first, first + n):
        index, data = heap_values(i)
        group["index"].value = index
        group["data"].value = data
        heaps.append(list(spead2.send.PacketGenerator(group.get_heap(), i + 1, max_packet_size)))
    if end:
        heaps.append(list(spead2.send.PacketGenerator(group.get_end(), first + n + 1, max_packet_size)))
    return heaps


def flat(heaps):
    return [packet for packets in heaps for packet in packets]


def received_indices(heaps):
    group = spead2.ItemGroup()
    seen = []
    for heap in heaps:
        updated = group.update(heap)
        if "index" in updated:
            index, data = heap_values(int(updated["index"].value))
            np.testing.assert_array_equal(updated["data"].value, data)
            seen.append(index)
    return seen


def replay(pool, path, filter="", **ring):
    stream = PcapStream(pool, counting_config(), ring_config=spead2.recv.RingStreamConfig(**ring))
    stream.add_udp_pcap_file_reader(str(path), filter)
    heaps = list(stream)
    return received_indices(heaps), stream.stats


def no_unclosed_captures():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ResourceWarning)
        gc.collect()
    return [w for w in caught if "Pcap" in str(w.message)] == []


# -- file formats and link layers -----------------------------------------------------------


@pytest.mark.parametrize(
    "writer",
    [
        pytest.param(lambda p, r: pf.write_pcap(p, r), id="pcap-us"),
        pytest.param(lambda p, r: pf.write_pcap(p, r, nanosecond=True), id="pcap-ns"),
        pytest.param(lambda p, r: pf.write_pcap(p, r, big_endian=True), id="pcap-big-endian"),
        pytest.param(lambda p, r: pf.write_pcapng(p, r), id="pcapng"),
        pytest.param(lambda p, r: pf.write_pcapng(p, r, big_endian=True), id="pcapng-big-endian"),
    ],
)
def test_file_formats(pool, tmp_path, writer):
    path = tmp_path / "capture"
    writer(path, [pf.udp_frame(p) for p in flat(heap_packets(10))])
    seen, stats = replay(pool, path)
    assert seen == list(range(10))
    assert stats["packets"] == 20
    assert stats["heaps"] == 10
    assert stats["invalid_packets"] == 0
    assert no_unclosed_captures()


def _frames(payload, variant):
    ip4 = pf.ipv4_udp(payload)
    ip6 = pf.ipv6_udp(payload)
    return {
        "ipv6": (pf.LINKTYPE_ETHERNET, pf.udp_frame(payload, ipv6=True)),
        "vlan": (pf.LINKTYPE_ETHERNET, pf.udp_frame(payload, vlans=[42])),
        "qinq-ipv6": (pf.LINKTYPE_ETHERNET, pf.udp_frame(payload, ipv6=True, vlans=[7, 42])),
        "ipv6-extension-headers": (
            pf.LINKTYPE_ETHERNET,
            pf.ethernet(pf.ipv6_udp(payload, hop_by_hop=True, fragment=(0, False)), pf.ETHERTYPE_IPV6),
        ),
        "sll-ipv4": (pf.LINKTYPE_LINUX_SLL, pf.linux_sll(ip4)),
        "sll-ipv6": (pf.LINKTYPE_LINUX_SLL, pf.linux_sll(ip6, pf.ETHERTYPE_IPV6)),
        "sll2-ipv4": (pf.LINKTYPE_LINUX_SLL2, pf.linux_sll2(ip4)),
        "sll2-ipv6": (pf.LINKTYPE_LINUX_SLL2, pf.linux_sll2(ip6, pf.ETHERTYPE_IPV6)),
    }[variant]


@pytest.mark.parametrize(
    "variant",
    ["ipv6", "vlan", "qinq-ipv6", "ipv6-extension-headers", "sll-ipv4", "sll-ipv6", "sll2-ipv4", "sll2-ipv6"],
)
def test_link_and_network_layers(pool, tmp_path, variant):
    packets = flat(heap_packets(5))
    linktype = _frames(b"", variant)[0]
    path = tmp_path / "capture.pcap"
    pf.write_pcap(path, [_frames(p, variant)[1] for p in packets], linktype=linktype)
    seen, stats = replay(pool, path)
    assert seen == list(range(5))
    assert stats["invalid_packets"] == 0


def test_ethernet_padding_is_not_payload(pool, tmp_path):
    # A stop heap's packet is small; a 1-byte UDP payload pads the frame to 60 bytes.
    stop = flat(heap_packets(0, end=True))
    packets = flat(heap_packets(2)) + stop
    path = tmp_path / "capture.pcap"
    pf.write_pcap(path, [pf.udp_frame(b"x")] + [pf.udp_frame(p) for p in packets])
    assert len(pf.udp_frame(b"x")) == 60
    seen, stats = replay(pool, path)
    assert seen == [0, 1]
    assert stats["invalid_packets"] == 1  # the 1-byte payload is not a SPEAD packet


# -- skipped frames -------------------------------------------------------------------------


def test_other_frames_skipped_and_counted(pool, tmp_path, caplog):
    good = [pf.udp_frame(p) for p in flat(heap_packets(4))]
    lost = flat(heap_packets(1, first=100))[0]
    truncated = pf.udp_frame(lost)
    bad_version = bytearray(pf.udp_frame(lost))
    bad_version[14] = 0x55  # IP version 5
    udp_too_long = bytearray(pf.udp_frame(lost))
    udp_too_long[14 + 20 + 4 : 14 + 20 + 6] = struct.pack("!H", 4000)
    skipped = [
        pf.arp_frame(),
        pf.tcp_frame(lost),
        pf.ethernet(pf.ipv4_udp(lost, more_fragments=True)),
        pf.ethernet(pf.ipv4_udp(lost, fragment_offset=1480)),
        pf.ethernet(pf.ipv6_udp(lost, fragment=(0, True)), pf.ETHERTYPE_IPV6),
        pf.ethernet(pf.ipv6_udp(lost, fragment=(1480, False)), pf.ETHERTYPE_IPV6),
        bytes(bad_version),
        bytes(udp_too_long),
        pf.udp_frame(lost)[:30],  # captured whole, but shorter than its headers
        (truncated[:40], len(truncated)),
    ]
    records = []
    for i, frame in enumerate(good):
        records.append(frame)
        if i < len(skipped):
            records.append(skipped[i])
    records += skipped[len(good):]
    path = tmp_path / "capture.pcap"
    pf.write_pcap(path, records)
    with caplog.at_level(logging.INFO, logger="spead2"):
        seen, stats = replay(pool, path)
    assert seen == [0, 1, 2, 3]
    # 6 carry no SPEAD packet (not UDP, fragments); 4 are broken (malformed, truncated)
    assert stats["skipped_frames"] == 6
    assert stats["invalid_packets"] == 4
    assert stats["packets"] == len(good)
    messages = [r.getMessage() for r in caplog.records]
    assert f"Packet was truncated (40 < {len(truncated)})" in messages
    assert [r.levelno for r in caplog.records if r.getMessage().startswith("Packet was truncated")] == [
        logging.WARNING
    ]
    summary = [m for m in messages if m.startswith("pcap reader:")]
    assert summary == [
        f"pcap reader: {path}: skipped 10 frames (2 not UDP, 4 IP fragments, 3 malformed, 1 truncated)"
    ]


# -- filters --------------------------------------------------------------------------------


def _two_flows(tmp_path):
    a = flat(heap_packets(6))
    b = flat(heap_packets(6, first=50))
    records = []
    for pa, pb in zip(a, b, strict=True):
        records.append(pf.udp_frame(pa, dport=7148))
        records.append(pf.udp_frame(pb, dport=7149, ipv6=True))
    path = tmp_path / "two-flows.pcap"
    pf.write_pcap(path, records)
    return path


@pytest.mark.parametrize(
    ("filter", "expected"),
    [
        ("udp port 7148", list(range(6))),
        ("udp dst port 7149", list(range(50, 56))),
        ("ip6", list(range(50, 56))),
        ("ip and udp", list(range(6))),
        ("tcp", []),
    ],
)
def test_bpf_filter(pool, tmp_path, filter, expected):
    seen, stats = replay(pool, _two_flows(tmp_path), filter)
    assert seen == expected
    assert stats["invalid_packets"] == 0  # frames the filter rejects are not counted
    assert stats["skipped_frames"] == 0


def test_no_filter_reads_both_flows(pool, tmp_path):
    seen, _ = replay(pool, _two_flows(tmp_path))
    assert sorted(seen) == list(range(6)) + list(range(50, 56))


def test_filter_on_vlan_tagged_frames(pool, tmp_path):
    records = [pf.udp_frame(p, vlans=[5]) for p in flat(heap_packets(2))]
    records += [pf.udp_frame(p, vlans=[6]) for p in flat(heap_packets(2, first=10))]
    path = tmp_path / "vlan.pcap"
    pf.write_pcap(path, records)
    seen, _ = replay(pool, path, "vlan 6 and udp port 7148")
    assert seen == [10, 11]


# -- stream behaviour -----------------------------------------------------------------------


def test_big_file_tiny_ring_is_lossless(pool, tmp_path, caplog):
    n = 3 * READ_FRAMES  # several worker batches, each split into several core batches
    path = tmp_path / "big.pcapng"
    pf.write_pcapng(path, [pf.udp_frame(p) for p in flat(heap_packets(n))])
    stream = PcapStream(pool, counting_config(), ring_config=spead2.recv.RingStreamConfig(heaps=1))
    stream.add_udp_pcap_file_reader(str(path))
    assert received_indices(stream) == list(range(n))
    stats = stream.stats
    assert stats["heaps"] == n
    assert stats["packets"] == 2 * n
    assert stats["worker_blocked"] > 0
    assert stats["incomplete_heaps_evicted"] == 0
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]  # a file loses nothing by waiting


def test_end_of_file_flushes_partial_heaps(pool, tmp_path):
    heaps = heap_packets(3)
    packets = flat(heaps[:2]) + heaps[2][:1]  # the last heap lacks its second packet
    path = tmp_path / "capture.pcap"
    pf.write_pcap(path, [pf.udp_frame(p) for p in packets])
    stream = PcapStream(pool, counting_config(), spead2.recv.RingStreamConfig(contiguous_only=False))
    stream.add_udp_pcap_file_reader(str(path))
    heaps = list(stream)
    assert [type(h).__name__ for h in heaps] == ["Heap", "Heap", "IncompleteHeap"]
    assert heaps[2].cnt == 3
    assert stream.stats["incomplete_heaps_flushed"] == 1


def test_stop_item_stops_before_end_of_file(pool, tmp_path):
    packets = flat(heap_packets(2, end=True)) + flat(heap_packets(2, first=10))
    path = tmp_path / "capture.pcap"
    pf.write_pcap(path, [pf.udp_frame(p) for p in packets])
    seen, stats = replay(pool, path)
    assert seen == [0, 1]
    assert stats["packets"] == 5


def test_damaged_file_stops_with_warning(pool, tmp_path, caplog):
    path = tmp_path / "capture.pcap"
    pf.write_pcap(path, [pf.udp_frame(p) for p in flat(heap_packets(3))])
    data = path.read_bytes()
    path.write_bytes(data[:-10])  # the last record is cut short
    with caplog.at_level(logging.WARNING, logger="spead2"):
        seen, stats = replay(pool, path)
    assert seen == [0, 1]
    assert stats["incomplete_heaps_flushed"] == 1  # heap 2 got only its first packet
    warnings_ = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any(m.startswith("Error reading packet: truncated dump file") for m in warnings_)


def test_explicit_start(pool, tmp_path):
    path = tmp_path / "capture.pcap"
    pf.write_pcap(path, [pf.udp_frame(p) for p in flat(heap_packets(3))])
    stream = PcapStream(pool, spead2.recv.StreamConfig(explicit_start=True))
    stream.add_udp_pcap_file_reader(str(path))
    with pytest.raises(spead2.Empty):
        stream.get_nowait()
    stream.start()
    assert received_indices(stream) == [0, 1, 2]
    with pytest.raises(RuntimeError, match="^Cannot add readers after explicit start$"):
        stream.add_udp_pcap_file_reader(str(tmp_path / "missing.pcap"))  # checked before the file


def test_stopped_stream_ignores_reader_without_opening(pool, tmp_path):
    stream = PcapStream(pool, counting_config())
    stream.stop()
    stream.add_udp_pcap_file_reader(str(tmp_path / "missing.pcap"))  # the reference does not complain
    with pytest.raises(spead2.Stopped):
        stream.get()


def test_stop_midway_closes_the_file(pool, tmp_path):
    n = 2 * READ_FRAMES
    path = tmp_path / "big.pcap"
    pf.write_pcap(path, [pf.udp_frame(p) for p in flat(heap_packets(n))])
    stream = PcapStream(pool, counting_config(), ring_config=spead2.recv.RingStreamConfig(heaps=2))
    stream.add_udp_pcap_file_reader(str(path))
    first = stream.get()
    stream.stop()
    rest = list(stream)
    assert received_indices([first, *rest]) == list(range(1 + len(rest)))
    assert len(rest) < n - 1
    del stream
    assert no_unclosed_captures()


def test_several_readers_first_end_stops_stream(pool, tmp_path):
    a = tmp_path / "a.pcap"
    pf.write_pcap(a, [pf.udp_frame(p) for p in flat(heap_packets(2))])
    stream = PcapStream(pool, spead2.recv.StreamConfig(explicit_start=True))
    stream.add_udp_pcap_file_reader(str(a))
    stream.add_udp_pcap_file_reader(str(a))
    stream.start()
    heaps = list(stream)
    assert 2 <= len(heaps) <= 4
    assert no_unclosed_captures()


async def test_asyncio_stream(tmp_path):
    path = tmp_path / "capture.pcapng"
    pf.write_pcapng(path, [pf.udp_frame(p) for p in flat(heap_packets(40))])
    pool = spead2.ThreadPool()
    try:
        stream = PcapAsyncStream(pool, ring_config=spead2.recv.RingStreamConfig(heaps=2))
        stream.add_udp_pcap_file_reader(str(path), "udp")
        heaps = [heap async for heap in stream]
    finally:
        pool.stop()
    assert received_indices(heaps) == list(range(40))


def test_path_like_and_bytes_filenames(pool, tmp_path):
    path = tmp_path / "capture.pcap"
    pf.write_pcap(path, [pf.udp_frame(p) for p in flat(heap_packets(1))])
    for name in (path, bytes(path)):
        stream = PcapStream(pool, counting_config())
        stream.add_udp_pcap_file_reader(name)
        assert received_indices(stream) == [0]


def test_file_name_that_is_not_utf8(pool, tmp_path):
    path = tmp_path / "caf\udce9.pcap"  # a Latin-1 name, as os.fsdecode gives it
    pf.write_pcap(path, [pf.udp_frame(p) for p in flat(heap_packets(1))])
    stream = PcapStream(pool, counting_config())
    stream.add_udp_pcap_file_reader(str(path))
    assert received_indices(stream) == [0]
    with pytest.raises(RuntimeError, match="cannot open capture file"):
        PcapStream(pool, counting_config()).add_udp_pcap_file_reader(str(tmp_path / "missing-caf\udce9.pcap"))


# -- errors ---------------------------------------------------------------------------------


def _empty_capture(tmp_path, linktype=pf.LINKTYPE_ETHERNET):
    path = tmp_path / f"empty-{linktype}.pcap"
    pf.write_pcap(path, [], linktype=linktype)
    return str(path)


def test_missing_file(pool, tmp_path):
    missing = str(tmp_path / "missing.pcap")
    with pytest.raises(RuntimeError) as info:
        PcapStream(pool, counting_config()).add_udp_pcap_file_reader(missing)
    assert str(info.value) == f"{missing}: No such file or directory"


def test_not_a_capture_file(pool, tmp_path):
    path = tmp_path / "text.pcap"
    path.write_text("hello, this is not a capture\n")
    with pytest.raises(RuntimeError, match="^unknown file format$"):
        PcapStream(pool, counting_config()).add_udp_pcap_file_reader(str(path))


@pytest.mark.parametrize("linktype", [pf.LINKTYPE_RAW, 0, 105])
def test_other_link_types(pool, tmp_path, linktype):
    with pytest.raises(RuntimeError) as info:
        PcapStream(pool, counting_config()).add_udp_pcap_file_reader(_empty_capture(tmp_path, linktype))
    assert str(info.value) == "pcap linktype is neither ethernet nor linux sll"
    assert no_unclosed_captures()


@pytest.mark.parametrize(
    ("filter", "message"),
    # The messages the reference gives for each.
    [
        ("not a filter", "syntax error in filter expression"),
        ("foo", "syntax error in filter expression"),
        ("foo and udp", "syntax error in filter expression"),
        ("7148", "syntax error in filter expression"),
        ("udp port", "can't parse filter expression: syntax error"),
        ("udp 7148", "can't parse filter expression: syntax error"),
        ("(", "can't parse filter expression: syntax error"),
        ("udp port 99999", "illegal port number 99999 > 65535"),
        ("udp port x", "unknown port 'x'"),
    ],
)
def test_bad_filter(pool, tmp_path, filter, message):
    with pytest.raises(RuntimeError) as info:
        PcapStream(pool, counting_config()).add_udp_pcap_file_reader(_empty_capture(tmp_path), filter)
    assert str(info.value) == message
    assert no_unclosed_captures()


def test_filter_is_checked_before_link_type(pool, tmp_path):
    with pytest.raises(RuntimeError, match="^syntax error in filter expression$"):
        PcapStream(pool, counting_config()).add_udp_pcap_file_reader(_empty_capture(tmp_path, pf.LINKTYPE_RAW), "foo")


def test_filter_libpcap_rejects_for_link_type(pool, tmp_path):
    with pytest.raises(RuntimeError, match="^no VLAN support for Linux cooked v1$"):
        PcapStream(pool, counting_config()).add_udp_pcap_file_reader(_empty_capture(tmp_path, pf.LINKTYPE_LINUX_SLL), "vlan")


def test_argument_types(pool, tmp_path):
    stream = PcapStream(pool, counting_config())
    with pytest.raises(TypeError, match="filename"):
        stream.add_udp_pcap_file_reader(1)
    with pytest.raises(TypeError, match="filter"):
        stream.add_udp_pcap_file_reader(_empty_capture(tmp_path), None)
    with pytest.raises(ValueError, match="filename must not contain NUL"):
        stream.add_udp_pcap_file_reader(_empty_capture(tmp_path) + "\0.txt")
    stream.add_udp_pcap_file_reader(filename=_empty_capture(tmp_path), filter="udp")
    with pytest.raises(spead2.Stopped):  # the empty file ended the stream
        stream.get()


# -- the test helper against tcpdump --------------------------------------------------------


@pytest.mark.skipif(shutil.which("tcpdump") is None, reason="tcpdump is not installed")
@pytest.mark.parametrize("kind", ["pcap", "pcap-ns", "pcapng", "sll", "sll2"])
def test_helper_files_are_readable_by_tcpdump(tmp_path, kind):
    payload = flat(heap_packets(1))
    path = tmp_path / "capture"
    if kind == "sll":
        pf.write_pcap(path, [pf.linux_sll(pf.ipv4_udp(p)) for p in payload], linktype=pf.LINKTYPE_LINUX_SLL)
    elif kind == "sll2":
        pf.write_pcap(path, [pf.linux_sll2(pf.ipv4_udp(p)) for p in payload], linktype=pf.LINKTYPE_LINUX_SLL2)
    else:
        records = [pf.udp_frame(payload[0]), pf.udp_frame(payload[1], ipv6=True, vlans=[3])]
        if kind == "pcapng":
            pf.write_pcapng(path, records)
        else:
            pf.write_pcap(path, records, nanosecond=kind == "pcap-ns")
    out = subprocess.run(
        ["tcpdump", "-nn", "-vv", "-r", str(path)], capture_output=True, text=True, check=True
    ).stdout
    assert out.count("[udp sum ok] UDP, length") == 2


# -- a live capture: a FIFO fed by a writer that keeps it open -------------------------------


def _capture_bytes(tmp_path, packets):
    path = tmp_path / "frames.pcap"
    pf.write_pcap(path, [pf.udp_frame(p) for p in packets])
    return path.read_bytes()


class FifoWriter:
    """Writes ``data`` into a FIFO from a thread, then keeps it open until :meth:`finish`."""

    def __init__(self, path, data):
        os.mkfifo(path)
        self.path = path
        self.data = data
        self.more = queue.Queue()
        self.broken = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        fd = os.open(self.path, os.O_WRONLY)  # waits for the reader to open it
        try:
            os.write(fd, self.data)
            while (chunk := self.more.get()) is not None:
                try:
                    os.write(fd, chunk)
                except BrokenPipeError:  # every reader has closed the FIFO
                    self.broken.set()
        finally:
            os.close(fd)

    def finish(self):
        self.more.put(None)
        self.thread.join(TIMEOUT)


def test_live_fifo_delivers_what_has_arrived_and_stops_at_once(pool, tmp_path):
    """50 heaps written to a FIFO whose writer keeps it open all arrive; stop() frees the FIFO."""
    heaps = heap_packets(50)
    header_and_frames = _capture_bytes(tmp_path, flat(heaps))
    writer = FifoWriter(tmp_path / "live", header_and_frames)
    try:
        stream = PcapStream(pool)
        stream.add_udp_pcap_file_reader(str(writer.path))
        received = [get_within(stream, 3) for _ in range(50)]
        assert received_indices(received) == list(range(50))
        # Stopping does not wait for the writer to write (or close) anything ...
        stream.stop()
        assert list(stream) == []
        # ... and the FIFO is released: the writer's next write finds no reader.
        deadline = time.monotonic() + TIMEOUT
        while not writer.broken.is_set():
            assert time.monotonic() < deadline, "the stopped reader still holds the FIFO open"
            writer.more.put(b"\0" * 16)
            writer.broken.wait(0.05)
    finally:
        writer.finish()


def test_live_fifo_heaps_written_later_arrive_one_by_one(pool, tmp_path):
    heaps = heap_packets(5)
    header_and_frames = _capture_bytes(tmp_path, flat(heaps))
    frames = _capture_bytes(tmp_path, [])
    header_size = len(frames)
    sizes = [len(_capture_bytes(tmp_path, h)) - header_size for h in heaps]
    writer = FifoWriter(tmp_path / "live", header_and_frames[:header_size])
    try:
        stream = PcapStream(pool)
        stream.add_udp_pcap_file_reader(str(writer.path))
        offset = header_size
        received = []
        for size in sizes:
            writer.more.put(header_and_frames[offset : offset + size])
            offset += size
            received.append(get_within(stream, 3))  # each heap as soon as it is written
        assert received_indices(received) == list(range(len(heaps)))
        # The end of the capture (the writer closes the FIFO) stops the stream.
        writer.finish()
        assert list(stream) == []
    finally:
        writer.finish()


@pytest.mark.skipif(shutil.which("tcpdump") is None, reason="tcpdump is not installed")
@pytest.mark.skipif(os.geteuid() != 0, reason="capturing on lo needs root")
@pytest.mark.timeout(120)
def test_live_tcpdump_capture_through_a_fifo(pool, tmp_path):
    """``tcpdump -U -w FIFO`` capturing our sender on lo: heaps arrive while it runs; stop is at once."""
    import socket

    port_owner = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    port_owner.bind(("127.0.0.1", 0))  # keeps the port ours; the datagrams are read from the capture
    port = port_owner.getsockname()[1]
    fifo = tmp_path / "live"
    os.mkfifo(fifo)
    tcpdump = subprocess.Popen(
        ["tcpdump", "-i", "lo", "-U", "-Z", "root", "-w", str(fifo), f"udp dst port {port}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )
    sender = spead2.send.UdpStream(pool, [("127.0.0.1", port)])

    def send(n):
        # A short burst, then silence (tcpdump keeps the FIFO open): far fewer
        # frames than a batch of a capture file. tcpdump says it is listening
        # once the reader has opened the FIFO.
        if n > 1:
            assert tcpdump.stderr is not None
            assert "listening on lo" in tcpdump.stderr.readline()
        group = make_group()
        for i in range(n):
            group["index"].value, group["data"].value = heap_values(i)
            sender.send_heap(group.get_heap(descriptors="all"))
            time.sleep(0.02)  # the scenario: heaps written one by one, later than the reader opened

    thread = threading.Thread(target=send, args=(20,), daemon=True)
    thread.start()
    try:
        stream = PcapStream(pool)
        # Opening waits for tcpdump's header (written with its first captured packet).
        stream.add_udp_pcap_file_reader(str(fifo))
        heaps = [get_within(stream, 5) for _ in range(20)]
        assert received_indices(heaps) == list(range(20))  # values checked against those sent
        started = time.monotonic()
        stream.stop()
        assert time.monotonic() - started < 5
        # tcpdump's next write finds the FIFO closed: it ends.
        send(1)
        tcpdump.wait(TIMEOUT)
    finally:
        thread.join(TIMEOUT)
        if tcpdump.poll() is None:
            tcpdump.kill()
            tcpdump.wait()
        port_owner.close()
