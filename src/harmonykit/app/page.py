"""The web editor's page: one self-contained HTML document (inline CSS and JS, no CDN).

What the page does (element ids in brackets, used by the browser tests):

* upload: choose or drag-and-drop a composite and optionally its mask [``#drop``, ``#image``,
  ``#mask``]; the chosen files show at once [``#preview``, ``#mask-preview``]; a drop starts
  the run, *Harmonize* [``#run``] does for chosen files. While the request runs a progress
  bar shows the upload percentage, then the elapsed time [``#progress``, ``#elapsed``].
* examples gallery [``#gallery``]: the packaged examples, one click opens one with its mask.
* result [``#stack``]: the original under the result; the split slider [``#split``], in
  the middle at first, shows the original left of the split, *show original*
  [``#show-before``] all of it. Choosing a new composite clears the chosen mask, and *No
  mask* [``#clear-mask``] removes it. The status line [``#upload-row``] stays in view.
* editor: per operator channel a plain-language name with the technical one, the heatmap,
  a legend with numbers [``#legend-<ch>``] and two sliders, strength (gain) and shift
  (offset) [``#gain-<ch>``, ``#offset-<ch>``]; region-limited edits [``#region-mode``];
  with an uploaded mask, edits stay inside it unless [``#mask-scope``] is unticked;
  *Apply & new edit*, *Reset sliders*, *Reset to model output* [``#restore``]; downloads
  [``#download-image``, ``#download-masks``, ``#download-heatmaps``] fetched by the page, so
  a failure (e.g. a session the server dropped) shows in the status line [``#status``].
* a failed upload clears the previous result (no stale image, sliders or links).
* the composite maker (a cut-out dragged onto a background) is added to this page by
  :mod:`harmonykit.app.cutout_page`, which serves the whole page (:func:`page_html`).
"""

from __future__ import annotations

__all__ = ["INDEX_HTML"]

