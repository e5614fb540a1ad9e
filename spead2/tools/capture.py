"""``spead2_capture``: capture UDP datagrams (unicast or multicast) to a pcap file.

::

    spead2_capture [options] OUTPUT ENDPOINT [ENDPOINT ...]

Like the reference's ``mcdump``, but through ordinary sockets (no ibverbs, no
root): each ``ENDPOINT`` (``port`` or ``host:port``; a multicast ``host`` is
joined, on ``--interface`` if given) is bound and every datagram is written
to ``OUTPUT`` as an Ethernet/IP/UDP frame, so that ``tcpdump -r`` and
``spead2.recv.Stream.add_udp_pcap_file_reader`` read the file. ``--count N``
stops after N datagrams; otherwise it runs until SIGINT/SIGTERM. On a
terminal a live line shows datagrams, bytes, rate, elapsed time and drops
while it runs. Statistics are printed on exit.

The file is written by a separate thread, so a slow disk never stalls
reception: datagrams queue in memory up to ``--max-backlog`` bytes, and
beyond that are dropped and counted (``dropped_by_writer``), never silently.
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import os
import queue
import signal
import socket
import struct
import sys
import threading
import time
from typing import BinaryIO

from ..protocols.pcap import FrameBuilder, file_header
from ..transports import udp as udp_sockets
from . import _arguments, _cli
from ._progress import Throughput, live_progress, udp_kernel_drops

_BATCH = 64  # datagrams drained per wake-up
_MAX_DATAGRAM = 65535
_IN_PKTINFO = struct.Struct("@i4s4s")  # ifindex, spec_dst, addr
_IN6_PKTINFO = struct.Struct("@16sI")  # addr, ifindex


class FileWriter:
    """Writes byte chunks to a file from its own thread; :meth:`write` never blocks.

    At most ``max_backlog`` bytes wait in memory; :meth:`write` refuses a
    batch that would exceed it (the caller counts the loss).
    """

    def __init__(self, file: BinaryIO, max_backlog: int) -> None:
        self._file = file
        self._max_backlog = max_backlog
        self._backlog = 0
        self._lock = threading.Lock()
        self._queue: queue.SimpleQueue[tuple[list[bytes], int] | None] = queue.SimpleQueue()
        self.error: OSError | None = None
        self._thread = threading.Thread(target=self._run, name="spead2_capture writer", daemon=True)
        self._thread.start()

    def write(self, chunks: list[bytes], size: int) -> bool:
        """Queue ``chunks`` (``size`` bytes in all); ``False`` if the backlog is full."""
        with self._lock:
            if self._backlog + size > self._max_backlog or self.error is not None:
                return False
            self._backlog += size
        self._queue.put((chunks, size))
        return True

    def _run(self) -> None:
        while (item := self._queue.get()) is not None:
            chunks, size = item
            if self.error is None:
                try:
                    self._file.writelines(chunks)
                except OSError as exc:
                    self.error = exc
            with self._lock:
                self._backlog -= size
        try:
            self._file.close()
        except OSError as exc:
            self.error = self.error or exc

    async def close(self) -> None:
        """Write what is queued, close the file and end the thread (without blocking the loop)."""
        self._queue.put(None)
        await asyncio.to_thread(self._thread.join)


class Endpoint:
    """One bound (and possibly joined) socket and what we know of its local address."""

    def __init__(self, text: str, host: str, port: int, interface: str | None, buffer: int) -> None:
        self.text = text
        if interface and host:
            group = ipaddress.ip_address(host)
            if group.version == 4:
                sock = udp_sockets.udp_socket_for_ipv4_group(host, port, buffer, interface)
            else:
                sock = udp_sockets.udp_socket_for_ipv6_group(host, port, buffer, int(interface))
        else:
            sock = udp_sockets.udp_socket_for_port(port, buffer, host)
        sock.setblocking(False)
        self.sock = sock
        local = sock.getsockname()
        self.local_host = str(local[0])
        self.port = int(local[1])
        # Bound to a wildcard, the socket does not tell which address a
        # datagram was sent to unless asked for packet info.
        self.wildcard = ipaddress.ip_address(self.local_host.split("%", 1)[0]).is_unspecified
        self.ipv6 = sock.family == socket.AF_INET6
        if self.wildcard:
            if self.ipv6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_RECVPKTINFO, 1)
            else:
                sock.setsockopt(socket.IPPROTO_IP, socket.IP_PKTINFO, 1)
        self.inode = os.fstat(sock.fileno()).st_ino

    def destination(self, ancdata: list[tuple[int, int, bytes]]) -> str:
        """The datagram's destination address (from packet info when bound to a wildcard)."""
        for level, kind, data in ancdata:
            if level == socket.IPPROTO_IP and kind == socket.IP_PKTINFO:
                return socket.inet_ntop(socket.AF_INET, _IN_PKTINFO.unpack_from(data)[2])
            if level == socket.IPPROTO_IPV6 and kind == socket.IPV6_PKTINFO:
                return socket.inet_ntop(socket.AF_INET6, _IN6_PKTINFO.unpack_from(data)[0])
        return self.local_host


