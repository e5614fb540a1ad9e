"""The heaps the interop tests send, as JSON-able specs (see ``interop_peer``).

A :class:`Scenario` is a sender spec without a transport plus the receiver
options without readers; the tests add the transport (bytes, UDP, TCP, …).
Values change from heap to heap so that every heap's values are checked.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

FLAVOURS: dict[str, list[int]] = {
    "64-40": [4, 64, 40, 0],
    "64-48": [4, 64, 48, 0],
    "64-32": [4, 64, 32, 0],
    "64-40-pyspead": [4, 64, 40, 7],
    "64-48-pyspead": [4, 64, 48, 7],
}


@dataclass
class Scenario:
    """Heaps to send and how the receiver is configured."""

    name: str
    send: dict[str, Any]
    recv: dict[str, Any] = field(default_factory=dict)

    def sender(self, transport: str, **extra: Any) -> dict[str, Any]:
        """The sender spec for a transport (a deep copy)."""
        return dict(copy.deepcopy(self.send), transport=transport, **extra)

    def receiver(self, readers: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
        """The receiver spec with the given readers (a deep copy)."""
        return dict(copy.deepcopy(self.recv), readers=readers, **extra)


def _item(
    id: int, name: str, description: str, shape: list[Any], value: Any, **kind: Any
) -> dict[str, Any]:
    return {
        "id": id,
        "name": name,
        "description": description,
        "shape": shape,
        "value": value,
        **kind,
    }


def kinds_items(k: int, heap_address_bits: int, big: int = 3000) -> list[dict[str, Any]]:
    """One item of every kind, with values depending on ``k``.

    Immediate "fast path" widths (u24/u40/u48 scalars) are included only
    where they fit in an item pointer: addressed, the reference decodes them
    wrongly (see :func:`addressed_fastpath`).
    """
    items = [
        _item(0x1000, "be_i2", "big-endian int16", [3], [1 + k, -2, 300], dtype=">i2"),
        _item(0x1001, "le_u4", "little-endian uint32", [2, 2], [[1, 2], [3, 4 + k]], dtype="<u4"),
        _item(
            0x1002,
            "fortran_f8",
            "Fortran-order float64",
            [2, 3],
            [[0.5, 1.25, -2.0], [3.0, 4.75, float(k)]],
            dtype="<f8",
            order="F",
        ),
        _item(
            0x1003,
            "fortran_be_f4",
            "Fortran-order big-endian float32",
            [3, 2],
            [[1.5, -0.25], [2.0, 3.0], [-4.5, float(k)]],
            dtype=">f4",
            order="F",
        ),
        _item(
            0x1004,
            "struct",
            "structured dtype with a sub-array",
            [2],
            [[1 + k, 0.5, [1, -1]], [2, -0.25, [3, 4]]],
            dtype=[["a", "<u2"], ["b", ">f4"], ["c", "i1", [2]]],
        ),
        _item(0x1005, "scalar_i8", "little-endian int64 scalar", [], -5 - k, dtype="<i8"),
        _item(0x1006, "scalar_be_f8", "big-endian float64 scalar", [], 2.5 + k, dtype=">f8"),
        _item(0x1007, "u8_imm", "uint8 scalar (immediate)", [], 200 + k, dtype="u1"),
        _item(0x1008, "bools", "numpy bools", [3], [True, False, k % 2 == 0], dtype="?"),
        _item(0x101C, "le_i2_imm", "little-endian int16 scalar", [], -300 - k, dtype="<i2"),
        _item(0x101D, "be_u4_imm", "big-endian uint32 scalar", [], 0xDEADBEEF - k, dtype=">u4"),
        _item(0x101E, "tiny", "2-element little-endian array", [2], [1, 65535 - k], dtype="<u2"),
        _item(0x1009, "u16s", "format u16", [4], [0, 1, 65535, k], format=[["u", 16]]),
        _item(
            0x100A,
            "i12",
            "format i12 (not byte-aligned)",
            [5],
            [-2048, 2047, 0, -1, k],
            format=[["i", 12]],
        ),
        _item(
            0x100B,
            "u5",
            "format u5 matrix (30 bits)",
            [2, 3],
            [[0, 31, 1], [2, 3, k % 32]],
            format=[["u", 5]],
        ),
        _item(
            0x100C,
            "packed",
            "format u4,i3,b1 records",
            [3],
            [[15, -4, True], [0, 3, False], [k % 16, -1, True]],
            format=[["u", 4], ["i", 3], ["b", 1]],
        ),
        _item(
            0x100D,
            "pairs",
            "format u8,i16 records",
            [2],
            [[1, -2], [255, 32767 - k]],
            format=[["u", 8], ["i", 16]],
        ),
        _item(
            0x100E,
            "text",
            "variable-length string",
            [None],
            "hello spead " * (k + 1),
            format=[["c", 8]],
        ),
        _item(
            0x100F,
            "fixed_text",
            "fixed-length string",
            [5],
            "abcd" + "xyz"[k % 3],
            format=[["c", 8]],
        ),
        _item(
            0x1010,
            "var_u16",
            "variable first dimension",
            [None, 2],
            [[i, 2 * i + k] for i in range(k + 2)],
            format=[["u", 16]],
        ),
        _item(
            0x1011,
            "var_i12",
            "variable last dimension, i12",
            [3, None],
            [[j - i * 5 for j in range(k + 1)] for i in range(3)],
            format=[["i", 12]],
        ),
        _item(0x1012, "u32_imm", "format u32 scalar", [], 4000000000 + k, format=[["u", 32]]),
        _item(0x1013, "flag", "format b8 scalar", [], k % 2 == 1, format=[["b", 8]]),
        _item(0x1014, "f32", "format f32 scalar", [], -1.5 - k, format=[["f", 32]]),
        _item(
            0x1015, "f64s", "format f64 array", [3], [1e300, -0.0, 0.125 * k], format=[["f", 64]]
        ),
        _item(0x1016, "i24", "format i24 scalar", [], 12345 + k, format=[["i", 24]]),
        _item(0x1017, "u24", "format u24 scalar", [], 0xABCDEF - k, format=[["u", 24]]),
        _item(0x1018, "i7s", "format i7 array", [4], [-64, 63, 0, -k], format=[["i", 7]]),
        _item(
            0x1019,
            "big",
            "multi-packet uint16 array",
            [big],
            [(i * 7 + k) % 65536 for i in range(big)],
            dtype="<u2",
        ),
    ]
    if heap_address_bits >= 40:
        items.append(
            _item(0x101A, "ts", "format u40 timestamp", [], 2**40 - 1 - k, format=[["u", 40]])
        )
    if heap_address_bits >= 48:
        items.append(_item(0x101B, "u48", "format u48 scalar", [], 2**47 + k, format=[["u", 48]]))
    return items


def descriptors_and_items(n: int) -> list[list[Any]]:
    """Ops adding the descriptor and then the value of each of ``n`` items."""
    ops: list[list[Any]] = []
    for i in range(n):
        ops += [["descriptor", i], ["item", i]]
    return ops


START: dict[str, Any] = {"items": [], "ops": [["start"]]}
END: dict[str, Any] = {"items": [], "ops": [["end"]]}


def kinds(
    flavour: str = "64-40",
    n_heaps: int = 3,
    max_packet_size: int = 1472,
    big: int = 3000,
    name: str | None = None,
) -> Scenario:
    """A start heap, ``n_heaps`` heaps with every item kind, a stop heap.

    Descriptors are re-issued in every heap.
    """
    spec = FLAVOURS[flavour]
    heaps = [copy.deepcopy(START)]
    for k in range(n_heaps):
        items = kinds_items(k, spec[2], big)
        heaps.append({"items": items, "ops": descriptors_and_items(len(items))})
    heaps.append(copy.deepcopy(END))
    return Scenario(
        name or f"kinds-{flavour}",
        {"flavour": spec, "max_packet_size": max_packet_size, "heaps": heaps},
        {"bug_compat": spec[3]},
    )


def descriptors_once() -> Scenario:
    """Descriptors only in the first heap; later heaps carry values only."""
    items = kinds_items(0, 40)
    heaps = [{"items": items, "ops": [["descriptor", i] for i in range(len(items))]}]
    for k in range(1, 4):
        items = kinds_items(k, 40)
        heaps.append({"items": items, "ops": [["item", i] for i in range(len(items))]})
    heaps.append(copy.deepcopy(END))
    return Scenario("descriptors-once", {"flavour": FLAVOURS["64-40"], "heaps": heaps})


def descriptor_change() -> Scenario:
    """Items re-described mid-stream with other shapes, types and texts (replacement)."""
    first = [
        _item(0x1100, "a", "first a", [3], [1, 2, 3], dtype=">i2"),
        _item(0x1101, "b", "first b", [None], "text", format=[["c", 8]]),
        _item(0x1102, "c", "unchanged", [2], [7, 8], format=[["u", 8]]),
    ]
    second = [
        _item(0x1100, "a", "second a", [2, 2], [[1.5, 2.5], [3.5, 4.5]], dtype="<f4", order="F"),
        # Same ID, new name: both the old "b" and any "b2" go.
        _item(0x1101, "b2", "renamed b", [2], [-1, 1], format=[["i", 12]]),
        _item(0x1102, "c", "unchanged", [2], [9, 10], format=[["u", 8]]),
    ]
    heaps = [
        {"items": first, "ops": descriptors_and_items(3)},
        {"items": copy.deepcopy(first), "ops": descriptors_and_items(3)},
        {"items": second, "ops": descriptors_and_items(3)},
        {"items": copy.deepcopy(second), "ops": descriptors_and_items(3)},
        copy.deepcopy(END),
    ]
    return Scenario("descriptor-change", {"flavour": FLAVOURS["64-40"], "heaps": heaps})


def _big_heap(k: int, size: int, flavour_bits: int = 40) -> dict[str, Any]:
    items = [
        _item(0x1200, "seq", "heap sequence", [], k, format=[["u", flavour_bits]]),
        _item(0x1201, "payload", "bytes", [size], [(i + k) % 256 for i in range(size)], dtype="u1"),
        _item(0x1202, "label", "label", [None], f"heap {k}", format=[["c", 8]]),
    ]
    return {"items": items, "ops": descriptors_and_items(len(items))}


def round_robin() -> Scenario:
    """``send_heaps`` groups: three heaps interleaved ROUND_ROBIN, then a single heap."""
    heaps = [_big_heap(k, size) for k, size in enumerate([5000, 9000, 3000, 100])]
    heaps.append(copy.deepcopy(END))
    return Scenario(
        "round-robin",
        {
            "flavour": FLAVOURS["64-40"],
            "heaps": heaps,
            "schedule": [[0, 1, 2], [3], 4],
            "group_mode": "round_robin",
        },
    )


def recv_substreams() -> Scenario:
    """Four interleaved heaps; the receiver has 2 substreams of ``max_heaps=2``.

    With one substream of 2 heaps the interleaving would evict heaps; split by
    cnt parity over two substreams every heap completes.
    """
    heaps = [_big_heap(k, 4000 + 1000 * k) for k in range(4)]
    heaps.append(copy.deepcopy(END))
    return Scenario(
        "recv-substreams",
        {
            "flavour": FLAVOURS["64-40"],
            "heaps": heaps,
            "schedule": [[0, 1, 2, 3], 4],
            "group_mode": "round_robin",
        },
        {"substreams": 2, "max_heaps": 2},
    )


def send_substreams() -> Scenario:
    """Heaps to two substreams (two endpoints), singly and in a ROUND_ROBIN group.

    The receiver has one UDP reader per endpoint and ``substreams=2``; every
    substream ends with its own stop heap, delivered because
    ``stop_on_stop_item=False`` (two sockets give no order between them).
    """
    heaps = [_big_heap(k, 2000 + 500 * k) for k in range(6)]
    for k, heap in enumerate(heaps):
        heap["substream"] = k % 2
    heaps.append(dict(copy.deepcopy(END), substream=0))
    heaps.append(dict(copy.deepcopy(END), substream=1))
    return Scenario(
        "send-substreams",
        {
            "flavour": FLAVOURS["64-40"],
            "heaps": heaps,
            "schedule": [0, 1, [2, 3, 4, 5], 6, 7],
            "group_mode": "round_robin",
        },
        {"substreams": 2, "stop_on_stop_item": False, "expect_end_heaps": 2},
    )


def incomplete() -> Scenario:
    """Raw packets with some dropped on purpose; incomplete heaps are delivered.

    Heap cnt 1 loses two middle packets, cnt 2 its first packet (item
    pointers and all), cnt 3 nothing, cnt 4 its last packet. The packets of
    cnts 1 and 3 are sent backwards (the receiver allows out-of-order packets).
    """
    heaps = []
    for k, drop in enumerate([[3, 4], [0], [], [-1]]):
        heap = _big_heap(k, 20000)
        heap["drop"] = drop
        heap["reverse"] = k % 2 == 0
        heaps.append(heap)
    heaps.append(copy.deepcopy(END))
    return Scenario(
        "incomplete",
        {"flavour": FLAVOURS["64-40"], "heaps": heaps, "mode": "raw"},
        {"allow_out_of_order": True, "contiguous_only": False, "keep_ranges": True, "max_heaps": 8},
    )


def addressed_fastpath() -> Scenario:
    """u40/i48 scalars in SPEAD-64-32, where they do not fit in a pointer: addressed.

    docs/differences.md ("Addressed fast-path items") says the reference
    decodes these from ``RawItem.immediate_value``; observed with the 4.5.1
    wheel, its receiver decodes them correctly, and so must ours.
    """
    items = [
        _item(0x1300, "u40", "addressed u40", [], 0x0102030405, format=[["u", 40]]),
        _item(0x1301, "i48", "addressed i48", [], 123456789, format=[["i", 48]]),
        _item(0x1302, "u24", "immediate u24", [], 0x0A0B0C, format=[["u", 24]]),
    ]
    heaps = [{"items": items, "ops": descriptors_and_items(3)}, copy.deepcopy(END)]
    return Scenario("addressed-fastpath", {"flavour": FLAVOURS["64-32"], "heaps": heaps})


def negative_i24() -> Scenario:
    """Negative values of fast-path signed widths (i24, i40).

    The reference's *sender* raises OverflowError for them under numpy 2; we
    send the two's complement (docs/differences.md, "Negative values on the
    immediate fast path"), which the reference's receiver decodes correctly.
    """
    items = [
        _item(0x1400, "i24", "negative i24", [], -5, format=[["i", 24]]),
        _item(0x1401, "i40", "negative i40", [], -(2**39), format=[["i", 40]]),
    ]
    heaps = [{"items": items, "ops": descriptors_and_items(2)}, copy.deepcopy(END)]
    return Scenario("negative-fastpath", {"flavour": FLAVOURS["64-40"], "heaps": heaps})


def buffer_scenarios() -> dict[str, Scenario]:
    """Everything exercised over BytesStream bytes and ``add_buffer_reader``."""
    scenarios = [kinds(flavour) for flavour in FLAVOURS]
    scenarios += [
        kinds("64-40", max_packet_size=9000, big=12000, name="kinds-64-40-9000"),
        descriptors_once(),
        descriptor_change(),
        round_robin(),
        recv_substreams(),
        incomplete(),
        addressed_fastpath(),
    ]
    return {s.name: s for s in scenarios}


def stop_with_data() -> Scenario:
    """The stop item rides in the first packet of a multi-packet heap.

    Documented difference ("The stop heap is always discarded"): we never
    deliver the stop heap; the reference flushes it as an incomplete heap.
    """
    small = [_item(0x1500, "x", "small", [], 3, format=[["u", 8]])]
    big = [_item(0x1501, "big", "5000 bytes", [5000], [i % 256 for i in range(5000)], dtype="u1")]
    heaps = [
        {"items": small, "ops": descriptors_and_items(1)},
        {"items": big, "ops": [*descriptors_and_items(1), ["end"]]},
    ]
    return Scenario("stop-with-data", {"flavour": FLAVOURS["64-40"], "heaps": heaps})


def zero_length() -> Scenario:
    """Values with no elements or no bytes: (0,), "" and, for contrast, a normal scalar.

    Documented difference ("Zero-element values decode"): the reference's
    receiver fails on the (0,) immediate ("cannot reshape array of size 5
    into shape (0,)"), losing the heap; we decode an empty array. An empty
    variable-length string is a zero-length item, invisible on both sides.
    """
    items = [
        _item(0x1600, "empty", "shape (0,)", [0], [], dtype="u1"),
        _item(0x1601, "empty_text", "empty string", [None], "", format=[["c", 8]]),
        _item(0x1602, "x", "scalar", [], 7, format=[["u", 8]]),
    ]
    heaps = [{"items": items, "ops": descriptors_and_items(3)}, copy.deepcopy(END)]
    return Scenario("zero-length", {"flavour": FLAVOURS["64-40"], "heaps": heaps})


def zero_length_nd() -> Scenario:
    """Multi-dimensional values with a zero dimension: (2, 0) and (None, 0)."""
    items = [
        _item(0x1700, "e2", "shape (2, 0)", [2, 0], [[], []], format=[["u", 8]]),
        _item(0x1701, "vz", "shape (None, 0)", [None, 0], [[], [], []], format=[["u", 8]]),
        _item(0x1702, "x", "scalar", [], 7, format=[["u", 8]]),
    ]
    heaps = [{"items": items, "ops": descriptors_and_items(3)}, copy.deepcopy(END)]
    return Scenario("zero-length-nd", {"flavour": FLAVOURS["64-40"], "heaps": heaps})
