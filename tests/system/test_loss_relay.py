"""Loss, reordering and duplication on real UDP, through a relay on loopback.

A sender (the REFERENCE spead2 4.5.1 in its own interpreter, named by
``SPEAD2_REFERENCE_PYTHON``, or our own) sends heaps to a relay — an asyncio
datagram endpoint in this process — which drops, duplicates and delays
(reorders) datagrams at configured rates before forwarding them to OUR
receiver (``add_udp_reader``, ``allow_out_of_order=True``,
``contiguous_only=False``). Then:

* every heap delivered is complete and decodes to exactly what was sent for
  its cnt, or is an ``IncompleteHeap``;
* the statistics add up: packets counted + datagrams the kernel dropped at
  the receiver's socket (``/proc/net/udp``; zero with a large enough buffer)
  = datagrams the relay forwarded, exactly; and heaps counted = complete +
  incomplete delivered + flushed at stop;
* with reordering alone, every heap arrives complete.
"""

from __future__ import annotations

import asyncio
import random
import socket
import subprocess
import sys
import time
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

import spead2
import spead2.recv
from spead2.protocols.heaps import Heap, IncompleteHeap
from tests.fuzz._udp import SENDER_SCRIPT, bound_udp_socket, heap_payload, kernel_drops
from tests.helpers.reference import reference_python
from tests.helpers.streams import counting_config
from tests.helpers.waiting import wait_for_async

REPO = Path(__file__).resolve().parents[2]
N_HEAPS = 500


@dataclass(frozen=True)
class Impairment:
    """Per-datagram probabilities; a delayed datagram is held back for 1..max_delay later ones."""

    drop: float
    duplicate: float
    reorder: float
    max_delay: int = 8


RATES = {
    "light": Impairment(drop=0.02, duplicate=0.02, reorder=0.05),
    "heavy": Impairment(drop=0.2, duplicate=0.2, reorder=0.3),
    "reorder-only": Impairment(drop=0.0, duplicate=0.0, reorder=0.3),
}


class Relay(asyncio.DatagramProtocol):
    """Forwards datagrams to ``target``, dropping, duplicating and delaying some."""

    def __init__(self, target: tuple[str, int], impairment: Impairment, seed: int) -> None:
        self.target = target
        self.impairment = impairment
        self.rng = random.Random(seed)
        self.transport: asyncio.DatagramTransport | None = None
        self.received = 0
        self.forwarded = 0
        self.dropped = 0
        self.duplicated = 0
        self.delayed = 0
        self._held: list[list[object]] = []  # [datagrams still to let pass, data]

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def _send(self, data: bytes) -> None:
        assert self.transport is not None
        self.transport.sendto(data, self.target)
        self.forwarded += 1

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.received += 1
        imp = self.impairment
        rng = self.rng
        if rng.random() < imp.drop:
            self.dropped += 1
        else:
            copies = 1
            if rng.random() < imp.duplicate:
                copies = 2
                self.duplicated += 1
            for _ in range(copies):
                if rng.random() < imp.reorder:
                    self.delayed += 1
                    self._held.append([rng.randint(1, imp.max_delay), data])
                else:
                    self._send(data)
        still = []
        for entry in self._held:
            entry[0] -= 1  # type: ignore[operator]
            if entry[0] <= 0:  # type: ignore[operator]
                self._send(entry[1])  # type: ignore[arg-type]
            else:
                still.append(entry)
        self._held = still

    def release_all(self) -> None:
        for _, data in self._held:
            self._send(data)  # type: ignore[arg-type]
        self._held = []


def roomy(sock: socket.socket) -> bool:
    """Whether the kernel granted a buffer big enough that nothing should be dropped.

    Linux reports twice what it grants; net.core.rmem_max may cap the request.
    """
    return sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF) // 2 >= 2 << 20


def sender_command(which: str, port: int, n_heaps: int, rate: float) -> tuple[list[str], str]:
    """``(argv, cwd)`` running the sender script with the reference's or our interpreter."""
    args = [str(port), str(n_heaps), str(rate), "1"]
    if which == "reference":
        # -P and a neutral cwd: the reference must never import our package.
        return [reference_python(), "-P", "-c", SENDER_SCRIPT, *args], "/"
    return [sys.executable, "-c", SENDER_SCRIPT, *args], str(REPO)