class Capture:
    """Reads the endpoints' datagrams on the loop and hands pcap records to the writer."""

    def __init__(self, endpoints: list[Endpoint], writer: FileWriter, count: int | None) -> None:
        self.endpoints = endpoints
        self.writer = writer
        self.count = count
        self.packets = 0
        self.bytes = 0
        self.dropped_by_writer = 0
        self.done = asyncio.Event()
        self._throughput = Throughput()
        self._inodes = [endpoint.inode for endpoint in endpoints]
        # Other sockets may have used these before: count from now.
        self._kernel_drops_base = udp_kernel_drops(inodes=self._inodes) or 0
        self._frames = FrameBuilder()
        self._cmsg_size = max(socket.CMSG_SPACE(_IN_PKTINFO.size), socket.CMSG_SPACE(_IN6_PKTINFO.size))

    def start(self) -> None:
        """Start reading (unless already stopped)."""
        if self.done.is_set():
            return
        loop = asyncio.get_running_loop()
        for endpoint in self.endpoints:
            loop.add_reader(endpoint.sock.fileno(), self._on_readable, endpoint)

    def stop(self) -> None:
        """Stop reading (idempotent); the sockets stay open until :meth:`close`."""
        if self.done.is_set():
            return
        loop = asyncio.get_running_loop()
        for endpoint in self.endpoints:
            loop.remove_reader(endpoint.sock.fileno())
        self.done.set()

    def close(self) -> None:
        """Stop reading and close the sockets."""
        self.stop()
        for endpoint in self.endpoints:
            endpoint.sock.close()

    def kernel_drops(self) -> int | None:
        """Datagrams the kernel dropped on the sockets so far (``None``: it does not say)."""
        total = udp_kernel_drops(inodes=self._inodes)
        return None if total is None else total - self._kernel_drops_base

    def progress_line(self) -> str:
        """The live status line: datagrams and payload bytes, rate, elapsed time, drops."""
        dropped = self.dropped_by_writer + (self.kernel_drops() or 0)
        return (
            f"datagrams: {self.packets}  {self._throughput.fields(self.bytes)}  "
            f"dropped: {dropped}"
        )

    def _on_readable(self, endpoint: Endpoint) -> None:
        chunks: list[bytes] = []
        size = 0
        n = 0
        limit = _BATCH
        if self.count is not None:
            limit = min(limit, self.count - self.packets)
        sock = endpoint.sock
        cmsg_size = self._cmsg_size if endpoint.wildcard else 0
        headers = self._frames.headers
        while n < limit:
            try:
                data, ancdata, _, src = sock.recvmsg(_MAX_DATAGRAM, cmsg_size)
            except (BlockingIOError, InterruptedError):
                break
            except OSError:  # e.g. ICMP-reported errors: nothing was received
                continue
            dst = endpoint.destination(ancdata) if cmsg_size else endpoint.local_host
            header = headers((str(src[0]), int(src[1])), (dst, endpoint.port), data, time.time_ns())
            chunks.append(header)
            chunks.append(data)
            size += len(header) + len(data)
            n += 1
        if not n:
            return
        if self.writer.write(chunks, size):
            self.packets += n
            self.bytes += sum(len(chunk) for chunk in chunks[1::2])
        else:
            self.dropped_by_writer += n
        if self.count is not None and self.packets >= self.count:
            self.stop()


DESCRIPTION = """\
Capture UDP datagrams (unicast or multicast) to a pcap file through ordinary
sockets: no root, no libpcap. ENDPOINT is PORT, HOST:PORT or [IPV6]:PORT; a
multicast HOST is joined (on --interface if given). Every datagram is
written as an Ethernet/IP/UDP frame, readable by tcpdump -r, Wireshark and
spead2_recv. A slow disk never stalls reception: datagrams wait in memory
up to --max-backlog bytes, beyond which they are dropped and counted. On a
terminal a live line shows datagrams, bytes, rate, elapsed time and drops;
statistics are printed on exit (--count, Ctrl-C or SIGTERM)."""

