// The spead2 live view: receives server-sent events (api/events) and draws them on canvases.
// Self-contained: no libraries, nothing fetched from the internet.
"use strict";

// ---- numbers and units ----------------------------------------------------------------------

const PREFIXES = [[1e12, "T"], [1e9, "G"], [1e6, "M"], [1e3, "k"]];

/** A value with an SI prefix: scaled(1.5e9, "b/s") is "1.50 Gb/s". */
function scaled(value, unit) {
  if (value == null || !isFinite(value)) return "–";
  for (const [factor, prefix] of PREFIXES) {
    if (Math.abs(value) >= factor) return (value / factor).toPrecision(3) + " " + prefix + unit;
  }
  const text = Number.isInteger(value) ? String(value) : value.toPrecision(3);
  return text + " " + unit;
}

/** The prefix and factor that suit values up to max: [1e9, "G"] for 3e9. */
function prefixFor(max) {
  for (const [factor, prefix] of PREFIXES) if (max >= factor) return [factor, prefix];
  return [1, ""];
}

function count(value) {
  return value == null ? "–" : Math.round(value).toLocaleString("en-US");
}

/** A plain number for display: up to 6 significant digits, exponent when very big or small. */
function number(value) {
  if (value == null) return "–";
  if (typeof value !== "number") return String(value);
  if (!isFinite(value)) return String(value);
  if (Number.isInteger(value) && Math.abs(value) < 1e15) return value.toLocaleString("en-US");
  const magnitude = Math.abs(value);
  if (magnitude !== 0 && (magnitude >= 1e6 || magnitude < 1e-3)) return value.toExponential(4);
  return String(Number(value.toPrecision(6)));
}

/** At most 4 significant digits, for labels in tight places. */
function short(value) {
  if (value == null || !isFinite(value)) return "–";
  const magnitude = Math.abs(value);
  if (magnitude !== 0 && (magnitude >= 1e5 || magnitude < 1e-3)) return value.toExponential(2);
  return String(Number(value.toPrecision(4)));
}

function duration(seconds) {
  if (seconds < 1) return "now";
  if (seconds < 90) return Math.round(seconds) + " s ago";
  if (seconds < 5400) return Math.round(seconds / 60) + " min ago";
  return Math.round(seconds / 3600) + " h ago";
}

/** Tick positions from min to max at a 1, 2 or 5 step, about n of them. */
function ticks(min, max, n) {
  const span = max - min;
  if (!(span > 0)) return [min];
  const raw = span / n;
  const power = Math.pow(10, Math.floor(Math.log10(raw)));
  const step = [1, 2, 5, 10].map(m => m * power).find(s => s >= raw);
  const result = [];
  for (let v = Math.ceil(min / step) * step; v <= max + step * 1e-9; v += step) {
    result.push(Math.abs(v) < step * 1e-9 ? 0 : v);
  }
  return result;
}

function tickLabel(value, step) {
  const magnitude = Math.abs(value);
  if (magnitude !== 0 && (magnitude >= 1e5 || magnitude < 1e-3)) return value.toExponential(1);
  const decimals = Math.max(0, -Math.floor(Math.log10(step) + 1e-9));
  return value.toFixed(Math.min(decimals, 6));
}

// ---- canvas plotting ------------------------------------------------------------------------

const THEME = {
  grid: "#262d37", axis: "#3a4350", label: "#8b95a3", line: "#4cc2ff", font: "11px system-ui, sans-serif",
};
const MARGIN = { left: 58, right: 10, top: 8, bottom: 20 };

/** Sizes the canvas to its box (at the screen's pixel ratio) and returns its context. */
function surface(canvas) {
  const ratio = window.devicePixelRatio || 1;
  const width = canvas.clientWidth, height = canvas.clientHeight;
  const pixelWidth = Math.max(1, Math.round(width * ratio));
  const pixelHeight = Math.max(1, Math.round(height * ratio));
  if (canvas.width !== pixelWidth || canvas.height !== pixelHeight) {
    canvas.width = pixelWidth;
    canvas.height = pixelHeight;
  }
  const ctx = canvas.getContext("2d");
  ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
  ctx.clearRect(0, 0, width, height);
  ctx.font = THEME.font;
  return { ctx, width, height };
}

