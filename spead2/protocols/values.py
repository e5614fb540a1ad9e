"""The value codec: item values ⇄ bytes, and the numpy header text of descriptors.

Sans-IO and stateless apart from per-descriptor precomputation: a
:class:`ValueCodec` is built once from a descriptor's shape, order, dtype and
format and then encodes values for sending (as ``Item.to_buffer``) and decodes
received bytes (as ``Item.set_from_raw``), with the reference's rules.

Three encodings exist:

* *native*: the internal dtype is a plain numpy dtype (a user dtype, or a
  format made only of u/i 8–64, f32/f64, b8 and c8). Values are numpy arrays
  whose memory is sent as is; received values are views on the heap buffer.
* *immediate fast path*: a scalar with one ``u``/``i`` field of a whole-byte
  width numpy lacks (``u24``, ``u40``, ``u48`` …): the value is the low bytes
  of a big-endian 64-bit integer.
* *bit-packed*: anything else with a non-native field width. Elements are
  packed MSB-first, fields in format order, padded with zero bits to a whole
  byte. Done with numpy bit arrays, not per-bit Python work.
"""

from __future__ import annotations

import ast
import functools
import math
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Final, NamedTuple

import numpy as np
import numpy.lib.format as _npformat
import numpy.typing as npt

__all__ = [
    "AddressedPlan",
    "ValueCodec",
    "dynamic_shape",
    "compatible_shape",
    "format_to_dtype",
    "make_numpy_header",
    "parse_numpy_header",
]

_NATIVE_INTS: Final = frozenset((8, 16, 32, 64))
_HEADER_KEYS: Final = ["descr", "fortran_order", "shape"]
_BIG_U8: Final = np.dtype(">u8")
_S1: Final = np.dtype("S1")


# --------------------------------------------------------------------------
# Format lists and shapes


def _field_dtype(code: str, bits: int) -> str:
    """numpy type string of one format field (``'O'`` for widths numpy lacks)."""
    if bits == 0:
        raise ValueError("zero-length field (bug_compat mismatch?)")
    if bits < 0:
        raise ValueError("negative-length field")
    if code in ("u", "i"):
        if bits in _NATIVE_INTS:
            return f">{code}{bits // 8}"
        return "O"
    if code == "f" and bits in (32, 64):
        return f">f{bits // 8}"
    if code == "b":
        return "?" if bits == 8 else "O"
    if code == "c" and bits == 8:
        return "S1"
    raise ValueError(f"illegal format ({code}, {bits})")


def format_to_dtype(format: Iterable[Sequence[Any]]) -> np.dtype[Any]:
    """The internal numpy dtype for a SPEAD format list of ``(code, bits)``.

    Several fields give a structured dtype with numpy's default names
    ``f0, f1, …``. Fields whose width numpy cannot represent are Python-object
    (``'O'``) fields, handled by the bit-packing path.
    """
    fields = [_field_dtype(code, bits) for code, bits in format]
    if not fields:
        raise ValueError("empty format")
    return np.dtype(",".join(fields))


def dynamic_shape(shape: Sequence[int | None], max_elements: int) -> Sequence[int]:
    """``shape`` with its variable dimension sized to fit ``max_elements`` elements.

    A fixed shape is returned unchanged (a tuple); otherwise a list with the
    ``None`` replaced by ``max_elements // product(known dims)`` (0 when that
    product is 0), as the reference does.
    """
    if None not in shape:
        return shape  # type: ignore[return-value]  # no None left: all ints
    known = 1
    for dim in shape:
        if dim is not None:
            known *= dim
    fill = max_elements // known if known else 0
    return [fill if dim is None else dim for dim in shape]


def compatible_shape(expected: Sequence[int | None], shape: Sequence[int | None]) -> bool:
    """Whether ``shape`` matches ``expected`` (where ``None`` matches any size)."""
    if len(expected) != len(shape):
        return False
    for want, got in zip(expected, shape, strict=True):
        if want is not None and want != got:
            return False
    return True


# --------------------------------------------------------------------------
# numpy header text (the descriptor's NUMPY_HEADER item)


def make_numpy_header(dtype: np.dtype[Any], order: str, shape: Sequence[int]) -> str:
    """Descriptor header text: ``repr`` of the dict numpy's ``.npy`` format uses.

    Shape entries are written as plain ints, so a shape holding numpy integers
    still produces text a receiver can parse.
    """
    header = {
        "descr": _npformat.dtype_to_descr(dtype),
        "fortran_order": order == "F",
        "shape": tuple(int(dim) for dim in shape),
    }
    return repr(header)


