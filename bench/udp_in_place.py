"""CPU cost of receiving 1 MiB heaps over UDP, with payloads received in place and without.

Usage: python bench/udp_in_place.py [--packet-size BYTES] [--rounds N] [--verify]

Two ``recv.asyncio.Stream``\\ s (max_heaps 4, ring 4) read one loopback socket
each, one receiving payloads in place (the default), the other not (as with
``SPEAD2_UDP_ZERO_COPY=0``). Each round queues a burst of heaps (what the
socket buffer holds, at most 7 MiB of packets) in one stream's socket while
the loop is blocked, then receives them; only the receiving is timed (process
CPU time, so other work on the machine counts less than in wall-clock time),
per packet. The streams alternate burst by burst; the report gives medians
and the median of the per-round ratios in-place/plain. Full batches: this is
the receiver's cost when it is behind, which decides how fast it catches up.
No thresholds: figures only.
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import statistics
import time
from typing import Any

import numpy as np

import spead2
import spead2.recv
import spead2.recv.asyncio
import spead2.send
from spead2.transports import udp as udp_transport

HEAP_SIZE = 1 << 20


class Receiver:
    """A stream reading one socket, and a sender socket to fill it."""

    def __init__(self, pool: spead2.ThreadPool, in_place: bool, packet_size: int) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 32 << 20)
        self.sock.bind(("127.0.0.1", 0))
        self.out = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.stream = spead2.recv.asyncio.Stream(
            pool, spead2.recv.StreamConfig(max_heaps=4), spead2.recv.RingStreamConfig(heaps=4)
        )
        saved = udp_transport._ZERO_COPY
        udp_transport._ZERO_COPY = in_place  # read when the reader is made
        try:
            self.stream.add_udp_reader(self.sock, max_size=packet_size)
        finally:
            udp_transport._ZERO_COPY = saved
        self.heaps = self.stream.__aiter__()
        self.cnt = 1

    async def burst(self, heap: Any, heaps: int, packet_size: int, expect: bytes | None) -> float:
        """CPU seconds per packet to receive ``heaps`` queued heaps."""
        address = self.sock.getsockname()
        packets = 0
        for _ in range(heaps):  # no await: the stream cannot read meanwhile
            for packet in spead2.send.PacketGenerator(heap, self.cnt, packet_size):
                self.out.sendto(packet, address)
                packets += 1
            self.cnt += 1
        start = time.process_time()
        for _ in range(heaps):
            received = await self.heaps.__anext__()
            if isinstance(received, spead2.recv.IncompleteHeap):
                raise SystemExit("an incomplete heap: the socket buffer is too small for the burst")
            if expect is not None and bytes(received.get_items()[0]) != expect:
                raise SystemExit("a heap's payload differs from what was sent")
        return (time.process_time() - start) / packets

    def close(self) -> None:
        self.stream.stop()
        self.sock.close()
        self.out.close()


async def run(args: argparse.Namespace) -> None:
    group = spead2.send.ItemGroup()
    value = (np.arange(HEAP_SIZE) % 251).astype(np.uint8)
    group.add_item(0x1000, "data", "payload", (HEAP_SIZE,), dtype=np.uint8, value=value)
    heap = group.get_heap(descriptors="none", data="all")
    per_heap = len(list(spead2.send.PacketGenerator(heap, 1, args.packet_size)))
    # A loopback datagram takes about twice its size of socket buffer.
    heaps = max(1, (7 << 20) // (per_heap * (2 * args.packet_size + 1024)))
    expect = value.tobytes() if args.verify else None
    pool = spead2.ThreadPool()
    receivers = {mode: Receiver(pool, mode, args.packet_size) for mode in (True, False)}
    costs: dict[bool, list[float]] = {True: [], False: []}
    try:
        for receiver in receivers.values():  # warm-up: heap buffers are recycled from here on
            await receiver.burst(heap, heaps, args.packet_size, expect)
        for i in range(args.rounds):
            for mode in (True, False) if i % 2 else (False, True):
                costs[mode].append(await receivers[mode].burst(heap, heaps, args.packet_size, expect))
    finally:
        for receiver in receivers.values():
            receiver.close()
    ratios = [a / b for a, b in zip(costs[True], costs[False], strict=True)]
    print(f"{args.packet_size}-byte packets, {args.rounds} rounds of {heaps} heaps each")
    for mode, name in ((False, "plain   "), (True, "in place")):
        median = statistics.median(costs[mode])
        print(f"  {name}: {median * 1e6:.2f} us per packet (min {min(costs[mode]) * 1e6:.2f}, "
              f"max {max(costs[mode]) * 1e6:.2f}) = {args.packet_size * 8 / median / 1e9:.1f} Gb/s per CPU")
    print(f"  in place / plain, per round: median {statistics.median(ratios):.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--packet-size", type=int, default=9000)
    parser.add_argument("--rounds", type=int, default=40)
    parser.add_argument("--verify", action="store_true", help="check every heap's payload")
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
