"""``spead2_recv``: receive heaps and print them (the reference's ``spead2_recv.py``).

::

    spead2_recv [options] SOURCE [SOURCE ...]

A source is ``port``, ``host:port`` or a pcap filename. Each source is its own
stream unless ``--joint`` puts them all in one. For each heap it prints
``Received heap <cnt> on stream <source>`` and the items the heap updated
(``--values``: with their values; ``--descriptors``: the descriptors too);
when a stream ends (stop heap, end of TCP connection or file, ``--max-heaps``,
Ctrl-C) it prints ``Shutting down stream <source> after <n> heaps`` and the
stream's statistics. On a terminal a live line shows heaps, Gb/s,
incomplete heaps and dropped packets. ``--http-port`` also serves a live
view of what arrives (plots, rates, losses) to web browsers.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
from collections.abc import AsyncIterator
from typing import TextIO

import spead2
import spead2.recv
import spead2.recv.asyncio

from . import _arguments, _cli, _settings, _stream_options
from ._arguments import Source
from ._progress import Progress, live_progress
from ._settings import ReceiverSettings
from .live import LiveView
from .live._http import serve

DESCRIPTION = """\
Receive SPEAD heaps and print them. A source is a UDP port, HOST:PORT (a
multicast HOST is joined), or a pcap file. Each source is its own stream
unless --joint puts them all in one. For each heap it prints "Received heap
<cnt> on stream <source>" and the items it updated (--values: with their
values); when a stream ends (stop heap, end of TCP connection or file,
--max-heaps, Ctrl-C) it prints the stream's statistics. On a terminal a
live line shows heaps, bytes, rate, elapsed time, incomplete heaps and
dropped packets. --http-port also serves a live view of what arrives (plots,
rates, losses) to web browsers."""

#: ``(command, what it does)``, shown at the end of ``--help``.
EXAMPLES = [
    ("spead2_recv 8888", "UDP port 8888 on every interface"),
    ("spead2_recv --values 239.1.2.3:7148", "join a multicast group, print the values"),
    ("spead2_recv --tcp 127.0.0.1:7148", "listen for one TCP sender"),
    ("spead2_recv capture.pcap", "replay a capture file"),
    ("spead2_recv --http-port 8080 239.1.2.3:7148", "and watch it at http://127.0.0.1:8080/"),
]


def build_parser(prog: str | None = None) -> argparse.ArgumentParser:
    """The argument parser (same options and defaults as the reference)."""
    parser = _cli.make_parser(prog, DESCRIPTION, EXAMPLES)
    parser.add_argument("source", nargs="+", help="Sources (filename, host:port or port)")
    group = parser.add_argument_group("Output options")
    _cli.add_log_argument(group)
    group.add_argument("--values", action="store_true", help="Show heap values")
    group.add_argument("--descriptors", action="store_true", help="Show descriptors")
    group.add_argument(
        "--http-port", type=_arguments.non_negative_int, default=None,
        help="Serve a live view (plots of the items, rates, losses) on this HTTP port (0: any)",
    )
    group.add_argument(
        "--http-host", default="127.0.0.1",
        help="Address to serve the live view on [%(default)s]",
    )
    group = parser.add_argument_group("Input options")
    group.add_argument(
        "--max-heaps", type=_arguments.non_negative_int, default=None,
        help="Stop receiving after this many heaps",
    )
    group.add_argument("--joint", action="store_true", help="Treat all sources as a single stream")
    group = parser.add_argument_group("Protocol and performance options")
    group.add_argument("--tcp", action="store_true", help="Use TCP instead of UDP")
    group.add_argument("--pyspead", action="store_true", help="Be bug-compatible with PySPEAD")
    _stream_options.add_receiver_arguments(group)
    return parser


def parse_args(argv: list[str] | None = None, prog: str | None = None) -> argparse.Namespace:
    """Parse and check the command line (argparse errors exit with status 2)."""
    parser = build_parser(prog)
    args = parser.parse_args(argv)
    _stream_options.refuse_ibverbs(parser, args)
    if args.tcp and args.bind:
        parser.error("--bind applies to UDP and cannot be used with --tcp")
    try:
        args.sources = [_arguments.parse_source(text) for text in args.source]
    except ValueError as exc:
        parser.error(f"argument source: {exc}")
    return args


class Printer:
    """Prints heaps the way the reference ``spead2_recv.py`` does."""

    def __init__(self, values: bool, descriptors: bool, out: TextIO) -> None:
        self.values = values
        self.descriptors = descriptors
        self.out = out

    def heap(self, name: str, heap: spead2.recv.HeapBase, item_group: spead2.ItemGroup) -> None:
        """Print one heap (and apply it to ``item_group``)."""
        lines = [f"Received heap {heap.cnt} on stream {name}"]
        try:
            if self.descriptors and isinstance(heap, spead2.recv.Heap):
                for raw in heap.get_descriptors():
                    descriptor = spead2.Descriptor.from_raw(raw, heap.flavour)
                    lines += [
                        f"    Descriptor for {descriptor.name} ({descriptor.id:#x})",
                        f"      description: {descriptor.description}",
                        f"      format:      {descriptor.format}",
                        f"      dtype:       {descriptor.dtype}",
                        f"      shape:       {descriptor.shape}",
                    ]
            if isinstance(heap, spead2.recv.Heap):  # (incomplete heaps are never delivered here)
                for item in item_group.update(heap).values():
                    lines.append(f"{item.name} = {item.value}" if self.values else item.name)
        except ValueError as exc:
            lines.append(f"Error raised processing heap: {exc}")
        print("\n".join(lines), file=self.out)

    def shutdown(self, name: str, heaps: int, stream: spead2.recv.Stream) -> None:
        """The end-of-stream block: heap count, then one line per statistic."""
        lines = [f"Shutting down stream {name} after {heaps} heaps"]
        lines += [f"{stat}: {value}" for stat, value in stream.stats.items()]
        print("\n".join(lines), file=self.out)


async def consume(
    name: str,
    stream: spead2.recv.asyncio.Stream,
    printer: Printer,
    progress: Progress,
    max_heaps: int | None,
    print_stats: bool,
    live: LiveView | None = None,
) -> int:
    """Print the heaps of one stream until it ends (or ``max_heaps``); returns the count.

    ``print_stats``: print the stream's statistics as soon as it ends (else
    the caller prints them later). ``live``: the live view to show the heaps on.
    """
    item_group = spead2.ItemGroup()
    heaps = 0
    if max_heaps != 0:
        async for heap in stream:
            heaps += 1
            progress.add_heap(heap)
            if live is not None:
                live.add_heap(heap)
            printer.heap(name, heap, item_group)
            if heaps == max_heaps:
                break
    stream.stop()
    if print_stats:
        printer.shutdown(name, heaps, stream)
    return heaps


async def make_streams(
    args: argparse.Namespace,
    settings: ReceiverSettings,
    thread_pool: spead2.ThreadPool,
    streams: list[tuple[str, spead2.recv.asyncio.Stream]],
) -> None:
    """Append to ``streams`` one stream per source (one for all with ``--joint``), readers added."""
    # Streams are named after their source as written (the first, with --joint).
    groups: list[tuple[str, list[Source]]]
    if args.joint:
        groups = [(args.source[0], list(args.sources))]
    else:
        groups = [(text, [source]) for text, source in zip(args.source, args.sources, strict=True)]
    try:
        for name, sources in groups:
            stream = await _settings.make_recv_stream(thread_pool, settings)
            streams.append((name, stream))
            for source in sources:
                settings.add_reader(stream, source)
    except BaseException:
        for _, stream in streams:
            stream.stop()
        raise


async def async_main(args: argparse.Namespace) -> int:
    """Receive as the options say; returns the exit status."""
    streams: list[tuple[str, spead2.recv.asyncio.Stream]] = []
    interrupted = False

    def stop_all() -> None:
        nonlocal interrupted
        interrupted = True
        for _, stream in streams:
            stream.stop()

    # Handlers first, so that a Ctrl-C as soon as the sockets are bound is handled too.
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop_all)
    settings = ReceiverSettings.from_args(args)
    pool_affinity = _stream_options.apply_affinity(settings.affinity)
    thread_pool = spead2.ThreadPool(settings.threads, pool_affinity)
    await make_streams(args, settings, thread_pool, streams)
    if interrupted:
        stop_all()
    udp_ports = [] if settings.tcp else [s[1] for s in args.sources if isinstance(s, tuple)]
    progress = Progress([stream for _, stream in streams], udp_ports)
    printer = Printer(args.values, args.descriptors, sys.stdout)
    # On a terminal the statistics wait for the live line's final refresh, so
    # that they come after it; otherwise each stream's come when it ends.
    terminal = sys.stdout.isatty()
    async with serve_live_view(args, [stream for _, stream in streams], udp_ports) as live:
        with live_progress(progress.line, terminal):
            counts = await asyncio.gather(*(
                consume(name, stream, printer, progress, args.max_heaps, not terminal, live)
                for name, stream in streams
            ))
    if terminal:
        for (name, stream), heaps in zip(streams, counts, strict=True):
            printer.shutdown(name, heaps, stream)
    return 0


@contextlib.asynccontextmanager
async def serve_live_view(
    args: argparse.Namespace, streams: list[spead2.recv.asyncio.Stream], udp_ports: list[int]
) -> AsyncIterator[LiveView | None]:
    """The live view served on ``--http-port`` while the streams run (None without the option)."""
    if args.http_port is None:
        yield None
        return
    live = LiveView(streams, udp_ports, title=" ".join(args.source))
    server = await serve(live, args.http_host, args.http_port)
    host, port = server.sockets[0].getsockname()[:2]
    print(f"Live view on http://{host if ':' not in host else f'[{host}]'}:{port}/",
          file=sys.stderr, flush=True)
    sampler = asyncio.create_task(live.run())
    try:
        yield live
    finally:
        sampler.cancel()
        live.close()  # ends the event streams, so the server can close
        server.close()
        with contextlib.suppress(asyncio.CancelledError):
            await sampler
        await server.wait_closed()


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``spead2_recv`` / ``spead2_recv.py``."""
    return _cli.tool_main("spead2_recv", parse_args, async_main, argv)


if __name__ == "__main__":
    sys.exit(main())
