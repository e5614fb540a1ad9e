"""A live view of received SPEAD streams for a web browser: the state behind the page, and the page.

One :class:`LiveView` is fed every received heap (:meth:`LiveView.add_heap`)
and samples the streams' statistics at a fixed interval (:meth:`LiveView.run`).
It keeps what an observer wants to see:

* the latest value of every item, and for display: 1-D numeric arrays as a
  line (a spectrum) and a *waterfall* of recent spectra, 2-D arrays as an
  image, scalars with a short history, anything else as text;
* the data rate, heap rate and losses (incomplete heaps, dropped packets)
  over the last few minutes.

A page (HTML, a small canvas plotting script and a style sheet, all shipped
in this package, so no internet access is needed) shows it and is updated by
*server-sent events*: one full ``snapshot`` when a browser connects, then one
small ``update`` per interval. Any web framework can serve it; it needs these
routes (paths relative to where the page is served):

=================================== ==========================================================
``/``                               :meth:`LiveView.page` (``text/html``)
``/static/<name>``                  :func:`static_file` (the script and the style sheet)
``/api/events``                     :meth:`LiveView.events` (``text/event-stream``)
``/api/stats``                      :meth:`LiveView.stats` as JSON
``/api/items``                      :meth:`LiveView.items` as JSON (big arrays summarised)
``/api/items/<name>``               :meth:`LiveView.item` as JSON: the full value
``/api/items/<name>?format=npy``    :meth:`LiveView.item_npy`: the full value as a ``.npy`` file
=================================== ==========================================================

``examples/web_service.py`` (aiohttp), ``examples/fastapi_service.py``
(FastAPI) and ``spead2_recv --http-port`` serve it.
"""

from __future__ import annotations

import asyncio
import collections
import importlib.resources
import io
import json
import math
import time
import warnings
from collections.abc import AsyncGenerator, Callable, Iterable
from typing import Any

import numpy as np

import spead2
import spead2.recv

from .._progress import Progress

__all__ = ["LiveView", "json_value", "static_file", "STATIC_TYPES"]

#: Content types of the files under ``static/``, by suffix.
STATIC_TYPES = {".js": "text/javascript", ".css": "text/css", ".html": "text/html"}
#: Summaries (``/api/items``) show at most this many elements of an array.
SUMMARY_ELEMENTS = 16
#: Text values are cut to this many characters for display.
TEXT_CHARS = 400
#: Rates are averaged over about this many seconds (at least two samples).
RATE_WINDOW = 2.0


def static_file(name: str) -> tuple[bytes, str] | None:
    """The bytes and content type of one of the page's files, or None if there is no such file."""
    suffix = name[name.rfind(".") :] if "." in name else ""
    if "/" in name or "\\" in name or name.startswith(".") or suffix not in STATIC_TYPES:
        return None
    resource = importlib.resources.files(__name__).joinpath("static", name)
    if not resource.is_file():
        return None
    return resource.read_bytes(), STATIC_TYPES[suffix]


def json_value(value: Any, max_elements: int | None = None) -> Any:
    """A JSON-friendly form of an item value.

    Numeric arrays with more than ``max_elements`` elements are summarised
    (shape, dtype, first elements, min/max/mean); None keeps them whole.
    Complex values become ``{"real": ..., "imag": ...}``; NaN and infinities
    become the strings ``"nan"``, ``"inf"``, ``"-inf"``.
    """
    if isinstance(value, np.ndarray):
        if (
            max_elements is not None
            and value.dtype.kind in "biuf"
            and value.size > max_elements
        ):
            flat = value.ravel()
            return {
                "shape": list(value.shape),
                "dtype": str(value.dtype),
                "first": json_value(flat[:max_elements].tolist()),
                "min": json_value(flat.min().item()),
                "max": json_value(flat.max().item()),
                "mean": json_value(float(flat.mean())),
            }
        if value.dtype.kind == "c":
            return {
                "real": json_value(value.real, max_elements),
                "imag": json_value(value.imag, max_elements),
            }
        return json_value(value.tolist())
    if isinstance(value, np.generic):
        return json_value(value.item())
    if isinstance(value, complex):
        return {"real": json_value(value.real), "imag": json_value(value.imag)}
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, bytes):
        return value.decode("ascii", "replace")
    if isinstance(value, (list, tuple)):
        return [json_value(v) for v in value]
    return value


