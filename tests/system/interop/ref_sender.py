"""Peer script run by the *reference* spead2's Python: send heaps as a JSON spec says.

stdin (or the file named by the first argument): a sender spec (see
``interop_peer``); stdout: one JSON line, the result of
:func:`interop_peer.send` (or ``{"error": [type, message]}``).
Uses only spead2's public API.
"""

from __future__ import annotations

import json

import interop_peer


def main() -> None:
    spead2, spec = interop_peer.reference_and_request()
    try:
        result = interop_peer.send(spead2, spec)
    except Exception as exc:  # reported to the test, which decides
        result = {"error": [type(exc).__name__, str(exc)]}
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