INDEX_HTML = r"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>harmonykit editor</title>
<link rel="icon" href="/favicon.svg" type="image/svg+xml">
<style>
  :root { font-family: system-ui, sans-serif; font-size: 14px; color: #222; }
  [hidden] { display: none !important; }
  img:not([src]) { visibility: hidden; }
  body { margin: 0; background: #f4f4f4; }
  header { background: #263238; color: #fff; padding: 8px 16px; display: flex; gap: 16px; align-items: baseline; }
  header h1 { font-size: 18px; margin: 0; }
  main { padding: 12px 16px; }
  section { background: #fff; border-radius: 6px; padding: 10px 12px; margin-bottom: 12px; }
  h2 { font-size: 14px; margin: 0 0 8px 0; }
  #drop { border: 2px dashed #90a4ae; border-radius: 6px; padding: 10px; display: flex; gap: 16px;
          align-items: center; flex-wrap: wrap; }
  #drop.over { background: #e3f2fd; border-color: #1e88e5; }
  #drop .hint { color: #555; }
  #drop img { max-height: 72px; max-width: 120px; border: 1px solid #ccc; }
  #upload-row { display: flex; gap: 12px; align-items: center; flex-wrap: wrap; position: sticky; top: 0; z-index: 5;
                background: #fff; border-radius: 6px; padding: 8px 12px; margin-bottom: 12px; box-shadow: 0 1px 3px #0003; }
  #status { color: #555; }
  #status.error { color: #b00020; font-weight: 600; }
  #progress { display: flex; gap: 8px; align-items: center; }
  #progress .track { width: 160px; height: 8px; background: #e0e0e0; border-radius: 4px; overflow: hidden; }
  #progress .fill { height: 100%; width: 30%; background: #1e88e5; border-radius: 4px; }
  #progress .fill.busy { animation: slide 1.1s ease-in-out infinite; }
  @keyframes slide { 0% { margin-left: -30%; } 100% { margin-left: 100%; } }
  #gallery .items { display: flex; gap: 10px; flex-wrap: wrap; }
  .example { border: 1px solid #ccc; border-radius: 4px; background: #fafafa; padding: 4px; cursor: pointer;
             display: flex; flex-direction: column; align-items: center; gap: 4px; max-width: 180px; }
  .example:hover { border-color: #1e88e5; }
  .example img { max-height: 96px; }
  .example span { font-size: 12px; }
  #views figure { margin: 0; }
  figcaption { font-weight: 600; margin-bottom: 4px; }
  .stack { position: relative; display: inline-block; max-width: 100%; line-height: 0; }
  .stack img { max-width: 100%; display: block; }
  .stack img#result, .stack img#overlay { position: absolute; left: 0; top: 0; width: 100%; height: 100%; }
  .stack img#overlay { pointer-events: none; }
  .stack .split-line { position: absolute; top: 0; bottom: 0; width: 2px; background: #fff;
                       box-shadow: 0 0 2px #000; pointer-events: none; }
  .stack.picking { cursor: crosshair; }
  #compare { display: flex; gap: 10px; align-items: center; margin-top: 6px; flex-wrap: wrap; }
  #split { width: 260px; }
  #controls { display: flex; gap: 10px; flex-wrap: wrap; align-items: center; margin-bottom: 8px; }
  #channels { display: grid; grid-template-columns: repeat(auto-fill, minmax(270px, 1fr)); gap: 10px; }
  .channel { border: 1px solid #ddd; border-radius: 4px; padding: 6px; }
  .channel h3 { font-size: 13px; margin: 0 0 4px 0; }
  .channel h3 code { font-weight: normal; color: #666; font-size: 12px; }
  .channel .unit { color: #666; font-size: 11px; }
  .channel img { width: 100%; display: block; }
  .legend-bar { height: 8px; margin-top: 3px;
                background: linear-gradient(to right, #053061, #4393c3, #f7f7f7, #f4a582, #67001f); }
  .ticks { display: flex; justify-content: space-between; font-size: 11px; color: #444;
           font-variant-numeric: tabular-nums; margin-bottom: 4px; }
  .slider { display: grid; grid-template-columns: 92px 1fr 48px; gap: 4px; align-items: center; }
  .slider output { font-variant-numeric: tabular-nums; text-align: right; }
  .legend { font-size: 12px; color: #555; margin-bottom: 8px; }
  button { padding: 4px 10px; }
</style>
</head>
<body>
<header><h1>harmonykit editor</h1><span id="model">loading model info...</span></header>
<main>
<section id="upload">
  <div id="drop">
    <span class="hint">Drop a composite here (and its <code>*_mask.*</code> file, optional), or choose:</span>
    <label>Composite <input type="file" id="image" accept="image/*"></label>
    <label>Mask (optional) <input type="file" id="mask" accept="image/*"></label>
    <button id="clear-mask" type="button" title="harmonize without a mask" hidden>No mask</button>
    <img id="preview" alt="chosen composite" hidden>
    <img id="mask-preview" alt="chosen mask" hidden>
  </div>
</section>
<div id="upload-row">
    <button id="run">Harmonize</button>
    <span id="progress" hidden><span class="track"><span class="fill" id="progress-fill"></span></span>
      <span id="elapsed"></span></span>
    <span id="status">Choose a composite image, drop one, or open an example.</span>
</div>
<section id="gallery" hidden>
  <h2>Examples (one click: harmonized with their masks)</h2>
  <div class="items" id="gallery-items"></div>
</section>
<section id="views" hidden>
  <figure><figcaption>Result <span id="render-info" class="legend"></span></figcaption>
    <div class="stack" id="stack"><img id="before" alt="original composite"><img id="result" alt="result"><span
      class="split-line" id="split-line" hidden></span><img id="overlay" alt=""></div></figure>
  <div id="compare">
    <label for="split">Before / after: original left of the split</label>
    <input type="range" id="split" min="0" max="100" step="1" value="50">
    <label><input type="checkbox" id="show-before"> show original</label>
  </div>
</section>
<section id="editor" hidden>
  <div id="controls">
    <label title="click the result to pick superpixels; the sliders then act only there">
      <input type="checkbox" id="region-mode"> limit edits to clicked regions</label>
    <button id="clear-region">Clear region</button>
    <label id="mask-scope-label" hidden title="the mask you uploaded (the pasted region)">
      <input type="checkbox" id="mask-scope" checked> keep edits inside the uploaded mask</label>
    <button id="commit" title="keep the current edits and start a new one (e.g. for another region)">Apply &amp; new edit</button>
    <button id="reset" title="sliders back to the model's values (applied edits stay)">Reset sliders</button>
    <button id="restore" title="undo every edit, applied ones too">Reset to model output</button>
    <button id="download-image">Download image</button>
    <button id="download-masks">Download masks (.npz)</button>
    <button id="download-heatmaps">Heatmaps (.png)</button>
  </div>
  <div class="legend">Each map shows what the model changed: white = no change, red = raises the value,
    blue = lowers it; the numbers under a map are its colour scale. <b>Strength</b> (gain) scales the model's
    change (1 = as predicted, 0 = off, 2 = double); <b>shift</b> (offset) adds to it in the unit shown.
    Double-click a slider to reset it.</div>
  <div id="channels"></div>
</section>
<section id="nomasks" hidden><p>This model does not produce operator masks: the result cannot be edited.</p>
  <button id="download-image-plain">Download image</button></section>
</main>
<script>
"use strict";
const $ = (id) => document.getElementById(id);
let session = null;
let pending = false;
let dirty = false;
let busy = false;

function setStatus(text, isError) {
  const el = $("status");
  el.textContent = text;
  el.className = isError ? "error" : "";
}

function errorText(body, fallback) {
  if (body && body.detail) { return typeof body.detail === "string" ? body.detail : JSON.stringify(body.detail); }
  return fallback;
}

async function api(path, options) {
  const r = await fetch(path, options);
  let body = null;
  try { body = await r.json(); } catch (e) { body = { detail: r.statusText }; }
  if (!r.ok) { throw new Error(errorText(body, `${r.status} ${r.statusText}`)); }
  return body;
}

// XHR (not fetch) for the upload: it reports upload progress
function post(path, formData, onUploadProgress) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open("POST", path);
    xhr.responseType = "json";
    xhr.upload.onprogress = (ev) => { if (ev.lengthComputable) { onUploadProgress(ev.loaded / ev.total); } };
    xhr.upload.onload = () => onUploadProgress(1);
    xhr.onload = () => {
      if (xhr.status >= 200 && xhr.status < 300) { resolve(xhr.response); }
      else { reject(new Error(errorText(xhr.response, `${xhr.status} ${xhr.statusText}`))); }
    };
    xhr.onerror = () => reject(new Error("the server did not answer (is harmonykit serve still running?)"));
    xhr.send(formData);
  });
}

fetch("/api/info").then((r) => r.json()).then((j) => {
  const m = j.model;
  $("model").textContent = `model: ${m.name} (${m.kind}, mask ${m.mask_use})`;
}).catch(() => { $("model").textContent = "model info unavailable"; });

fetch("/api/examples").then((r) => r.json()).then((list) => {
  const box = $("gallery-items");
  for (const ex of list) {
    const b = document.createElement("button");
    b.className = "example";
    b.dataset.name = ex.name;
    b.title = ex.has_mask ? "opens with its mask" : "opens without a mask";
    const img = document.createElement("img");
    img.src = ex.thumbnail;
    img.alt = ex.title;
    const cap = document.createElement("span");
    cap.textContent = ex.title;
    b.append(img, cap);
    b.addEventListener("click", () => openExample(ex.name));
    box.append(b);
  }
  $("gallery").hidden = list.length === 0;
}).catch(() => {});

function fmt(v, step) {
  const digits = step >= 1 ? 0 : (step >= 0.1 ? 1 : (step >= 0.01 ? 2 : 3));
  return Number(v).toFixed(digits);
}

function num(v) {
  const a = Math.abs(v);
  const s = a >= 10 ? v.toFixed(1) : (a >= 1 ? v.toFixed(2) : v.toFixed(3));
  return (v > 0 ? "+" : "") + String(Number(s));
}

function makeSlider(kind, label, ch, min, max, step, value) {
  const wrap = document.createElement("div");
  wrap.className = "slider";
  const lab = document.createElement("label");
  lab.textContent = label;
  lab.htmlFor = `${kind}-${ch}`;
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
  wrap.append(lab, input, out);
  return wrap;
}

function buildChannels(channels) {
  const box = $("channels");
  box.innerHTML = "";
  for (const c of channels) {
    const div = document.createElement("div");
    div.className = "channel";
    div.id = `channel-${c.name}`;
    div.dataset.low = c.low; div.dataset.high = c.high;
    const h = document.createElement("h3");
    h.id = `label-${c.name}`;
    h.append(document.createTextNode(`${c.label} `));
    const code = document.createElement("code");
    code.textContent = c.name;
    h.append(code);
    const img = document.createElement("img");
    img.id = `heat-${c.name}`;
    img.alt = `${c.label} (${c.name}) heatmap`;
    const bar = document.createElement("div");
    bar.className = "legend-bar";
    const ticks = document.createElement("div");
    ticks.className = "ticks";
    ticks.id = `legend-${c.name}`;
    const unit = document.createElement("div");
    unit.className = "unit";
    unit.textContent = `shift unit: ${c.unit}`;
    div.append(h, img, bar, ticks, unit,
      makeSlider("gain", "strength ×", c.name, c.gain_min, c.gain_max, c.gain_step, c.gain),
      makeSlider("offset", "shift +", c.name, c.offset_min, c.offset_max, c.offset_step, c.offset));
    box.append(div);
  }
}

function showState(j) {
  if (j.result) { $("result").src = j.result; }
  if (j.render_ms !== undefined) { $("render-info").textContent = `(rendered in ${j.render_ms} ms)`; }
  if (j.overlay === null) { $("overlay").removeAttribute("src"); }
  else if (j.overlay !== undefined) { $("overlay").src = j.overlay; }
  if (j.limit_to_mask !== undefined) { $("mask-scope").checked = j.limit_to_mask; }
  const hm = j.heatmaps || {};
  for (const [name, h] of Object.entries(hm)) {
    const img = $(`heat-${name}`);
    if (img) { img.src = h.image; }
    const t = $(`legend-${name}`);
    if (t) {
      const ident = name.endsWith("_mul") ? 1 : 0;
      const card = $(`channel-${name}`);
      t.innerHTML = "";
      const mul = name.endsWith("_mul");  // factors: x0.8 .. x1 .. x1.2; offsets: -3 .. 0 .. +3
      const show = (v) => (mul ? "\u00d7" + String(Number(v.toFixed(3))) : (v === 0 ? "0" : num(v)));
      for (const [v, word] of [[ident - h.scale, card.dataset.low], [ident, "no change"], [ident + h.scale, card.dataset.high]]) {
        const s = document.createElement("span");
        s.textContent = `${show(v)} ${word}`;
        t.append(s);
      }
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
      const body = { edits: collectEdits() };
      if (session.has_mask) { body.limit_to_mask = $("mask-scope").checked; }
      const j = await api(`/api/sessions/${session.id}/render`, {
        method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
      });
      showState(j);
    }
  } catch (e) {
    setStatus(`Render failed: ${e.message}`, true);
  } finally {
    pending = false;
  }
}

function applySplit() {
  const v = Number($("split").value);
  const showBefore = $("show-before").checked;
  $("result").style.clipPath = showBefore ? "inset(0 0 0 100%)" : `inset(0 0 0 ${v}%)`;
  const line = $("split-line");
  line.hidden = showBefore || v <= 0 || v >= 100;
  line.style.left = `calc(${v}% - 1px)`;
}
$("split").addEventListener("input", applySplit);
$("show-before").addEventListener("change", applySplit);

// a new request (or a failed one) must not leave the previous result on screen
function clearResult() {
  session = null;
  dirty = false;
  for (const id of ["views", "editor", "nomasks"]) { $(id).hidden = true; }
  for (const id of ["result", "before", "overlay"]) { $(id).removeAttribute("src"); }
  $("channels").innerHTML = "";
  $("render-info").textContent = "";
  $("region-mode").checked = false;
  $("stack").classList.remove("picking");
  $("split").value = 50; $("show-before").checked = false;
  applySplit();
}

function showPreview(file, id) {
  const img = $(id);
  if (img.dataset.url) { URL.revokeObjectURL(img.dataset.url); }
  if (!file) { img.removeAttribute("src"); img.hidden = true; return; }
  img.dataset.url = URL.createObjectURL(file);
  img.src = img.dataset.url;
  img.hidden = false;
}

let timer = null;
function startProgress() {
  const t0 = performance.now();
  let phase = "Uploading";
  $("progress").hidden = false;
  $("progress-fill").className = "fill";
  $("progress-fill").style.width = "0%";
  const tick = () => { $("elapsed").textContent = `${phase}... ${((performance.now() - t0) / 1000).toFixed(1)} s`; };
  tick();
  timer = setInterval(tick, 100);
  return {
    upload(frac) {
      if (frac < 1) { $("progress-fill").style.width = `${Math.round(frac * 100)}%`; phase = `Uploading ${Math.round(frac * 100)}%`; }
      else { $("progress-fill").style.width = "30%"; $("progress-fill").className = "fill busy"; phase = "Harmonizing"; }
    },
    stop() { clearInterval(timer); $("progress").hidden = true; return (performance.now() - t0) / 1000; },
  };
}

async function runRequest(path, formData, what) {
  if (busy) { return; }
  busy = true;
  clearResult();
  setStatus(`Harmonizing ${what}...`);
  $("run").disabled = true;
  const prog = startProgress();
  if (!formData) { prog.upload(1); }  // nothing to upload (an example): straight to "Harmonizing"
  try {
    const j = await post(path, formData, (f) => prog.upload(f));
    const secs = prog.stop();
    showSession(j, secs);
  } catch (e) {
    prog.stop();
    clearResult();
    setStatus(`Error: ${e.message}`, true);
  } finally {
    $("run").disabled = false;
    busy = false;
  }
}

function showSession(j, secs) {
  session = j;
  $("views").hidden = false;
  $("before").src = j.composite;
  if (j.editable) {
    buildChannels(j.channels);
    $("editor").hidden = false;
    $("mask-scope-label").hidden = !j.has_mask;
  } else {
    $("nomasks").hidden = false;
  }
  showState(j);
  const t = j.timings;
  setStatus(`Done in ${secs.toFixed(1)} s: ${j.filename}, ${j.width}x${j.height}, network ${t.network.toFixed(2)} s, ` +
            `full-res apply ${t.apply.toFixed(2)} s.` + (j.has_mask ? " Edits stay inside the mask." : "") +
            (j.notes && j.notes.length ? " " + j.notes.join("; ") : ""));
}

function harmonizeChosen() {
  const file = $("image").files[0];
  if (!file) { setStatus("Choose a composite image first.", true); return; }
  const fd = new FormData();
  fd.append("image", file);
  const mask = $("mask").files[0];
  if (mask) { fd.append("mask", mask); }
  runRequest("/api/sessions", fd, file.name);
}

function openExample(name) {
  runRequest(`/api/examples/${encodeURIComponent(name)}`, null, `example "${name}"`);
}

$("run").addEventListener("click", harmonizeChosen);
function clearMask() { $("mask").value = ""; showPreview(null, "mask-preview"); $("clear-mask").hidden = true; }
// a new composite starts without the previous one's mask (it would not fit)
$("image").addEventListener("change", () => { showPreview($("image").files[0], "preview"); clearMask(); });
$("mask").addEventListener("change", () => { showPreview($("mask").files[0], "mask-preview"); $("clear-mask").hidden = !$("mask").files.length; });
$("clear-mask").addEventListener("click", () => { clearMask(); setStatus("Mask removed: the next run is mask-free."); });

const drop = $("drop");
drop.addEventListener("dragover", (ev) => { ev.preventDefault(); drop.classList.add("over"); });
drop.addEventListener("dragleave", () => drop.classList.remove("over"));
drop.addEventListener("drop", (ev) => {
  ev.preventDefault();
  drop.classList.remove("over");
  const files = [...(ev.dataTransfer ? ev.dataTransfer.files : [])].filter((f) => f.type.startsWith("image/") || /\.(png|jpe?g|webp|tiff?|bmp)$/i.test(f.name));
  if (!files.length) { setStatus("Drop an image file.", true); return; }
  const isMask = (f) => /_mask\.[^.]+$/i.test(f.name);
  const image = files.find((f) => !isMask(f)) || files[0];
  const mask = files.find((f) => f !== image && isMask(f));
  for (const [input, f] of [[$("image"), image], [$("mask"), mask]]) {
    const dt = new DataTransfer();
    if (f) { dt.items.add(f); }
    input.files = dt.files;
  }
  showPreview(image, "preview");
  showPreview(mask, "mask-preview");
  $("clear-mask").hidden = !mask;
  harmonizeChosen();
});

$("region-mode").addEventListener("change", async () => {
  const on = $("region-mode").checked;
  $("stack").classList.toggle("picking", on);
  if (on) { setStatus("Click the result to pick regions; the sliders then act only there."); return; }
  if (!session) { return; }
  try {  // turning the limit off really removes it
    const j = await api(`/api/sessions/${session.id}/region`, {
      method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ clear: true }),
    });
    showState(j);
    $("overlay").removeAttribute("src");
    setStatus(j.limit_to_mask ? "Region limit off: edits apply inside the mask." : "Region limit off: edits apply to the whole image.");
  } catch (e) { setStatus(`Clearing the region failed: ${e.message}`, true); }
});

$("mask-scope").addEventListener("change", () => {
  scheduleRender();
  setStatus($("mask-scope").checked ? "Edits stay inside the uploaded mask." : "Edits reach the whole image.");
});

$("stack").addEventListener("click", async (ev) => {
  if (!session || !session.editable || !$("region-mode").checked) { return; }
  const rect = $("stack").getBoundingClientRect();
  const x = (ev.clientX - rect.left) / rect.width;
  const y = (ev.clientY - rect.top) / rect.height;
  try {
    const j = await api(`/api/sessions/${session.id}/region`, {
      method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ x: Math.min(Math.max(x, 0), 1), y: Math.min(Math.max(y, 0), 1), mode: "toggle" }),
    });
    showState(j);
    setStatus(`Region: ${j.region.length} superpixel(s) selected; edits apply there only.`);
  } catch (e) { setStatus(`Region failed: ${e.message}`, true); }
});

$("clear-region").addEventListener("click", async () => {
  if (!session) { return; }
  try {
    const j = await api(`/api/sessions/${session.id}/region`, {
      method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ clear: true }),
    });
    showState(j);
    $("overlay").removeAttribute("src");
    setStatus("Region cleared.");
  } catch (e) { setStatus(`Clear failed: ${e.message}`, true); }
});

$("commit").addEventListener("click", async () => {
  if (!session) { return; }
  try {
    const j = await api(`/api/sessions/${session.id}/commit`, { method: "POST" });
    resetSliders();
    $("overlay").removeAttribute("src");
    showState(j);
    setStatus("Edits applied; sliders reset for a new edit (Reset to model output undoes everything).");
  } catch (e) { setStatus(`Apply failed: ${e.message}`, true); }
});

$("reset").addEventListener("click", () => { resetSliders(); scheduleRender(); });

$("restore").addEventListener("click", async () => {
  if (!session) { return; }
  try {
    const j = await api(`/api/sessions/${session.id}/restore`, { method: "POST" });
    resetSliders();
    $("region-mode").checked = false;
    $("stack").classList.remove("picking");
    showState(j);
    setStatus("Back to the model's output.");
  } catch (e) { setStatus(`Reset failed: ${e.message}`, true); }
});

function filenameFrom(header, fallback) {
  const star = /filename\*=UTF-8''([^;]+)/i.exec(header || "");
  if (star) { try { return decodeURIComponent(star[1]); } catch (e) { /* fall through */ } }
  const plain = /filename="([^"]*)"/i.exec(header || "");
  return plain ? plain[1] : fallback;
}

async function download(what, fallback) {
  if (!session) { setStatus("Nothing to download yet.", true); return; }
  try {
    const r = await fetch(`/api/sessions/${session.id}/${what}`);
    if (!r.ok) {
      let body = null;
      try { body = await r.json(); } catch (e) { body = null; }
      throw new Error(errorText(body, `${r.status} ${r.statusText}`));
    }
    const name = filenameFrom(r.headers.get("Content-Disposition"), fallback);
    const url = URL.createObjectURL(await r.blob());
    const a = document.createElement("a");
    a.href = url; a.download = name;
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 60000);
    setStatus(`Downloaded ${name}.`);
  } catch (e) { setStatus(`Download failed: ${e.message}`, true); }
}
$("download-image").addEventListener("click", () => download("image.png", "harmonized.png"));
$("download-image-plain").addEventListener("click", () => download("image.png", "harmonized.png"));
$("download-masks").addEventListener("click", () => download("masks.npz", "masks.npz"));
$("download-heatmaps").addEventListener("click", () => download("masks.png", "masks.png"));
</script>
</body>
</html>
"""
