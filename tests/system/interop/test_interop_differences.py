"""Interop where we deliberately differ from the reference (docs/differences.md).

Each case crosses the implementations over bytes in both directions and
asserts *our* documented behaviour when we receive, and that the reference
treats our bytes exactly as it treats its own when it receives (the wire
format is the same; only the receivers differ).
"""

from __future__ import annotations

from typing import Any

import interop_check
import interop_peer as peer
import interop_run
import pytest
from interop_scenarios import Scenario, negative_i24, stop_with_data, zero_length, zero_length_nd

import spead2

pytestmark = pytest.mark.interop

SCENARIOS = {s.name: s for s in [stop_with_data(), zero_length(), zero_length_nd(), negative_i24()]}


@pytest.fixture(scope="module")
def baselines(reference_python: str) -> dict[str, dict[str, Any]]:
    request = {
        "scenarios": [
            {"send": s.sender("bytes"), "recv": s.receiver([])} for s in SCENARIOS.values()
        ]
    }
    results = interop_run.run_peer(reference_python, "ref_loopback.py", request)
    return dict(zip(SCENARIOS, results, strict=True))


def _ours_receive(scenario: Scenario, hex_bytes: str) -> dict[str, Any]:
    return peer.receive(spead2, scenario.receiver([{"kind": "buffer", "hex": hex_bytes}]))


def _reference_receive(reference_python: str, scenario: Scenario, hex_bytes: str) -> dict[str, Any]:
    request = {"batch": [scenario.receiver([{"kind": "buffer", "hex": hex_bytes}])]}
    return interop_run.run_peer(reference_python, "ref_receiver.py", request)[0]


def _items(report: dict[str, Any], cnt: int) -> dict[str, Any]:
    (heap,) = [h for h in report["heaps"] if h["cnt"] == cnt]
    assert "error" not in heap, heap["error"]
    return {name: (item["shape"], item["value"]) for name, item in heap["items"].items()}


# -- The stop heap is always discarded --------------------------------------------------


def test_stop_with_data_reference_to_ours(baselines: dict[str, dict[str, Any]]) -> None:
    scenario = SCENARIOS["stop-with-data"]
    baseline = baselines["stop-with-data"]
    report = _ours_receive(scenario, baseline["send"]["hex"])
    # Ours: the heap holding the stop item is never delivered (spec: only cnt 1).
    interop_check.check_against_spec(
        report, scenario.sender("bytes"), scenario.receiver([]), baseline["send"]
    )
    # The reference flushes it as an incomplete heap (the documented difference).
    theirs = {h["cnt"]: h["kind"] for h in baseline["recv"]["heaps"]}
    assert theirs == {1: "heap", 2: "incomplete"}


def test_stop_with_data_ours_to_reference(
    reference_python: str, baselines: dict[str, dict[str, Any]]
) -> None:
    scenario = SCENARIOS["stop-with-data"]
    ours = interop_run.our_send(scenario.sender("bytes"))
    assert ours["hex"] == baselines["stop-with-data"]["send"]["hex"]
    report = _reference_receive(reference_python, scenario, ours["hex"])
    interop_check.check_against_baseline(report, baselines["stop-with-data"]["recv"])
    assert _items(report, 1) == {"x": ([], 3)}


# -- Zero-element values decode ------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("zero-length", {"empty": ([0], []), "x": ([], 7)}),
        ("zero-length-nd", {"e2": ([2, 0], [[], []]), "x": ([], 7)}),
    ],
    ids=["zero-length", "zero-length-nd"],
)
def test_zero_length_reference_to_ours(
    name: str, expected: dict[str, Any], baselines: dict[str, dict[str, Any]]
) -> None:
    baseline = baselines[name]
    report = _ours_receive(SCENARIOS[name], baseline["send"]["hex"])
    # Ours decodes the zero-element immediates; zero-byte addressed values ("" and
    # (None, 0)) are invisible, as in the reference (API.md §8.2).
    assert _items(report, 1) == expected
    # The reference cannot decode them and loses the whole heap.
    (heap,) = baseline["recv"]["heaps"]
    assert heap["error"].startswith("ValueError: cannot reshape array of size 5 into shape")


def test_zero_length_ours_to_reference(
    reference_python: str, baselines: dict[str, dict[str, Any]]
) -> None:
    scenario = SCENARIOS["zero-length"]
    ours = interop_run.our_send(scenario.sender("bytes"))
    assert ours["hex"] == baselines["zero-length"]["send"]["hex"]
    report = _reference_receive(reference_python, scenario, ours["hex"])
    interop_check.check_against_baseline(report, baselines["zero-length"]["recv"])


def test_zero_length_nd_ours_to_reference(
    reference_python: str, baselines: dict[str, dict[str, Any]]
) -> None:
    scenario = SCENARIOS["zero-length-nd"]
    ours = interop_run.our_send(scenario.sender("bytes"))
    assert ours["hex"] == baselines["zero-length-nd"]["send"]["hex"]
    report = _reference_receive(reference_python, scenario, ours["hex"])
    interop_check.check_against_baseline(report, baselines["zero-length-nd"]["recv"])


# -- Negative values on the immediate fast path -------------------------------------------


def test_negative_fastpath_reference_cannot_send(baselines: dict[str, dict[str, Any]]) -> None:
    # The reference's sender raises under numpy 2, so there is nothing for us to
    # receive in this direction (documented difference).
    assert baselines["negative-fastpath"]["send_error"][0] == "OverflowError"


def test_negative_fastpath_ours_to_reference(reference_python: str) -> None:
    # We send the two's complement; the reference's receiver decodes the negative values.
    scenario = SCENARIOS["negative-fastpath"]
    ours = interop_run.our_send(scenario.sender("bytes"))
    report = _reference_receive(reference_python, scenario, ours["hex"])
    interop_check.check_against_spec(report, scenario.sender("bytes"), scenario.receiver([]), ours)
    assert _items(report, 1) == {"i24": ([], -5), "i40": ([], -(2**39))}
