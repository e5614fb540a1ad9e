"""``spead2_send``: generate and send a stream of dummy heaps (the reference's ``spead2_send.py``).

::

    spead2_send [options] HOST:PORT [HOST:PORT ...]

Several destinations are several substreams of one UDP stream: heap *i* goes
to destination ``i % n``. After ``--heaps`` data heaps (default: forever),
one stop heap goes to each destination, then the tool prints
``Sent <bytes> bytes in <s>s, <rate> Gb/s``. On a terminal a live line shows
heaps, bytes, rate and elapsed time while it sends. Ctrl-C (or SIGTERM) is a
request to stop: the tool stops at once (no stop heap), prints what was sent
so far in the same form, and exits with status 0.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import itertools
import logging
import signal
import sys
import time

import numpy as np

import spead2
import spead2.send
import spead2.send.asyncio

from . import _arguments, _cli, _stream_options
from ._progress import Throughput, live_progress
from ._settings import SenderSettings

DESCRIPTION = """\
Send a stream of dummy heaps (zero-filled test items) over UDP or TCP, for
testing receivers and networks. Several destinations are substreams of one
UDP stream: heap i goes to destination i modulo their number. After --heaps
data heaps (default: until interrupted), one stop heap goes to each
destination and the tool prints "Sent <bytes> bytes in <s>s, <rate> Gb/s".
On a terminal a live line shows heaps, bytes, rate and elapsed time. Ctrl-C
stops at once, prints what was sent so far and exits with status 0."""

#: ``(command, what it does)``, shown at the end of ``--help``.
EXAMPLES = [
    ("spead2_send --heaps 100 127.0.0.1:8888", "100 heaps of 4 MiB over UDP"),
    ("spead2_send --rate 1 --heaps 1000 239.1.2.3:7148", "to a multicast group at 1 Gb/s"),
    ("spead2_send --tcp --heap-size 65536 receiver:7148", "to a TCP receiver"),
]


def build_parser(prog: str | None = None) -> argparse.ArgumentParser:
    """The argument parser (same options and defaults as the reference)."""
    parser = _cli.make_parser(prog, DESCRIPTION, EXAMPLES)
    parser.add_argument(
        "destination", type=_arguments.parse_endpoint, nargs="+", metavar="HOST:PORT"
    )
    group = parser.add_argument_group("Data options")
    group.add_argument(
        "--heap-size", metavar="BYTES", type=_arguments.positive_int, default=4194304,
        help="Payload size for heap [4194304]",
    )
    group.add_argument(
        "--items", type=_arguments.positive_int, default=1, help="Number of items per heap [1]"
    )
    group.add_argument("--dtype", type=_arguments.parse_dtype, default="<c8", help="Numpy data type [<c8]")
    group.add_argument(
        "--heaps", type=_arguments.non_negative_int, default=None,
        help="Number of data heaps to send [infinite]",
    )
    group = parser.add_argument_group("Output options")
    _cli.add_log_argument(group)
    group = parser.add_argument_group("Protocol and performance options")
    group.add_argument("--tcp", action="store_true", help="Use TCP instead of UDP")
    group.add_argument("--pyspead", action="store_true", help="Be bug-compatible with PySPEAD")
    _stream_options.add_sender_arguments(group)
    group.add_argument(
        "--descriptors", type=_arguments.positive_int, default=None,
        help="Description issue frequency [only at start]",
    )
    return parser


def parse_args(argv: list[str] | None = None, prog: str | None = None) -> argparse.Namespace:
    """Parse and check the command line (argparse errors exit with status 2)."""
    parser = build_parser(prog)
    args = parser.parse_args(argv)
    _stream_options.check_sender_arguments(parser, args)
    if args.tcp and len(args.destination) > 1:
        parser.error("only one destination is supported with TCP")
    if args.tcp and args.ttl is not None:
        parser.error("--ttl applies to UDP multicast and cannot be used with --tcp")
    if args.dtype.hasobject or args.dtype.itemsize == 0:
        parser.error(f"--dtype {args.dtype} cannot be sent (it needs a fixed-size, non-object dtype)")
    if args.heap_size < args.items * args.dtype.itemsize:
        parser.error(
            f"--heap-size {args.heap_size} is too small for {args.items} item(s) of "
            f"at least one {args.dtype} element each"
        )
    return args


def make_item_group(args: argparse.Namespace, flavour: spead2.Flavour) -> spead2.send.ItemGroup:
    """The ``--items`` test items, as the reference names and describes them."""
    dtype: np.dtype = args.dtype
    elements = args.heap_size // (args.items * dtype.itemsize)
    heap_size = elements * args.items * dtype.itemsize
    if heap_size != args.heap_size:
        logging.warning(
            "Heap size is not an exact multiple: using %d instead of %d", heap_size, args.heap_size
        )
    item_group = spead2.send.ItemGroup(descriptor_frequency=args.descriptors, flavour=flavour)
    for i in range(args.items):
        item_group.add_item(
            id=None,
            name=f"Test item {i}",
            description="A test item with arbitrary value",
            shape=(elements,),
            dtype=dtype,
            value=np.zeros((elements,), dtype),
        )
    return item_group


class Sender:
    """Sends the heaps, keeping at most ``max_heaps`` in flight, and counts bytes and errors."""

    def __init__(
        self,
        stream: spead2.send.asyncio.UdpStream | spead2.send.asyncio.TcpStream,
        item_group: spead2.send.ItemGroup,
        num_substreams: int,
        max_heaps: int,
    ) -> None:
        self.stream = stream
        self.item_group = item_group
        self.num_substreams = num_substreams
        self.max_heaps = max_heaps
        self.bytes_sent = 0  # all heaps, stop heaps included
        self.heaps_sent = 0  # data heaps
        self.errors = 0
        self.last_error: BaseException | None = None
        # Each heap in flight, and whether it is a data heap (not a stop heap).
        self._futures: collections.deque[tuple[asyncio.Future[int], bool]] = collections.deque()
        self._throughput = Throughput()
        self.start = self._throughput.start  # time.monotonic()

    async def _collect(self) -> None:
        future, data = self._futures.popleft()
        try:
            self.bytes_sent += await future
            self.heaps_sent += data
        except OSError as exc:
            self.errors += 1
            self.last_error = exc

    async def _send(self, heap: spead2.send.Heap, index: int, data: bool = True) -> None:
        if len(self._futures) >= self.max_heaps:
            await self._collect()
        future = self.stream.async_send_heap(heap, substream_index=index % self.num_substreams)
        self._futures.append((future, data))

    async def run(self, heaps: int | None) -> None:
        """Send ``heaps`` data heaps (``None``: forever), then one stop heap per substream."""
        counter = range(heaps) if heaps is not None else itertools.count()
        index = 0
        for index in counter:
            descriptors = "all" if index < self.num_substreams else "stale"
            await self._send(self.item_group.get_heap(descriptors=descriptors, data="all"), index)
        start = heaps if heaps is not None else index + 1
        for index in range(start, start + self.num_substreams):
            await self._send(self.item_group.get_end(), index, data=False)
        while self._futures:
            await self._collect()

    def progress_line(self) -> str:
        """The live status line: data heaps and bytes sent, rate, elapsed time."""
        return f"heaps: {self.heaps_sent}  {self._throughput.fields(self.bytes_sent)}"


async def async_main(args: argparse.Namespace) -> int:
    """Send as the options say; returns the exit status."""
    # Ctrl-C / SIGTERM: a request to stop. Stop at once, leaving the rest of
    # the stream (and the stop heaps) unsent, report what was sent and exit 0.
    # (The reference exits 1 with no report.)
    task = asyncio.current_task()
    assert task is not None
    loop = asyncio.get_running_loop()
    interrupted = False

    def interrupt() -> None:
        nonlocal interrupted
        if not interrupted:
            interrupted = True
            task.cancel()

    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, interrupt)
    sender: Sender | None = None
    try:
        settings = SenderSettings.from_args(args)
        pool_affinity = _stream_options.apply_affinity(settings.affinity)
        thread_pool = spead2.ThreadPool(settings.threads, pool_affinity)
        item_group = make_item_group(args, settings.flavour())
        stream = await settings.make_stream(thread_pool, args.destination)
        sender = Sender(stream, item_group, len(args.destination), settings.max_heaps)
        with live_progress(sender.progress_line, sys.stdout.isatty()):
            await sender.run(args.heaps)
    except asyncio.CancelledError:
        if not interrupted:
            raise
        task.uncancel()
        if sender is None:  # stopped before anything was sent
            return 0
    elapsed = time.monotonic() - sender.start
    if interrupted:
        print(
            f"Interrupted after {sender.heaps_sent} heaps (no stop heap was sent)",
            file=sys.stderr,
        )
    if sender.errors:
        logging.warning("%d errors, last one: %s", sender.errors, sender.last_error)
    rate = sender.bytes_sent * 8 / elapsed / 1e9 if elapsed > 0 else float("inf")
    print(f"Sent {sender.bytes_sent} bytes in {elapsed:.6f}s, {rate:.6f} Gb/s")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``spead2_send`` / ``spead2_send.py``."""
    return _cli.tool_main("spead2_send", parse_args, async_main, argv)


if __name__ == "__main__":
    sys.exit(main())
