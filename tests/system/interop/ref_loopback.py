"""Peer script run by the *reference* spead2's Python: the reference talking to itself.

For every scenario, send its heaps to a ``BytesStream`` (or as raw packets)
and receive those bytes with ``add_buffer_reader``. The tests use the
result as the baseline of what the reference produces (bytes, and what its
receiver makes of them, down to value types and item versions).

stdin (or the file named by the first argument):
``{"scenarios": [{"send": sender spec, "recv": receiver spec}, ...]}`` (the
receiver spec without readers). stdout: one JSON line, a list of
``{"send": result, "recv": result}`` or ``{"send_error": [type, message]}``.
"""

from __future__ import annotations

import json
from typing import Any

import interop_peer


def main() -> None:
    spead2, request = interop_peer.reference_and_request()
    results: list[dict[str, Any]] = []
    for scenario in request["scenarios"]:
        try:
            sent = interop_peer.send(spead2, scenario["send"])
        except Exception as exc:  # the test decides whether this is expected
            results.append({"send_error": [type(exc).__name__, str(exc)]})
            continue
        spec = dict(scenario["recv"], readers=[{"kind": "buffer", "hex": sent["hex"]}])
        results.append({"send": sent, "recv": interop_peer.receive(spead2, spec)})
    print(json.dumps(results), flush=True)


if __name__ == "__main__":
    main()
