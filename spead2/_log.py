"""The ``spead2`` logger, with a rate limit for messages that hostile input can trigger.

One bad packet per microsecond must not become one log line per microsecond:
per-packet problems go through :func:`log_limited`, which lets a burst through
and then summarises what it suppressed.
"""

from __future__ import annotations

import logging
import time

logger = logging.getLogger("spead2")

_BURST = 10
_WINDOW = 1.0  # seconds


class _Limiter:
    __slots__ = ("window_start", "emitted", "suppressed")

    def __init__(self) -> None:
        self.window_start = 0.0
        self.emitted = 0
        self.suppressed = 0


_limiters: dict[str, _Limiter] = {}


def log_limited(level: int, key: str, msg: str, *args: object) -> None:
    """Log ``msg % args`` unless messages under ``key`` exceeded the rate limit.

    At most ``_BURST`` messages per ``key`` per second; when a window ends with
    suppressed messages, the next message says how many were suppressed.
    """
    if not logger.isEnabledFor(level):
        return
    limiter = _limiters.get(key)
    if limiter is None:
        limiter = _limiters[key] = _Limiter()
    now = time.monotonic()
    if now - limiter.window_start >= _WINDOW:
        if limiter.suppressed:
            logger.log(level, "(%d similar messages suppressed)", limiter.suppressed)
        limiter.window_start = now
        limiter.emitted = 0
        limiter.suppressed = 0
    if limiter.emitted < _BURST:
        limiter.emitted += 1
        logger.log(level, msg, *args)
    else:
        limiter.suppressed += 1
