"""``spead2_bench``: find the highest lossless UDP rate between two hosts (the reference's ``spead2_bench.py``).

::

    spead2_bench [--log LEVEL] agent PORT
    spead2_bench [--log LEVEL] master [options] HOST:PORT

The agent listens for control connections on TCP ``PORT`` and, for each
measurement pass, receives the master's heaps on UDP ``PORT`` and reports how
many arrived. The master measures the unlimited send rate, then
binary-searches the rate at which every pass is lossless, printing each step.

The control protocol (newline-delimited JSON over TCP) is the reference's, so
our master can drive a reference agent and the other way round:
``{"cmd": "start", "args": {...}, "protocol": {...}, "receiver": {...}}`` →
``ready``; heaps; ``{"cmd": "stop"}`` → ``{"received_heaps": N}``;
``{"cmd": "exit"}`` or end of connection.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import logging
import signal
import sys
import time
from collections.abc import Coroutine
from typing import Any

import numpy as np

import spead2
import spead2.recv.asyncio
import spead2.send
import spead2.send.asyncio

from . import _arguments, _cli, _settings, _stream_options
from ._settings import ReceiverSettings, SenderSettings

logger = logging.getLogger(__name__)


# -- command line -----------------------------------------------------------------------


DESCRIPTION = """\
Find the highest UDP rate at which heaps arrive without loss between two
hosts. Run an agent on the receiving host, then a master on the sending
host: the master measures the unlimited send rate, then searches for the
highest rate at which every measurement pass is lossless, printing each
step. Either side can be this package's tool or the C++ spead2's."""

#: ``(command, what it does)``, shown at the end of ``--help``.
EXAMPLES = [
    ("spead2_bench agent 8888", "on the receiving host"),
    ("spead2_bench master receiver:8888", "on the sending host"),
    ("spead2_bench master --pass-bytes 1e8 --passes 2 127.0.0.1:8888", "a quick, coarse run"),
]


def build_parser(prog: str | None = None) -> argparse.ArgumentParser:
    """The argument parser: ``--log``, then the ``agent`` or ``master`` subcommand."""
    parser = _cli.make_parser(prog, DESCRIPTION, EXAMPLES)
    _cli.add_log_argument(parser)
    subparsers = parser.add_subparsers(title="subcommands", dest="command", required=True)

    agent = subparsers.add_parser("agent", help="Receive the heaps of a master")
    agent.add_argument("port", type=_arguments.non_negative_int, metavar="PORT")

    master = subparsers.add_parser("master", help="Send heaps to an agent and find the rate")
    master.add_argument("--quiet", action="store_true", help="Print only the final result")
    master.add_argument(
        "--heap-size", metavar="BYTES", type=_arguments.positive_int, default=4194304,
        help="Payload size for heap [4194304]",
    )
    master.add_argument(
        "--multicast", metavar="ADDRESS", default=None, help="Send via multicast group [unicast]"
    )
    master.add_argument("--pyspead", action="store_true", help="Be bug-compatible with PySPEAD")
    master.add_argument(
        "--pass-bytes", metavar="BYTES", type=_arguments.number, default=1e9,
        help="Bytes per measurement pass (at least; more at high rates) [1e9] "
        "(an extension: lower it for a quick, coarse search)",
    )
    master.add_argument(
        "--passes", metavar="N", type=_arguments.positive_int, default=5,
        help="Passes per measurement, all of which must be lossless [5] (an extension)",
    )
    master.add_argument(
        "--precision", metavar="FRACTION", type=_arguments.number, default=0.02,
        help="Stop searching when the rate is known to within this fraction [0.02] (an extension)",
    )
    group = master.add_argument_group("sender options")
    _stream_options.add_sender_arguments(group, io_prefix="send-", packet=False, rate=False)
    group = master.add_argument_group("receiver options")
    _stream_options.add_receiver_arguments(group, io_prefix="recv-", mem_pool=False)
    master.add_argument("endpoint", metavar="HOST:PORT", type=_arguments.parse_endpoint)
    return parser


def parse_args(argv: list[str] | None = None, prog: str | None = None) -> argparse.Namespace:
    """Parse and check the command line (argparse errors exit with status 2)."""
    parser = build_parser(prog)
    args = parser.parse_args(argv)
    if args.command == "master":
        _stream_options.check_sender_arguments(parser, args, "send-")
        _stream_options.refuse_ibverbs(parser, args, "recv-")
        if args.pass_bytes <= 0:
            parser.error(f"--pass-bytes must be positive, got {args.pass_bytes}")
        if not 0 < args.precision < 1:
            parser.error(f"--precision must be between 0 and 1, got {args.precision}")
    return args


# -- agent ----------------------------------------------------------------------------


class AgentConnection:
    """One control connection: runs the passes the master asks for."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.stream: spead2.recv.asyncio.Stream | None = None
        self.counter: asyncio.Task[int] | None = None

    @staticmethod
    async def _count(stream: spead2.recv.asyncio.Stream) -> int:
        heaps = 0
        async for _ in stream:
            heaps += 1
        return heaps

    async def _start(self, message: dict[str, Any]) -> None:
        args = message.get("args", {})
        settings = ReceiverSettings.from_json(message.get("receiver", {}), message.get("protocol", {}))
        if message.get("receiver", {}).get("ibv"):
            raise ValueError("ibverbs was requested, but this agent has no ibverbs support")
        host, port = _arguments.parse_endpoint(str(args["endpoint"]))
        if args.get("multicast"):
            host = args["multicast"]
        thread_pool = spead2.ThreadPool(settings.threads, settings.affinity or None)
        stream = await _settings.make_recv_stream(thread_pool, settings)
        try:
            settings.add_reader(stream, (host, port))
        except BaseException:
            stream.stop()
            raise
        self.stream = stream
        self.counter = asyncio.create_task(self._count(stream))

    async def _stop(self) -> int:
        assert self.stream is not None and self.counter is not None
        self.stream.stop()
        received = await self.counter
        self.stream = None
        self.counter = None
        return received

    async def run(self) -> None:
        """Serve commands until ``exit`` or the end of the connection."""
        try:
            while line := await self.reader.readline():
                try:
                    message = json.loads(line)
                    command = message["cmd"]
                except (ValueError, KeyError, TypeError):
                    logger.warning("ignoring malformed control message %r", line)
                    continue
                if command == "start":
                    if self.stream is not None:
                        logger.warning("start received while already running: ignored")
                        continue
                    await self._start(message)
                    self.writer.write(b"ready\n")
                elif command == "stop":
                    if self.stream is None:
                        logger.warning("stop received while not running: ignored")
                        continue
                    received = await self._stop()
                    self.writer.write(json.dumps({"received_heaps": received}).encode() + b"\n")
                elif command == "exit":
                    break
                else:
                    logger.warning("unknown command %r: ignored", command)
                await self.writer.drain()
        except (OSError, ValueError, RuntimeError) as exc:
            logger.error("control connection failed: %s", exc)
        finally:
            if self.stream is not None:
                await self._stop()
            self.writer.close()


