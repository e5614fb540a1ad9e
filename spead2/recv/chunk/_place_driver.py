"""A compiled loop calling a C place callback for a run of heaps (used only when numba is loaded).

Calling a C place function through ctypes costs about 1-2 µs per heap
(packing the struct, the foreign call, unpacking the answer), more than the
rest of placing a small heap. When numba is already imported (it is, for
anyone who built the callback with ``numba.cfunc``), :func:`driver` compiles
once per process a loop that does for each heap of a run exactly what one
ctypes call does: it fills the same ``chunk_place_data`` (packet address and
size, items, ``chunk_id`` -1, ``heap_index``/``heap_offset`` 0, the
batch-statistics and extra scratch pointers, ``extra_offset``/``extra_size``
0), calls the function once, and reads the five outputs. The function
pointer is an argument, so one compilation serves every callback.

The loop stops after the first heap that needs the caller before the next
call: one whose chunk lies beyond the window's head (the window must move,
and may block, before any later heap is placed) or that asked for extra bytes
(they are in the shared scratch buffer, which the next call may overwrite).
So the callback runs once per heap, in arrival order, never for a heap that
ends up queued, exactly as with one call per heap.
"""

from __future__ import annotations

import sys
from typing import Any

from ..._log import logger

__all__ = ["driver"]

_DRIVER: Any = None
_FAILED = False


def driver() -> Any:
    """The compiled run loop, or ``None`` when numba is not loaded (or cannot compile it)."""
    global _DRIVER, _FAILED
    if _DRIVER is not None or _FAILED:
        return _DRIVER
    if "numba" not in sys.modules:
        return None  # not imported by the user: not worth importing here
    try:
        _DRIVER = _compile()
    except Exception as exc:  # an odd numba: the ctypes call per heap still works
        _FAILED = True
        logger.warning("could not compile the place loop with numba (%s): place callbacks are called one by one", exc)
        return None
    return _DRIVER


def _compile() -> Any:
    import numba
    import numpy as np
    from llvmlite import ir
    from numba import types
    from numba.extending import intrinsic

    i8ptr = ir.IntType(8).as_pointer()
    i64 = ir.IntType(64)

    @intrinsic
    def call_place(typingctx: Any, function: Any, data: Any, size: Any, user: Any, with_user: Any) -> Any:
        sig = types.void(types.uint64, types.uint64, types.uint64, types.uint64, types.boolean)

        def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
            function_, data_, size_, user_, with_user_ = args
            data_ptr = builder.inttoptr(data_, i8ptr)
            with builder.if_else(with_user_) as (then, otherwise):
                with then:
                    fnty = ir.FunctionType(ir.VoidType(), [i8ptr, i64, i8ptr])
                    builder.call(
                        builder.inttoptr(function_, fnty.as_pointer()),
                        [data_ptr, size_, builder.inttoptr(user_, i8ptr)],
                    )
                with otherwise:
                    fnty = ir.FunctionType(ir.VoidType(), [i8ptr, i64])
                    builder.call(builder.inttoptr(function_, fnty.as_pointer()), [data_ptr, size_])
            return context.get_dummy_value()

        return sig, codegen

    minus_one = np.uint64(0xFFFF_FFFF_FFFF_FFFF)

    u64 = types.uint64
    s64 = types.int64
    signature = s64(
        u64, u64, types.boolean, u64[::1], u64, s64[::1], u64, u64, u64, s64[:, ::1], u64[::1], u64[::1],
        s64, s64, s64, u64[:, ::1],
    )

    # Compiled now (on the thread building the stream), not on the first batch.
    @numba.njit(signature)
    def place_run(  # pragma: no cover - machine code (run through the placer's tests)
        function: int, user: int, with_user: bool, data: Any, data_address: int, items_scratch: Any,
        items_address: int, stats_address: int, extra_address: int, items: Any, packets: Any,
        sizes: Any, start: int, end: int, head: int, out: Any,
    ) -> int:
        n_items = items.shape[1]
        data_size = np.uint64(80)  # sizeof(chunk_place_data)
        for i in range(start, end):
            for k in range(n_items):
                items_scratch[k] = items[i, k]
            data[0] = packets[i]
            data[1] = sizes[i]
            data[2] = items_address
            data[3] = minus_one
            data[4] = 0
            data[5] = 0
            data[6] = stats_address
            data[7] = extra_address
            data[8] = 0
            data[9] = 0
            call_place(function, data_address, data_size, user, with_user)  # type: ignore[call-arg]
            out[i, 0] = data[3]
            out[i, 1] = data[4]
            out[i, 2] = data[5]
            out[i, 3] = data[8]
            out[i, 4] = data[9]
            if np.int64(data[3]) > head or data[9] != 0:
                return i + 1
        return end

    return place_run