function extent(arrays, fallback) {
  let min = Infinity, max = -Infinity;
  for (const array of arrays) {
    if (!array) continue;
    for (const v of array) {
      if (v == null) continue;
      if (v < min) min = v;
      if (v > max) max = v;
    }
  }
  if (min > max) return fallback;
  if (min === max) {
    const pad = Math.abs(min) * 0.1 || 1;
    return [min - pad, max + pad];
  }
  return [min, max];
}

/** Axes with grid lines; returns the functions that map data to pixels. */
function axes(ctx, width, height, x, y, options) {
  const left = MARGIN.left, right = width - MARGIN.right;
  const top = MARGIN.top, bottom = height - MARGIN.bottom;
  const px = v => left + (v - x[0]) / (x[1] - x[0]) * (right - left);
  const py = v => bottom - (v - y[0]) / (y[1] - y[0]) * (bottom - top);
  ctx.lineWidth = 1;
  ctx.fillStyle = THEME.label;
  ctx.textBaseline = "middle";
  ctx.textAlign = "right";
  const yTicks = ticks(y[0], y[1], Math.max(2, Math.floor((bottom - top) / 36)));
  const yStep = yTicks.length > 1 ? yTicks[1] - yTicks[0] : 1;
  for (const t of yTicks) {
    const p = Math.round(py(t)) + 0.5;
    ctx.strokeStyle = THEME.grid;
    ctx.beginPath(); ctx.moveTo(left, p); ctx.lineTo(right, p); ctx.stroke();
    ctx.fillText((options.yLabel || tickLabel)(t, yStep), left - 6, p);
  }
  ctx.textBaseline = "top";
  ctx.textAlign = "center";
  const xTicks = ticks(x[0], x[1], Math.max(2, Math.floor((right - left) / 90)));
  const xStep = xTicks.length > 1 ? xTicks[1] - xTicks[0] : 1;
  for (const t of xTicks) {
    const p = Math.round(px(t)) + 0.5;
    ctx.strokeStyle = THEME.grid;
    ctx.beginPath(); ctx.moveTo(p, top); ctx.lineTo(p, bottom); ctx.stroke();
    ctx.fillText((options.xLabel || tickLabel)(t, xStep), p, bottom + 5);
  }
  ctx.strokeStyle = THEME.axis;
  ctx.strokeRect(left + 0.5, top + 0.5, right - left - 1, bottom - top - 1);
  if (options.unit) {
    ctx.textAlign = "left";
    ctx.fillText(options.unit, 4, top);
  }
  return { px, py, left, right, top, bottom };
}

/** Draws one series as a line, with gaps at nulls; optionally filled down to the axis. */
function trace(ctx, frame, xs, ys, color, fill) {
  ctx.strokeStyle = color;
  ctx.lineWidth = 1.5;
  ctx.lineJoin = "round";
  let run = [];
  const flush = () => {
    if (!run.length) return;
    ctx.beginPath();
    run.forEach(([a, b], i) => (i ? ctx.lineTo(a, b) : ctx.moveTo(a, b)));
    ctx.stroke();
    if (fill) {
      ctx.lineTo(run[run.length - 1][0], frame.bottom);
      ctx.lineTo(run[0][0], frame.bottom);
      ctx.closePath();
      ctx.globalAlpha = 0.18;
      ctx.fillStyle = color;
      ctx.fill();
      ctx.globalAlpha = 1;
    }
    run = [];
  };
  for (let i = 0; i < xs.length; i++) {
    if (ys[i] == null) { flush(); continue; }
    run.push([frame.px(xs[i]), frame.py(ys[i])]);
  }
  flush();
}

/** A band between low and high (the range of values binned into each point of a long spectrum). */
function band(ctx, frame, xs, low, high, color) {
  ctx.fillStyle = color;
  ctx.globalAlpha = 0.25;
  ctx.beginPath();
  let open = false;
  for (let i = 0; i < xs.length; i++) {
    if (low[i] == null || high[i] == null) continue;
    const x = frame.px(xs[i]);
    ctx.fillRect(x - 0.5, frame.py(high[i]), 1, Math.max(1, frame.py(low[i]) - frame.py(high[i])));
    open = true;
  }
  ctx.globalAlpha = 1;
  return open;
}

