"""Workload 6: UDP send over loopback — maximum send rate, and rate accuracy at fixed rates.

Two long-lived worker roles:

* ``--role sender`` (``--impl ours|reference``): on ``{"cmd": "send", ...}``
  builds a ``UdpStream`` to ``127.0.0.1:port`` (asyncio with at most
  ``max_heaps`` heaps in flight, as ``spead2_send`` does, or the blocking
  ``send_heap`` one heap at a time), sends ``heaps`` copies of one heap of a
  ``heap_size``-byte uint8 item at ``rate`` bytes/s (0: unlimited), then a
  stop heap if asked, and answers the bytes sent and the time taken. Workload
  5 uses the reference's sender (C++ underneath) to feed both receivers.
* ``--role drain`` (``--impl none``, plain sockets only): a thread receives
  and discards datagrams; between ``start`` and ``stop`` it samples
  cumulative bytes against arrival time every few datagrams, and answers the
  least-squares slope (``bench/send_rate.py``'s receive-side method).

The harness side measures, for each implementation: the maximum rate with
``rate=0`` (1 MiB heaps; 9000- and 1472-byte packets; asyncio and blocking
streams) and the achieved rate seen by the drain at fixed requested rates
(64 KiB heaps, 1472-byte packets), as the error in %.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from typing import Any

import _common

#: Socket buffer requested by the drain (the kernel caps it at net.core.rmem_max).
DRAIN_BUFFER = 32 * 1024 * 1024
#: The drain keeps one (time, bytes) sample per this many datagrams.
SAMPLE_EVERY = 8


class Sender:
    """The sender role: one heap per heap size, built once and sent over and over."""

    def __init__(self) -> None:
        self._heaps: dict[int, tuple[Any, Any]] = {}

    def _heap(self, heap_size: int) -> tuple[Any, Any]:
        """(data heap, stop heap) for ``heap_size``."""
        if heap_size not in self._heaps:
            import numpy as np

            import spead2.send

            group = spead2.send.ItemGroup()
            group.add_item(0x1000, "data", "payload", (heap_size,), dtype=np.uint8,
                           value=(np.arange(heap_size) % 251).astype(np.uint8))
            self._heaps[heap_size] = (group.get_heap(descriptors="none", data="all"),
                                      group.get_end())
        return self._heaps[heap_size]

    @staticmethod
    def _config(cmd: dict[str, Any]) -> Any:
        import spead2.send

        return spead2.send.StreamConfig(
            max_packet_size=cmd["packet"], rate=float(cmd["rate"]), max_heaps=cmd["max_heaps"]
        )

    def send(self, cmd: dict[str, Any]) -> dict[str, Any]:
        """Send as ``cmd`` says; answer bytes, seconds and bytes/s (stop heap excluded)."""
        cmd = {"max_heaps": 4, "api": "asyncio", "stop": False, "buffer": 512 * 1024, **cmd}
        heap, end = self._heap(cmd["heap_size"])
        if cmd["api"] == "asyncio":
            sent, elapsed = asyncio.run(self._send_asyncio(cmd, heap, end))
        else:
            sent, elapsed = self._send_sync(cmd, heap, end)
        return {"bytes": sent, "elapsed": elapsed, "rate": sent / elapsed if elapsed else 0.0}

    def _send_sync(self, cmd: dict[str, Any], heap: Any, end: Any) -> tuple[int, float]:
        import spead2.send

        stream_class: Any = getattr(spead2.send, "UdpStream", None)
        if stream_class is None:  # not exported by our package yet
            from spead2.send._network_streams import UdpStream as stream_class
        stream = stream_class(_common.thread_pool(), [("127.0.0.1", cmd["port"])],
                              self._config(cmd), buffer_size=cmd["buffer"])
        sent = 0
        start = time.perf_counter()
        for _ in range(cmd["heaps"]):
            sent += stream.send_heap(heap)
        elapsed = time.perf_counter() - start
        if cmd["stop"]:
            stream.send_heap(end)
        return sent, elapsed

    async def _send_asyncio(self, cmd: dict[str, Any], heap: Any, end: Any) -> tuple[int, float]:
        import spead2.send.asyncio

        stream = spead2.send.asyncio.UdpStream(
            _common.thread_pool(), [("127.0.0.1", cmd["port"])], self._config(cmd),
            buffer_size=cmd["buffer"],
        )
        window = cmd["max_heaps"]
        pending: list[Any] = []
        sent = 0
        start = time.perf_counter()
        for _ in range(cmd["heaps"]):
            if len(pending) == window:
                sent += await pending.pop(0)
            pending.append(stream.async_send_heap(heap))
        for future in pending:
            sent += await future
        elapsed = time.perf_counter() - start
        if cmd["stop"]:
            await stream.async_send_heap(end)
        return sent, elapsed


class Drain:
    """The drain role: receive and discard, sampling arrivals while a run is recorded."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, DRAIN_BUFFER)
        self.sock.bind(("127.0.0.1", 0))
        self.packets = 0
        self.bytes = 0
        self.samples: list[tuple[float, int]] | None = None
        self.start_counts = (0, 0)
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self) -> None:
        buffer = bytearray(65536)
        clock = time.perf_counter
        recv_into = self.sock.recv_into
        while True:
            size = recv_into(buffer)
            self.packets += 1
            self.bytes += size
            samples = self.samples
            if samples is not None and self.packets % SAMPLE_EVERY == 0:
                samples.append((clock(), self.bytes))

    def handle(self, cmd: dict[str, Any]) -> dict[str, Any]:
        """``hello`` → port and granted buffer; ``start``; ``stop`` → counts and slope."""
        if cmd["cmd"] == "hello":
            return {"port": self.sock.getsockname()[1],
                    "rcvbuf": self.sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF)}
        if cmd["cmd"] == "start":
            self.start_counts = (self.packets, self.bytes)
            self.samples = []
            return {}
        # stop: let the last datagrams land first
        time.sleep(cmd.get("settle", 0.05))
        samples, self.samples = self.samples or [], None
        return {
            "packets": self.packets - self.start_counts[0],
            "bytes": self.bytes - self.start_counts[1],
            "rate": _common.slope([t for t, _ in samples], [b for _, b in samples]),
        }


