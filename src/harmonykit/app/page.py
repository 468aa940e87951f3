"""The web editor's page: one self-contained HTML document (inline CSS and JS, no CDN)."""

from __future__ import annotations

__all__ = ["INDEX_HTML"]

INDEX_HTML = r"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>harmonykit editor</title>
<style>
  :root { font-family: system-ui, sans-serif; font-size: 14px; color: #222; }
  body { margin: 0; background: #f4f4f4; }
  header { background: #263238; color: #fff; padding: 8px 16px; display: flex; gap: 16px; align-items: baseline; }
  header h1 { font-size: 18px; margin: 0; }
  main { padding: 12px 16px; }
  section { background: #fff; border-radius: 6px; padding: 10px 12px; margin-bottom: 12px; }
  #upload label { margin-right: 16px; }
  #status { margin-left: 12px; color: #555; }
  #status.error { color: #b00020; }
  #views { display: flex; gap: 12px; flex-wrap: wrap; }
  figure { margin: 0; flex: 1 1 420px; min-width: 280px; }
  figcaption { font-weight: 600; margin-bottom: 4px; }
  figure img { max-width: 100%; display: block; background: #ddd; }
  .stack { position: relative; display: inline-block; max-width: 100%; }
  .stack img#overlay { position: absolute; left: 0; top: 0; width: 100%; height: 100%; pointer-events: none;
                       background: transparent; }
  .stack img#overlay:not([src]) { display: none; }
  .stack.picking img#result { cursor: crosshair; }
  #controls { display: flex; gap: 12px; flex-wrap: wrap; align-items: center; margin-bottom: 8px; }
  #channels { display: grid; grid-template-columns: repeat(auto-fill, minmax(260px, 1fr)); gap: 10px; }
  .channel { border: 1px solid #ddd; border-radius: 4px; padding: 6px; }
  .channel h3 { font-size: 13px; margin: 0 0 4px 0; }
  .channel .unit { font-weight: normal; color: #666; }
  .channel img { width: 100%; display: block; image-rendering: auto; }
  .channel .scale { font-size: 11px; color: #555; margin: 2px 0 4px 0; }
  .slider { display: grid; grid-template-columns: 48px 1fr 52px; gap: 4px; align-items: center; }
  .slider output { font-variant-numeric: tabular-nums; text-align: right; }
  .legend { font-size: 12px; color: #555; }
  .swatch { display: inline-block; width: 120px; height: 10px; vertical-align: middle;
            background: linear-gradient(to right, #053061, #4393c3, #f7f7f7, #f4a582, #67001f); }
  a.button, button { padding: 4px 10px; }
</style>
</head>
<body>
<header><h1>harmonykit editor</h1><span id="model">loading model info...</span></header>
<main>
<section id="upload">
  <label>Composite <input type="file" id="image" accept="image/*"></label>
  <label>Mask (optional) <input type="file" id="mask" accept="image/*"></label>
  <button id="run">Harmonize</button>
  <span id="status">Choose a composite image.</span>
</section>
<section id="views" hidden>
  <figure><figcaption>Composite</figcaption><img id="composite" alt="composite"></figure>
  <figure><figcaption>Result <span id="render-info" class="legend"></span></figcaption>
    <div class="stack" id="stack"><img id="result" alt="result"><img id="overlay" alt=""></div></figure>
</section>
<section id="editor" hidden>
  <div id="controls">
    <label><input type="checkbox" id="region-mode"> limit edits to clicked regions (click the result)</label>
    <button id="clear-region">Clear region</button>
    <button id="commit" title="keep the current edits and start a new one (e.g. for another region)">Apply &amp; new edit</button>
    <button id="reset">Reset sliders</button>
    <a id="download-image" class="button" href="#" download>Download image</a>
    <a id="download-masks" class="button" href="#" download>Download masks (.npz)</a>
    <a id="download-heatmaps" class="button" href="#" download>Heatmaps (.png)</a>
  </div>
  <div class="legend">Operator masks: <span class="swatch"></span> blue = lowers the value, white = no change,
    red = raises it (scale per map). Gain scales the model's change (1 = as predicted, 0 = off);
    offset adds to it in natural units (L 0..100, a/b CIELAB units, hue degrees, HLS l/s 0..1, mul: factor).
    Double-click a slider to reset it.</div>
  <div id="channels"></div>
</section>
<section id="nomasks" hidden><p>This model does not produce operator masks: the result cannot be edited.</p>
  <a id="download-image-plain" href="#" download>Download image</a></section>
</main>
<script>
"use strict";
const $ = (id) => document.getElementById(id);
let session = null;
let pending = false;
let dirty = false;

function setStatus(text, isError) {
  const el = $("status");
  el.textContent = text;
  el.className = isError ? "error" : "";
}

async function api(path, options) {
  const r = await fetch(path, options);
  let body = null;
  try { body = await r.json(); } catch (e) { body = { detail: r.statusText }; }
  if (!r.ok) { throw new Error(body && body.detail ? (typeof body.detail === "string" ? body.detail : JSON.stringify(body.detail)) : r.statusText); }
  return body;
}

fetch("/api/info").then((r) => r.json()).then((j) => {
  const m = j.model;
  $("model").textContent = `model: ${m.name} (${m.kind}, mask ${m.mask_use})`;
}).catch(() => { $("model").textContent = "model info unavailable"; });

function fmt(v, step) {
  const digits = step >= 1 ? 0 : (step >= 0.1 ? 1 : (step >= 0.01 ? 2 : 3));
  return Number(v).toFixed(digits);
}

function makeSlider(kind, ch, min, max, step, value) {
  const wrap = document.createElement("div");
  wrap.className = "slider";
  const label = document.createElement("label");
  label.textContent = kind;
  label.htmlFor = `${kind}-${ch}`;
  const input = document.createElement("input");
  input.type = "range";
  input.id = `${kind}-${ch}`;
  input.min = min; input.max = max; input.step = step; input.value = value;
  input.dataset.channel = ch; input.dataset.kind = kind; input.dataset.default = kind === "gain" ? 1 : 0;
  const out = document.createElement("output");
  out.id = `${kind}-${ch}-value`;
  out.textContent = fmt(value, step);
  input.addEventListener("input", () => { out.textContent = fmt(input.value, step); scheduleRender(); });
  input.addEventListener("dblclick", () => { input.value = input.dataset.default; out.textContent = fmt(input.value, step); scheduleRender(); });
  wrap.append(label, input, out);
  return wrap;
}

function buildChannels(channels) {
  const box = $("channels");
  box.innerHTML = "";
  for (const c of channels) {
    const div = document.createElement("div");
    div.className = "channel";
    div.id = `channel-${c.name}`;
    const h = document.createElement("h3");
    h.innerHTML = `${c.name} <span class="unit">(offset: ${c.unit})</span>`;
    const img = document.createElement("img");
    img.id = `heat-${c.name}`;
    img.alt = `${c.name} heatmap`;
    const scale = document.createElement("div");
    scale.className = "scale";
    scale.id = `scale-${c.name}`;
    div.append(h, img, scale,
      makeSlider("gain", c.name, c.gain_min, c.gain_max, c.gain_step, c.gain),
      makeSlider("offset", c.name, c.offset_min, c.offset_max, c.offset_step, c.offset));
    box.append(div);
  }
}

function showState(j) {
  if (j.result) { $("result").src = j.result; }
  if (j.render_ms !== undefined) { $("render-info").textContent = `(rendered in ${j.render_ms} ms)`; }
  if (j.overlay !== undefined && j.overlay !== null) { $("overlay").src = j.overlay; }
  const hm = j.heatmaps || {};
  for (const [name, h] of Object.entries(hm)) {
    const img = $(`heat-${name}`);
    if (img) { img.src = h.image; }
    const sc = $(`scale-${name}`);
    if (sc) {
      const ident = name.endsWith("_mul") ? 1 : 0;
      sc.textContent = `blue ${+(ident - h.scale).toFixed(3)} .. white ${ident} .. red ${+(ident + h.scale).toFixed(3)} (${h.unit})`;
    }
  }
}

function collectEdits() {
  const edits = {};
  for (const input of document.querySelectorAll("#channels input[type=range]")) {
    const ch = input.dataset.channel;
    edits[ch] = edits[ch] || { gain: 1, offset: 0 };
    edits[ch][input.dataset.kind] = Number(input.value);
  }
  return edits;
}

function resetSliders() {
  for (const input of document.querySelectorAll("#channels input[type=range]")) {
    input.value = input.dataset.default;
    const out = $(`${input.id}-value`);
    if (out) { out.textContent = fmt(input.value, Number(input.step)); }
  }
}

function scheduleRender() {
  dirty = true;
  if (!pending) { renderLoop(); }
}

async function renderLoop() {
  pending = true;
  try {
    while (dirty && session) {
      dirty = false;
      const j = await api(`/api/sessions/${session.id}/render`, {
        method: "POST", headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ edits: collectEdits() }),
      });
      showState(j);
    }
  } catch (e) {
    setStatus(`render failed: ${e.message}`, true);
  } finally {
    pending = false;
  }
}

$("run").addEventListener("click", async () => {
  const file = $("image").files[0];
  if (!file) { setStatus("Choose a composite image first.", true); return; }
  const fd = new FormData();
  fd.append("image", file);
  const mask = $("mask").files[0];
  if (mask) { fd.append("mask", mask); }
  setStatus("Harmonizing...");
  $("run").disabled = true;
  try {
    const j = await api("/api/sessions", { method: "POST", body: fd });
    session = j;
    $("views").hidden = false;
    $("composite").src = j.composite;
    $("overlay").removeAttribute("src");
    const base = `/api/sessions/${j.id}`;
    if (j.editable) {
      buildChannels(j.channels);
      $("editor").hidden = false;
      $("nomasks").hidden = true;
      $("download-image").href = `${base}/image.png`;
      $("download-masks").href = `${base}/masks.npz`;
      $("download-heatmaps").href = `${base}/masks.png`;
    } else {
      $("editor").hidden = true;
      $("nomasks").hidden = false;
      $("download-image-plain").href = `${base}/image.png`;
    }
    showState(j);
    const t = j.timings;
    setStatus(`Done: ${j.width}x${j.height}, network ${t.network.toFixed(2)} s, full-res apply ${t.apply.toFixed(2)} s.` +
              (j.notes && j.notes.length ? " " + j.notes.join("; ") : ""));
  } catch (e) {
    setStatus(`Error: ${e.message}`, true);
  } finally {
    $("run").disabled = false;
  }
});

$("region-mode").addEventListener("change", () => {
  $("stack").classList.toggle("picking", $("region-mode").checked);
});

$("result").addEventListener("click", async (ev) => {
  if (!session || !$("region-mode").checked) { return; }
  const rect = ev.target.getBoundingClientRect();
  const x = (ev.clientX - rect.left) / rect.width;
  const y = (ev.clientY - rect.top) / rect.height;
  try {
    const j = await api(`/api/sessions/${session.id}/region`, {
      method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ x: Math.min(Math.max(x, 0), 1), y: Math.min(Math.max(y, 0), 1), mode: "toggle" }),
    });
    showState(j);
    setStatus(`Region: ${j.region.length} superpixel(s) selected; edits apply there only.`);
  } catch (e) { setStatus(`region failed: ${e.message}`, true); }
});

$("clear-region").addEventListener("click", async () => {
  if (!session) { return; }
  try {
    const j = await api(`/api/sessions/${session.id}/region`, {
      method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ clear: true }),
    });
    showState(j);
    $("overlay").removeAttribute("src");
    setStatus("Region cleared: edits apply to the whole image.");
  } catch (e) { setStatus(`clear failed: ${e.message}`, true); }
});

$("commit").addEventListener("click", async () => {
  if (!session) { return; }
  try {
    const j = await api(`/api/sessions/${session.id}/commit`, { method: "POST" });
    resetSliders();
    $("overlay").removeAttribute("src");
    showState(j);
    setStatus("Edits applied; sliders reset for a new edit.");
  } catch (e) { setStatus(`commit failed: ${e.message}`, true); }
});

$("reset").addEventListener("click", () => { resetSliders(); scheduleRender(); });
</script>
</body>
</html>
"""
