"""UDP helpers shared by the loss-relay, slow-consumer and shutdown tests.

Linux counts, per socket, the datagrams its kernel dropped because the
receive buffer was full (the ``drops`` column of ``/proc/net/udp``). With it a
test can account for every datagram exactly: those the stream counted plus
those the kernel dropped must equal those sent.
"""

from __future__ import annotations

import socket

import numpy as np

#: The receive buffer the tests ask for (Linux caps it at net.core.rmem_max).
BUFFER_SIZE = 4 << 20


def bound_udp_socket(buffer_size: int = BUFFER_SIZE) -> socket.socket:
    """A UDP socket on an ephemeral loopback port with (up to) ``buffer_size`` of receive buffer."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, buffer_size)
    sock.bind(("127.0.0.1", 0))
    return sock


def kernel_drops(port: int) -> int | None:
    """Datagrams the kernel dropped for the IPv4 UDP socket(s) bound to ``port``; None if unknown."""
    try:
        with open("/proc/net/udp") as f:
            lines = f.read().splitlines()[1:]
    except OSError:
        return None
    total = None
    for line in lines:
        fields = line.split()
        if len(fields) < 13:
            continue
        if int(fields[1].split(":")[1], 16) == port:
            total = (total or 0) + int(fields[-1])
    return total


def heap_payload(cnt: int) -> np.ndarray:
    """The test data of heap ``cnt``: 500–6496 bytes (1–5 packets of 1472), a pattern of cnt.

    Plain integer arithmetic, so every numpy version (the reference's venv has
    its own) computes the same bytes.
    """
    size = 500 + (cnt * 997) % 6000
    return ((np.arange(size, dtype=np.int64) * 7 + cnt * 13) % 251).astype(np.uint8)


#: A sender script run by either interpreter (ours or the reference's), public API only.
#: argv: port n_heaps rate(bytes/s) first_cnt. Prints the number of packets sent.
SENDER_SCRIPT = r"""
import socket, sys
import numpy as np
import spead2, spead2.send

port, n_heaps, rate, first = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4])

def heap_payload(cnt):
    size = 500 + (cnt * 997) % 6000
    return ((np.arange(size, dtype=np.int64) * 7 + cnt * 13) % 251).astype(np.uint8)

flavour = spead2.Flavour(4, 64, 48, 0)
group = spead2.send.ItemGroup(flavour=flavour)
group.add_item(0x1000, "cnt", "heap counter", (), format=[("u", 32)])
group.add_item(0x1001, "data", "test pattern", (None,), format=[("u", 8)])
config = spead2.send.StreamConfig(max_packet_size=1472, rate=rate)
UdpStream = getattr(spead2.send, "UdpStream", None)
if UdpStream is None:  # not exported from spead2.send yet: the module itself
    try:
        from spead2.send._network_streams import UdpStream
    except ImportError:
        pass
if UdpStream is not None:
    stream = UdpStream(spead2.ThreadPool(), [("127.0.0.1", port)], config)
    send = stream.send_heap
else:  # our UdpStream not exported yet: the same packets through a plain socket
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    def send(heap, cnt):
        for packet in spead2.send.PacketGenerator(heap, cnt, 1472):
            sock.sendto(packet, ("127.0.0.1", port))
packets = 0
for cnt in range(first, first + n_heaps):
    group["cnt"].value = cnt
    group["data"].value = heap_payload(cnt)
    # Every heap carries its descriptors, so each one can be decoded on its own.
    heap = group.get_heap(descriptors="all", data="all")
    packets += sum(1 for _ in spead2.send.PacketGenerator(heap, cnt, 1472))
    send(heap, cnt)
print(packets, UdpStream is not None)
"""