def main() -> None:
    """Worker entry point (a role is required)."""
    args = _common.parse_args()
    if args.role == "drain":
        _common.serve(Drain().handle)
        return
    _common.use_implementation(args.impl)
    sender = Sender()
    _common.serve(sender.send)


# -- harness side ------------------------------------------------------------------------------

#: (packet size, API) cases of the maximum send rate.
MAX_RATE_CASES = ((9000, "asyncio"), (1472, "asyncio"), (9000, "sync"), (1472, "sync"))
#: Requested rates (Mb/s) of the accuracy cases.
ACCURACY_RATES_MBPS = (100.0, 500.0)


def run(ctx: Any) -> list[Any]:
    """Harness side: rows 6a–6d (maximum send rate) and 6e–6f (rate error)."""
    from _harness import Row, error_rows, median

    max_heaps = 20 if ctx.quick else 200
    seconds = 0.3 if ctx.quick else 1.5
    drain = ctx.spawn("udp_send.py", "none", "drain", {}, python_of="ours")
    senders = {impl: ctx.spawn("udp_send.py", impl, "sender", {}) for impl in ctx.impls}
    rows: list[Row] = []
    try:
        port = drain.request({"cmd": "hello"}, 30)["port"]
        for index, (packet, api) in enumerate(MAX_RATE_CASES):
            number = "6" + "abcd"[index]
            name = f"max UDP send rate, {api} stream, 1 MiB heaps, {packet} B packets"
            samples: dict[str, list[float]] = {impl: [] for impl in ctx.impls}
            try:
                for _, impl in ctx.alternating():
                    reply = senders[impl].request(
                        {"cmd": "send", "port": port, "packet": packet, "rate": 0,
                         "heaps": max_heaps, "heap_size": 2**20, "api": api}, 120)
                    samples[impl].append(reply["rate"] * 8 / 1e9)
            except Exception as error:  # one failed case must not end the run
                rows += error_rows(number, name, error)
                continue
            rows.append(Row(number, name, "Gb/s", median(samples.get("ours", [])),
                            median(samples.get("reference", [])), samples=samples))
        for index, mbps in enumerate(ACCURACY_RATES_MBPS):
            number = "6" + "ef"[index]
            name = f"send rate error at {mbps:.0f} Mb/s (asyncio, 64 KiB heaps, 1472 B packets)"
            rate = mbps * 1e6 / 8
            heaps = max(50, int(rate * seconds / 65536))
            samples = {impl: [] for impl in ctx.impls}
            losses: dict[str, list[float]] = {impl: [] for impl in ctx.impls}
            try:
                for _, impl in ctx.alternating():
                    drain.request({"cmd": "start"}, 30)
                    sent = senders[impl].request(
                        {"cmd": "send", "port": port, "packet": 1472, "rate": rate,
                         "heaps": heaps, "heap_size": 65536, "api": "asyncio"},
                        heaps * 65536 / rate * 3 + 30)
                    got = drain.request({"cmd": "stop"}, 30)
                    samples[impl].append((got["rate"] / rate - 1) * 100)
                    losses[impl].append((1 - got["bytes"] / sent["bytes"]) * 100)
            except Exception as error:  # one failed case must not end the run
                rows += error_rows(number, name, error)
                continue
            rows.append(Row(number, name, "% error", median(samples.get("ours", [])),
                            median(samples.get("reference", [])), samples=samples,
                            note="achieved rate at a draining receiver (least-squares slope) "
                                 "vs requested; bytes lost at the drain: "
                                 + ", ".join(f"{impl} {median(v) or 0:.1f}%"
                                             for impl, v in losses.items()),
                            show_ratio=False))
    finally:
        for peer in [drain, *senders.values()]:
            peer.close()
    return rows


if __name__ == "__main__":
    main()