function message(ctx, width, height, text, color) {
  ctx.fillStyle = color || THEME.label;
  ctx.textAlign = "center";
  ctx.textBaseline = "middle";
  ctx.font = "13px system-ui, sans-serif";
  ctx.fillText(text, (width + MARGIN.left - MARGIN.right) / 2, (height - MARGIN.bottom + MARGIN.top) / 2);
  ctx.font = THEME.font;
}

function timeLabel(span) {
  return t => (t === 0 ? "now" : span > 150 ? Math.round(t / 60) + " min" : Math.round(t) + " s");
}

/** Rate over time: samples are [time, bits/s, heaps/s, incomplete, dropped]. */
function drawRate(canvas, samples, now, span) {
  const { ctx, width, height } = surface(canvas);
  const xs = samples.map(s => s[0] - now);
  const rates = samples.map(s => s[1]);
  const max = Math.max(0, ...rates.filter(v => v != null));
  const [factor, prefix] = prefixFor(max);
  const y = [0, max > 0 ? max / factor * 1.1 : 1];
  const frame = axes(ctx, width, height, [-span, 0], y, {
    unit: prefix + "b/s", xLabel: timeLabel(span),
  });
  trace(ctx, frame, xs, rates.map(v => (v == null ? null : v / factor)), THEME.line, true);
  if (!samples.length) message(ctx, width, height, "no samples yet");
}

function drawLoss(canvas, samples, now, span, interval) {
  const { ctx, width, height } = surface(canvas);
  const xs = samples.map(s => s[0] - now);
  const incomplete = samples.map(s => s[3] / interval);
  const dropped = samples.map(s => s[4] / interval);
  const max = Math.max(0, ...incomplete, ...dropped);
  const frame = axes(ctx, width, height, [-span, 0], [0, max > 0 ? max * 1.1 : 1], {
    unit: "per s", xLabel: timeLabel(span),
  });
  if (max > 0) {
    trace(ctx, frame, xs, incomplete, "#f0883e", true);
    trace(ctx, frame, xs, dropped, "#f85149", true);
  } else if (samples.length) {
    message(ctx, width, height, "no losses", "#3fb950");
  }
}

function drawSpectrum(canvas, item) {
  const { ctx, width, height } = surface(canvas);
  const line = item.line || [];
  const step = line.length ? item.length / line.length : 1;
  const xs = line.map((_, i) => (i + 0.5) * step - 0.5);
  const y = extent([line, item.low, item.high], [0, 1]);
  const frame = axes(ctx, width, height, [0, Math.max(1, item.length - 1)], y, {
    unit: item.complex ? "|value|" : "",
  });
  if (item.low && item.high) band(ctx, frame, xs, item.low, item.high, THEME.line);
  trace(ctx, frame, xs, line, THEME.line, false);
}

// A perceptually uniform colour map (viridis), as control points interpolated into 256 entries.
const COLORMAP = (() => {
  const stops = [
    [68, 1, 84], [72, 35, 116], [64, 67, 135], [52, 94, 141], [41, 120, 142], [32, 144, 140],
    [34, 167, 132], [68, 190, 112], [121, 209, 81], [189, 222, 38], [253, 231, 37],
  ];
  const table = new Uint8ClampedArray(256 * 3);
  for (let i = 0; i < 256; i++) {
    const f = i / 255 * (stops.length - 1), k = Math.min(Math.floor(f), stops.length - 2), t = f - k;
    for (let c = 0; c < 3; c++) table[i * 3 + c] = stops[k][c] + (stops[k + 1][c] - stops[k][c]) * t;
  }
  return table;
})();