def check_heaps(heaps: Sequence[object], stats: spead2.recv.StreamStats) -> tuple[set[int], int]:
    """Check every delivered heap and the heap statistics; return (complete cnts, incomplete)."""
    complete: set[int] = set()
    incomplete = 0
    for heap in heaps:
        if isinstance(heap, IncompleteHeap):
            incomplete += 1
            assert heap.received_length < heap.heap_length
            continue
        assert isinstance(heap, Heap)
        group = spead2.ItemGroup()
        updated = group.update(heap)
        assert updated["cnt"].value == heap.cnt
        expected = heap_payload(heap.cnt)
        got = np.asarray(updated["data"].value)
        assert got.dtype.itemsize == 1 and got.tobytes() == expected.tobytes(), (
            f"heap {heap.cnt} delivered complete with wrong data"
        )
        complete.add(heap.cnt)
    assert incomplete == stats.incomplete_heaps_evicted
    assert stats.heaps == len(heaps) + stats.incomplete_heaps_flushed
    return complete, incomplete


async def run_through_relay(which: str, impairment: Impairment, seed: int) -> None:
    loop = asyncio.get_running_loop()
    rx = bound_udp_socket()
    rx_port = rx.getsockname()[1]
    rx_roomy = roomy(rx)
    config = counting_config(max_heaps=16, allow_out_of_order=True)
    ring = spead2.recv.RingStreamConfig(heaps=4 * N_HEAPS, contiguous_only=False)
    stream = spead2.recv.Stream(spead2.ThreadPool(), config, ring)
    stream.add_udp_reader(rx, max_size=9200)
    rx.close()  # the stream has its own duplicate

    relay_sock = bound_udp_socket()
    relay_port = relay_sock.getsockname()[1]
    transport, relay = await loop.create_datagram_endpoint(
        lambda: Relay(("127.0.0.1", rx_port), impairment, seed), sock=relay_sock
    )
    try:
        # 20 MB/s: the whole run (about 2 MB) fits in the socket buffers even if the relay
        # falls behind.
        argv, cwd = sender_command(which, relay_port, N_HEAPS, 20e6)
        proc = await asyncio.create_subprocess_exec(
            *argv, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        out, err = await asyncio.wait_for(proc.communicate(), 60)
        assert proc.returncode == 0, err.decode()
        sent_packets = int(out.split()[0])
        via = "UdpStream" if out.split()[1] == b"True" else "PacketGenerator + socket"
        # Everything was sent before the sender exited; let the relay drain its socket.
        await wait_for_async(
            lambda: relay.received + (kernel_drops(relay_port) or 0) >= sent_packets,
            "the relay to see every datagram", timeout=30,
        )
        relay.release_all()
        relay_drops = kernel_drops(relay_port)
        if relay_drops is not None:
            # Datagrams lost before the relay are just more loss; account for them exactly.
            assert relay.received + relay_drops == sent_packets
        if roomy(relay_sock):
            assert relay_drops in (0, None), "the relay itself lost datagrams"
    finally:
        transport.close()

    # Wait until the receiver has accounted for every forwarded datagram, then stop it (a
    # deadline wait that goes on to the checks below, which then say what is missing).
    deadline = time.monotonic() + 30
    while True:
        drops = kernel_drops(rx_port) or 0
        if stream.stats.packets + drops >= relay.forwarded or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.01)
    final_drops = kernel_drops(rx_port)  # before stop(), which closes the socket
    stream.stop()
    heaps = list(stream)
    stats = stream.stats
    assert stats["invalid_packets"] == 0
    if final_drops is not None:
        assert stats.packets + final_drops == relay.forwarded
    if rx_roomy:
        assert final_drops in (0, None), f"{final_drops} datagrams dropped by the kernel"
        assert stats.packets == relay.forwarded

    complete, _ = check_heaps(heaps, stats)
    assert complete <= set(range(1, N_HEAPS + 1))
    lossless = relay.received == sent_packets and stats.packets == relay.forwarded
    if impairment.drop == 0 and impairment.duplicate == 0 and lossless:
        assert complete == set(range(1, N_HEAPS + 1))
    else:
        # Loss affects a minority of heaps at these rates.
        assert len(complete) > N_HEAPS // 3
    print(
        f"{which} ({via}): sent {sent_packets}, dropped {relay.dropped}, duplicated {relay.duplicated}, "
        f"delayed {relay.delayed}, forwarded {relay.forwarded}; {len(complete)} of {N_HEAPS} "
        f"heaps complete, {stats.incomplete_heaps_evicted} incomplete delivered, "
        f"{stats.incomplete_heaps_flushed} flushed"
    )


@pytest.mark.timeout(120)
@pytest.mark.parametrize("rates", sorted(RATES))
@pytest.mark.parametrize("which", ["reference", "ours"])
async def test_relay(which: str, rates: str) -> None:
    await run_through_relay(which, RATES[rates], seed=zlib.crc32(f"{which}-{rates}".encode()))


def test_kernel_drop_counter_reads_this_socket() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        assert kernel_drops(sock.getsockname()[1]) in (0, None)
    assert kernel_drops(1) is None or kernel_drops(1) == 0