def parse_numpy_header(text: str) -> tuple[tuple[int, ...], str, np.dtype[Any]]:
    """Parse descriptor header text into ``(shape, order, dtype)``.

    Raises ``ValueError`` with the reference's messages for every kind of bad
    header; hostile text never escapes as another exception type.
    """
    try:
        header = ast.literal_eval(text)
    except SyntaxError as exc:
        raise ValueError(f"Cannot parse descriptor: {text!r}\nException: {exc!r}") from exc
    except ValueError:
        raise
    except (TypeError, RecursionError, MemoryError) as exc:
        # e.g. an unhashable dict key, or absurd nesting in a hostile header
        raise ValueError(f"Cannot parse descriptor: {text!r}\nException: {exc!r}") from exc
    if not isinstance(header, dict):
        raise ValueError(f"Descriptor is not a dictionary: {header!r}")
    try:
        keys = sorted(header.keys())
    except TypeError:
        keys = list(header.keys())
    if keys != _HEADER_KEYS:
        raise ValueError(f"Descriptor does not contain the correct keys: {keys!r}")
    shape = header["shape"]
    if not isinstance(shape, tuple) or not all(isinstance(dim, int) and dim >= 0 for dim in shape):
        raise ValueError(f"shape is not valid: {shape!r}")
    fortran_order = header["fortran_order"]
    if not isinstance(fortran_order, bool):
        raise ValueError(f"fortran_order is not a valid bool: {fortran_order!r}")
    try:
        dtype = _npformat.descr_to_dtype(header["descr"])
    except Exception as exc:
        raise ValueError(f"descr is not a valid dtype descriptor: {header['descr']!r}") from exc
    return shape, "F" if fortran_order else "C", dtype


# --------------------------------------------------------------------------
# The codec


class AddressedPlan(NamedTuple):
    """See :meth:`ValueCodec.addressed_plan`."""

    dtype: np.dtype[Any]
    elements: int
    finish: Callable[[npt.NDArray[Any]], Any] | None


class _Field(NamedTuple):
    """One field of a bit-packed element."""

    code: str
    bits: int
    offset: int  # bit offset within an element
    name: str | None  # structured field name; None for a single-field dtype
    dtype: np.dtype[Any]  # the field's internal dtype ('O' when not native)


_KIND_NATIVE: Final = 0
_KIND_FAST: Final = 1  # scalar single u/i/b object field: Python int/bool
_KIND_BITS: Final = 2


def _too_few(name: str, max_elements: int, n: int) -> ValueError:
    return ValueError(f"Item {name} has too few elements for shape ({max_elements} < {n})")