/** Rows of values as an image: rows[0] at the top; the colour scale spans all values. */
function drawMatrix(canvas, rows, capacity, options) {
  const { ctx, width, height } = surface(canvas);
  const left = MARGIN.left, right = width - MARGIN.right - 60, top = MARGIN.top;
  const bottom = height - MARGIN.bottom;
  const columns = rows.length ? rows[0].length : 0;
  const [low, high] = extent(rows, [0, 1]);
  ctx.fillStyle = "#0b0e13";
  ctx.fillRect(left, top, right - left, bottom - top);
  if (columns) {
    const image = new ImageData(columns, rows.length);
    const scale = 255 / (high - low);
    rows.forEach((row, r) => {
      for (let c = 0; c < columns; c++) {
        const o = (r * columns + c) * 4, v = row[c];
        if (v == null) { image.data[o + 3] = 0; continue; }
        const k = Math.max(0, Math.min(255, Math.round((v - low) * scale))) * 3;
        image.data[o] = COLORMAP[k]; image.data[o + 1] = COLORMAP[k + 1];
        image.data[o + 2] = COLORMAP[k + 2]; image.data[o + 3] = 255;
      }
    });
    const buffer = document.createElement("canvas");
    buffer.width = columns;
    buffer.height = rows.length;
    buffer.getContext("2d").putImageData(image, 0, 0);
    ctx.imageSmoothingEnabled = false;
    const drawn = (bottom - top) * Math.min(1, rows.length / capacity);
    ctx.drawImage(buffer, left, top, right - left, drawn);
  }
  ctx.strokeStyle = THEME.axis;
  ctx.strokeRect(left + 0.5, top + 0.5, right - left - 1, bottom - top - 1);
  ctx.fillStyle = THEME.label;
  ctx.textAlign = "right";
  ctx.textBaseline = "top";
  ctx.fillText(options.topLabel, left - 6, top);
  ctx.textBaseline = "bottom";
  ctx.fillText(options.bottomLabel, left - 6, bottom);
  ctx.textAlign = "center";
  ctx.textBaseline = "top";
  ctx.fillText(options.xLabel, (left + right) / 2, bottom + 5);
  // Colour bar, with the scale's ends.
  const barLeft = right + 8, barWidth = 10;
  for (let i = 0; i < bottom - top; i++) {
    const k = Math.round((1 - i / (bottom - top - 1)) * 255) * 3;
    ctx.fillStyle = `rgb(${COLORMAP[k]},${COLORMAP[k + 1]},${COLORMAP[k + 2]})`;
    ctx.fillRect(barLeft, top + i, barWidth, 1);
  }
  ctx.fillStyle = THEME.label;
  ctx.textAlign = "left";
  ctx.textBaseline = "top";
  ctx.fillText(short(high), barLeft + barWidth + 3, top);
  ctx.textBaseline = "bottom";
  ctx.fillText(short(low), barLeft + barWidth + 3, bottom);
}

/** A scalar's recent history: a small line with its last point marked. */
function drawSparkline(canvas, history, now, span) {
  const { ctx, width, height } = surface(canvas);
  const points = history.filter(p => p[1] != null && p[0] > now - span);
  if (!points.length) return;
  const [low, high] = extent([points.map(p => p[1])], [0, 1]);
  // The range's ends are labelled on the left; the line keeps clear of them.
  const labels = [short(high), short(low)];
  const left = Math.max(...labels.map(text => ctx.measureText(text).width)) + 8;
  const pad = 4;
  const px = t => left + (t - (now - span)) / span * (width - left - pad);
  const py = v => height - pad - (v - low) / (high - low) * (height - 2 * pad);
  ctx.strokeStyle = THEME.grid;
  ctx.beginPath(); ctx.moveTo(left - 3.5, pad); ctx.lineTo(left - 3.5, height - pad); ctx.stroke();
  ctx.strokeStyle = THEME.line;
  ctx.lineWidth = 1.5;
  ctx.beginPath();
  points.forEach(([t, v], i) => (i ? ctx.lineTo(px(t), py(v)) : ctx.moveTo(px(t), py(v))));
  ctx.stroke();
  const [t, v] = points[points.length - 1];
  ctx.fillStyle = THEME.line;
  ctx.beginPath(); ctx.arc(px(t), py(v), 3, 0, 2 * Math.PI); ctx.fill();
  ctx.fillStyle = THEME.label;
  ctx.textAlign = "right";
  ctx.textBaseline = "top";
  ctx.fillText(labels[0], left - 7, 0);
  ctx.textBaseline = "bottom";
  ctx.fillText(labels[1], left - 7, height);
}

// ---- the page -------------------------------------------------------------------------------

const view = {
  offset: 0,          // our clock minus the server's, in seconds
  interval: 0.5,
  history: 240,
  waterfallRows: 120,
  generation: 0,
  stats: null,
  samples: [],
  items: new Map(),   // name -> {data, card, dirty}
  lastMessage: 0,
  connected: false,
  pending: false,
};
const $ = id => document.getElementById(id);
const serverNow = () => Date.now() / 1000 - view.offset;
const KIND_ORDER = { spectrum: 0, image: 1, scalar: 2, text: 3 };

