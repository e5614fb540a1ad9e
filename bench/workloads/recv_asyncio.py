"""Workload 4: workload 1 through ``spead2.recv.asyncio.Stream`` and ``async for``.

As :mod:`decode_large` (1 MiB heaps in 9000-byte packets from memory with
``add_buffer_reader``), but each pass creates a ``recv.asyncio.Stream`` inside
a running asyncio loop (the default loop, not uvloop, for both
implementations) and consumes it with ``async for``. Reported: payload GB/s.

Standalone: ``python bench/workloads/recv_asyncio.py --impl reference --params '{"heaps": 64}'``.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import _common
import decode_large

#: Defaults of the worker's parameters.
DEFAULTS: dict[str, Any] = dict(decode_large.DEFAULTS)


async def _one_pass(params: dict[str, Any], data: bytes) -> float:
    stream = decode_large.make_stream(params, asyncio=True)
    received = 0
    start = time.perf_counter()
    stream.add_buffer_reader(data)
    async for _heap in stream:
        received += 1
    elapsed = time.perf_counter() - start
    stream.stop()
    if received != params["heaps"]:
        raise SystemExit(f"expected {params['heaps']} heaps, got {received}")
    return elapsed


def measure(params: dict[str, Any]) -> dict[str, Any]:
    """Run the workload with ``params`` (missing keys take :data:`DEFAULTS`)."""
    params = {**DEFAULTS, **params}
    data = decode_large.encode(params["heaps"], params["heap_size"], params["packet_size"])
    peak = _common.PeakMemory()

    async def passes() -> list[float]:
        return [await _one_pass(params, data) for _ in range(params["passes"])]

    times = asyncio.run(passes())
    return decode_large.summarise(params, times, peak.figures())


def run(ctx: Any) -> list[Any]:
    """Harness side: rows 4 (ring of 4 heaps) and 4b (ring of 16), GB/s."""
    from _harness import error_rows, figure_row

    name = "decode 1 MiB heaps from memory, asyncio Stream + async for"
    params = {"heaps": 32, "passes": 1} if ctx.quick else {}
    rows = []
    for number, ring, target in (("4", 4, 1.0), ("4b", 16, 0.5)):
        label = name if ring == 4 else f"{name} (ring {ring})"
        try:
            results = ctx.measure_alternating(
                "recv_asyncio.py", {**params, "ring_heaps": ring}, timeout=300
            )
        except Exception as error:  # one failed workload must not end the run
            rows += error_rows(number, label, error)
            continue
        rows.append(figure_row(number, label, "GB/s", results, "gbps", target=target))
    return rows


if __name__ == "__main__":
    _common.worker_main(measure)