#: ``(command, what it does)``, shown at the end of ``--help``.
EXAMPLES = [
    ("spead2_capture out.pcap 8888", "UDP port 8888 until Ctrl-C"),
    ("spead2_capture -c 10000 out.pcap 239.1.2.3:7148", "10000 datagrams of a multicast group"),
    ("spead2_capture -i 10.0.0.5 out.pcap 239.1.2.3:7148", "join on the interface with that address"),
]


def build_parser(prog: str | None = None) -> argparse.ArgumentParser:
    """The argument parser."""
    parser = _cli.make_parser(prog, DESCRIPTION, EXAMPLES)
    parser.add_argument("output", metavar="OUTPUT", help="pcap file to write")
    parser.add_argument("endpoints", metavar="ENDPOINT", nargs="+", help="what to capture")
    _cli.add_log_argument(parser)
    parser.add_argument(
        "-c", "--count", type=_arguments.positive_int, default=None,
        help="Stop after this many datagrams [until interrupted]",
    )
    parser.add_argument(
        "-i", "--interface", metavar="ADDRESS", default=None,
        help="Join multicast groups on the interface with this address (IPv6: interface index) [any]",
    )
    parser.add_argument(
        "--buffer", type=_arguments.non_negative_int, default=8 * 1024 * 1024,
        help="Socket receive buffer size [8388608]",
    )
    parser.add_argument(
        "--max-backlog", metavar="BYTES", type=_arguments.positive_int, default=256 * 1024 * 1024,
        help="Bytes that may wait for the disk before datagrams are dropped [268435456]",
    )
    return parser


def parse_args(argv: list[str] | None = None, prog: str | None = None) -> argparse.Namespace:
    """Parse and check the command line (argparse errors exit with status 2)."""
    parser = build_parser(prog)
    args = parser.parse_args(argv)
    try:
        args.parsed = [_arguments.parse_listen_endpoint(text) for text in args.endpoints]
    except argparse.ArgumentTypeError as exc:
        parser.error(f"argument ENDPOINT: {exc}")
    return args


async def async_main(args: argparse.Namespace) -> int:
    """Capture as the options say; returns the exit status."""
    # Handlers first, so that a Ctrl-C as soon as the sockets are bound is handled too.
    capture: Capture | None = None
    interrupted = False

    def stop() -> None:
        nonlocal interrupted
        interrupted = True
        if capture is not None:
            capture.stop()

    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop)
    endpoints: list[Endpoint] = []
    try:
        for text, (host, port) in zip(args.endpoints, args.parsed, strict=True):
            endpoints.append(Endpoint(text, host, port, args.interface, args.buffer))
    except BaseException:
        for endpoint in endpoints:
            endpoint.sock.close()
        raise
    try:
        file = await asyncio.to_thread(open, args.output, "wb")
    except BaseException:
        for endpoint in endpoints:
            endpoint.sock.close()
        raise
    writer = FileWriter(file, args.max_backlog)
    header = file_header()
    writer.write([header], len(header))
    capture = Capture(endpoints, writer, args.count)
    start = time.monotonic()
    if not interrupted:
        capture.start()
    else:
        capture.stop()
    print(f"Capturing {', '.join(args.endpoints)} to {args.output}", file=sys.stderr, flush=True)
    with live_progress(capture.progress_line, sys.stdout.isatty()):
        await capture.done.wait()
    kernel_drops = capture.kernel_drops()  # read before the sockets are gone
    capture.close()
    elapsed = time.monotonic() - start
    await writer.close()
    print(
        f"Captured {capture.packets} datagrams ({capture.bytes} bytes of payload) "
        f"in {elapsed:.3f}s to {args.output}"
    )
    print(f"packets: {capture.packets}")
    print(f"bytes: {capture.bytes}")
    print(f"dropped_by_kernel: {kernel_drops if kernel_drops is not None else 'unknown'}")
    print(f"dropped_by_writer: {capture.dropped_by_writer}")
    if writer.error is not None:
        print(
            f"{args.prog}: error writing {args.output}: {_cli.error_message(writer.error)}",
            file=sys.stderr,
        )
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``spead2_capture``."""
    return _cli.tool_main("spead2_capture", parse_args, async_main, argv)


if __name__ == "__main__":
    sys.exit(main())
