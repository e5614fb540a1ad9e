"""Interop over bytes: ``BytesStream`` output read by ``add_buffer_reader``, both directions.

Every scenario of :func:`interop_scenarios.buffer_scenarios` (all item kinds,
flavours SPEAD-64-40/48/32 and the PySPEAD 0.5.2 bug-compat flavour,
descriptors once or re-issued, descriptor replacement, start and stop heaps,
ROUND_ROBIN groups, receive substreams, incomplete heaps) is sent by one
implementation and received by the other, and checked against what was sent
and against the reference talking to itself. Our ``BytesStream`` output must
also equal the reference's byte for byte.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import interop_check
import interop_peer as peer
import interop_run
import pytest
from interop_scenarios import Scenario, buffer_scenarios

import spead2

pytestmark = pytest.mark.interop

SCENARIOS = buffer_scenarios()


def _buffer_receiver(scenario: Scenario, hex_bytes: str, **extra: Any) -> dict[str, Any]:
    return scenario.receiver([{"kind": "buffer", "hex": hex_bytes}], **extra)


@pytest.fixture(scope="module")
def baselines(reference_python: str) -> dict[str, dict[str, Any]]:
    """The reference sending to itself: its bytes and what its receiver reports."""
    request = {
        "scenarios": [
            {"send": s.sender("bytes"), "recv": s.receiver([])} for s in SCENARIOS.values()
        ]
    }
    results = interop_run.run_peer(reference_python, "ref_loopback.py", request)
    return dict(zip(SCENARIOS, results, strict=True))


@pytest.fixture(scope="module")
def ours_sent() -> dict[str, dict[str, Any]]:
    """Our BytesStream output (or raw packets) for every scenario."""
    return {name: interop_run.our_send(s.sender("bytes")) for name, s in SCENARIOS.items()}


@pytest.fixture(scope="module")
def reference_reads_ours(
    reference_python: str, ours_sent: dict[str, dict[str, Any]]
) -> dict[str, dict[str, Any]]:
    """The reference's receiver reports for our bytes, one batch for all scenarios."""
    request = {
        "batch": [_buffer_receiver(s, ours_sent[name]["hex"]) for name, s in SCENARIOS.items()]
    }
    results = interop_run.run_peer(reference_python, "ref_receiver.py", request)
    return dict(zip(SCENARIOS, results, strict=True))


def _baseline(baselines: dict[str, dict[str, Any]], name: str) -> dict[str, Any]:
    result = baselines[name]
    assert "send_error" not in result, result.get("send_error")
    return result


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_reference_to_ours(name: str, baselines: dict[str, dict[str, Any]]) -> None:
    scenario = SCENARIOS[name]
    baseline = _baseline(baselines, name)
    recv_spec = _buffer_receiver(scenario, baseline["send"]["hex"])
    report = peer.receive(spead2, recv_spec)
    interop_check.check(
        report, scenario.sender("bytes"), recv_spec, baseline["send"], baseline["recv"]
    )


@pytest.mark.parametrize("name", ["kinds-64-40", "round-robin", "incomplete"])
def test_reference_to_ours_asyncio(name: str, baselines: dict[str, dict[str, Any]]) -> None:
    """The same through ``spead2.recv.asyncio.Stream``."""
    scenario = SCENARIOS[name]
    baseline = _baseline(baselines, name)
    recv_spec = _buffer_receiver(scenario, baseline["send"]["hex"], asyncio=True)
    report = peer.receive(spead2, recv_spec)
    interop_check.check(
        report, scenario.sender("bytes"), recv_spec, baseline["send"], baseline["recv"]
    )


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_ours_to_reference(
    name: str,
    ours_sent: dict[str, dict[str, Any]],
    reference_reads_ours: dict[str, dict[str, Any]],
    baselines: dict[str, dict[str, Any]],
) -> None:
    scenario = SCENARIOS[name]
    baseline = _baseline(baselines, name)
    recv_spec = _buffer_receiver(scenario, ours_sent[name]["hex"])
    interop_check.check(
        reference_reads_ours[name],
        scenario.sender("bytes"),
        recv_spec,
        ours_sent[name],
        baseline["recv"],
    )


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_same_bytes_as_reference(
    name: str, ours_sent: dict[str, dict[str, Any]], baselines: dict[str, dict[str, Any]]
) -> None:
    """Our ``BytesStream`` (or ``PacketGenerator``) bytes equal the reference's."""
    baseline = _baseline(baselines, name)
    assert ours_sent[name]["hex"] == baseline["send"]["hex"]
    assert ours_sent[name]["bytes_sent"] == baseline["send"]["bytes_sent"]
    assert ours_sent[name].get("heaps") == baseline["send"].get("heaps")


def test_scenarios_exercise_what_they_claim(baselines: dict[str, dict[str, Any]]) -> None:
    """Guards against scenarios that silently stop testing their point."""
    incomplete = baselines["incomplete"]["send"]["heaps"]
    assert [len(h["kept"]) < h["n_packets"] for h in incomplete] == [True, True, False, True, False]
    assert all(h["n_packets"] > 5 for h in incomplete[:4])
    # Round-robin: packets of the grouped heaps are interleaved on the wire.
    data = bytes.fromhex(baselines["round-robin"]["send"]["hex"])
    cnts = [fields[peer.HEAP_CNT_ID] for fields in _packet_fields(data)]
    assert cnts[:3] == [1, 2, 3]
    # Receive substreams matter: with one substream of max_heaps=2, the four
    # interleaved heaps evict each other.
    spec = _buffer_receiver(
        SCENARIOS["recv-substreams"], baselines["recv-substreams"]["send"]["hex"]
    )
    spec["substreams"] = 1
    kinds = [h["kind"] for h in peer.receive(spead2, spec)["heaps"]]
    assert "incomplete" in kinds
    # The PySPEAD flavour really is in use on the wire.
    report = baselines["kinds-64-40-pyspead"]["recv"]
    assert {tuple(h["flavour"]) for h in report["heaps"]} == {(4, 64, 40, 7)}


def _packet_fields(data: bytes) -> list[dict[int, int]]:
    out = []
    offset = 0
    while offset < len(data):
        n_items = int.from_bytes(data[offset + 6 : offset + 8], "big")
        fields = peer.packet_fields(data[offset:])
        out.append(fields)
        offset += 8 + 8 * n_items + fields[peer.PAYLOAD_LENGTH_ID]
    return out


@pytest.mark.parametrize("direction", ["reference-to-ours", "ours-to-reference"])
def test_bytes_through_a_file(
    direction: str,
    reference_python: str,
    tmp_path: Path,
    baselines: dict[str, dict[str, Any]],
) -> None:
    """The peers' file mode: BytesStream output written to a file, read back from it."""
    scenario = SCENARIOS["kinds-64-48"]
    path = tmp_path / "stream.spead"
    send_spec = scenario.sender("bytes", path=str(path))
    recv_spec = scenario.receiver([{"kind": "buffer", "path": str(path)}])
    if direction == "reference-to-ours":
        sent = interop_run.ref_send(reference_python, send_spec)
        report = peer.receive(spead2, recv_spec)
    else:
        sent = interop_run.our_send(send_spec)
        report = interop_run.run_peer(reference_python, "ref_receiver.py", {"batch": [recv_spec]})[
            0
        ]
    assert "hex" not in sent and path.stat().st_size == sent["bytes_sent"]
    interop_check.check(report, send_spec, recv_spec, sent, baselines["kinds-64-48"]["recv"])
