"""``spead2_send``: generate and send a stream of dummy heaps (the reference's ``spead2_send.py``).

::

    spead2_send [options] HOST:PORT [HOST:PORT ...]

Several destinations are several substreams of one UDP stream: heap *i* goes
to destination ``i % n``. After ``--heaps`` data heaps (default: forever),
one stop heap goes to each destination, then the tool prints
``Sent <bytes> bytes in <s>s, <rate> Gb/s``.
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

from . import _options
from ._options import SenderSettings


def build_parser(prog: str | None = None) -> argparse.ArgumentParser:
    """The argument parser (same options and defaults as the reference)."""
    parser = argparse.ArgumentParser(prog=prog, description=__doc__.splitlines()[0])
    parser.add_argument(
        "destination", type=_options.parse_endpoint, nargs="+", metavar="HOST:PORT"
    )
    group = parser.add_argument_group("Data options")
    group.add_argument(
        "--heap-size", metavar="BYTES", type=_options.positive_int, default=4194304,
        help="Payload size for heap [4194304]",
    )
    group.add_argument(
        "--items", type=_options.positive_int, default=1, help="Number of items per heap [1]"
    )
    group.add_argument("--dtype", type=np.dtype, default="<c8", help="Numpy data type [<c8]")
    group.add_argument(
        "--heaps", type=_options.non_negative_int, default=None,
        help="Number of data heaps to send [infinite]",
    )
    group = parser.add_argument_group("Output options")
    _options.add_log_argument(group)
    group = parser.add_argument_group("Protocol and performance options")
    group.add_argument("--tcp", action="store_true", help="Use TCP instead of UDP")
    group.add_argument("--pyspead", action="store_true", help="Be bug-compatible with PySPEAD")
    _options.add_sender_arguments(group)
    group.add_argument(
        "--descriptors", type=_options.positive_int, default=None,
        help="Description issue frequency [only at start]",
    )
    return parser


def parse_args(argv: list[str] | None = None, prog: str | None = None) -> argparse.Namespace:
    """Parse and check the command line (argparse errors exit with status 2)."""
    parser = build_parser(prog)
    args = parser.parse_args(argv)
    _options.refuse_ibverbs(parser, args)
    if args.tcp and len(args.destination) > 1:
        parser.error("only one destination is supported with TCP")
    if args.tcp and args.ttl is not None:
        parser.error("--ttl applies to UDP multicast and cannot be used with --tcp")
    if args.burst_rate_ratio < 1.0 or not np.isfinite(args.burst_rate_ratio):
        parser.error(f"--burst-rate-ratio must be at least 1.0 and finite, got {args.burst_rate_ratio}")
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
        self.bytes_sent = 0
        self.errors = 0
        self.last_error: BaseException | None = None
        self._futures: collections.deque[asyncio.Future[int]] = collections.deque()

    async def _collect(self) -> None:
        future = self._futures.popleft()
        try:
            self.bytes_sent += await future
        except OSError as exc:
            self.errors += 1
            self.last_error = exc

    async def _send(self, heap: spead2.send.Heap, index: int) -> None:
        if len(self._futures) >= self.max_heaps:
            await self._collect()
        self._futures.append(
            self.stream.async_send_heap(heap, substream_index=index % self.num_substreams)
        )

    async def run(self, heaps: int | None) -> None:
        """Send ``heaps`` data heaps (``None``: forever), then one stop heap per substream."""
        counter = range(heaps) if heaps is not None else itertools.count()
        index = 0
        for index in counter:
            descriptors = "all" if index < self.num_substreams else "stale"
            await self._send(self.item_group.get_heap(descriptors=descriptors, data="all"), index)
        start = heaps if heaps is not None else index + 1
        for index in range(start, start + self.num_substreams):
            await self._send(self.item_group.get_end(), index)
        while self._futures:
            await self._collect()


async def async_main(args: argparse.Namespace) -> int:
    """Send as the options say; returns the exit status."""
    # Ctrl-C / SIGTERM: stop at once with status 1 and no traceback (the
    # reference exits 1 too), leaving the rest of the stream unsent.
    task = asyncio.current_task()
    assert task is not None
    loop = asyncio.get_running_loop()
    interrupted = False

    def interrupt() -> None:
        nonlocal interrupted
        interrupted = True
        task.cancel()

    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, interrupt)
    try:
        settings = SenderSettings.from_args(args)
        pool_affinity = _options.apply_affinity(settings.affinity)
        thread_pool = spead2.ThreadPool(settings.threads, pool_affinity)
        item_group = make_item_group(args, settings.flavour())
        stream = await settings.make_stream(thread_pool, args.destination)
        sender = Sender(stream, item_group, len(args.destination), settings.max_heaps)
        start = time.perf_counter()
        await sender.run(args.heaps)
    except asyncio.CancelledError:
        if not interrupted:
            raise
        return 1
    elapsed = time.perf_counter() - start
    if sender.errors:
        logging.warning("%d errors, last one: %s", sender.errors, sender.last_error)
    rate = sender.bytes_sent * 8 / elapsed / 1e9 if elapsed > 0 else float("inf")
    print(f"Sent {sender.bytes_sent} bytes in {elapsed:.6f}s, {rate:.6f} Gb/s")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``spead2_send`` / ``spead2_send.py``."""
    prog = _options.prog_name("spead2_send")
    args = parse_args(argv, prog)
    _options.setup_logging(args.log)
    return _options.run_main(prog, async_main(args))


if __name__ == "__main__":
    sys.exit(main())
