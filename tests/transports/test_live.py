"""``spead2.tools.live``: the state behind the live page, fed real received heaps.

Heaps are made by ``spead2.send``, turned into packets and received by a
``recv.Stream`` from a buffer (``stop_on_stop_item=False``, as the services
receive), so the view sees exactly what a service would. Clocks are fakes
the tests move by hand.
"""

from __future__ import annotations

import asyncio
import io
import json
import re
from typing import Any

import numpy as np
import pytest

import spead2
import spead2.recv
import spead2.send
from spead2.tools.live import LiveView, json_value, static_file


class Clock:
    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now


def receive(*heaps: spead2.send.Heap) -> list[spead2.recv.Heap]:
    """The heaps as a service receives them (stop heaps included)."""
    data = b"".join(
        bytes(packet)
        for cnt, heap in enumerate(heaps, 1)
        for packet in spead2.send.PacketGenerator(heap, cnt, 9000)
    )
    stream = spead2.recv.Stream(
        spead2.ThreadPool(), spead2.recv.StreamConfig(stop_on_stop_item=False, max_heaps=len(heaps))
    )
    stream.add_buffer_reader(data)
    return list(stream)


def make_view(**kwargs: Any) -> tuple[LiveView, Clock, Clock]:
    clock, wall = Clock(), Clock(1.8e9)
    return LiveView(clock=clock, wall_clock=wall, **kwargs), clock, wall


def update_event(text: str) -> dict[str, Any]:
    match = re.fullmatch(r"event: update\ndata: (.*)\n\n", text)
    assert match, text
    return json.loads(match[1])


def items_group() -> spead2.send.ItemGroup:
    group = spead2.send.ItemGroup()
    group.add_item(0x1000, "timestamp", "Sample counter", (), format=[("u", 48)])
    group.add_item(0x1001, "temperature", "Degrees", (), dtype=np.float64)
    group.add_item(0x1002, "spectrum", "Long spectrum", (2000,), dtype=np.float32)
    group.add_item(0x1003, "short", "Short spectrum", (64,), dtype=np.int16)
    group.add_item(0x1004, "beam", "An image", (300, 10), dtype=np.float32)
    group.add_item(0x1005, "gain", "Complex gains", (4,), dtype=np.complex64)
    group.add_item(0x1006, "label", "Text", (None,), format=[("c", 8)])
    group.add_item(0x1007, "cube", "3-D", (2, 2, 2), dtype=np.uint8)
    group.add_item(0x1008, "one", "A 1-element array", (1, 1), dtype=np.float32)
    return group


def fill(group: spead2.send.ItemGroup, i: int) -> None:
    spectrum = np.arange(2000, dtype=np.float32) + i
    spectrum[7] = np.nan
    group["timestamp"].value = 100 + i
    group["temperature"].value = 20.5 + i
    group["spectrum"].value = spectrum
    group["short"].value = np.arange(64, dtype=np.int16) * (i + 1)
    group["beam"].value = np.ones((300, 10), np.float32) * i
    group["gain"].value = np.array([3 + 4j, 0, 1j, -2], np.complex64)
    group["label"].value = f"heap {i}"
    group["cube"].value = np.zeros((2, 2, 2), np.uint8)
    group["one"].value = np.full((1, 1), 2.5, np.float32)


def test_each_kind_of_item_is_drawn_its_way() -> None:
    view, clock, _ = make_view(plot_points=500, waterfall_bins=100)
    group = items_group()
    fill(group, 1)
    for heap in receive(group.get_heap()):
        view.add_heap(heap)
    clock.now += 0.5
    items = update_event(view.sample())["items"]
    assert {name: item["kind"] for name, item in items.items()} == {
        "timestamp": "scalar", "temperature": "scalar", "spectrum": "spectrum",
        "short": "spectrum", "beam": "image", "gain": "spectrum", "label": "text",
        "cube": "text", "one": "scalar",
    }
    assert items["timestamp"]["value"] == 101 and items["timestamp"]["point"][1] == 101
    assert items["one"]["value"] == 2.5 and items["one"]["shape"] == [1, 1]
    spectrum = items["spectrum"]
    assert spectrum["length"] == 2000 and spectrum["shape"] == [2000]
    assert len(spectrum["line"]) == 500  # 4 channels a point: mean, with min and max as a band
    assert spectrum["line"][0] == 2.5 and spectrum["low"][0] == 1 and spectrum["high"][0] == 4
    # Channel 7 is NaN: left out of its bin (channels 4-7 hold 5, 6, 7, NaN).
    assert (spectrum["line"][1], spectrum["low"][1], spectrum["high"][1]) == (6, 5, 7)
    assert len(spectrum["row"]) == 100  # 20 channels a value
    assert spectrum["row"][0] == pytest.approx((210 - 8) / 19, rel=1e-5)
    assert spectrum["row"][1] == pytest.approx(np.mean(np.arange(21, 41)), rel=1e-5)
    short = items["short"]
    assert short["line"] == [2 * i for i in range(64)] and "low" not in short
    assert items["gain"]["complex"] and items["gain"]["line"] == [5, 0, 1, 2]  # magnitudes
    image = items["beam"]["image"]
    assert len(image) == 100 and {len(row) for row in image} == {10} and image[0][0] == 1
    assert items["label"]["text"] == "heap 1"
    assert items["cube"]["text"].startswith("[[[0, 0]")


