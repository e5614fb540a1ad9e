"""numba types for chunk place callbacks (needs numba installed).

``chunk_place_data`` is the C struct a place callback of a chunk stream
receives: declare the callback as
``numba.cfunc(types.void(types.CPointer(chunk_place_data), types.size_t))``
(or with a third ``types.voidptr``/``CPointer`` parameter for user data) and
wrap it with ``scipy.LowLevelCallable(callback.ctypes, signature=...)``.
Pointer fields are integers; convert them with
:func:`spead2.numba.intp_to_voidptr` to view them with ``numba.carray``.
"""

from __future__ import annotations

from numba import types

__all__ = ["chunk_place_data"]

#: The 80-byte ``chunk_place_data`` struct, field for field.
chunk_place_data = types.Record.make_c_struct(
    [
        ("packet", types.intp),
        ("packet_size", types.size_t),
        ("items", types.intp),
        ("chunk_id", types.int64),
        ("heap_index", types.size_t),
        ("heap_offset", types.size_t),
        ("batch_stats", types.intp),
        ("extra", types.intp),
        ("extra_offset", types.size_t),
        ("extra_size", types.size_t),
    ]
)