function element(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text != null) node.textContent = text;
  return node;
}

function makeCard(data) {
  const card = element("div", "card " + data.kind);
  card.dataset.item = data.name;
  card.dataset.kind = data.kind;
  const head = element("div", "head");
  head.append(element("span", "name", data.name));
  const shape = data.shape.length ? "[" + data.shape.join("×") + "]" : "";
  head.append(element("span", "meta", "0x" + data.id.toString(16) + " · " + data.dtype + shape));
  card.append(head);
  card.append(element("div", "desc", data.description || " "));
  const parts = {};
  if (data.kind === "scalar") {
    parts.value = card.appendChild(element("div", "scalar"));
    parts.spark = card.appendChild(element("canvas", "spark"));
    parts.spark.dataset.plot = "history";
  } else if (data.kind === "spectrum") {
    parts.line = card.appendChild(element("canvas", "line"));
    parts.line.dataset.plot = "spectrum";
    parts.waterfall = card.appendChild(element("canvas", "waterfall"));
    parts.waterfall.dataset.plot = "waterfall";
  } else if (data.kind === "image") {
    parts.image = card.appendChild(element("canvas", "waterfall"));
    parts.image.dataset.plot = "image";
  } else {
    parts.text = card.appendChild(element("div", "text"));
  }
  const foot = element("div", "foot");
  parts.age = foot.appendChild(element("span", "age"));
  parts.count = foot.appendChild(element("span", "count"));
  const link = encodeURIComponent(data.name);
  const json = foot.appendChild(element("a", null, "JSON"));
  json.href = "api/items/" + link;
  if (data.kind !== "text") {
    const npy = foot.appendChild(element("a", null, ".npy"));
    npy.href = "api/items/" + link + "?format=npy";
  }
  card.append(foot);
  return { card, parts };
}

function placeCards() {
  const sorted = [...view.items.values()].sort((a, b) =>
    (KIND_ORDER[a.data.kind] - KIND_ORDER[b.data.kind]) || (a.data.id - b.data.id));
  const container = $("items");
  sorted.forEach((entry, i) => {
    if (container.children[i] !== entry.card) container.insertBefore(entry.card, container.children[i] || null);
  });
  $("no-items").hidden = view.items.size > 0;
  $("item-count").textContent = view.items.size ? "(" + view.items.size + ")" : "";
}

function clearItems() {
  for (const entry of view.items.values()) entry.card.remove();
  view.items.clear();
}

/** Merges one item's update (or snapshot entry) into what the page keeps. */
function mergeItem(data, full) {
  let entry = view.items.get(data.name);
  if (entry && (entry.data.kind !== data.kind || entry.data.id !== data.id)) {
    entry.card.remove();
    view.items.delete(data.name);
    entry = null;
  }
  if (!entry) {
    const { card, parts } = makeCard(data);
    entry = { data: Object.assign({ history: [], waterfall: [] }, data), card, parts };
    view.items.set(data.name, entry);
  } else {
    const { history, waterfall } = entry.data;
    entry.data = Object.assign({ history, waterfall }, data);
  }
  const kept = entry.data;
  if (!full) {
    if (data.point) kept.history.push(data.point);
    if (data.row) {
      if (kept.waterfall.length && kept.waterfall[kept.waterfall.length - 1].length !== data.row.length) {
        kept.waterfall = [];
      }
      kept.waterfall.push(data.row);
    }
  }
  if (kept.history.length > view.history) kept.history.splice(0, kept.history.length - view.history);
  if (kept.waterfall.length > view.waterfallRows) {
    kept.waterfall.splice(0, kept.waterfall.length - view.waterfallRows);
  }
  entry.dirty = true;
}

function applySnapshot(message) {
  view.offset = Date.now() / 1000 - message.time;
  view.interval = message.interval;
  view.history = message.history;
  view.waterfallRows = message.waterfall_rows;
  view.generation = message.generation;
  view.stats = message.stats;
  view.samples = message.samples;
  if (message.title) $("title").textContent = message.title;
  $("interval").textContent = message.interval;
  clearItems();
  for (const data of Object.values(message.items)) mergeItem(data, true);
  placeCards();
}

