"""The seam between readers and a stream (spead2/recv/_receiver.py): ``feed`` a batch, get GO/PAUSE/STOP."""

from __future__ import annotations

import asyncio

import pytest

from spead2.recv._config import RingStreamConfig, StreamConfig
from spead2.recv._stream import StreamCore
from spead2.transports.base import GO, PAUSE, STOP
from tests.helpers.packets import STOP as STOP_ITEM
from tests.helpers.packets import packet


@pytest.fixture
def loop():
    loop = asyncio.new_event_loop()
    yield loop
    loop.close()


def make_core(loop, heaps=4):
    return StreamCore(loop, StreamConfig(), RingStreamConfig(heaps=heaps))


def stats(core):
    return dict(zip((c.name for c in core.stat_configs), core.stats, strict=True))


def test_batch_statistics_belong_to_the_seam(loop):
    core = make_core(loop, heaps=100)
    assert core.feed([packet(i, 4, 0, b"abcd") for i in range(3)]) == GO
    assert core.feed([packet(i, 4, 0, b"abcd") for i in range(3, 10)]) == GO
    assert core.feed([packet(10, 4, 0, b"abcd"), packet(11, 4, 0, b"abcd")]) == GO
    assert core.feed([]) == GO  # an empty batch is no batch
    s = stats(core)
    assert (s["batches"], s["max_batch"], s["packets"], s["heaps"]) == (3, 7, 12, 12)
    assert core.ring.size() == 12  # published once per batch


def test_pause_when_the_ring_is_full(loop):
    core = make_core(loop, heaps=2)
    assert core.feed([packet(1, 4, 0, b"abcd")]) == GO
    # The whole batch goes in (heaps beyond the capacity are held), then PAUSE.
    assert core.feed([packet(i, 4, 0, b"abcd") for i in range(2, 5)]) == PAUSE
    assert core.ring.size() == 2
    assert core.ring.holding()
    assert stats(core)["heaps"] == 4
    assert stats(core)["worker_blocked"] == 1  # the first heap held
    assert core.feed([]) == PAUSE  # still full


def test_stop_item_stops_the_stream(loop):
    core = make_core(loop)
    verdict = core.feed([packet(1, 4, 0, b"abcd"), packet(2, 0, 0, b"", (STOP_ITEM,)), packet(3, 4, 0, b"abcd")])
    assert verdict == STOP
    assert core.stopped
    s = stats(core)
    assert (s["batches"], s["max_batch"], s["packets"]) == (1, 2, 2)  # the packet after the stop is not fed


def test_a_signal_handlers_exit_in_a_reader_task_is_not_a_reader_failure(loop, caplog):
    """SystemExit raised in a reader's task (a SIGTERM handler) is the runner's, not logged."""
    from spead2.transports.base import _report_crash

    async def ends_with(exc):
        raise exc

    exiting = loop.create_task(ends_with(SystemExit(143)))
    exiting.add_done_callback(_report_crash)
    with pytest.raises(SystemExit):
        loop.run_until_complete(exiting)
    failing = loop.create_task(ends_with(ValueError("a real failure")))
    failing.add_done_callback(_report_crash)
    with pytest.raises(ValueError):
        loop.run_until_complete(failing)
    loop.run_until_complete(asyncio.sleep(0))  # the done callbacks
    failures = [r for r in caplog.records if r.getMessage() == "receive reader failed"]
    assert [r.exc_info[1] for r in failures] == [failing.exception()]


def test_closing_a_reader_after_its_loop_closed_leaves_no_pending_task_report(caplog):
    """A reader task that can never run (its loop closed first) is not reported as destroyed."""
    import gc

    import spead2
    from spead2.transports.inproc import InprocReader

    loop = asyncio.new_event_loop()
    reader = InprocReader(make_core(loop), spead2.InprocQueue())
    reader.start()  # its task is created, never run
    loop.close()
    reader.close()
    del reader
    gc.collect()
    assert "Task was destroyed but it is pending" not in caplog.text
