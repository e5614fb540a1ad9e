"""The live progress line of ``spead2_recv`` on a terminal (heaps, Gb/s, incomplete heaps, drops).

Drops are the packets the streams rejected as malformed (``invalid_packets``)
plus, on Linux, the datagrams the kernel dropped on the UDP sockets of the
tool's ports (the ``drops`` column of ``/proc/net/udp``): what a full socket
buffer loses never reaches the library, so only the kernel can count it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

import spead2.recv

__all__ = ["Progress", "udp_kernel_drops"]

_PROC_UDP = ("/proc/net/udp", "/proc/net/udp6")


def udp_kernel_drops(
    ports: Iterable[int] = (), inodes: Iterable[int] = (), paths: Iterable[str] = _PROC_UDP
) -> int | None:
    """Datagrams the kernel dropped on UDP sockets bound to ``ports`` or with these ``inodes``.

    ``None`` if the kernel does not say (not Linux).
    """
    wanted_ports = set(ports)
    wanted_inodes = set(inodes)
    total = 0
    found = False
    for path in paths:
        try:
            with open(path) as f:
                lines = f.readlines()
        except OSError:
            continue
        found = True
        for line in lines[1:]:
            columns = line.split()
            # sl local_address rem_address st ... inode ref pointer drops
            if len(columns) < 13:
                continue
            port = int(columns[1].rpartition(":")[2], 16)
            if port in wanted_ports or int(columns[9]) in wanted_inodes:
                total += int(columns[12])
    return total if found else None


class Progress:
    """Running totals over a set of streams, rendered as one status line.

    The consumers call :meth:`add_heap` for each heap; :meth:`line` reads the
    streams' statistics and computes the rate since the previous call.
    """

    def __init__(
        self,
        streams: Iterable[spead2.recv.Stream],
        udp_ports: Iterable[int] = (),
        clock: Callable[[], float] = time.monotonic,
        drops: Callable[[Iterable[int]], int | None] = udp_kernel_drops,
    ) -> None:
        self.streams = list(streams)
        self.udp_ports = sorted(set(udp_ports))
        self.heaps = 0
        self.bytes = 0
        self._clock = clock
        self._drops = drops
        # Other sockets may have used these ports before: count from now.
        self._drops_base = (drops(self.udp_ports) or 0) if self.udp_ports else 0
        self._last_time = clock()
        self._last_bytes = 0
        self._rate = 0.0

    def add_heap(self, heap: spead2.recv.HeapBase) -> None:
        """Count one received heap and its payload bytes."""
        self.heaps += 1
        if isinstance(heap, spead2.recv.Heap):
            self.bytes += len(heap.payload)
        elif isinstance(heap, spead2.recv.IncompleteHeap):
            self.bytes += heap.received_length

    def counts(self) -> tuple[int, int]:
        """``(incomplete heaps, dropped packets)`` so far, over all streams."""
        incomplete = 0
        dropped = 0
        for stream in self.streams:
            stats = stream.stats
            incomplete += stats["incomplete_heaps_evicted"] + stats["incomplete_heaps_flushed"]
            dropped += int(stats.get("invalid_packets", 0) or 0)  # type: ignore[call-overload]
        if self.udp_ports:
            kernel = self._drops(self.udp_ports)
            if kernel is not None:
                dropped += max(0, kernel - self._drops_base)
        return incomplete, dropped

    def line(self) -> str:
        """The status line; the rate is over the time since the previous call (if any passed)."""
        now = self._clock()
        if now > self._last_time:
            self._rate = (self.bytes - self._last_bytes) * 8 / (now - self._last_time) / 1e9
            self._last_time = now
            self._last_bytes = self.bytes
        incomplete, dropped = self.counts()
        return (
            f"heaps: {self.heaps}  rate: {self._rate:.3f} Gb/s  "
            f"incomplete heaps: {incomplete}  dropped packets: {dropped}"
        )
