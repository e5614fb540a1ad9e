"""How the sans-IO core reports what it rejects, without logging or looking at a clock itself.

Every core entry point that can reject input takes a ``report`` callable and
calls it as ``report(level, key, message, *args)`` once per rejection:
``level`` is a :mod:`logging` level, ``key`` names the reason (one key per
kind of rejection, so an adapter can rate-limit each kind on its own) and
``message % args`` is the text a log line would carry. The counts that
matter (``invalid_packets`` and the like) are kept in the stream's
statistics by the core; ``report`` is for the reasons. The asyncio adapters
pass the package's rate-limited logger; the default, :func:`ignore`, drops
the reports.
"""

from __future__ import annotations

from typing import Protocol

__all__ = ["Report", "ignore"]


class Report(Protocol):
    """``report(level, key, message, *args)``: one rejection, with its reason."""

    def __call__(self, level: int, key: str, message: str, /, *args: object) -> None: ...


def ignore(level: int, key: str, message: str, /, *args: object) -> None:
    """A :class:`Report` that drops every report."""
