"""Behaviours existing reference-based code relies on, observed in both implementations.

``ref_compat.py`` runs the same probes under the reference's interpreter and
ours (each in its own process); the findings must agree.
"""

from __future__ import annotations

import sys
from typing import Any

import interop_run
import pytest

pytestmark = pytest.mark.interop


def _both(reference_python: str, probe: str) -> tuple[Any, Any]:
    request = {"probe": probe}
    theirs = interop_run.run_peer(reference_python, "ref_compat.py", request)
    ours = interop_run.run_peer(sys.executable, "ref_compat.py", request)
    return theirs, ours


def test_argument_errors_have_the_reference_types(reference_python: str) -> None:
    """Every audited constructor/method call raises (a subclass of) the reference's type."""
    theirs, ours = _both(reference_python, "arguments")
    assert theirs.keys() == ours.keys()
    wrong = {
        case: (theirs[case][0], ours[case][0])
        for case in theirs
        if theirs[case][0] not in ours[case]  # ours may be a subclass giving more detail
    }
    assert not wrong, wrong
    # The port that does not fit 16 bits: TypeError there, and a ValueError too here.
    assert ours["stream().add_udp_reader(100000)"][:3] == ["ArgumentRangeError", "TypeError", "ValueError"]


def test_back_pressure_stats_after_stop_match(reference_python: str) -> None:
    """10 heaps, ring of 4, nobody consuming, then stop(): the same statistics."""
    theirs, ours = _both(reference_python, "backpressure")
    expected = {
        "stop_fast": True, "heaps": 10, "packets": 10, "worker_blocked": 1, "ring": 4,
        "names": theirs["buffer"]["names"],
    }
    assert len(expected["names"]) == 9
    assert theirs["buffer"] == ours["buffer"] == expected
    # The reference's inproc reader sometimes takes the queue in two batches
    # (then only 5 are in hand); ours takes all that is queued at once.
    assert ours["inproc"] == expected
    assert theirs["inproc"]["worker_blocked"] == 1 and theirs["inproc"]["ring"] == 4


def test_chunk_rejected_heaps_match(reference_python: str) -> None:
    """Place sees descriptor and stop heaps; each it leaves unplaced counts in rejected_heaps."""
    theirs, ours = _both(reference_python, "chunks")
    assert ours == theirs
    assert ours["reject_stop"]["stats"]["rejected_heaps"] == 3  # descriptors, cnt 100, stop
    assert ours["accept_stop"]["stats"]["rejected_heaps"] == 2