async def run_agent(port: int) -> int:
    """Serve control connections on ``port`` until SIGINT/SIGTERM."""
    server = await asyncio.start_server(
        lambda r, w: AgentConnection(r, w).run(), port=port, reuse_address=True
    )
    done = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, done.set)
    async with server:
        await done.wait()
    return 0


# -- master ---------------------------------------------------------------------------


def _control_message(args: argparse.Namespace, receiver: ReceiverSettings) -> dict[str, Any]:
    """The ``start`` message, with the keys (and quirks) of the reference master's."""
    host, port = args.endpoint
    reference_args = {
        "log": args.log,
        "quiet": args.quiet,
        "heap_size": args.heap_size,
        "multicast": args.multicast,
        "pyspead": args.pyspead,
        "addr_bits": args.addr_bits,
        "burst": args.burst,
        "burst_rate_ratio": args.burst_rate_ratio,
        "max_heaps": args.max_heaps,
        "rate_method": args.rate_method.name,
        "ttl": args.ttl,
        "send_buffer": args.send_buffer,
        "send_bind": args.send_bind,
        "send_ibv": False,
        "send_ibv_vector": 0,
        "send_ibv_max_poll": 10,
        "send-affinity": args.send_affinity,
        "send-threads": args.send_threads,
        "memcpy_nt": args.memcpy_nt,
        "concurrent_heaps": args.concurrent_heaps,
        "substreams": args.substreams,
        "ring_heaps": args.ring_heaps,
        "mem_max_free": args.mem_max_free,
        "mem_initial": args.mem_initial,
        "packet": args.packet,
        "recv_buffer": args.recv_buffer,
        "recv_bind": args.recv_bind,
        "recv_ibv": False,
        "recv_ibv_vector": 0,
        "recv_ibv_max_poll": 10,
        "recv-affinity": args.recv_affinity,
        "recv-threads": args.recv_threads,
        "endpoint": f"{host}:{port}",
    }
    return {
        "cmd": "start",
        "args": reference_args,
        "protocol": {"tcp": False, "pyspead": args.pyspead},
        "receiver": receiver.to_json(),
    }


