"""Peer script run by the *reference* spead2's Python: send heaps as a JSON spec says.

stdin (or the file named by the first argument): a sender spec (see
``interop_peer``); stdout: one JSON line, the result of
:func:`interop_peer.send` (or ``{"error": [type, message]}``).
Uses only spead2's public API.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import interop_peer


def _read_request() -> Any:
    """The JSON request: from the file named by the first argument, else from stdin."""
    if len(sys.argv) > 1:
        with open(sys.argv[1]) as f:
            return json.load(f)
    return json.load(sys.stdin)


def main() -> None:
    import spead2

    interop_peer.check_is_reference(spead2)
    interop_peer.load_submodules(spead2)
    spec = _read_request()
    try:
        result = interop_peer.send(spead2, spec)
    except Exception as exc:  # reported to the test, which decides
        result = {"error": [type(exc).__name__, str(exc)]}
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
