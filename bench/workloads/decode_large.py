"""Workload 1 (and 7, its memory): decode 1 MiB heaps from memory with add_buffer_reader.

The worker encodes ``heaps`` heaps of one ``heap_size``-byte uint8 item in
``packet_size``-byte packets with the implementation's own ``BytesStream``
(the two encoders are byte-identical), then, ``passes`` times, receives them
through a fresh ``recv.Stream`` (``max_heaps`` live heaps, ``ring_heaps`` in the
ring) fed by ``add_buffer_reader``, counting the heaps. Reported: payload GB/s
(10⁹ bytes/s) per pass and the peak RSS growth over the RSS once the encoded
input exists (the working memory of the stream).

Standalone: ``python bench/workloads/decode_large.py --impl ours --params '{"heaps": 64}'``.
"""

from __future__ import annotations

import statistics
import time
from typing import Any

import _common

#: Defaults of the worker's parameters.
DEFAULTS: dict[str, Any] = {
    "heap_size": 1024 * 1024, "packet_size": 9000, "heaps": 256, "passes": 3,
    "max_heaps": 4, "ring_heaps": 4,
}
#: The constant term of the peak-memory bound (MiB): interpreter and library working set.
RSS_CONSTANT_MIB = 16.0


def encode(heaps: int, heap_size: int, packet_size: int, descriptors: bool = False) -> bytes:
    """``heaps`` heaps of one zero-filled ``heap_size``-byte item, back to back."""
    import numpy as np

    import spead2.send

    group = spead2.send.ItemGroup()
    group.add_item(0x1000, "data", "payload", (heap_size,), dtype=np.uint8)
    stream = spead2.send.BytesStream(
        _common.thread_pool(), spead2.send.StreamConfig(max_packet_size=packet_size, max_heaps=8)
    )
    if descriptors:
        stream.send_heap(group.get_heap(descriptors="all", data="none"))
    group["data"].value = np.zeros(heap_size, np.uint8)
    heap = group.get_heap(descriptors="none", data="all")
    for _ in range(heaps):
        stream.send_heap(heap)
    return stream.getvalue()


def make_stream(params: dict[str, Any], asyncio: bool = False) -> Any:
    """A receive stream configured as the workload asks (asyncio: inside a running loop)."""
    import spead2
    import spead2.recv

    config = spead2.recv.StreamConfig(max_heaps=params["max_heaps"])
    ring = spead2.recv.RingStreamConfig(heaps=params["ring_heaps"])
    if asyncio:
        import spead2.recv.asyncio

        return spead2.recv.asyncio.Stream(_common.thread_pool(), config, ring)
    return spead2.recv.Stream(_common.thread_pool(), config, ring)


def summarise(params: dict[str, Any], times: list[float], memory: dict[str, Any]) -> dict[str, Any]:
    """GB/s and heaps/s of the median pass, the per-pass figures and the memory figures."""
    size = params["heaps"] * params["heap_size"]
    return {
        "gbps": size / statistics.median(times) / 1e9,
        "heaps_per_s": params["heaps"] / statistics.median(times),
        "pass_gbps": [size / t / 1e9 for t in times],
        "rss_bound_mib": (params["max_heaps"] + params["ring_heaps"]) * params["heap_size"]
        / 2**20 + RSS_CONSTANT_MIB,
        **memory,
    }


def measure(params: dict[str, Any]) -> dict[str, Any]:
    """Run the workload with ``params`` (missing keys take :data:`DEFAULTS`)."""
    params = {**DEFAULTS, **params}
    data = encode(params["heaps"], params["heap_size"], params["packet_size"])
    peak = _common.PeakMemory()
    times = []
    for _ in range(params["passes"]):
        stream = make_stream(params)
        received = 0
        start = time.perf_counter()
        stream.add_buffer_reader(data)
        for _heap in stream:
            received += 1
        times.append(time.perf_counter() - start)
        stream.stop()
        if received != params["heaps"]:
            raise SystemExit(f"expected {params['heaps']} heaps, got {received}")
    return summarise(params, times, peak.figures())


def run(ctx: Any) -> list[Any]:
    """Harness side: rows 1 (GB/s) and 7a (peak memory growth)."""
    from _harness import error_rows, figure_row

    params = {"heaps": 32, "passes": 1} if ctx.quick else {}
    merged = {**DEFAULTS, **params}
    try:
        results = ctx.measure_alternating("decode_large.py", params, timeout=300)
    except Exception as error:  # one failed workload must not end the run
        return error_rows("1", "decode 1 MiB heaps from memory", error)
    rows = [figure_row("1", "decode 1 MiB heaps from memory (9000 B packets)", "GB/s", results,
                       "gbps", target=0.3)]
    try:
        wide = ctx.measure_alternating("decode_large.py", {**params, "ring_heaps": 16}, timeout=300)
        rows.append(figure_row("1b", "decode 1 MiB heaps from memory (9000 B packets, ring 16)",
                               "GB/s", wide, "gbps", target=0.5))
    except Exception as error:  # one failed workload must not end the run
        rows += error_rows("1b", "decode 1 MiB heaps from memory (ring 16)", error)
    memory = figure_row("7a", "peak RSS growth, decode from memory (1)", "MiB", results,
                        "rss_growth_mib")
    memory.higher_is_better = False
    memory.limit = (merged["max_heaps"] + merged["ring_heaps"]) * merged["heap_size"] / 2**20 \
        + RSS_CONSTANT_MIB
    memory.note = (f"bound (max_heaps {merged['max_heaps']} + ring {merged['ring_heaps']}) × 1 MiB "
                   f"+ {RSS_CONSTANT_MIB:.0f} MiB; {merged['heaps']} heaps per pass")
    rows.append(memory)
    return rows


if __name__ == "__main__":
    _common.worker_main(measure)
