import asyncio
import threading

import pytest

import spead2


def test_add_copies_and_take_in_order():
    q = spead2.InprocQueue()
    data = bytearray(b"abc")
    q.add_packet(data)
    data[0] = ord("z")
    q.add_packet(memoryview(b"def"))
    batch, ended = q._take(10)
    assert batch == [b"abc", b"def"]
    assert not ended


def test_str_rejected():
    with pytest.raises(TypeError):
        spead2.InprocQueue().add_packet("text")


def test_stop_then_add_raises_and_drain_reports_end():
    q = spead2.InprocQueue()
    q.add_packet(b"x")
    q.stop()
    q.stop()  # idempotent
    with pytest.raises(spead2.Stopped):
        q.add_packet(b"y")
    assert q._take(1) == ([b"x"], True)


async def test_waiter_woken_from_another_thread():
    q = spead2.InprocQueue()
    waiter = q._wait(asyncio.get_running_loop())
    assert not waiter.done()
    threading.Thread(target=q.add_packet, args=(b"p",)).start()
    await asyncio.wait_for(waiter, 5)
    assert q._take(5) == ([b"p"], False)


async def test_waiter_woken_by_stop():
    q = spead2.InprocQueue()
    waiter = q._wait(asyncio.get_running_loop())
    q.stop()
    await asyncio.wait_for(waiter, 5)
    assert q._take(5) == ([], True)
