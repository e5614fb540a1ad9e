"""Argument checks that give the reference's exception types.

The reference's binding converts each argument to a C++ type before any
check of ours would run: a value that does not fit (a port above 65535, a
negative count) fails that conversion and raises ``TypeError``. We raise
:class:`ArgumentRangeError` there, which is a ``TypeError`` (what existing
code catches) and a ``ValueError`` (what the value's problem is), with a
message naming the parameter and its range.

Overloaded functions and constructors (``add_udp_reader``, ``UdpStream``)
are resolved as the reference's binding does: :func:`resolve_overload`.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final

__all__ = [
    "REQUIRED",
    "ArgumentRangeError",
    "MulticastHopsError",
    "Overload",
    "OverloadRules",
    "Param",
    "fitting_int",
    "is_int",
    "resolve_overload",
    "uint64",
]


_UINT64_LIMIT = 1 << 64


class ArgumentRangeError(TypeError, ValueError):
    """An integer argument outside the range its parameter accepts."""


class MulticastHopsError(IndexError, ValueError):
    """A multicast TTL (hop limit) outside 0-255: ``IndexError`` as the reference gives."""


def fitting_int(value: object, what: str, low: int, high: int) -> int:
    """``value`` as an int in ``[low, high]``: ``TypeError`` if it is not an integer,
    :class:`ArgumentRangeError` if it is out of range."""
    if not is_int(value):
        raise TypeError(f"{what} must be an integer, not {type(value).__name__}")
    result = operator.index(value)  # type: ignore[arg-type]
    if not low <= result <= high:
        raise ArgumentRangeError(f"{what} must be in the range [{low}, {high}], not {result}")
    return result


# -- overloaded functions -------------------------------------------------------------

#: The default of a parameter that has none (the argument is required).
REQUIRED: Final[Any] = object()

#: One parameter of an overload: ``(name, kind, default)``; ``kind`` is a key of
#: :attr:`OverloadRules.kinds`, ``default`` is :data:`REQUIRED` if there is none.
Param = tuple[str, str, object]


def uint64(value: object, what: str) -> int:
    """``value`` as an unsigned 64-bit integer: ``TypeError`` if it is not an integer,
    :class:`ArgumentRangeError` (a ``TypeError``, as the reference's failed conversion) if
    it does not fit."""
    try:
        result = operator.index(value)  # type: ignore[arg-type]
    except TypeError:
        raise TypeError(
            f"{what} must be a non-negative integer, not {type(value).__name__} ({value!r})"
        ) from None
    if not 0 <= result < _UINT64_LIMIT:
        raise ArgumentRangeError(
            f"{what} must be a non-negative integer below 2**64 (got {what}={result})"
        )
    return result


def is_int(value: object) -> bool:
    """Whether ``value`` converts to a C++ integer parameter (``bool`` does; ``float`` and ``str`` do not)."""
    if isinstance(value, (str, bytes, bytearray, float)):
        return False
    try:
        operator.index(value)  # type: ignore[arg-type]
    except TypeError:
        return False
    return True


class Overload:
    """One form of an overloaded function or constructor."""

    __slots__ = ("params", "names")

    def __init__(self, params: Sequence[Param]) -> None:
        self.params = params
        self.names = {name for name, _, _ in params}

    def bind(
        self, args: tuple[Any, ...], kwargs: Mapping[str, Any], rules: OverloadRules
    ) -> dict[str, Any] | None:
        """The arguments by name, or ``None`` if their number, names or types do not fit."""
        if len(args) > len(self.params) or not self.names.issuperset(kwargs):
            return None
        values = {name: value for (name, _, _), value in zip(self.params, args, strict=False)}
        for name, value in kwargs.items():
            if name in values:
                return None
            values[name] = value
        for name, kind, default in self.params:
            if name in values:
                if not rules.kinds[kind][1](values[name]):
                    return None
            elif default is REQUIRED:
                return None
            else:
                values[name] = default
        return values

    def describe(self, name: str, rules: OverloadRules) -> str:
        """The form as pybind11 lists it in its error message."""
        parts = list(rules.leading)
        for param, kind, default in self.params:
            part = f"{param}: {rules.kinds[kind][0]}"
            if default is not REQUIRED:
                part += f" = {rules.default_names.get(kind, repr(default))}"
            parts.append(part)
        if rules.constructor:
            return f"{name}({', '.join(parts)})"
        return f"({', '.join(parts)}) -> None"


class OverloadRules:
    """How the overloads of one binding check, describe and range-check their arguments.

    ``kinds`` maps a parameter kind to its type name (as the error message
    shows it) and the check that an argument is of that kind. ``bounds``
    gives the inclusive range of integer parameters (the reference's C++
    types); a value outside it is an :class:`ArgumentRangeError`, or for a
    parameter in ``range_errors`` the error class given there, its message
    starting with the prefix given there. ``leading``
    lists parameters shown before each form's own (``thread_pool``), and
    ``default_names`` how a kind's default is shown where its ``repr`` would
    mislead.
    """

    __slots__ = ("kinds", "bounds", "range_errors", "constructor", "leading", "default_names")

    def __init__(
        self,
        kinds: Mapping[str, tuple[str, Callable[[object], bool]]],
        bounds: Mapping[str, tuple[int, int]],
        *,
        range_errors: Mapping[str, tuple[type[Exception], str]] | None = None,
        constructor: bool = False,
        leading: Sequence[str] = (),
        default_names: Mapping[str, str] | None = None,
    ) -> None:
        self.kinds = kinds
        self.bounds = bounds
        self.range_errors = range_errors or {}
        self.constructor = constructor
        self.leading = leading
        self.default_names = default_names or {}


def resolve_overload(
    name: str,
    overloads: Sequence[Overload],
    args: tuple[Any, ...],
    kwargs: Mapping[str, Any],
    rules: OverloadRules,
) -> tuple[int, dict[str, Any]]:
    """The index of the first overload that accepts the arguments, and the arguments by name.

    As pybind11 does, the first form whose parameters accept the arguments'
    *types* wins; only then are integer values range-checked (an error names
    the parameter). No form fitting is the reference's ``TypeError``
    ("incompatible function/constructor arguments") listing the forms.
    """
    for index, candidate in enumerate(overloads):
        values = candidate.bind(args, kwargs, rules)
        if values is None:
            continue
        for key, value in values.items():
            bounds = rules.bounds.get(key)
            if bounds is not None:
                value = values[key] = operator.index(value)
                if not bounds[0] <= value <= bounds[1]:
                    message = f"{key} must be in the range [{bounds[0]}, {bounds[1]}], not {value}"
                    error, prefix = rules.range_errors.get(key, (ArgumentRangeError, ""))
                    raise error(f"{name}: {prefix}{message}")
        return index, values
    supported = "\n".join(
        f"    {i}. {candidate.describe(name, rules)}" for i, candidate in enumerate(overloads, 1)
    )
    invoked = ", ".join(repr(a) for a in args)
    if kwargs:
        invoked += "; kwargs: " + ", ".join(f"{k}={v!r}" for k, v in kwargs.items())
    what = "constructor" if rules.constructor else "function"
    raise TypeError(
        f"{name}(): incompatible {what} arguments. The following argument types are "
        f"supported:\n{supported}\n\nInvoked with: {invoked}"
    )
