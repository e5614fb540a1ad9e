"""Peer script run by the *reference* spead2's Python: receive heaps and describe them.

stdin (or the file named by the first argument): a receiver spec (see
``interop_peer``), or ``{"batch": [spec, ...]}`` for several buffer/pcap
receivers in turn.

stdout: for a single spec, first a line ``{"ready": [ports]}`` once the
readers listen (the test then starts its sender), then one line with the
result of :func:`interop_peer.receive`. For a batch, one line with the list
of results. Uses only spead2's public API.
"""

from __future__ import annotations

import json
from typing import Any

import interop_peer


def main() -> None:
    spead2, spec = interop_peer.reference_and_request()
    if "batch" in spec:
        results = [interop_peer.receive(spead2, s) for s in spec["batch"]]
        print(json.dumps(results), flush=True)
        return

    def ready(ports: list[int], stream: Any) -> None:
        print(json.dumps({"ready": ports}), flush=True)

    result = interop_peer.receive(spead2, spec, ready)
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
