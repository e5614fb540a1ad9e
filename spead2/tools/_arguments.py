"""Value types for the command-line tools' options, for argparse's ``type=``.

Each raises ``argparse.ArgumentTypeError`` with a message for people:
argparse would otherwise report a plain ``ValueError`` as "invalid <function
name> value".
"""

from __future__ import annotations

import argparse
import logging

import numpy as np

import spead2
import spead2.send

__all__ = [
    "Source",
    "integer",
    "non_negative_float",
    "non_negative_int",
    "number",
    "parse_affinity",
    "parse_dtype",
    "parse_endpoint",
    "parse_listen_endpoint",
    "parse_log_level",
    "parse_rate_method",
    "parse_source",
    "positive_int",
]

#: What a receive source is: ``(host, port)`` for a network endpoint, a filename otherwise.
Source = tuple[str, int] | str


def _expected(what: str, value: str) -> argparse.ArgumentTypeError:
    return argparse.ArgumentTypeError(f"expected {what}, got {value!r}")


def integer(value: str) -> int:
    """An integer."""
    try:
        return int(value)
    except ValueError:
        raise _expected("an integer", value) from None


def number(value: str) -> float:
    """A number (integer or decimal)."""
    try:
        return float(value)
    except ValueError:
        raise _expected("a number", value) from None


#: The port numbers an endpoint may have.
_PORTS = range(65536)


def _split_port(value: str) -> tuple[str, str, int | None]:
    """``value`` split at its last ``:``: the host, the ``:`` (or ``""``) and the
    port number (``None`` if what follows the ``:`` is not an integer)."""
    host, sep, port = value.rpartition(":")
    try:
        return host, sep, int(port)
    except ValueError:
        return host, sep, None


def parse_endpoint(value: str) -> tuple[str, int]:
    """``HOST:PORT`` → ``(host, port)``, split at the last ``:``; a bare port is refused."""
    host, sep, port = _split_port(value)
    if not sep or port is None or port not in _PORTS:
        raise _expected("HOST:PORT with a port from 0 to 65535 (e.g. 127.0.0.1:8888)", value)
    return host, port


def parse_listen_endpoint(value: str) -> tuple[str, int]:
    """``PORT``, ``HOST:PORT`` or ``[IPV6]:PORT`` → ``(host, port)``; host ``""`` is any address."""
    host, _, port = _split_port(value)
    if port is None:
        raise _expected("PORT, HOST:PORT or [IPV6]:PORT", value)
    if port not in _PORTS:
        raise argparse.ArgumentTypeError(f"port out of range in {value!r}")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    return host, port


def parse_source(value: str) -> Source:
    """A receive source: ``port`` or ``host:port`` → ``(host, port)``; anything else is a filename.

    As in the reference, the string is split at the last ``:`` and the part
    after it must be an integer for the source to be an endpoint.
    """
    host, _, port = _split_port(value)
    if port is None:
        return value
    if port not in _PORTS:
        raise ValueError(f"port out of range in source {value!r}")
    return host, port


def parse_rate_method(value: str) -> spead2.send.RateMethod:
    """``SW``, ``HW`` or ``AUTO``, case-insensitive."""
    try:
        return spead2.send.RateMethod[value.upper()]
    except KeyError:
        raise _expected("SW, HW or AUTO", value) from None


def parse_log_level(value: str) -> str:
    """A logging level name such as ``INFO`` (case-insensitive)."""
    level = logging.getLevelName(value.upper())
    if not isinstance(level, int):
        raise _expected("a log level (DEBUG, INFO, WARNING, ERROR or CRITICAL)", value)
    return value.upper()


def positive_int(value: str) -> int:
    """An integer ≥ 1."""
    result = integer(value)
    if result < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {result}")
    return result


def non_negative_int(value: str) -> int:
    """An integer ≥ 0."""
    result = integer(value)
    if result < 0:
        raise argparse.ArgumentTypeError(f"must not be negative, got {result}")
    return result


def non_negative_float(value: str) -> float:
    """A finite number ≥ 0."""
    result = number(value)
    if not 0 <= result < float("inf"):
        raise argparse.ArgumentTypeError(f"must be a finite non-negative number, got {value}")
    return result


def parse_affinity(value: str) -> list[int]:
    """A CPU list such as ``0,2-3``."""
    try:
        return spead2.parse_range_list(value)
    except ValueError:
        raise _expected("a list of CPU numbers and ranges such as 0,2-3", value) from None


def parse_dtype(value: str) -> np.dtype:
    """A numpy data type such as ``<c8`` or ``float32``."""
    try:
        return np.dtype(value)
    except TypeError:
        raise _expected("a numpy data type such as <c8, >u2 or float32", value) from None