class Master:
    """Runs measurement passes against an agent."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.receiver = ReceiverSettings.from_args(args, "recv-")
        self.receiver.pyspead = args.pyspead
        # The agent's pool takes the whole heap: lower = heap, upper = heap + 1 KiB.
        self.receiver.mem_pool = True
        self.receiver.mem_lower = args.heap_size
        self.receiver.mem_upper = args.heap_size + 1024
        self.sender = SenderSettings.from_args(args, "send-")
        self.sender.pyspead = args.pyspead
        self.sender.packet = self.receiver.max_packet()
        pool_affinity = _stream_options.apply_affinity(self.sender.affinity)
        self.thread_pool = spead2.ThreadPool(self.sender.threads, pool_affinity)
        self.item_group = spead2.send.ItemGroup(flavour=self.sender.flavour())
        self.item_group.add_item(
            id=None, name="Test item", description="A test item with arbitrary value",
            shape=(args.heap_size,), dtype=np.uint8,
            value=np.zeros((args.heap_size,), np.uint8),
        )

    def heaps_for(self, rate: float) -> int:
        """Heaps per pass at ``rate`` bytes/s (the reference: ``max(1e9, rate) / heap_size + 2``)."""
        pass_bytes: float = self.args.pass_bytes
        return int(max(pass_bytes, rate * pass_bytes / 1e9) / self.args.heap_size) + 2

    async def _send(self, rate: float, num_heaps: int) -> tuple[int, float]:
        """Send one pass; returns (bytes, seconds)."""
        host, port = self.args.endpoint
        self.sender.rate = rate * 8 / 1e9
        stream = await self.sender.make_stream(self.thread_pool, [(self.args.multicast or host, port)])
        heap = self.item_group.get_heap(descriptors="all", data="all")
        futures: collections.deque[asyncio.Future[int]] = collections.deque()
        sent = 0
        start = time.perf_counter()
        for i in range(num_heaps + 1):
            if len(futures) >= self.sender.max_heaps:
                sent += await futures.popleft()
            futures.append(stream.async_send_heap(heap if i < num_heaps else self.item_group.get_end()))
        while futures:
            sent += await futures.popleft()
        return sent, time.perf_counter() - start

    async def measure_once(self, rate: float, num_heaps: int, required_heaps: int) -> tuple[bool, float]:
        """One pass: (whether the agent got ``required_heaps``, the actual rate in bytes/s)."""
        host, port = self.args.endpoint
        reader, writer = await asyncio.open_connection(host, port)
        try:
            writer.write(json.dumps(_control_message(self.args, self.receiver)).encode() + b"\n")
            await writer.drain()
            response = await reader.readline()
            if response != b"ready\n":
                raise RuntimeError(f"agent did not get ready (it replied {response!r})")
            sent, elapsed = await self._send(rate, num_heaps)
            await asyncio.sleep(0.1)  # let the last packets land
            writer.write(b'{"cmd": "stop"}\n')
            await writer.drain()
            response = await reader.readline()
            try:
                received = int(json.loads(response)["received_heaps"])
            except (ValueError, KeyError, TypeError):
                raise RuntimeError(f"agent sent an unexpected reply {response!r}") from None
            writer.write(b'{"cmd": "exit"}\n')
            await writer.drain()
        finally:
            writer.close()
        return received >= required_heaps, sent / elapsed if elapsed > 0 else float("inf")

    async def measure(self, rate: float, num_heaps: int, required_heaps: int) -> tuple[bool, float]:
        """``--passes`` passes: good if all are; the actual rate is their mean."""
        good = True
        rates = []
        for _ in range(self.args.passes):
            ok, actual = await self.measure_once(rate, num_heaps, required_heaps)
            good = good and ok
            rates.append(actual)
        return good, sum(rates) / len(rates)

    async def run(self) -> float:
        """The search; returns the sustainable rate in bytes/s (and prints as the reference)."""
        quiet = self.args.quiet
        num_heaps = self.heaps_for(0.0)
        await self.measure_once(0.0, num_heaps, num_heaps - 1)  # warm-up
        good, actual = await self.measure(0.0, num_heaps, num_heaps - 1)
        if good:
            if not quiet:
                print("Limited by send speed", flush=True)
            return actual
        print(f"Send rate: {actual * 8e-9:.3f} Gbps", flush=True)
        low = 0.0
        high = actual
        best = 0.0
        while high - low > self.args.precision * high:
            rate = (low + high) * 0.5
            num_heaps = self.heaps_for(rate)
            good, actual = await self.measure(rate, num_heaps, num_heaps - 1)
            if not quiet:
                print(
                    f"Rate: {rate * 8e-9:.3f} Gbps ({actual * 8e-9:.3f} actual): "
                    f"{'GOOD' if good else 'BAD'}",
                    flush=True,
                )
            if good:
                low = rate
                best = actual
            else:
                high = rate
        return best


async def run_master(args: argparse.Namespace) -> int:
    """Run the search and print the result (``--quiet``: just the number, in Gbit/s)."""
    rate = await Master(args).run()
    if args.quiet:
        print(rate * 8e-9)
    else:
        print(f"Sustainable rate: {rate * 8e-9:.3f} Gbps")
    return 0


def run_command(args: argparse.Namespace) -> Coroutine[Any, Any, int]:
    """The subcommand's coroutine: the agent or the master."""
    if args.command == "agent":
        return run_agent(args.port)
    return run_master(args)


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``spead2_bench`` / ``spead2_bench.py``."""
    return _cli.tool_main("spead2_bench", parse_args, run_command, argv)


if __name__ == "__main__":
    sys.exit(main())
