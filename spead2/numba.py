"""Helpers for writing chunk place callbacks with numba (needs numba installed).

``intp_to_voidptr`` turns the integer-typed pointer fields of
:data:`spead2.recv.numba.chunk_place_data` into ``voidptr``\\ s, so that
``numba.carray`` can view what they point at::

    items = numba.carray(intp_to_voidptr(data[0].items), n_items, dtype=np.int64)
"""

from __future__ import annotations

from typing import Any

from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

__all__ = ["intp_to_voidptr"]


@intrinsic
def intp_to_voidptr(typingctx: Any, src: Any) -> Any:
    """Convert an ``intp``/``uintp`` to a ``voidptr`` (only callable from jitted code)."""
    if not isinstance(src, types.Integer):
        return None
    sig = types.voidptr(src)

    def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
        return builder.inttoptr(args[0], cgutils.voidptr_t)

    return sig, codegen
