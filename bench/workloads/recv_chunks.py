"""Workload 8: ``ChunkRingStream`` from memory, 8 KiB heaps, 64 heaps per chunk, numba place (8b: vectorised).

The stream of ``bench/recv_chunks.py`` (a digitiser-like stream: a timestamp
immediate in every packet, 8 KiB heaps in 9000-byte packets) is received from
memory with ``add_buffer_reader`` into chunks of 64 heaps placed by a numba
``cfunc`` (a ``scipy.LowLevelCallable``); the consumer recycles each chunk
straight back to the free ring. Row 8b: the same with our vectorised place
(``spead2.recv.BatchPlace``, the same arithmetic in numpy), against the
reference's numba place. Reported: heaps/s. An interpreter without
numba and scipy reports no figure (``skipped``).

Standalone: ``python bench/workloads/recv_chunks.py --impl ours --params '{"heaps": 2000}'``.
"""

from __future__ import annotations

import os
import statistics
import sys
from typing import Any

import _common

#: Defaults of the worker's parameters.
DEFAULTS: dict[str, Any] = {
    "heap_size": 8192, "packet_size": 9000, "heaps": 20000, "heaps_per_chunk": 64, "passes": 3,
}


def measure(params: dict[str, Any]) -> dict[str, Any]:
    """Run the workload with ``params`` (missing keys take :data:`DEFAULTS`).

    Passes with the numba place and, where ``spead2.recv.BatchPlace`` exists
    (ours), with the vectorised place alternate.
    """
    params = {**DEFAULTS, **params}
    try:
        import numba  # noqa: F401
        import scipy  # noqa: F401
    except ImportError as error:
        return {"skipped": f"no numba/scipy in this interpreter ({error.name})"}
    import spead2
    import spead2.recv

    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    import recv_chunks

    pool = spead2.ThreadPool()
    data = recv_chunks.encode(pool, params["heaps"], params["heap_size"], params["packet_size"])
    places = {"numba": recv_chunks.numba_place(params["heap_size"], params["heaps_per_chunk"])}
    if hasattr(spead2.recv, "BatchPlace"):
        places["batch"] = recv_chunks.batch_place(params["heap_size"], params["heaps_per_chunk"])
    times: dict[str, list[float]] = {kind: [] for kind in places}
    for _ in range(params["passes"]):
        for kind, place in places.items():
            times[kind].append(recv_chunks.run_chunks(
                pool, data, params["heaps"], params["heap_size"], params["heaps_per_chunk"], place))
    pool.stop()
    result: dict[str, Any] = {
        "heaps_per_s": params["heaps"] / statistics.median(times["numba"]),
        "pass_heaps_per_s": [params["heaps"] / t for t in times["numba"]],
    }
    if "batch" in times:
        result["batch_heaps_per_s"] = params["heaps"] / statistics.median(times["batch"])
    return result


def run(ctx: Any) -> list[Any]:
    """Harness side: rows 8 (numba place) and 8b (ours: vectorised place; reference: numba), heaps/s."""
    from _harness import error_rows, figure_row

    name = "ChunkRingStream from memory, 8 KiB heaps, 64 per chunk, numba place"
    name_b = "the same, our vectorised place (BatchPlace) against the reference's numba place"
    params = {"heaps": 2000, "passes": 1} if ctx.quick else {}
    try:
        results = ctx.measure_alternating("recv_chunks.py", params, timeout=300)
    except Exception as error:  # one failed workload must not end the run
        return error_rows("8", name, error)
    skipped = sorted({r["skipped"] for rs in results.values() for r in rs if "skipped" in r})
    # Row 8b: each implementation's fastest place (ours vectorised, the reference's numba).
    vectorised = {
        "ours": [{"v": r["batch_heaps_per_s"]} for r in results.get("ours", []) if "batch_heaps_per_s" in r],
        "reference": [{"v": r["heaps_per_s"]} for r in results.get("reference", []) if "heaps_per_s" in r],
    }
    return [
        figure_row("8", name, "heaps/s", results, "heaps_per_s", target=0.5,
                   note="; ".join(skipped)),
        figure_row("8b", name_b, "heaps/s", vectorised, "v", target=0.5, note="; ".join(skipped)),
    ]


if __name__ == "__main__":
    _common.worker_main(measure)
