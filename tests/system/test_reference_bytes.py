"""Byte-for-byte comparison of our packets with the reference spead2 4.5.1's.

The reference runs in its own interpreter, named by the environment variable
``SPEAD2_REFERENCE_PYTHON`` (a Python with spead2 4.5.1 and numpy installed);
``tests/system/interop/ref_packets.py`` is run there and prints its packets. Without
that variable the tests are skipped.

Where the reference has its known padding defect (API.md §8.1: real bytes
right-aligned in the packet that straddles the end of the real payload) we
assert identical headers and pointers, and our documented correct payload.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

import spead2
from spead2.send._heap import Heap, PacketGenerator
from tests.helpers.reference import reference_python

PEER = Path(__file__).parent / "interop" / "ref_packets.py"
_spec = importlib.util.spec_from_file_location("ref_packets", PEER)
assert _spec is not None and _spec.loader is not None
ref_packets = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(ref_packets)


# ---------------------------------------------------------------------------
# The items and heaps compared

ITEMS: dict[str, dict[str, Any]] = {
    "ts": dict(
        id=0x1600,
        name="timestamp",
        description="Sample counter",
        shape=[],
        format=[["u", 40]],
        value=0x0102030405,
    ),
    "samples": dict(
        id=0x1601,
        name="samples",
        description="Raw samples",
        shape=[3],
        dtype=">i2",
        value=[1, -2, 300],
    ),
    "matrix": dict(
        id=0x1602,
        name="matrix",
        description="Fortran floats",
        shape=[2, 3],
        dtype="<f4",
        order="F",
        value=[[1, 2, 3], [4, 5, 6]],
    ),
    "text": dict(
        id=0x1603,
        name="text",
        description="variable string",
        shape=[None],
        format=[["c", 8]],
        value="hello world",
    ),
    "pairs": dict(
        id=0x1604,
        name="pairs",
        description="struct",
        shape=[2],
        format=[["u", 8], ["i", 16]],
        value=[[1, -2], [3, 4]],
    ),
    "i12": dict(
        id=0x1605,
        name="i12",
        description="packed",
        shape=[3],
        format=[["i", 12]],
        value=[-1, 2, 2047],
    ),
    "flag": dict(id=0x1606, name="flag", description="", shape=[], format=[["b", 8]], value=True),
    "u64": dict(id=0x1607, name="u64", description="", shape=[], dtype=">u8", value=2**63 + 5),
    "u48": dict(
        id=0x1608, name="u48", description="", shape=[], format=[["u", 48]], value=0x0A0B0C0D0E0F
    ),
    "big": dict(
        id=0x1609,
        name="big",
        description="",
        shape=[5000],
        dtype="u1",
        value=[i % 251 for i in range(5000)],
    ),
    "var": dict(
        id=0x160A,
        name="var",
        description="",
        shape=[None, 2],
        format=[["u", 16]],
        value=[[1, 2], [3, 4], [5, 6]],
    ),
    "small": dict(id=0x160B, name="small", description="", shape=[2], dtype="u1", value=[9, 8]),
    "twenty": dict(
        id=0x160D, name="twenty", description="", shape=[20], dtype="u1", value=list(range(20))
    ),
    "six": dict(
        id=0x160C,
        name="six",
        description="",
        shape=[6],
        dtype="u1",
        value=[0xA0, 0xA1, 0xA2, 0xA3, 0xA4, 0xA5],
    ),
}
DATA_ITEMS = ["ts", "samples", "matrix", "text", "pairs", "i12", "flag", "u64", "u48", "var"]
FLAVOURS = {
    "40": [4, 64, 40, 0],
    "40bc7": [4, 64, 40, 7],
    "48": [4, 64, 48, 0],
    "48bc7": [4, 64, 48, 7],
    "16": [4, 64, 16, 0],
}


def heap_spec(
    names: list[str],
    ops: list[list[Any]],
    flavour: str = "40",
    mps: int = 1472,
    cnt: int = 1,
    repeat: bool = False,
) -> dict[str, Any]:
    return {
        "flavour": FLAVOURS[flavour],
        "max_packet_size": mps,
        "repeat_pointers": repeat,
        "cnt": cnt,
        "items": [ITEMS[name] for name in names],
        "ops": ops,
    }


def descriptors_and_data(names: list[str]) -> list[list[Any]]:
    ops: list[list[Any]] = []
    for i in range(len(names)):
        ops += [["descriptor", i], ["item", i]]
    return ops


CASES: dict[str, dict[str, Any]] = {}
for _flavour in FLAVOURS:
    for _mps in (1472, 9000, 100):
        CASES[f"all-{_flavour}-{_mps}"] = heap_spec(
            DATA_ITEMS, descriptors_and_data(DATA_ITEMS), _flavour, _mps, cnt=7
        )
    CASES[f"descriptors-only-{_flavour}"] = heap_spec(
        DATA_ITEMS, [["descriptor", i] for i in range(len(DATA_ITEMS))], _flavour, cnt=2
    )
    CASES[f"start-{_flavour}"] = heap_spec([], [["start"]], _flavour, cnt=3)
    CASES[f"stop-{_flavour}"] = heap_spec([], [["end"]], _flavour, cnt=4)
    CASES[f"empty-{_flavour}"] = heap_spec([], [], _flavour, cnt=5)
    CASES[f"big-{_flavour}-1472"] = heap_spec(["big"], [["item", 0]], _flavour, 1472, cnt=6)
    CASES[f"big-{_flavour}-64"] = heap_spec(["big"], [["item", 0]], _flavour, 64, cnt=6)
    CASES[f"big-repeat-{_flavour}"] = heap_spec(
        ["big", "ts", "small"], [["item", 0], ["item", 1], ["item", 2]], _flavour, 100, repeat=True
    )
    CASES[f"immediates-repeat-{_flavour}"] = heap_spec(
        ["ts", "small"], [["item", 0], ["item", 1], ["start"]], _flavour, 100, repeat=True
    )
CASES.update(
    {
        "start-and-stop": heap_spec([], [["start"], ["end"]]),
        "example-13.1": heap_spec(["ts", "samples"], [["item", 0], ["item", 1]]),
        "example-13.5": heap_spec(["twenty"], [["item", 0]], mps=64, cnt=5),
        "data-all-64": heap_spec(DATA_ITEMS, [["item", i] for i in range(len(DATA_ITEMS))], mps=64),
        "descriptors-64": heap_spec(
            ["ts", "samples"], [["descriptor", 0], ["descriptor", 1]], mps=64
        ),
        "repeat-descriptors-9000": heap_spec(
            DATA_ITEMS, descriptors_and_data(DATA_ITEMS), mps=9000, repeat=True
        ),
        "repeat-too-small": heap_spec(
            ["six", "small"], [["item", 0], ["item", 1]], mps=64, repeat=True
        ),
        "mps-101": heap_spec(["big"], [["item", 0]], mps=101),
        "many-immediates-padding-zero-payload": heap_spec(
            ["small"], [["item", 0]] * 20 + [["end"]], mps=64
        ),
        # The reference's padding defect: padded heaps with some real payload.
        "padding-bug-64": heap_spec(["small", "six"], [["item", 0]] * 5 + [["item", 1]], mps=64),
        "padding-bug-63": heap_spec(["six"], [["item", 0]], mps=63),
        "padding-bug-many": heap_spec(
            ["ts", "samples"], [["item", 0]] * 40 + [["item", 1]], mps=100
        ),
    }
)


@pytest.fixture(scope="module")
def reference_output() -> dict[str, dict[str, Any]]:
    python = reference_python()
    request = json.dumps({"heaps": list(CASES.values())})
    completed = subprocess.run(
        [python, "-E", "-s", str(PEER)],
        input=request,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    results = json.loads(completed.stdout)
    return dict(zip(CASES, results, strict=True))


def _ours(spec: dict[str, Any]) -> list[bytes]:
    heap = ref_packets.build_heap(spead2, Heap, spec)
    return list(PacketGenerator(heap, spec["cnt"], spec["max_packet_size"]))


def _real_payload_length(spec: dict[str, Any]) -> int:
    heap = ref_packets.build_heap(spead2, Heap, spec)
    return sum(view.nbytes for _, immediate, view in heap.entries if not immediate)


def _split(packet: bytes) -> tuple[bytes, bytes]:
    n = int.from_bytes(packet[6:8])
    return packet[: 8 + 8 * n], packet[8 + 8 * n :]


@pytest.mark.parametrize("name", list(CASES))
def test_same_bytes_as_reference(name: str, reference_output: dict[str, dict[str, Any]]) -> None:
    spec = CASES[name]
    reference = reference_output[name]
    if "error" in reference:
        kind, message = reference["error"]
        assert kind == "ValueError"
        with pytest.raises(ValueError) as info:
            _ours(spec)
        assert str(info.value).startswith(message)
        return
    expected = [bytes.fromhex(packet) for packet in reference["packets"]]
    ours = _ours(spec)
    real = _real_payload_length(spec)
    heap_length = int.from_bytes(_split(ours[0])[0][16:24]) & ((1 << spec["flavour"][2]) - 1)
    padded_with_data = not spec["repeat_pointers"] and 0 < real < heap_length
    if not padded_with_data:
        assert ours == expected
        return
    # Known reference defect: same headers and pointers, our payload is real bytes then zeros.
    assert name.startswith("padding-bug")
    assert [len(p) for p in ours] == [len(p) for p in expected]
    assert [_split(p)[0] for p in ours] == [_split(p)[0] for p in expected]
    ours_payload = b"".join(_split(p)[1] for p in ours)
    reference_payload = b"".join(_split(p)[1] for p in expected)
    assert ours_payload[real:] == bytes(heap_length - real)
    assert ours_payload != reference_payload  # the defect is still there in the reference
    assert sorted(ours_payload) == sorted(reference_payload)  # same bytes, different places