function applyUpdate(message) {
  view.offset = Date.now() / 1000 - message.time;
  if (message.generation !== view.generation) {  // a new stream: its items replace the old ones
    clearItems();
    view.generation = message.generation;
  }
  view.stats = message.stats;
  view.samples.push(message.sample);
  if (view.samples.length > view.history) view.samples.splice(0, view.samples.length - view.history);
  for (const data of Object.values(message.items)) mergeItem(data, false);
  placeCards();
}

const STATE_TEXT = {
  waiting: "waiting for heaps",
  receiving: "receiving",
  idle: "idle",
  ended: "stream ended · waiting for the next",
  disconnected: "disconnected · retrying",
};

function showState() {
  let state = view.stats ? view.stats.state : "waiting";
  const silent = Date.now() - view.lastMessage > Math.max(5000, view.interval * 4000);
  if (!view.connected || silent) state = "disconnected";
  const pill = $("state");
  pill.className = "pill " + state;
  pill.dataset.state = state;
  let text = STATE_TEXT[state];
  if (state === "idle" && view.stats.last_heap) text += " · last heap " + duration(serverNow() - view.stats.last_heap);
  pill.textContent = text;
}

function showStats() {
  const s = view.stats;
  if (!s) return;
  $("rate").textContent = scaled(s.rate_bps, "b/s");
  $("heap-rate").textContent = scaled(s.heap_rate, "/s");
  $("heap-count").textContent = count(s.heaps);
  $("bytes").textContent = scaled(s.bytes, "B");
  for (const [id, value] of [["incomplete", s.incomplete_heaps], ["dropped", s.dropped_packets],
                             ["bad", s.bad_heaps]]) {
    $(id).textContent = count(value);
    $(id).parentElement.classList.toggle("nonzero", value > 0);
  }
  $("last-heap").textContent = s.last_heap ? duration(serverNow() - s.last_heap) : "–";
}

function showItem(entry, now) {
  const { data, parts } = entry;
  const age = now - data.updated;
  parts.age.textContent = "updated " + duration(age);
  parts.count.textContent = count(data.updates) + (data.updates === 1 ? " update" : " updates");
  entry.card.classList.toggle("stale", age > 30);
  if (!entry.dirty) return;
  entry.dirty = false;
  if (data.kind === "scalar") {
    parts.value.textContent = data.value == null ? data.text : number(data.value);
    const first = data.history.length ? data.history[0][0] : now;
    drawSparkline(parts.spark, data.history, now,
      Math.min(view.history * view.interval, Math.max(10, now - first)));
  } else if (data.kind === "spectrum") {
    drawSpectrum(parts.line, data);
    drawMatrix(parts.waterfall, data.waterfall.slice().reverse(), view.waterfallRows, {
      topLabel: "newest", bottomLabel: "", xLabel: "waterfall: " + data.waterfall.length + " spectra",
    });
  } else if (data.kind === "image") {
    drawMatrix(parts.image, data.image, data.image.length, {
      topLabel: "0", bottomLabel: String(data.shape[0] - 1), xLabel: data.shape.join(" × "),
    });
  } else {
    parts.text.textContent = data.text;
  }
}

function render() {
  view.pending = false;
  const now = serverNow();
  showState();
  showStats();
  // The time axis grows with the data, from 30 s up to the history kept.
  const first = view.samples.length ? view.samples[0][0] : now;
  const span = Math.min(view.history * view.interval, Math.max(30, now - first));
  drawRate($("rate-chart"), view.samples, now, span);
  drawLoss($("loss-chart"), view.samples, now, span, view.interval);
  for (const entry of view.items.values()) showItem(entry, now);
}

function schedule() {
  if (!view.pending) {
    view.pending = true;
    requestAnimationFrame(render);
  }
}

function connect() {
  const source = new EventSource("api/events");
  const receive = apply => event => {
    view.lastMessage = Date.now();
    view.connected = true;
    apply(JSON.parse(event.data));
    schedule();
  };
  source.addEventListener("snapshot", receive(applySnapshot));
  source.addEventListener("update", receive(applyUpdate));
  source.addEventListener("error", () => { view.connected = false; showState(); });
}

window.addEventListener("resize", () => {
  for (const entry of view.items.values()) entry.dirty = true;
  schedule();
});
setInterval(() => { showState(); showStats(); }, 1000);
connect();
