"""Checks of a receiver's report: against what was sent, and against the reference's own.

Two oracles, both applied to every received report:

* the **spec**: the heaps that were sent (cnts, start/stop flags, and for
  every item its ID, name, description, shape, dtype or format, order and
  value; for incomplete heaps the byte ranges that were really sent);
* the **baseline**: what the reference's receiver made of the reference's
  own ``BytesStream`` bytes for the same heaps, compared field for field,
  down to the Python/numpy type of every value and the items' versions.
"""

from __future__ import annotations

from typing import Any

import interop_peer as peer

META = ("id", "name", "description", "shape", "dtype", "order", "format")


def expected_item(spec: dict[str, Any]) -> dict[str, Any]:
    """What a receiver must report for an item spec (descriptor fields and value)."""
    dtype = spec.get("dtype")
    return {
        "id": spec["id"],
        "name": spec["name"],
        "description": spec["description"],
        "shape": list(spec["shape"]),
        "dtype": None if dtype is None else peer.dtype_text(peer.make_dtype(dtype)),
        "order": spec.get("order", "C"),
        "format": spec.get("format"),
        "value": peer.canon(peer.build_value(spec)),
    }


def merge_ranges(kept: list[list[int]]) -> list[list[int]]:
    """Merged ``[start, end)`` ranges of ``[offset, length]`` packets."""
    ranges: list[list[int]] = []
    for start, length in sorted(kept):
        if length == 0:
            continue
        if ranges and start <= ranges[-1][1]:
            ranges[-1][1] = max(ranges[-1][1], start + length)
        else:
            ranges.append([start, start + length])
    return ranges


def expected_heaps(
    send_spec: dict[str, Any], recv_spec: dict[str, Any], sent: dict[str, Any]
) -> dict[int, dict[str, Any]]:
    """The heaps a receiver must deliver, by cnt."""
    cnts = peer.assign_cnts(send_spec)
    raw = {h["cnt"]: h for h in sent.get("heaps", [])}
    stop_on_stop = recv_spec.get("stop_on_stop_item", True)
    expected: dict[int, dict[str, Any]] = {}
    for cnt, heap in zip(cnts, send_spec["heaps"], strict=True):
        ops = heap["ops"]
        end = ["end"] in ops
        if end and stop_on_stop:
            continue  # the stop heap ends the stream and is not delivered
        entry: dict[str, Any] = {"cnt": cnt, "start": ["start"] in ops, "end": end}
        summary = raw.get(cnt)
        if summary is not None and len(summary["kept"]) < summary["n_packets"]:
            kept = summary["kept"]
            entry["kind"] = "incomplete"
            entry["heap_length"] = summary["heap_length"]
            entry["received_length"] = sum(length for _, length in kept)
            entry["payload_ranges"] = merge_ranges(kept)
        else:
            entry["kind"] = "heap"
            entry["items"] = {
                heap["items"][op[1]]["name"]: expected_item(heap["items"][op[1]])
                for op in ops
                if op[0] == "item"
            }
        expected[cnt] = entry
    return expected


def by_cnt(report: dict[str, Any]) -> dict[int, dict[str, Any]]:
    """The received heaps by cnt (asserting that no cnt was delivered twice)."""
    heaps = {h["cnt"]: h for h in report["heaps"]}
    assert len(heaps) == len(report["heaps"]), f"a heap was delivered twice: {report['heaps']}"
    return heaps


def check_against_spec(
    report: dict[str, Any],
    send_spec: dict[str, Any],
    recv_spec: dict[str, Any],
    sent: dict[str, Any],
) -> None:
    """Every sent heap arrived as sent: cnt, flags, items' descriptors and values."""
    assert not report["timed_out"], "the receiver timed out"
    expected = expected_heaps(send_spec, recv_spec, sent)
    got = by_cnt(report)
    assert sorted(got) == sorted(expected), "delivered heap cnts differ from those sent"
    for cnt, exp in expected.items():
        heap = got[cnt]
        assert "error" not in heap, f"heap {cnt}: {heap['error']}"
        assert heap["kind"] == exp["kind"], f"heap {cnt}"
        assert (heap["start"], heap["end"]) == (exp["start"], exp["end"]), f"heap {cnt} flags"
        if exp["kind"] == "incomplete":
            for key in ("heap_length", "received_length", "payload_ranges"):
                assert heap[key] == exp[key], f"heap {cnt}: {key}"
            continue
        assert sorted(heap["items"]) == sorted(exp["items"]), f"heap {cnt}: item names"
        for name, item in exp["items"].items():
            received = heap["items"][name]
            for key in (*META, "value"):
                difference = first_difference(received[key], item[key])
                assert difference is None, f"heap {cnt}, item {name!r}: {key}{difference}"


def first_difference(a: Any, b: Any, path: str = "") -> str | None:
    """Where two JSON values first differ (a short message), or None if equal."""
    if isinstance(a, dict) and isinstance(b, dict):
        if sorted(a, key=str) != sorted(b, key=str):
            return f"{path}: keys {sorted(a, key=str)} != {sorted(b, key=str)}"
        for key in a:
            found = first_difference(a[key], b[key], f"{path}[{key!r}]")
            if found:
                return found
        return None
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            return f"{path}: length {len(a)} != {len(b)}"
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            found = first_difference(x, y, f"{path}[{i}]")
            if found:
                return found
        return None
    if a != b or type(a) is not type(b):
        return f"{path}: {a!r} != {b!r}"
    return None


def _without_versions(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_versions(v) for k, v in value.items() if k != "version"}
    if isinstance(value, list):
        return [_without_versions(v) for v in value]
    return value


def check_against_baseline(
    report: dict[str, Any], baseline: dict[str, Any], ordered: bool = True
) -> None:
    """The report equals the reference's own (heaps by cnt, every field, final item group).

    With ``ordered=False`` (several readers, so no defined delivery order)
    item versions, which count updates in delivery order, are not compared,
    and of the final item group (last descriptor wins) only the names are.
    """
    ours: Any = {"heaps": by_cnt(report), "final_items": report["final_items"]}
    theirs: Any = {"heaps": by_cnt(baseline), "final_items": baseline["final_items"]}
    if not ordered:
        ours, theirs = _without_versions(ours), _without_versions(theirs)
        ours["final_items"] = sorted(ours["final_items"])
        theirs["final_items"] = sorted(theirs["final_items"])
    difference = first_difference(ours, theirs)
    assert difference is None, f"differs from the reference's own result at {difference}"


def check(
    report: dict[str, Any],
    send_spec: dict[str, Any],
    recv_spec: dict[str, Any],
    sent: dict[str, Any],
    baseline: dict[str, Any] | None,
    ordered: bool = True,
) -> None:
    """Both oracles: the spec, and (if given) the reference's own result."""
    check_against_spec(report, send_spec, recv_spec, sent)
    if baseline is not None:
        check_against_baseline(report, baseline, ordered)
