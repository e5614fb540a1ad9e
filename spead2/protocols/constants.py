"""SPEAD item IDs, stream-control values, compatibility flags and memcpy choices."""

from typing import Final

NULL_ID: Final = 0x00
HEAP_CNT_ID: Final = 0x01
HEAP_LENGTH_ID: Final = 0x02
PAYLOAD_OFFSET_ID: Final = 0x03
PAYLOAD_LENGTH_ID: Final = 0x04
DESCRIPTOR_ID: Final = 0x05
STREAM_CTRL_ID: Final = 0x06
DESCRIPTOR_NAME_ID: Final = 0x10
DESCRIPTOR_DESCRIPTION_ID: Final = 0x11
DESCRIPTOR_SHAPE_ID: Final = 0x12
DESCRIPTOR_FORMAT_ID: Final = 0x13
DESCRIPTOR_ID_ID: Final = 0x14
DESCRIPTOR_DTYPE_ID: Final = 0x15

CTRL_STREAM_START: Final = 0
CTRL_DESCRIPTOR_REISSUE: Final = 1
CTRL_STREAM_STOP: Final = 2
CTRL_DESCRIPTOR_UPDATE: Final = 3

BUG_COMPAT_DESCRIPTOR_WIDTHS: Final = 1
BUG_COMPAT_SHAPE_BIT_1: Final = 2
BUG_COMPAT_SWAP_ENDIAN: Final = 4
BUG_COMPAT_PYSPEAD_0_5_2: Final = 7

MEMCPY_STD: Final = 0
MEMCPY_NONTEMPORAL: Final = 1

#: First ID handed out by ``ItemGroup.add_item(None, ...)``.
UNRESERVED_ID: Final = 0x1000

#: The flag bit of an item pointer whose value is immediate (the rest of the pointer)
#: rather than an address into the heap's payload.
IMMEDIATE: Final = 1 << 63

#: SPEAD magic byte and the only protocol version in use.
MAGIC: Final = 0x53
VERSION: Final = 4
