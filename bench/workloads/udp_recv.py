"""Workload 5 (and 7, its memory): maximum lossless UDP receive rate on loopback, by bisection.

The reference's sender (``udp_send.py --role sender`` under the reference
interpreter, C++ underneath) feeds both receivers, each in its own process
(``--role receiver``), so the two are treated alike. The receiver is what
``spead2_bench``'s agent runs: a ``recv.asyncio.Stream`` (``max_heaps`` 4,
ring 4, a ``MemoryPool(heap, heap + 1024, 12, 8)``) with one UDP reader on
127.0.0.1 asking for a large socket buffer, consumed with ``async for``
(counting heaps). A fresh stream serves each pass.

The search follows ``spead2_bench master``: one warm-up pass, then a
measurement at unlimited rate; if every heap arrives the rate is limited by
the sender, else bisect the requested rate in [0, that rate] until the
interval is within ``tolerance`` of its top. A measurement is good if in
each of ``passes`` passes every data heap arrived complete; a pass lasts
about ``pass_seconds`` (at least ``min_heaps`` heaps) and ends with a stop
heap, whose arrival (or ``grace`` seconds) ends the receiver's count. The
answer is the mean achieved send rate of the best good measurement.
"""

from __future__ import annotations

import asyncio
import json
import socket
import sys
from typing import Any

import _common

#: Payload bytes per heap.
HEAP_SIZE = 1024 * 1024
#: Socket buffer the receivers ask for (the kernel caps it at net.core.rmem_max).
RECV_BUFFER = 32 * 1024 * 1024
#: Receive stream shape (spead2_bench's defaults).
MAX_HEAPS = 4
RING_HEAPS = 4
#: The constant term of the peak-memory bound (MiB): interpreter and library working set.
RSS_CONSTANT_MIB = 16.0
#: Upper bound on bisection steps, whatever the tolerance (each search stops by itself).
MAX_STEPS = 12


async def _receiver() -> None:
    """The receiver role: ``start`` / ``stop`` a stream per pass, ``memory`` at the end."""
    import spead2
    import spead2.recv
    import spead2.recv.asyncio

    loop = asyncio.get_running_loop()
    pool = _common.thread_pool()
    peak = _common.PeakMemory()  # before the pool: its buffers are the stream's memory
    allocator = spead2.MemoryPool(HEAP_SIZE, HEAP_SIZE + 1024, 12, 8)
    stream: Any = None
    task: asyncio.Task[tuple[int, int]] | None = None
    pass_peak = peak
    run_peak = pass_growth = 0.0

    async def consume(stream: Any) -> tuple[int, int]:
        complete = incomplete = 0
        async for heap in stream:
            if isinstance(heap, spead2.recv.IncompleteHeap):
                incomplete += 1
            else:
                complete += 1
        return complete, incomplete

    while True:
        line = await loop.run_in_executor(None, sys.stdin.readline)
        if not line:
            break
        cmd = json.loads(line)
        if cmd["cmd"] == "start":
            config = spead2.recv.StreamConfig(max_heaps=MAX_HEAPS, memory_allocator=allocator)
            ring = spead2.recv.RingStreamConfig(heaps=RING_HEAPS)
            stream = spead2.recv.asyncio.Stream(pool, config, ring)
            stream.add_udp_reader(cmd["port"], max_size=cmd["packet"], buffer_size=RECV_BUFFER,
                                  bind_hostname="127.0.0.1")
            task = asyncio.create_task(consume(stream))
            # Each pass's own peak over the RSS at its start: the working memory of one
            # stream. No garbage collection first, so what earlier streams left for the
            # cyclic collector shows in the whole-run figure instead.
            run_peak = max(run_peak, _common.status_kib("VmHWM"))
            pass_peak = _common.PeakMemory(collect=False)
            _common.emit({})
        elif cmd["cmd"] == "stop":
            assert task is not None
            try:
                await asyncio.wait_for(asyncio.shield(task), cmd["grace"])
                ended = True
            except TimeoutError:
                ended = False
            stream.stop()
            complete, incomplete = await task
            stats = stream.stats
            pass_growth = max(pass_growth, pass_peak.figures()["rss_growth_mib"])
            _common.emit({
                "complete": complete, "incomplete": incomplete, "stop_heap_seen": ended,
                "packets": stats.packets,
                "evicted": stats.incomplete_heaps_evicted,
                "flushed": stats.incomplete_heaps_flushed,
            })
            stream = task = None
        elif cmd["cmd"] == "memory":
            run_peak = max(run_peak, _common.status_kib("VmHWM"))
            _common.emit({"run_growth_mib": (run_peak - peak.baseline_kib) / 1024,
                          "pass_growth_mib": pass_growth})


