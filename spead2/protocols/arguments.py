"""Argument checks that give the reference's exception types.

The reference's binding converts each argument to a C++ type before any
check of ours would run: a value that does not fit (a port above 65535, a
negative count) fails that conversion and raises ``TypeError``. We raise
:class:`ArgumentRangeError` there, which is a ``TypeError`` (what existing
code catches) and a ``ValueError`` (what the value's problem is), with a
message naming the parameter and its range.
"""

from __future__ import annotations

import operator

__all__ = ["ArgumentRangeError", "MulticastHopsError", "fitting_int"]


class ArgumentRangeError(TypeError, ValueError):
    """An integer argument outside the range its parameter accepts."""


class MulticastHopsError(IndexError, ValueError):
    """A multicast TTL (hop limit) outside 0-255: ``IndexError`` as the reference gives."""


def fitting_int(value: object, what: str, low: int, high: int) -> int:
    """``value`` as an int in ``[low, high]``: ``TypeError`` if it is not an integer,
    :class:`ArgumentRangeError` if it is out of range."""
    if isinstance(value, (str, bytes, bytearray, float)):
        raise TypeError(f"{what} must be an integer, not {type(value).__name__}")
    try:
        result = operator.index(value)  # type: ignore[arg-type]
    except TypeError:
        raise TypeError(f"{what} must be an integer, not {type(value).__name__}") from None
    if not low <= result <= high:
        raise ArgumentRangeError(f"{what} must be in the range [{low}, {high}], not {result}")
    return result
