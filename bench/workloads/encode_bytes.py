"""Workload 3: encode heaps into a BytesStream (1 MiB heaps: GB/s; 8 KiB heaps: heaps/s).

The worker builds one heap of a single ``heap_size``-byte uint8 item
(``get_heap(descriptors="none", data="all")``, outside the timing) and sends it
``heaps`` times with ``send_heap`` into ``BytesStream``\\ s of ``packet_size``-byte
packets, a fresh stream every ``batch`` heaps so memory stays bounded. Only
the ``send_heap`` calls are timed. Reported: GB/s of payload and heaps/s of
the median pass.

Standalone: ``python bench/workloads/encode_bytes.py --impl ours --params '{"heap_size": 8192}'``.
"""

from __future__ import annotations

import statistics
import time
from typing import Any

import _common

#: Defaults of the worker's parameters.
DEFAULTS: dict[str, Any] = {
    "heap_size": 1024 * 1024, "packet_size": 9000, "heaps": 256, "batch": 32, "passes": 3,
}


def measure(params: dict[str, Any]) -> dict[str, Any]:
    """Run the workload with ``params`` (missing keys take :data:`DEFAULTS`)."""
    import numpy as np

    import spead2.send

    params = {**DEFAULTS, **params}
    group = spead2.send.ItemGroup()
    group.add_item(0x1000, "data", "payload", (params["heap_size"],), dtype=np.uint8)
    group["data"].value = np.zeros(params["heap_size"], np.uint8)
    heap = group.get_heap(descriptors="none", data="all")
    config = spead2.send.StreamConfig(max_packet_size=params["packet_size"], max_heaps=8)
    pool = _common.thread_pool()
    times = []
    for _ in range(params["passes"]):
        elapsed = 0.0
        left = params["heaps"]
        while left > 0:
            batch = min(left, params["batch"])
            stream = spead2.send.BytesStream(pool, config)
            start = time.perf_counter()
            for _ in range(batch):
                stream.send_heap(heap)
            elapsed += time.perf_counter() - start
            left -= batch
            del stream
        times.append(elapsed)
    size = params["heaps"] * params["heap_size"]
    return {
        "gbps": size / statistics.median(times) / 1e9,
        "heaps_per_s": params["heaps"] / statistics.median(times),
        "pass_heaps_per_s": [params["heaps"] / t for t in times],
    }


def run(ctx: Any) -> list[Any]:
    """Harness side: rows 3a (1 MiB heaps, GB/s) and 3b (8 KiB heaps, heaps/s)."""
    from _harness import error_rows, figure_row

    cases = (
        ("3a", "encode 1 MiB heaps into a BytesStream", "GB/s", "gbps",
         {"heaps": 32, "passes": 1} if ctx.quick else {}),
        ("3b", "encode 8 KiB heaps into a BytesStream", "heaps/s", "heaps_per_s",
         {"heap_size": 8192, "batch": 1000,
          **({"heaps": 3000, "passes": 1} if ctx.quick else {"heaps": 50000})}),
    )
    rows = []
    for number, name, unit, key, params in cases:
        try:
            results = ctx.measure_alternating("encode_bytes.py", params, timeout=300)
        except Exception as error:  # one failed workload must not end the run
            rows += error_rows(number, name, error)
            continue
        rows.append(figure_row(number, name, unit, results, key, target=0.3))
    return rows


if __name__ == "__main__":
    _common.worker_main(measure)
