"""The live progress line of the tools on a terminal, and what ``spead2_recv``'s shows.

Every tool's line counts what it moved so far (heaps or datagrams), the
bytes, the rate since the previous refresh and the elapsed time
(:class:`Throughput`); :func:`live_progress` keeps it under the tool's output
while it runs, on a terminal only, and leaves its final state on screen.

``spead2_recv``'s line (:class:`Progress`) adds incomplete heaps and drops:
the packets the streams rejected as malformed (``invalid_packets``) plus, on
Linux, the datagrams the kernel dropped on the UDP sockets of the tool's ports
(the ``drops`` column of ``/proc/net/udp``): what a full socket buffer loses
never reaches the library, so only the kernel can count it.
"""

from __future__ import annotations

import contextlib
import logging
import sys
import time
from collections.abc import Callable, Iterable, Iterator

import spead2.recv

__all__ = ["Progress", "Throughput", "format_bytes", "live_progress", "udp_kernel_drops"]


def format_bytes(n: float) -> str:
    """``n`` bytes with a decimal prefix: ``"512 B"``, ``"1.50 MB"``, ``"2.00 GB"``."""
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if abs(n) < 1000 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.2f} {unit}"
        n /= 1000
    raise AssertionError("unreachable")


def format_elapsed(seconds: float) -> str:
    """``"12.3 s"`` under a minute, ``"1:02:03"`` beyond."""
    if seconds < 60:
        return f"{seconds:.1f} s"
    whole = int(seconds)
    return f"{whole // 3600}:{whole // 60 % 60:02d}:{whole % 60:02d}"


class Throughput:
    """Bytes, rate and elapsed time of a running byte count, for a status line.

    The rate is over the time since the previous :meth:`fields` call (the
    previous refresh), so it follows the traffic rather than averaging it out.
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self.start = clock()
        self._last_time = self.start
        self._last_bytes = 0
        self._rate = 0.0

    def fields(self, total_bytes: int) -> str:
        """``bytes: …  rate: … Gb/s  elapsed: …`` for ``total_bytes`` so far."""
        now = self._clock()
        if now > self._last_time:
            self._rate = (total_bytes - self._last_bytes) * 8 / (now - self._last_time) / 1e9
            self._last_time = now
            self._last_bytes = total_bytes
        return (
            f"bytes: {format_bytes(total_bytes)}  rate: {self._rate:.3f} Gb/s  "
            f"elapsed: {format_elapsed(now - self.start)}"
        )


@contextlib.contextmanager
def live_progress(line: Callable[[], str], enabled: bool) -> Iterator[None]:
    """Show ``line()`` as a live line under the output, if ``enabled`` (a terminal).

    Refreshed four times a second; on exit it is refreshed once more and
    left on screen, so what the tool prints after the block (its
    statistics) comes after the final count. Log records are shown above it.
    """
    if not enabled:
        yield
        return
    try:
        from rich.console import Console
        from rich.live import Live
        from rich.text import Text
    except ImportError:  # rich is a dependency, but the output is complete without it
        yield
        return

    console = Console(file=sys.stdout, highlight=False)
    live = Live(
        get_renderable=lambda: Text(line(), style="bold"),
        console=console,
        refresh_per_second=4,
        redirect_stdout=True,
        redirect_stderr=True,
    )
    # Log records must go above the live line too: point the handlers that
    # write to the real stderr at rich's redirected one while it is live.
    handlers = [
        h for h in logging.getLogger().handlers
        if isinstance(h, logging.StreamHandler) and h.stream is sys.stderr
    ]
    original = sys.stderr
    with live:
        for handler in handlers:
            handler.setStream(sys.stderr)
        try:
            yield
        finally:
            for handler in handlers:
                handler.setStream(original)

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
        self._drops = drops
        # Other sockets may have used these ports before: count from now.
        self._drops_base = (drops(self.udp_ports) or 0) if self.udp_ports else 0
        self._throughput = Throughput(clock)

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
        incomplete, dropped = self.counts()
        return (
            f"heaps: {self.heaps}  {self._throughput.fields(self.bytes)}  "
            f"incomplete heaps: {incomplete}  dropped packets: {dropped}"
        )
