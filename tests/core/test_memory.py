import logging

import pytest

import spead2


def test_default_allocator_zero_filled():
    buffer = spead2.MemoryAllocator().allocate(16)
    assert bytes(buffer) == bytes(16)


def test_mmap_allocator():
    allocator = spead2.MmapAllocator(flags=0, prefer_huge=True)
    buffer = allocator.allocate(1 << 20)
    view = memoryview(buffer)
    assert len(view) == 1 << 20 and not view.readonly
    assert view[12345] == 0
    assert len(memoryview(allocator.allocate(0))) == 0


def test_pool_serves_range_and_recycles():
    pool = spead2.MemoryPool(100, 200, max_free=2, initial=1)
    assert pool.free_buffers == 1
    buffer = pool.allocate(150)
    assert len(memoryview(buffer)) == 150 and pool.free_buffers == 0
    memoryview(buffer)[:3] = b"abc"
    pool.release(buffer)
    assert pool.free_buffers == 1
    again = pool.allocate(120)
    assert bytes(again) == bytes(120)  # recycled memory is cleared
    outside = pool.allocate(1000)
    assert len(memoryview(outside)) == 1000


def test_pool_warns_when_empty(caplog):
    pool = spead2.MemoryPool(1, 10, 1, 0)
    with caplog.at_level(logging.WARNING, logger="spead2"):
        pool.allocate(5)
    assert "memory pool is empty" in caplog.text
    pool.warn_on_empty = False
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="spead2"):
        pool.allocate(5)
    assert caplog.text == ""


def test_pool_argument_errors():
    with pytest.raises(TypeError, match="missing"):
        spead2.MemoryPool(1, 2)
    with pytest.raises(TypeError, match="lower"):
        spead2.MemoryPool(-1, 2, 3, 4)
    with pytest.raises(TypeError, match="at most"):
        spead2.MemoryPool(1, 2, 3, 4, None, 6)