class ValueCodec:
    """Encoder/decoder for the values of one descriptor.

    ``dtype`` is the user's numpy dtype or ``None``; ``format`` the format list
    when ``dtype`` is ``None``. The descriptor has already validated them.
    """

    __slots__ = (
        "shape",
        "order",
        "dtype",
        "kind",
        "fields",
        "itemsize_bits",
        "fixed_shape",
        "fixed_count",
        "is_string",
        "split_strings",
        "fast_encode_bytes",
        "fast_signed",
        "fast_code",
        "_orders",
    )

    def __init__(
        self,
        shape: Sequence[int | None],
        order: str,
        dtype: np.dtype[Any] | None,
        format: Sequence[Sequence[Any]] | None,
    ) -> None:
        self.shape = tuple(shape)
        self.order = order
        fmt: list[tuple[str, int]] | None = None
        if dtype is None:
            assert format is not None
            fmt = [(str(code), int(bits)) for code, bits in format]
            self.dtype: np.dtype[Any] = format_to_dtype(fmt)
        else:
            self.dtype = dtype
        self.itemsize_bits = (
            sum(bits for _, bits in fmt) if fmt is not None else self.dtype.itemsize * 8
        )
        if None in self.shape:
            self.fixed_shape: tuple[int, ...] | None = None
            self.fixed_count = 0
        else:
            self.fixed_shape = self.shape  # type: ignore[assignment]  # no None in it
            self.fixed_count = math.prod(self.fixed_shape)  # type: ignore[arg-type]
        self.is_string = fmt == [("c", 8)] and len(self.shape) == 1
        self.split_strings = len(self.shape) == 1
        self.fields: list[_Field] = []
        self.fast_encode_bytes = 0
        self.fast_signed = False
        self.fast_code = ""
        self._orders: dict[str, np.dtype[Any] | None] = {}
        if not self.dtype.hasobject:
            self.kind = _KIND_NATIVE
            return
        assert fmt is not None  # user dtypes with objects are rejected earlier
        offset = 0
        names = self.dtype.names
        for index, (code, bits) in enumerate(fmt):
            name = names[index] if names is not None else None
            field_dtype = self.dtype.fields[name][0] if name is not None else self.dtype  # type: ignore[index]
            self.fields.append(_Field(code, bits, offset, name, field_dtype))
            offset += bits
        if self.shape == () and len(fmt) == 1:
            # One object field (u/i/b of a width numpy lacks) as a scalar.
            code, bits = fmt[0]
            self.kind = _KIND_FAST
            self.fast_code = code
            self.fast_signed = code == "i"
            if code in ("u", "i") and bits < 64 and bits % 8 == 0:
                self.fast_encode_bytes = bits // 8
        else:
            self.kind = _KIND_BITS

    # ---------------------------------------------------------------- shapes

    def dynamic_shape(self, max_elements: int) -> Sequence[int]:
        """See :func:`dynamic_shape`."""
        return dynamic_shape(self.shape, max_elements)

    def _shape_and_count(self, max_elements: int) -> tuple[Sequence[int], int]:
        """The shape of a value received with room for ``max_elements`` elements, and its element count."""
        if self.fixed_shape is not None:
            return self.fixed_shape, self.fixed_count
        shape = dynamic_shape(self.shape, max_elements)
        return shape, math.prod(shape)

    def _shape_for(self, max_elements: int, name: str) -> tuple[Sequence[int], int]:
        shape, n = self._shape_and_count(max_elements)
        if n > max_elements:
            raise _too_few(name, max_elements, n)
        return shape, n

    # -------------------------------------------------------------- encoding

    def encode(self, value: Any) -> Any:
        """Encode ``value`` to an object exposing the bytes to send (``Item.to_buffer``).

        Native values come back as numpy arrays sharing the value's memory
        when no conversion is needed; bit-packed values as a ``bytearray``.
        """
        if value is None:
            raise ValueError("Cannot send a value of None")
        if self.split_strings and isinstance(value, (bytes, str)):
            if self.dtype == _S1:
                # Same bytes as splitting into 1-char pieces, without the list.
                data = value.encode("ascii") if isinstance(value, str) else value
                value = np.frombuffer(data, _S1)
            else:
                value = [value[i : i + 1] for i in range(len(value))]
        if self.fast_encode_bytes:
            return self._encode_fast(value)
        array = np.asarray(value, dtype=self.dtype, order=self.order)  # type: ignore[call-overload]
        if not compatible_shape(self.shape, array.shape):
            raise ValueError(f"Value has shape {array.shape}, expected {self.shape}")
        if self.kind == _KIND_NATIVE:
            # A Fortran-ordered array's transpose is C-contiguous: its memory,
            # read in order, is the Fortran-order bytes.
            return array.T if self.order == "F" else array
        return self._pack(array)

    def _encode_fast(self, value: Any) -> npt.NDArray[np.uint8]:
        try:
            array = np.asarray(value, dtype=_BIG_U8, order=self.order)  # type: ignore[call-overload]
        except OverflowError:
            if not self.fast_signed:
                raise
            # Negative value for an iNN field: its two's complement low bytes.
            array = np.asarray(value, dtype=">i8", order=self.order)  # type: ignore[call-overload]
        if array.shape != ():
            raise ValueError(f"Value has shape {array.shape}, expected {self.shape}")
        # A view, so a 0-d '>u8' value is referenced rather than copied.
        return array.reshape(1).view(np.uint8)[8 - self.fast_encode_bytes :]

    def _pack(self, array: npt.NDArray[Any]) -> bytearray:
        flat = array.reshape(-1)
        n = flat.shape[0]
        if n == 0:
            return bytearray()
        columns: list[npt.NDArray[np.uint8]] = []
        for field in self.fields:
            column = flat if field.name is None else flat[field.name]
            columns.append(_field_bits(field, column, n))
        bits = np.concatenate(columns, axis=1) if len(columns) > 1 else columns[0]
        return bytearray(np.packbits(bits.reshape(-1)).tobytes())

    # -------------------------------------------------------------- decoding

    def decode(self, raw: memoryview, is_immediate: bool, new_order: str, name: str) -> Any:
        """Decode received bytes ``raw`` into a value (``Item.set_from_raw``).

        Immediates are right-aligned in ``raw`` so their bytes are taken from
        the end; addressed values from the start (extra bytes are ignored).
        """
        if self.kind == _KIND_NATIVE:
            return self._decode_native(raw, is_immediate, new_order, name)
        if self.kind == _KIND_FAST:
            return self._decode_scalar(raw, is_immediate, name)
        return self._decode_bits(raw, is_immediate, name)

    def _decode_native(self, raw: memoryview, is_immediate: bool, new_order: str, name: str) -> Any:
        dtype = self.dtype
        itemsize = dtype.itemsize
        size = len(raw)
        shape, n = self._shape_for(size // itemsize, name)
        offset = size - n * itemsize if is_immediate else 0
        value = np.frombuffer(raw, dtype, count=n, offset=offset)
        return self._finish_native(value, shape, self._target(new_order))

    def _target(self, new_order: str) -> np.dtype[Any] | None:
        """The dtype values are converted to for ``new_order``; None when no conversion is needed."""
        try:
            return self._orders[new_order]
        except KeyError:
            converted = self.dtype.newbyteorder(new_order)  # type: ignore[arg-type]
            # None marks "already in that order": no conversion, the view stays.
            target = self._orders[new_order] = None if converted == self.dtype else converted
            return target

    def _finish_native(
        self, value: Any, shape: Sequence[int], target: np.dtype[Any] | None
    ) -> Any:
        """The value of the ``n`` elements ``value`` (a flat view of the received bytes)."""
        if target is not None:
            value = value.astype(target)
        if self.is_string:
            # As joining numpy S1 elements does: NUL bytes vanish.
            return value.tobytes().replace(b"\0", b"").decode("ascii")
        if not shape:
            return value[0]
        if len(shape) > 1:
            value = value.reshape(shape, order=self.order)
        return value

    def addressed_plan(self, length: int, new_order: str) -> AddressedPlan | None:
        """How :meth:`decode` turns an addressed value of ``length`` bytes into a value, worked out once.

        For a receiver that gets the same layout heap after heap: the value
        of bytes ``raw`` at ``offset`` of a heap's payload is
        ``np.frombuffer(payload, dtype, elements, offset)``, passed through
        ``finish`` unless it is None, exactly what :meth:`decode` returns
        for ``payload[offset : offset + length]``. None when only
        :meth:`decode` can do it (a bit-packed or scalar encoding, or too
        few bytes, which it reports).
        """
        if self.kind != _KIND_NATIVE:
            return None
        max_elements = length // self.dtype.itemsize
        shape, n = self._shape_and_count(max_elements)
        if n > max_elements:
            return None
        target = self._target(new_order)
        finish: Callable[[npt.NDArray[Any]], Any] | None = None
        if target is not None or self.is_string or len(shape) != 1:
            finish = functools.partial(self._finish_native, shape=shape, target=target)
        return AddressedPlan(self.dtype, n, finish)

    def _decode_scalar(self, raw: memoryview, is_immediate: bool, name: str) -> Any:
        bits = self.itemsize_bits
        size = len(raw)
        if size * 8 < bits:
            raise _too_few(name, 0, 1)
        nbytes = (bits + 7) // 8
        chunk = raw[size - nbytes :] if is_immediate else raw[:nbytes]
        result = int.from_bytes(chunk) >> (nbytes * 8 - bits)
        if self.fast_signed:
            if result >> (bits - 1):
                result -= 1 << bits
        elif self.fast_code == "b":
            return bool(result)
        return result

    def _decode_bits(self, raw: memoryview, is_immediate: bool, name: str) -> Any:
        bits_per = self.itemsize_bits
        size = len(raw)
        shape, n = self._shape_for(size * 8 // bits_per, name)
        total = n * bits_per
        nbytes = (total + 7) // 8
        data = raw[size - nbytes :] if is_immediate else raw[:nbytes]
        bits = np.unpackbits(np.frombuffer(data, np.uint8), count=total).reshape(n, bits_per)
        if self.dtype.names is None:
            field = self.fields[0]
            out = _field_values(field, bits[:, field.offset : field.offset + field.bits])
        else:
            out = np.empty(n, self.dtype)
            for field in self.fields:
                out[field.name] = _field_values(
                    field, bits[:, field.offset : field.offset + field.bits]
                )
        if not shape:
            return out[0]
        return out.reshape(shape)


# --------------------------------------------------------------------------
# Bit-level helpers for the packed encoding


def _check_range(code: str, bits: int, ints: list[int]) -> None:
    if code == "u":
        low, high = 0, 1 << bits
    else:
        low, high = -(1 << (bits - 1)), 1 << (bits - 1)
    if ints and (min(ints) < low or max(ints) >= high):
        bad = next(v for v in ints if not low <= v < high)
        raise ValueError(f"{bad} is out of range for {code}{bits}")


def _wide_bits(ints: list[int], bits: int) -> npt.NDArray[np.uint8]:
    """Bit rows of fields wider than 64 bits (Python ints, already non-negative)."""
    nbytes = (bits + 7) // 8
    data = b"".join(v.to_bytes(nbytes) for v in ints)
    rows = np.unpackbits(np.frombuffer(data, np.uint8)).reshape(len(ints), nbytes * 8)
    return rows[:, nbytes * 8 - bits :]


def _field_bits(field: _Field, column: npt.NDArray[Any], n: int) -> npt.NDArray[np.uint8]:
    """The ``(n, field.bits)`` bit matrix of one field of every element."""
    code, bits = field.code, field.bits
    if field.dtype.hasobject:
        if code == "b":
            ints = [1 if v else 0 for v in column]
        else:
            ints = [int(v) for v in column]
            _check_range(code, bits, ints)
            if code == "i":
                mask = (1 << bits) - 1
                ints = [v & mask for v in ints]
        if bits > 64:
            return _wide_bits(ints, bits)
        patterns = np.array(ints, dtype=np.uint64)
    elif code == "f":
        floats = column.astype(np.float32 if bits == 32 else np.float64)
        patterns = floats.view(np.uint32 if bits == 32 else np.uint64).astype(np.uint64)
    elif code == "c":
        patterns = column.view(np.uint8).astype(np.uint64)
    elif code == "i":
        patterns = column.astype(np.int64).view(np.uint64)
    else:  # native u and b8
        patterns = column.astype(np.uint64)
    rows = np.unpackbits(patterns.astype(_BIG_U8).view(np.uint8).reshape(n, 8), axis=1)
    return rows[:, 64 - bits :]


def _field_values(field: _Field, bits: npt.NDArray[np.uint8]) -> npt.NDArray[Any]:
    """Values of one field from its ``(n, field.bits)`` bit matrix, in the field's dtype."""
    code, width = field.code, field.bits
    n = bits.shape[0]
    if width > 64:
        nbytes = (width + 7) // 8
        padded = np.zeros((n, nbytes * 8), np.uint8)
        padded[:, nbytes * 8 - width :] = bits
        rows = np.packbits(padded, axis=1)
        ints = [int.from_bytes(row.tobytes()) for row in rows]
        if code == "i":
            # Only values that arrived (each already ``width`` bits of data)
            # may cost a ``width``-bit int: a hostile width with no elements
            # must not allocate 2**width-sized ints up front.
            top = width - 1
            ints = [v - (1 << width) if (v >> top) & 1 else v for v in ints]
        result = np.empty(n, object)
        result[:] = [bool(v) for v in ints] if code == "b" else ints
        return result
    padded = np.zeros((n, 64), np.uint8)
    padded[:, 64 - width :] = bits
    patterns = np.packbits(padded, axis=1).view(_BIG_U8).reshape(n).astype(np.uint64)
    if code == "i":
        shift = np.uint64(64 - width)
        signed = (patterns << shift).view(np.int64) >> np.int64(64 - width)
        return signed.astype(field.dtype)
    if code == "b":
        return (patterns != 0).astype(field.dtype)
    if code == "f":
        floats = (
            patterns.astype(np.uint32).view(np.float32)
            if width == 32
            else patterns.view(np.float64)
        )
        return floats.astype(field.dtype)
    if code == "c":
        return patterns.astype(np.uint8).view(_S1)
    return patterns.astype(field.dtype)
