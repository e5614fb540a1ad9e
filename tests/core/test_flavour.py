import pytest

import spead2
from spead2 import Flavour


def test_default_is_spead_64_40():
    f = Flavour()
    assert (f.version, f.item_pointer_bits, f.heap_address_bits, f.bug_compat) == (4, 64, 40, 0)


@pytest.mark.parametrize("bits", [8, 16, 24, 32, 40, 48, 56])
def test_every_multiple_of_8_accepted(bits):
    assert Flavour(4, 64, bits).heap_address_bits == bits


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((3, 64, 40), "Version is not supported"),
        ((4, 48, 40), "item_pointer_bits not supported"),
        ((4, 64, 0), "heap_address_bits out of range"),
        ((4, 64, 64), "heap_address_bits out of range"),
        ((4, 64, -8), "heap_address_bits out of range"),
        ((4, 64, 41), "heap_address_bits not a multiple of 8"),
    ],
)
def test_invalid(args, message):
    with pytest.raises(ValueError, match=message):
        Flavour(*args)


def test_equality_and_unhashable():
    assert Flavour() == Flavour(4, 64, 40, 0)
    assert Flavour() != Flavour(4, 64, 48, 0)
    assert Flavour() != Flavour(4, 64, 40, spead2.BUG_COMPAT_PYSPEAD_0_5_2)
    with pytest.raises(TypeError):
        hash(Flavour())


def test_constants_match_reference():
    assert (spead2.NULL_ID, spead2.HEAP_CNT_ID, spead2.STREAM_CTRL_ID) == (0, 1, 6)
    assert spead2.DESCRIPTOR_DTYPE_ID == 0x15
    assert spead2.DESCRIPTOR_ID_ID == 0x14
    assert spead2.BUG_COMPAT_PYSPEAD_0_5_2 == (
        spead2.BUG_COMPAT_DESCRIPTOR_WIDTHS | spead2.BUG_COMPAT_SHAPE_BIT_1 | spead2.BUG_COMPAT_SWAP_ENDIAN
    )
    assert spead2._UNRESERVED_ID == 0x1000
    assert spead2.__version__ == "4.5.1"
    assert not issubclass(spead2.Stopped, RuntimeError)
    assert issubclass(spead2.Empty, Exception)