def main() -> None:
    """Worker entry point (``--role receiver``)."""
    args = _common.parse_args()
    _common.use_implementation(args.impl)
    asyncio.run(_receiver())


# -- harness side ------------------------------------------------------------------------------

#: Bisection settings: full run, and --quick.
FULL = {"passes": 2, "pass_seconds": 1.0, "unlimited_heaps": 512, "min_heaps": 64,
        "tolerance": 0.03, "grace": 1.0}
QUICK = {"passes": 1, "pass_seconds": 0.15, "unlimited_heaps": 24, "min_heaps": 16,
         "tolerance": 0.3, "grace": 0.5}


def free_port() -> int:
    """A UDP port on 127.0.0.1 nobody uses right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def granted_buffer(requested: int = RECV_BUFFER) -> int:
    """What the kernel grants a UDP socket asking for ``requested`` receive-buffer bytes."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, requested)
        return int(sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF))


def run_pass(sender: Any, receiver: Any, port: int, packet: int, rate: float, heaps: int,
             grace: float) -> tuple[dict[str, Any], dict[str, Any]]:
    """One pass: a fresh receiving stream, ``heaps`` heaps at ``rate`` bytes/s (0: unlimited)
    and a stop heap; returns the sender's and the receiver's reports."""
    receiver.request({"cmd": "start", "port": port, "packet": packet}, 30)
    timeout = 60 + (heaps * HEAP_SIZE / rate * 3 if rate else 0)
    sent = sender.request({"cmd": "send", "port": port, "packet": packet, "rate": rate,
                           "heaps": heaps, "heap_size": HEAP_SIZE, "stop": True}, timeout)
    got = receiver.request({"cmd": "stop", "grace": grace}, 30 + grace)
    return sent, got


def bisect(sender: Any, receiver: Any, port: int, packet: int,
           settings: dict[str, Any]) -> dict[str, Any]:
    """spead2_bench's search for one receiver; rates in bytes/s, log of every step."""
    steps: list[dict[str, Any]] = []

    def measure(rate: float, heaps: int) -> tuple[bool, float]:
        rates = []
        good = True
        for _ in range(settings["passes"]):
            sent, got = run_pass(sender, receiver, port, packet, rate, heaps, settings["grace"])
            rates.append(sent["rate"])
            if got["complete"] != heaps or got["incomplete"]:
                good = False
                break  # one lost heap decides it; the remaining passes would only cost time
        actual = sum(rates) / len(rates)
        steps.append({"target_gbps": rate * 8 / 1e9, "actual_gbps": actual * 8 / 1e9,
                      "good": good, "heaps": heaps})
        return good, actual

    measure(0.0, settings["min_heaps"])  # warm-up
    steps.clear()
    good, sender_rate = measure(0.0, settings["unlimited_heaps"])
    if good:
        return {"rate": sender_rate, "limited_by_sender": True, "sender_rate": sender_rate,
                "steps": steps}
    low, high, best = 0.0, sender_rate, 0.0
    for _ in range(MAX_STEPS):
        if high - low <= settings["tolerance"] * high:
            break
        mid = (low + high) / 2
        heaps = max(settings["min_heaps"], int(mid * settings["pass_seconds"] / HEAP_SIZE))
        good, actual = measure(mid, heaps)
        if good:
            low, best = mid, actual
        else:
            high = mid
    return {"rate": best, "limited_by_sender": False, "sender_rate": sender_rate, "steps": steps}


#: The targets (ratio ours/reference, at least) by packet size, and their row numbers.
TARGETS = {9000: ("5a", 1.0), 1472: ("5b", 1.0)}