def test_rates_losses_and_history() -> None:
    view, clock, wall = make_view(interval=0.5, history=3)
    group = items_group()
    heaps = []
    for i in range(8):
        fill(group, i)
        heaps += receive(group.get_heap())
    samples = []
    for heap in heaps:  # two heaps per half second: 4 heaps/s
        view.add_heap(heap)
        if heap is heaps[1] or heap is heaps[3] or heap is heaps[5] or heap is heaps[7]:
            clock.now += 0.5
            wall.now += 0.5
            samples.append(update_event(view.sample()))
    stats = view.stats()
    assert stats["heaps"] == 8 and stats["heap_rate"] == pytest.approx(4.0)
    # Averaged over the last 2 s (4 samples): here, every heap.
    assert stats["rate_bps"] == pytest.approx(sum(len(h.payload) for h in heaps) * 8 / 2.0)
    assert stats["state"] == "receiving" and stats["incomplete_heaps"] == 0
    snapshot = view.snapshot()
    assert len(snapshot["samples"]) == 3  # history=3
    assert [s[0] for s in snapshot["samples"]] == [1.8e9 + 1.0, 1.8e9 + 1.5, 1.8e9 + 2.0]
    assert list(snapshot["items"]["temperature"]["history"]) == [
        (1.8e9 + 1.0, 23.5), (1.8e9 + 1.5, 25.5), (1.8e9 + 2.0, 27.5)]
    assert len(snapshot["items"]["spectrum"]["waterfall"]) == 4  # waterfall_rows default 120
    wall.now += 5
    assert view.state() == "idle"


def test_waterfall_is_bounded_and_restarts_when_the_length_changes() -> None:
    view, clock, _ = make_view(waterfall_rows=2)
    group = spead2.send.ItemGroup()
    group.add_item(0x1000, "spectrum", "", (None,), format=[("f", 32)])
    for length in (8, 8, 8, 16):
        group["spectrum"].value = np.zeros(length, np.float32)
        for heap in receive(group.get_heap()):
            view.add_heap(heap)
        clock.now += 0.5
        view.sample()
    assert view.snapshot()["items"]["spectrum"]["waterfall"] == [[0.0] * 16]


def test_stop_heap_ends_a_stream_and_the_next_replaces_its_items() -> None:
    view, clock, _ = make_view()
    old = spead2.send.ItemGroup()
    old.add_item(0x1000, "old", "", (), dtype=np.float64)
    old["old"].value = 1.0
    new = spead2.send.ItemGroup()
    new.add_item(0x1000, "new", "", (), dtype=np.float64)
    new["new"].value = 2.0
    first = receive(old.get_heap(), old.get_end())
    assert first[-1].is_end_of_stream()
    for heap in first:
        view.add_heap(heap)
    assert view.state() == "ended" and view.streams_ended == 1
    assert set(view.items()) == {"old"}
    generation = update_event(view.sample())["generation"]
    for heap in receive(new.get_heap()):
        view.add_heap(heap)
    clock.now += 0.5
    event = update_event(view.sample())
    assert event["generation"] == generation + 1  # the page drops the old stream's items
    assert set(event["items"]) == {"new"} and set(view.items()) == {"new"}
    assert view.state() == "receiving" and view.stats()["heaps"] == 3


def test_bad_heap_is_counted_and_the_next_good_one_shown() -> None:
    view, _, _ = make_view()
    group = spead2.send.ItemGroup()
    group.add_item(0x1001, "spectrum", "", (64,), dtype=np.float32)
    group["spectrum"].value = np.zeros(64, np.float32)
    bad = spead2.send.Heap()  # the same ID, too short for the shape described
    bad.add_item(spead2.Item(0x1001, "spectrum", "", (4,), dtype=np.float32,
                             value=np.ones(4, np.float32)))
    heaps = receive(group.get_heap(), bad)
    group["spectrum"].value = np.full(64, 7, np.float32)
    heaps += receive(group.get_heap(descriptors="none"))
    for heap in heaps:
        view.add_heap(heap)
    assert view.bad_heaps == 1
    assert view.items()["spectrum"]["value"]["first"][0] == 7.0


