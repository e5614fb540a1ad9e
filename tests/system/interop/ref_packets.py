"""Peer script run by the *reference* spead2's Python: print the packets it makes for given heaps.

Runs under a separate interpreter that has the reference spead2 4.5.1 (see
``tests/system/test_reference_bytes.py``); uses only spead2's public API.

stdin: JSON ``{"heaps": [spec, ...]}``; each spec::

    {"flavour": [4, 64, 40, 0], "max_packet_size": 1472, "repeat_pointers": false,
     "cnt": 1,
     "items": [{"id": 4096, "name": "x", "description": "", "shape": [3],
                "dtype": ">i2" | null, "order": "C", "format": [["u", 8]] | null,
                "value": <nested lists / number / string>}],
     "ops": [["descriptor", 0], ["item", 0], ["start"], ["end"]]}

A value given as ``{"hex": "..."}`` is ``bytes``. Lists at depth
``len(shape)`` of a multi-field format item become tuples (one per element).

stdout: JSON list, per heap either ``{"packets": [hex, ...]}`` or
``{"error": [exception type name, message]}``.
"""

from __future__ import annotations

import json
import sys
from typing import Any


def build_value(spec: dict[str, Any]) -> Any:
    """The item value described by ``spec`` (shared with the test side)."""
    import numpy as np

    value = spec["value"]
    if isinstance(value, dict):
        return bytes.fromhex(value["hex"])
    if spec.get("dtype") is not None:
        return np.array(value, dtype=spec["dtype"], order=spec.get("order", "C"))
    fmt = spec.get("format") or []
    if len(fmt) > 1:
        depth = len(spec["shape"])

        def convert(v: Any, level: int) -> Any:
            if level == depth:
                return tuple(v)
            return [convert(x, level + 1) for x in v]

        return convert(value, 0)
    return value


def build_item(spead2: Any, spec: dict[str, Any]) -> Any:
    """An ``Item`` of the given spead2 module (reference or ours) for ``spec``."""
    fmt = spec.get("format")
    return spead2.Item(
        spec["id"],
        spec["name"],
        spec["description"],
        tuple(spec["shape"]),
        dtype=spec.get("dtype"),
        order=spec.get("order", "C"),
        format=None if fmt is None else [(code, bits) for code, bits in fmt],
        value=build_value(spec),
    )


def build_heap(spead2: Any, heap_class: Any, spec: dict[str, Any]) -> Any:
    """A send heap of ``heap_class`` filled as ``spec["ops"]`` says."""
    heap = heap_class(spead2.Flavour(*spec["flavour"]))
    heap.repeat_pointers = spec.get("repeat_pointers", False)
    items = [build_item(spead2, item) for item in spec["items"]]
    for op in spec["ops"]:
        if op[0] == "descriptor":
            heap.add_descriptor(items[op[1]])
        elif op[0] == "item":
            heap.add_item(items[op[1]])
        elif op[0] == "start":
            heap.add_start()
        elif op[0] == "end":
            heap.add_end()
        else:
            raise ValueError(f"unknown op {op!r}")
    return heap


def main() -> None:
    import spead2
    import spead2.send

    request = json.load(sys.stdin)
    results = []
    for spec in request["heaps"]:
        try:
            heap = build_heap(spead2, spead2.send.Heap, spec)
            packets = spead2.send.PacketGenerator(heap, spec["cnt"], spec["max_packet_size"])
            results.append({"packets": [packet.hex() for packet in packets]})
        except Exception as exc:  # report any failure back to the test
            results.append({"error": [type(exc).__name__, str(exc)]})
    json.dump(results, sys.stdout)


if __name__ == "__main__":
    main()
