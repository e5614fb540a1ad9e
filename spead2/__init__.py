"""spead2 for asyncio: a pure-Python, asyncio-native implementation of SPEAD.

The public API matches the C++-backed ``spead2`` library (4.5.1), so existing
code runs unchanged; see ``docs/differences.md`` for where we deliberately
differ (always to be correct where the reference is not).
"""

from typing import TYPE_CHECKING, Any

from ._errors import Empty, Full, Stopped
from ._items import Descriptor, Item, ItemGroup
from ._memory import MemoryAllocator, MemoryPool, MmapAllocator
from ._ranges import parse_range_list
from .protocols.constants import (
    BUG_COMPAT_DESCRIPTOR_WIDTHS,
    BUG_COMPAT_PYSPEAD_0_5_2,
    BUG_COMPAT_SHAPE_BIT_1,
    BUG_COMPAT_SWAP_ENDIAN,
    CTRL_DESCRIPTOR_REISSUE,
    CTRL_DESCRIPTOR_UPDATE,
    CTRL_STREAM_START,
    CTRL_STREAM_STOP,
    DESCRIPTOR_DESCRIPTION_ID,
    DESCRIPTOR_DTYPE_ID,
    DESCRIPTOR_FORMAT_ID,
    DESCRIPTOR_ID,
    DESCRIPTOR_ID_ID,
    DESCRIPTOR_NAME_ID,
    DESCRIPTOR_SHAPE_ID,
    HEAP_CNT_ID,
    HEAP_LENGTH_ID,
    MEMCPY_NONTEMPORAL,
    MEMCPY_STD,
    NULL_ID,
    PAYLOAD_LENGTH_ID,
    PAYLOAD_OFFSET_ID,
    STREAM_CTRL_ID,
)
from .protocols.constants import UNRESERVED_ID as _UNRESERVED_ID  # noqa: F401
from .protocols.flavour import Flavour
from .protocols.raw_descriptor import RawDescriptor

if TYPE_CHECKING:
    from ._inproc import InprocQueue
    from ._thread_pool import ThreadPool

#: Names whose modules need asyncio and threads, imported on first use, so
#: that importing the sans-IO core (``spead2.protocols``) loads no loop machinery.
_LAZY = {"InprocQueue": "._inproc", "ThreadPool": "._thread_pool"}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from importlib import import_module

    value = getattr(import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


#: The version of the spead2 API this package implements (that of the C++-backed
#: spead2 it is compatible with), so that code checking ``spead2.__version__``
#: keeps working. This package's own version is :data:`__implementation_version__`.
__version__ = "4.5.1"

#: Which implementation of the spead2 API this is: ``"aiospead2"`` (this
#: package). The C++-backed spead2 has no such attribute, so
#: ``getattr(spead2, "__implementation__", "spead2")`` tells the two apart.
__implementation__ = "aiospead2"

#: This package's own version (the ``aiospead2`` distribution's).
__implementation_version__ = "0.1.0"

# Not in __all__: _UNRESERVED_ID (private in the reference too).
__all__ = [
    "BUG_COMPAT_DESCRIPTOR_WIDTHS",
    "BUG_COMPAT_PYSPEAD_0_5_2",
    "BUG_COMPAT_SHAPE_BIT_1",
    "BUG_COMPAT_SWAP_ENDIAN",
    "CTRL_DESCRIPTOR_REISSUE",
    "CTRL_DESCRIPTOR_UPDATE",
    "CTRL_STREAM_START",
    "CTRL_STREAM_STOP",
    "DESCRIPTOR_DESCRIPTION_ID",
    "DESCRIPTOR_DTYPE_ID",
    "DESCRIPTOR_FORMAT_ID",
    "DESCRIPTOR_ID",
    "DESCRIPTOR_ID_ID",
    "DESCRIPTOR_NAME_ID",
    "DESCRIPTOR_SHAPE_ID",
    "HEAP_CNT_ID",
    "HEAP_LENGTH_ID",
    "MEMCPY_NONTEMPORAL",
    "MEMCPY_STD",
    "NULL_ID",
    "PAYLOAD_LENGTH_ID",
    "PAYLOAD_OFFSET_ID",
    "STREAM_CTRL_ID",
    "Descriptor",
    "Empty",
    "Flavour",
    "Full",
    "InprocQueue",
    "Item",
    "ItemGroup",
    "MemoryAllocator",
    "MemoryPool",
    "MmapAllocator",
    "RawDescriptor",
    "Stopped",
    "ThreadPool",
    "parse_range_list",
]