def test_full_values_as_json_and_npy() -> None:
    view, _, _ = make_view()
    group = items_group()
    fill(group, 3)
    for heap in receive(group.get_heap()):
        view.add_heap(heap)
    full = view.item("spectrum")
    assert full is not None and full["shape"] == [2000] and full["dtype"] == "float32"
    assert len(full["value"]) == 2000 and full["value"][7] == "nan" and full["value"][8] == 11
    summary = view.items()["spectrum"]["value"]
    assert summary["shape"] == [2000] and len(summary["first"]) == 16
    gains = view.item("gain")
    assert gains is not None and gains["value"] == {"real": [3, 0, 0, -2], "imag": [4, 0, 1, 0]}
    data = view.item_npy("beam")
    assert data is not None
    np.testing.assert_array_equal(np.load(io.BytesIO(data)), np.full((300, 10), 3, np.float32))
    label = view.item_npy("label")
    assert label is not None and np.load(io.BytesIO(label)) == "heap 3"
    assert view.item("missing") is None and view.item_npy("missing") is None


async def test_events_snapshot_then_updates_until_closed() -> None:
    view, clock, _ = make_view(title="UDP <test>")
    events = view.events()
    first = await anext(events)
    assert first.startswith("retry: 2000\n\nevent: snapshot\ndata: ")
    snapshot = json.loads(first.split("data: ", 1)[1])
    assert snapshot["title"] == "UDP <test>" and snapshot["items"] == {}
    waiting = asyncio.ensure_future(anext(events))
    await asyncio.sleep(0)
    clock.now += 0.5
    sent = view.sample()
    assert await asyncio.wait_for(waiting, 5) == sent
    # A browser that stops reading misses updates and gets a fresh snapshot instead.
    for _ in range(20):
        clock.now += 0.5
        view.sample()
    resync = await asyncio.wait_for(anext(events), 5)
    assert resync.startswith("event: snapshot\n") and len(json.loads(resync[22:])["samples"]) == 21
    view.close()
    with pytest.raises(StopAsyncIteration):
        await asyncio.wait_for(anext(events), 5)


async def test_run_samples_at_its_interval_until_closed() -> None:
    view = LiveView(interval=0.01)
    events = view.events()
    await anext(events)
    task = asyncio.create_task(view.run())
    update = await asyncio.wait_for(anext(events), 5)
    assert update.startswith("event: update\n")
    view.close()
    await asyncio.wait_for(task, 5)
    with pytest.raises(StopAsyncIteration):
        await asyncio.wait_for(anext(events), 5)


def test_page_and_static_files_are_self_contained() -> None:
    page = LiveView(title="<b>239.1.2.3:7148</b>").page()
    assert "<title>&lt;b&gt;239.1.2.3:7148&lt;/b&gt; · spead2 live</title>" in page
    assert 'src="static/live.js"' in page and 'href="static/live.css"' in page
    for name in ("page.html", "live.js", "live.css"):
        found = static_file(name)
        assert found is not None
        # Nothing loaded from another site: observatory networks often have no internet.
        assert not re.search(rb"(https?:)?//[a-z0-9.-]+\.[a-z]{2,}/", found[0]), name
    assert static_file("live.js")[1] == "text/javascript"  # type: ignore[index]
    for name in ("../__init__.py", "/etc/passwd", ".hidden.js", "missing.js", "page", "x.py"):
        assert static_file(name) is None, name


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"interval": 0}, "interval must be positive, not 0"),
     ({"history": 0}, "history must be at least 1, not 0"),
     ({"waterfall_bins": -1}, "waterfall_bins must be at least 1, not -1")],
)
def test_bad_parameters_are_named(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        LiveView(**kwargs)


def test_json_value_conversions() -> None:
    assert json_value(np.uint32(7)) == 7
    assert json_value(np.float64(1.5)) == 1.5
    assert json_value(np.arange(3)) == [0, 1, 2]
    assert json_value(b"ab") == "ab"
    assert json_value(float("nan")) == "nan"
    assert json_value(np.array([np.inf, -np.inf])) == ["inf", "-inf"]
    assert json_value(np.array([(1, 2)], dtype=[("a", "u1"), ("b", "i2")])) == [[1, 2]]
    big = json_value(np.arange(100, dtype=np.int16).reshape(10, 10), 16)
    assert big["shape"] == [10, 10] and big["first"] == list(range(16)) and big["max"] == 99
    assert json_value(np.arange(100), None) == list(range(100))