def row_plan(sizes: tuple[int, ...]) -> list[tuple[int, str, float | None]]:
    """(packet size, row number, target) per size: 5a/5b for the targets, then 5c, 5d, ..."""
    plan = []
    spare = iter("cdefghijklmnopqrstuvwxyz")
    for size in sizes:
        number, target = TARGETS.get(size, (None, None))
        plan.append((size, number or "5" + next(spare), target))
    return plan


def run(ctx: Any) -> list[Any]:
    """Harness side: rows 5a/5b (Gb/s for 9000/1472-byte packets; 5c... for other
    ``--udp-packet-sizes``) and 7b (receiver memory)."""
    from _harness import Row, WorkerError, error_rows, median

    settings = QUICK if ctx.quick else FULL
    sender_impl = "reference" if "reference" in ctx.impls else "ours"
    # With two CPUs or more, the sender and the receiver get one each (as spead2_bench's
    # --send-affinity/--recv-affinity would), so the receiver's appetite for CPU does not
    # slow the sender down: on loopback the sender's CPU also does the kernel's receive path.
    cpus = ctx.cpus()
    send_cpu, recv_cpu = (cpus[0], cpus[1]) if len(cpus) >= 2 else (None, None)
    sender = ctx.spawn("udp_send.py", sender_impl, "sender", {}, cpu=send_cpu)
    receivers = {impl: ctx.spawn("udp_recv.py", impl, "receiver", {}, cpu=recv_cpu)
                 for impl in ctx.impls}
    ports = {impl: free_port() for impl in ctx.impls}
    rows: list[Row] = []
    try:
        for packet, number, target in row_plan(ctx.udp_packet_sizes):
            name = f"max lossless UDP receive rate, 1 MiB heaps, {packet} B packets"
            samples: dict[str, list[float]] = {impl: [] for impl in ctx.impls}
            limited: dict[str, int] = {impl: 0 for impl in ctx.impls}
            details: list[dict[str, Any]] = []
            try:
                for _, impl in ctx.alternating():
                    result = bisect(sender, receivers[impl], ports[impl], packet, settings)
                    samples[impl].append(result["rate"] * 8 / 1e9)
                    limited[impl] += result["limited_by_sender"]
                    details.append({"impl": impl, **result})
                    ctx.log(f"  {number} {impl}: {result['rate'] * 8 / 1e9:.3f} Gb/s "
                            f"(sender alone {result['sender_rate'] * 8 / 1e9:.3f} Gb/s, "
                            f"{len(result['steps'])} steps)")
            except WorkerError as error:
                rows += error_rows(number, name, error)
                continue
            notes = [f"sender: {sender_impl}'s"]
            notes += [f"{impl} limited by the sender in {n} of {len(samples[impl])}"
                      for impl, n in limited.items() if n]
            row = Row(number, name, "Gb/s", median(samples.get("ours", [])),
                      median(samples.get("reference", [])), target=target,
                      note="; ".join(notes), samples=samples, details=details,
                      packet_size=packet)
            rows.append(row)
        memory = {impl: receiver.request({"cmd": "memory"}, 30)
                  for impl, receiver in receivers.items()}
        per_pass = {impl: [m["pass_growth_mib"]] for impl, m in memory.items()}
        whole = ", ".join(f"{impl} {m['run_growth_mib']:.0f} MiB" for impl, m in memory.items())
        bound = (MAX_HEAPS + RING_HEAPS) * HEAP_SIZE / 2**20 + RSS_CONSTANT_MIB
        rows.append(Row("7b", "peak RSS growth, UDP receiver (5), worst pass", "MiB",
                        median(per_pass.get("ours", [])), median(per_pass.get("reference", [])),
                        limit=bound, higher_is_better=False, samples=per_pass,
                        note=f"bound (max_heaps {MAX_HEAPS} + ring {RING_HEAPS}) × 1 MiB + "
                             f"{RSS_CONSTANT_MIB:.0f} MiB; over the whole bisection "
                             f"(a stream per pass): {whole}; socket buffer asked "
                             f"{RECV_BUFFER >> 20} MiB, kernel grants "
                             f"{granted_buffer() >> 20} MiB"))
    except WorkerError as error:
        rows += error_rows("7b", "peak RSS growth, UDP receiver (5)", error)
    finally:
        for peer in [sender, *receivers.values()]:
            peer.close()
    return rows


if __name__ == "__main__":
    main()