def _plot_numbers(values: np.ndarray) -> list[float | None]:
    """Numbers for a plot: 6 significant digits (short JSON), None for NaN and infinities."""
    return [float(f"{v:.6g}") if math.isfinite(v) else None for v in values.tolist()]


def _as_real(value: np.ndarray) -> np.ndarray:
    """A float64 array to plot: magnitudes of complex values, 0/1 for booleans."""
    if value.dtype.kind == "c":
        return np.abs(value).astype(np.float64)
    return value.astype(np.float64)


def _decimate(values: np.ndarray, points: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean, minimum and maximum of ``values`` (1-D) over at most ``points`` equal bins."""
    if values.size <= points:
        return values, values, values
    per_bin = -(-values.size // points)
    padded = np.full(per_bin * (-(-values.size // per_bin)), np.nan)
    padded[: values.size] = values
    bins = padded.reshape(-1, per_bin)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # bins that are all NaN
        return np.nanmean(bins, axis=1), np.nanmin(bins, axis=1), np.nanmax(bins, axis=1)


def _decimate_2d(values: np.ndarray, size: int) -> np.ndarray:
    """Means of ``values`` (2-D) over blocks, leaving at most ``size`` x ``size`` of them."""
    rows, cols = values.shape
    step_r, step_c = -(-rows // size), -(-cols // size)
    if step_r == 1 and step_c == 1:
        return values
    padded = np.full((step_r * -(-rows // step_r), step_c * -(-cols // step_c)), np.nan)
    padded[:rows, :cols] = values
    blocks = padded.reshape(padded.shape[0] // step_r, step_r, padded.shape[1] // step_c, step_c)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmean(blocks, axis=(1, 3))


def _kind(value: Any) -> str:
    """How an item is shown: ``scalar``, ``spectrum`` (1-D), ``image`` (2-D) or ``text``."""
    if isinstance(value, (bool, int, float, complex, np.bool_, np.number)):
        return "scalar"
    if isinstance(value, np.ndarray) and value.dtype.kind in "biufc" and value.size > 0:
        squeezed = value.squeeze()
        if squeezed.ndim == 0:
            return "scalar"
        if squeezed.ndim in (1, 2):
            return "spectrum" if squeezed.ndim == 1 else "image"
    return "text"


def _scalar(value: Any) -> float | None:
    """A scalar item's value as a plottable number (magnitude if complex)."""
    number = complex(np.asarray(value).reshape(()).item())
    result = abs(number) if number.imag else number.real
    return result if math.isfinite(result) else None


def _text(value: Any) -> str:
    if isinstance(value, bytes):
        value = value.decode("ascii", "replace")
    text = value if isinstance(value, str) else repr(json_value(value, SUMMARY_ELEMENTS))
    return text if len(text) <= TEXT_CHARS else text[: TEXT_CHARS - 1] + "…"


class _ItemView:
    """What the view keeps about one item."""

    __slots__ = ("item", "kind", "updates", "updated", "dirty", "history", "waterfall")

    def __init__(self, item: spead2.Item, history: int, waterfall_rows: int) -> None:
        self.item = item
        self.kind = "text"
        self.updates = 0
        self.updated = 0.0
        self.dirty = False
        self.history: collections.deque[tuple[float, float | None]] = collections.deque(
            maxlen=history
        )
        self.waterfall: collections.deque[list[float | None]] = collections.deque(
            maxlen=waterfall_rows
        )


class _Subscriber:
    __slots__ = ("queue", "resync")

    def __init__(self) -> None:
        self.queue: asyncio.Queue[str | None] = asyncio.Queue(maxsize=8)
        self.resync = False


def _event(kind: str, payload: dict[str, Any]) -> str:
    """One server-sent event (JSON on a single line)."""
    return f"event: {kind}\ndata: {json.dumps(payload, separators=(',', ':'))}\n\n"


class LiveView:
    """The live state of one or more receive streams, as a web page shows it.

    Parameters
    ----------
    streams
        The streams whose statistics (incomplete heaps, invalid packets) are shown.
    udp_ports
        UDP ports received on: on Linux the kernel's drop counts for them are
        shown as dropped packets too.
    title
        Shown at the top of the page (for example the address received on).
    interval
        Seconds between samples (and updates pushed to browsers).
    history
        Samples kept for the rate graphs and each scalar's history.
    waterfall_rows
        Spectra kept for each waterfall.
    plot_points
        A spectrum is drawn with at most this many points (longer ones are
        binned: mean, with the minimum and maximum as a band).
    waterfall_bins
        Waterfall rows (and 2-D images, per side) are binned to at most this many values.
    """

    def __init__(
        self,
        streams: Iterable[spead2.recv.Stream] = (),
        udp_ports: Iterable[int] = (),
        *,
        title: str = "",
        interval: float = 0.5,
        history: int = 240,
        waterfall_rows: int = 120,
        plot_points: int = 1024,
        waterfall_bins: int = 256,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        if not interval > 0:
            raise ValueError(f"interval must be positive, not {interval!r}")
        for name, count in (("history", history), ("waterfall_rows", waterfall_rows),
                            ("plot_points", plot_points), ("waterfall_bins", waterfall_bins)):
            if count < 1:
                raise ValueError(f"{name} must be at least 1, not {count!r}")
        self.title = title
        self.interval = interval
        self.history = history
        self.waterfall_rows = waterfall_rows
        self.plot_points = plot_points
        self.waterfall_bins = waterfall_bins
        self._clock = clock
        self._wall_clock = wall_clock
        self._progress = Progress(streams, udp_ports, clock=clock)
        self.item_group = spead2.ItemGroup()
        self.bad_heaps = 0
        #: Stop heaps seen (each ends one stream; the view waits for the next).
        self.streams_ended = 0
        self._ended = False
        self._generation = 0
        self._items: dict[str, _ItemView] = {}
        self._samples: collections.deque[list[float | None]] = collections.deque(maxlen=history)
        self._started = wall_clock()
        self._last_heap = 0.0
        self._last_counts = (0, 0, 0, 0)
        # (time, heaps, bytes) of the samples the rates are averaged over.
        self._rate_points: collections.deque[tuple[float, int, int]] = collections.deque(
            [(clock(), 0, 0)], maxlen=max(2, math.ceil(RATE_WINDOW / interval) + 1)
        )
        self._rate = 0.0
        self._heap_rate = 0.0
        self._subscribers: set[_Subscriber] = set()
        self._closed = False

    # -- feeding ---------------------------------------------------------------------------

    def add_heap(self, heap: spead2.recv.HeapBase) -> None:
        """Take one received heap: count it and update the items it carries.

        A heap that does not match its descriptors is counted in
        ``bad_heaps`` and otherwise ignored. A heap with a stop item (a stream
        received with ``stop_on_stop_item=False`` delivers it) ends the
        current stream: the next heap starts a new one, whose items replace
        the old ones.
        """
        self._progress.add_heap(heap)
        self._last_heap = self._wall_clock()
        if self._ended:  # the first heap of the next stream
            self._ended = False
            self._generation += 1
            self._items.clear()
            self.item_group = spead2.ItemGroup()
        if isinstance(heap, spead2.recv.Heap):
            try:
                updated = self.item_group.update(heap)
            except ValueError:
                self.bad_heaps += 1
                updated = {}
            for name, item in updated.items():
                view = self._items.get(name)
                if view is None or view.item is not item:
                    view = self._items[name] = _ItemView(item, self.history, self.waterfall_rows)
                view.updates += 1
                view.updated = self._last_heap
                view.dirty = True
                if view.updates == 1:
                    view.kind = _kind(item.value)
        if heap.is_end_of_stream():
            self.end_stream()

    def end_stream(self) -> None:
        """The current stream has ended (a stop heap): show it, and wait for the next one."""
        if not self._ended:
            self._ended = True
            self.streams_ended += 1

    # -- sampling ----------------------------------------------------------------------------

    def state(self) -> str:
        """``waiting`` (no heap yet), ``receiving``, ``idle`` (nothing for 2 s) or ``ended``."""
        if self._ended:
            return "ended"
        if not self._progress.heaps:
            return "waiting"
        return "receiving" if self._wall_clock() - self._last_heap < 2.0 else "idle"

    def stats(self) -> dict[str, Any]:
        """Counters and rates (as of the last sample) and every stream's statistics."""
        incomplete, dropped = self._progress.counts()
        return {
            "heaps": self._progress.heaps,
            "bytes": self._progress.bytes,
            "bad_heaps": self.bad_heaps,
            "incomplete_heaps": incomplete,
            "dropped_packets": dropped,
            "rate_bps": self._rate,
            "heap_rate": self._heap_rate,
            "state": self.state(),
            "streams_ended": self.streams_ended,
            "last_heap": self._last_heap or None,
            "uptime": self._wall_clock() - self._started,
            "streams": [dict(stream.stats.items()) for stream in self._progress.streams],
        }

    def _display(self, view: _ItemView, full: bool) -> dict[str, Any]:
        """How the page draws one item; ``full`` adds the histories (for a snapshot)."""
        item = view.item
        value = item.value
        shape = list(np.shape(value)) if isinstance(value, np.ndarray) else []
        result: dict[str, Any] = {
            "name": item.name,
            "id": item.id,
            "description": item.description,
            "kind": view.kind,
            "shape": shape,
            "dtype": str(value.dtype) if isinstance(value, (np.ndarray, np.generic)) else
            type(value).__name__,
            "updates": view.updates,
            "updated": view.updated,
        }
        if view.kind == "scalar":
            result["value"] = _scalar(value)
            result["text"] = _text(value)
            if full:
                result["history"] = list(view.history)
            elif view.history:
                result["point"] = view.history[-1]
        elif view.kind == "spectrum":
            real = _as_real(np.asarray(value).ravel())
            mean, low, high = _decimate(real, self.plot_points)
            result["complex"] = np.asarray(value).dtype.kind == "c"
            result["length"] = int(real.size)
            result["line"] = _plot_numbers(mean)
            if mean is not real:
                result["low"] = _plot_numbers(low)
                result["high"] = _plot_numbers(high)
            if full:
                result["waterfall"] = list(view.waterfall)
            elif view.waterfall:
                result["row"] = view.waterfall[-1]
        elif view.kind == "image":
            matrix = _as_real(np.asarray(value).squeeze())
            binned = _decimate_2d(matrix, self.waterfall_bins)
            result["complex"] = np.asarray(value).dtype.kind == "c"
            result["image"] = [_plot_numbers(row) for row in binned]
        else:
            result["text"] = _text(value)
        return result

    def sample(self) -> str:
        """Take one sample: rates since the last one, and the items updated since.

        Returns the ``update`` event (already sent to every browser watching).
        """
        now = self._clock()
        wall = self._wall_clock()
        incomplete, dropped = self._progress.counts()
        counts = (self._progress.heaps, self._progress.bytes, incomplete, dropped)
        deltas = [new - old for new, old in zip(counts, self._last_counts, strict=True)]
        self._last_counts = counts
        self._rate_points.append((now, counts[0], counts[1]))
        first, last = self._rate_points[0], self._rate_points[-1]
        if last[0] > first[0]:
            self._heap_rate = (last[1] - first[1]) / (last[0] - first[0])
            self._rate = (last[2] - first[2]) * 8 / (last[0] - first[0])
        sample: list[float | None] = [
            round(wall, 3), self._rate, self._heap_rate, deltas[2], deltas[3]
        ]
        self._samples.append(sample)
        items = {}
        for name, view in self._items.items():
            if not view.dirty:
                continue
            view.dirty = False
            view.kind = _kind(view.item.value)
            self._record(view, wall)
            items[name] = self._display(view, full=False)
        event = _event("update", {
            "time": wall, "generation": self._generation, "stats": self._stats_line(),
            "sample": sample, "items": items,
        })
        self._publish(event)
        return event

    def _record(self, view: _ItemView, wall: float) -> None:
        """Add the item's latest value to its history or waterfall."""
        value = view.item.value
        if view.kind == "scalar":
            view.history.append((round(wall, 3), _scalar(value)))
        elif view.kind == "spectrum":
            mean, _, _ = _decimate(_as_real(np.asarray(value).ravel()), self.waterfall_bins)
            if view.waterfall and len(view.waterfall[-1]) != mean.size:
                view.waterfall.clear()  # the length changed: old rows no longer line up
            view.waterfall.append(_plot_numbers(mean))

    def _stats_line(self) -> dict[str, Any]:
        """The counters the page shows at the top (a subset of :meth:`stats`)."""
        incomplete, dropped = self._last_counts[2], self._last_counts[3]
        return {
            "heaps": self._progress.heaps, "bytes": self._progress.bytes,
            "bad_heaps": self.bad_heaps, "incomplete_heaps": incomplete,
            "dropped_packets": dropped, "rate_bps": self._rate, "heap_rate": self._heap_rate,
            "state": self.state(), "streams_ended": self.streams_ended,
            "last_heap": self._last_heap or None, "started": self._started,
        }

    def snapshot(self) -> dict[str, Any]:
        """Everything the page shows: sent to a browser when it connects."""
        return {
            "time": self._wall_clock(),
            "title": self.title,
            "interval": self.interval,
            "history": self.history,
            "waterfall_rows": self.waterfall_rows,
            "generation": self._generation,
            "stats": self._stats_line(),
            "samples": list(self._samples),
            "items": {name: self._display(view, full=True) for name, view in self._items.items()},
        }

    async def run(self) -> None:
        """Sample every ``interval`` seconds until :meth:`close` (or cancellation)."""
        try:
            while not self._closed:
                await asyncio.sleep(self.interval)
                self.sample()
        finally:
            self.close()

    def close(self) -> None:
        """End every :meth:`events` stream (for a server shutting down)."""
        self._closed = True
        for subscriber in self._subscribers:
            self._put(subscriber, None)

    # -- serving --------------------------------------------------------------------------------

    def _put(self, subscriber: _Subscriber, event: str | None) -> None:
        try:
            subscriber.queue.put_nowait(event)
        except asyncio.QueueFull:
            # A browser that cannot keep up gets a fresh snapshot once it reads again.
            subscriber.resync = True
            while not subscriber.queue.empty():
                subscriber.queue.get_nowait()
            subscriber.queue.put_nowait(event)

    def _publish(self, event: str) -> None:
        for subscriber in self._subscribers:
            self._put(subscriber, event)

    async def events(self) -> AsyncGenerator[str]:
        """Server-sent events for one browser: a ``snapshot``, then an ``update`` per sample.

        Ends when :meth:`close` is called; a browser that reads too slowly
        misses updates and is sent a new snapshot instead.
        """
        subscriber = _Subscriber()
        self._subscribers.add(subscriber)
        try:
            yield "retry: 2000\n\n" + _event("snapshot", self.snapshot())
            while not self._closed:
                event = await subscriber.queue.get()
                if event is None:
                    return
                if subscriber.resync:
                    subscriber.resync = False
                    event = _event("snapshot", self.snapshot())
                yield event
        finally:
            self._subscribers.discard(subscriber)

    def items(self) -> dict[str, Any]:
        """The latest value of every item, big arrays summarised (``/api/items``)."""
        return {
            name: {
                "id": view.item.id,
                "description": view.item.description,
                "value": json_value(view.item.value, SUMMARY_ELEMENTS),
                "updated": view.updated,
            }
            for name, view in self._items.items()
        }

    def item(self, name: str) -> dict[str, Any] | None:
        """The full latest value of one item (``/api/items/<name>``), or None if there is none."""
        view = self._items.get(name)
        if view is None:
            return None
        value = view.item.value
        return {
            "name": name,
            "id": view.item.id,
            "description": view.item.description,
            "shape": list(np.shape(value)) if isinstance(value, np.ndarray) else [],
            "dtype": str(value.dtype) if isinstance(value, (np.ndarray, np.generic)) else None,
            "updated": view.updated,
            "value": json_value(value),
        }

    def item_npy(self, name: str) -> bytes | None:
        """The latest value of one item as a ``.npy`` file, or None if there is none."""
        view = self._items.get(name)
        if view is None:
            return None
        buffer = io.BytesIO()
        try:
            np.save(buffer, np.asarray(view.item.value), allow_pickle=False)
        except ValueError:  # not representable without pickling (mixed lists)
            return None
        return buffer.getvalue()

    def page(self) -> str:
        """The HTML page (it loads ``static/live.js`` and ``static/live.css``)."""
        data = static_file("page.html")
        assert data is not None
        title = self.title.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
        return data[0].decode().replace("{{title}}", title or "spead2 live")
