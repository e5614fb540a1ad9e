"""Workload 2: decode 8 KiB single-packet heaps from memory, plain and with ItemGroup.update.

The worker encodes a descriptor heap and ``heaps`` heaps of one 8 KiB uint8
item in 9000-byte packets (one packet per heap), then, ``passes`` times,
receives them through a fresh ``recv.Stream`` fed by ``add_buffer_reader``;
with ``update`` every heap also goes through ``ItemGroup.update`` (the first
one installs the descriptor). Reported: heaps/s of the median pass.

Standalone: ``python bench/workloads/decode_small.py --impl ours --params '{"update": true}'``.
"""

from __future__ import annotations

import statistics
import time
from typing import Any

import _common
import decode_large

#: Defaults of the worker's parameters.
DEFAULTS: dict[str, Any] = {
    "heap_size": 8192, "packet_size": 9000, "heaps": 50000, "passes": 3, "update": False,
    "max_heaps": 4, "ring_heaps": 4,
}


def measure(params: dict[str, Any]) -> dict[str, Any]:
    """Run the workload with ``params`` (missing keys take :data:`DEFAULTS`)."""
    import spead2

    params = {**DEFAULTS, **params}
    data = decode_large.encode(params["heaps"], params["heap_size"], params["packet_size"],
                               descriptors=True)
    times = []
    for _ in range(params["passes"]):
        stream = decode_large.make_stream(params)
        group = spead2.ItemGroup()
        received = 0
        start = time.perf_counter()
        stream.add_buffer_reader(data)
        if params["update"]:
            for heap in stream:
                group.update(heap)
                received += 1
        else:
            for _heap in stream:
                received += 1
        times.append(time.perf_counter() - start)
        stream.stop()
        if received != params["heaps"] + 1:
            raise SystemExit(f"expected {params['heaps'] + 1} heaps, got {received}")
    return {
        "heaps_per_s": (params["heaps"] + 1) / statistics.median(times),
        "pass_heaps_per_s": [(params["heaps"] + 1) / t for t in times],
    }


def run(ctx: Any) -> list[Any]:
    """Harness side: rows 2a (plain) and 2b (with ItemGroup.update), ring of 4 heaps;
    2c and 2d the same with a ring of 16 heaps."""
    from _harness import error_rows, figure_row

    base = {"heaps": 3000, "passes": 1} if ctx.quick else {}
    rows = []
    for number, update, ring, target in (
        ("2a", False, 4, None), ("2b", True, 4, 1.0), ("2c", False, 16, 0.6), ("2d", True, 16, 1.5),
    ):
        name = "decode 8 KiB heaps from memory" + (", with ItemGroup.update" if update else "")
        if ring != 4:
            name += f" (ring {ring})"
        try:
            results = ctx.measure_alternating(
                "decode_small.py", {**base, "update": update, "ring_heaps": ring}, timeout=300
            )
        except Exception as error:  # one failed workload must not end the run
            rows += error_rows(number, name, error)
            continue
        rows.append(figure_row(number, name, "heaps/s", results, "heaps_per_s", target=target))
    return rows


if __name__ == "__main__":
    _common.worker_main(measure)
