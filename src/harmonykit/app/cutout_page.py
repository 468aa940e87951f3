"""The editor page's composite maker: place a cut-out on a background, then harmonize.

:func:`page_html` is the page served at ``/``: :data:`harmonykit.app.page.INDEX_HTML` with
this section inserted before the status bar, its style in the head and its script after
the page's own (the
script uses the page's functions: ``runRequest``, ``showSession``, ``clearResult``,
``download``, ``setStatus``). Element ids (used by the browser tests):

* ``#cutout-file``, ``#background-file``: the cut-out (an image with transparency) and the
  background; they show at once on the stage [``#stage``, ``#stage-bg``, ``#stage-fg``],
  the cut-out centred and, when larger, scaled to about half the background.
* the cut-out is dragged with the pointer (mouse, pen or touch) and scaled with the slider
  [``#cutout-scale``, value in ``#cutout-scale-value``] or the mouse wheel over the stage
  (about its centre); arrow keys nudge it (shift: 10 px). Parts outside the background
  are hidden, as the server clips them. ``#cutout-info`` says where it is in background
  pixels and warns about a cut-out without transparent pixels.
* *Harmonize composite* [``#cutout-run``] sends both files with ``x``, ``y``, ``scale``
  to ``POST /api/composites``; the result opens in the usual editor, with two more
  downloads [``#download-composite``, ``#download-composite-mask``] in
  ``#cutout-downloads``.
"""

from __future__ import annotations

from functools import lru_cache

__all__ = ["CUTOUT_STYLE", "CUTOUT_SECTION", "CUTOUT_SCRIPT", "page_html"]

CUTOUT_STYLE = r"""<style>
  #cutout .row { display: flex; gap: 14px; align-items: center; flex-wrap: wrap; margin-bottom: 8px; }
  #cutout-scale { width: 180px; }
  #cutout-info { color: #555; font-variant-numeric: tabular-nums; }
  #cutout-info.warn { color: #b00020; font-weight: 600; }
  #stage { position: relative; display: inline-block; overflow: hidden; line-height: 0; max-width: 100%;
           user-select: none; touch-action: none; background: #ddd; }
  #stage-bg { display: block; max-width: min(100%, 720px); max-height: 480px; }
  #stage-fg { position: absolute; left: 0; top: 0; cursor: move; outline: 1px dashed #1e88e5;
              -webkit-user-drag: none; }
  #stage-fg:focus { outline: 2px solid #1e88e5; }
  #stage.dragging #stage-fg { cursor: grabbing; outline-color: #ff9800; }
  #cutout-downloads { margin-top: 6px; display: flex; gap: 8px; align-items: center; }
</style>
"""

CUTOUT_SECTION = r"""<section id="cutout">
  <h2>Or make a composite: drag a cut-out onto a background</h2>
  <div class="row">
    <label>Cut-out (PNG with transparency) <input type="file" id="cutout-file" accept="image/png,image/webp,image/tiff,image/*"></label>
    <label>Background <input type="file" id="background-file" accept="image/*"></label>
  </div>
  <div class="row" id="cutout-controls" hidden>
    <label for="cutout-scale">Scale</label>
    <input type="range" id="cutout-scale" min="0.05" max="4" step="0.01" value="1">
    <output id="cutout-scale-value">1.00</output>
    <button id="cutout-run" type="button">Harmonize composite</button>
    <span id="cutout-info"></span>
  </div>
  <div id="stage" hidden><img id="stage-bg" alt="background" draggable="false"><img id="stage-fg"
    alt="cut-out: drag to move, wheel to scale" tabindex="0" draggable="false" hidden></div>
</section>
"""

CUTOUT_SCRIPT = r"""<script>
"use strict";
const cut = { x: 0, y: 0, scale: 1, w: 0, h: 0, bw: 0, bh: 0, opaque: false, drag: null };

function stageK() {  // display pixels per background pixel
  const bg = $("stage-bg");
  return cut.bw ? bg.clientWidth / cut.bw : 1;
}

function placeCutout() {
  const fg = $("stage-fg"), k = stageK();
  fg.style.left = `${cut.x * k}px`;
  fg.style.top = `${cut.y * k}px`;
  fg.style.width = `${Math.max(1, cut.w * cut.scale * k)}px`;
  fg.style.height = `${Math.max(1, cut.h * cut.scale * k)}px`;
  $("cutout-scale").value = cut.scale;
  $("cutout-scale-value").textContent = cut.scale.toFixed(2);
  const info = $("cutout-info");
  if (!cut.w || !cut.bw) { info.textContent = cut.w ? "Now choose a background." : "Now choose a cut-out."; info.className = ""; return; }
  const sw = Math.max(1, Math.round(cut.w * cut.scale)), sh = Math.max(1, Math.round(cut.h * cut.scale));
  const x = Math.round(cut.x), y = Math.round(cut.y);
  const outside = x < 0 || y < 0 || x + sw > cut.bw || y + sh > cut.bh;
  info.className = cut.opaque ? "warn" : "";
  info.textContent = cut.opaque ? "This image has no transparent pixels: it is no cut-out (save it as a PNG with alpha)."
    : `cut-out ${sw}x${sh} at ${x},${y} on ${cut.bw}x${cut.bh}` + (outside ? " (the part outside is clipped)" : "");
}

function showStage() {
  const ready = cut.w > 0 && cut.bw > 0;
  $("stage").hidden = !cut.bw;
  $("stage-fg").hidden = !ready;
  $("cutout-controls").hidden = !(cut.w || cut.bw);
  placeCutout();
}

function centreCutout() {
  if (!cut.w || !cut.bw) { return; }
  const fit = Math.min(1, 0.5 * Math.min(cut.bw / cut.w, cut.bh / cut.h));
  cut.scale = Math.max(0.05, Math.round(fit * 100) / 100);
  cut.x = (cut.bw - cut.w * cut.scale) / 2;
  cut.y = (cut.bh - cut.h * cut.scale) / 2;
}

function hasTransparency(img) {  // any alpha < 255 (checked on a copy of at most 256 px)
  const s = Math.min(1, 256 / Math.max(img.naturalWidth, img.naturalHeight));
  const c = document.createElement("canvas");
  c.width = Math.max(1, Math.round(img.naturalWidth * s)); c.height = Math.max(1, Math.round(img.naturalHeight * s));
  const ctx = c.getContext("2d");
  ctx.drawImage(img, 0, 0, c.width, c.height);
  const d = ctx.getImageData(0, 0, c.width, c.height).data;
  for (let i = 3; i < d.length; i += 4) { if (d[i] < 255) { return true; } }
  return false;
}

function loadInto(id, file, onload) {
  const img = $(id);
  if (img.dataset.url) { URL.revokeObjectURL(img.dataset.url); delete img.dataset.url; }
  if (!file) { img.removeAttribute("src"); onload(null); return; }
  img.onload = () => onload(img);
  img.onerror = () => { setStatus(`${file.name} could not be shown: is it an image?`, true); onload(null); };
  img.dataset.url = URL.createObjectURL(file);
  img.src = img.dataset.url;
}

$("cutout-file").addEventListener("change", () => loadInto("stage-fg", $("cutout-file").files[0], (img) => {
  cut.w = img ? img.naturalWidth : 0; cut.h = img ? img.naturalHeight : 0;
  cut.opaque = img ? !hasTransparency(img) : false;
  centreCutout();
  showStage();
  if (cut.opaque) { setStatus("The chosen cut-out has no transparent pixels: choose a PNG with an alpha channel.", true); }
  else if (img) { setStatus(cut.bw ? "Drag the cut-out into place, scale it, then Harmonize composite." : "Now choose a background."); }
}));

$("background-file").addEventListener("change", () => loadInto("stage-bg", $("background-file").files[0], (img) => {
  cut.bw = img ? img.naturalWidth : 0; cut.bh = img ? img.naturalHeight : 0;
  centreCutout();
  showStage();
  if (img && cut.w && !cut.opaque) { setStatus("Drag the cut-out into place, scale it, then Harmonize composite."); }
}));

function setScale(s, keepCentre) {
  s = Math.min(4, Math.max(0.05, s));
  if (keepCentre) {
    cut.x += cut.w * (cut.scale - s) / 2;
    cut.y += cut.h * (cut.scale - s) / 2;
  }
  cut.scale = s;
  placeCutout();
}
$("cutout-scale").addEventListener("input", () => setScale(Number($("cutout-scale").value), true));
$("stage").addEventListener("wheel", (ev) => {
  if (!cut.w || !cut.bw) { return; }
  ev.preventDefault();
  setScale(Math.round(cut.scale * Math.exp(-ev.deltaY * 0.0015) * 100) / 100, true);
}, { passive: false });

const fgEl = $("stage-fg");
fgEl.addEventListener("pointerdown", (ev) => {
  ev.preventDefault();
  fgEl.setPointerCapture(ev.pointerId);
  fgEl.focus();
  cut.drag = { id: ev.pointerId, px: ev.clientX, py: ev.clientY, x: cut.x, y: cut.y };
  $("stage").classList.add("dragging");
});
fgEl.addEventListener("pointermove", (ev) => {
  const d = cut.drag;
  if (!d || d.id !== ev.pointerId) { return; }
  const k = stageK();
  cut.x = d.x + (ev.clientX - d.px) / k;
  cut.y = d.y + (ev.clientY - d.py) / k;
  placeCutout();
});
function endDrag(ev) {
  if (!cut.drag || cut.drag.id !== ev.pointerId) { return; }
  cut.drag = null;
  $("stage").classList.remove("dragging");
}
fgEl.addEventListener("pointerup", endDrag);
fgEl.addEventListener("pointercancel", endDrag);
fgEl.addEventListener("keydown", (ev) => {
  const step = ev.shiftKey ? 10 : 1;
  const moves = { ArrowLeft: [-step, 0], ArrowRight: [step, 0], ArrowUp: [0, -step], ArrowDown: [0, step] };
  if (!moves[ev.key]) { return; }
  ev.preventDefault();
  cut.x = Math.round(cut.x) + moves[ev.key][0];
  cut.y = Math.round(cut.y) + moves[ev.key][1];
  placeCutout();
});
window.addEventListener("resize", placeCutout);

$("cutout-run").addEventListener("click", () => {
  const fgFile = $("cutout-file").files[0], bgFile = $("background-file").files[0];
  if (!fgFile || !bgFile) { setStatus("Choose a cut-out and a background first.", true); return; }
  const fd = new FormData();
  fd.append("cutout", fgFile);
  fd.append("background", bgFile);
  fd.append("x", String(Math.round(cut.x)));
  fd.append("y", String(Math.round(cut.y)));
  fd.append("scale", String(Number(cut.scale.toFixed(3))));
  runRequest("/api/composites", fd, `${fgFile.name} on ${bgFile.name}`);
});

// composite sessions: two more downloads, and the mask is the cut-out's alpha
const views = $("views");
const dl = document.createElement("div");
dl.id = "cutout-downloads";
dl.hidden = true;
dl.innerHTML = '<span>Composite:</span><button id="download-composite" type="button">Download composite</button>' +
  '<button id="download-composite-mask" type="button">Download its mask</button>';
views.append(dl);
$("download-composite").addEventListener("click", () => download("composite.png", "composite.png"));
$("download-composite-mask").addEventListener("click", () => download("composite_mask.png", "composite_mask.png"));
const scopeText = $("mask-scope-label").lastChild;
const scopeDefault = scopeText.textContent;

const baseClearResult = clearResult;
clearResult = function () {
  baseClearResult();
  dl.hidden = true;
  scopeText.textContent = scopeDefault;
};
const baseShowSession = showSession;
showSession = function (j, secs) {
  baseShowSession(j, secs);
  if (!j.cutout) { return; }
  dl.hidden = false;
  scopeText.textContent = " keep edits on the cut-out (its alpha)";
  const c = j.cutout;
  setStatus($("status").textContent.replace(j.filename, `${c.cutout} on ${c.background} at ${c.x},${c.y} ` +
    `scale ${c.scale} (${j.filename})`));
};
</script>
"""


@lru_cache(maxsize=1)
def page_html() -> str:
    """The editor page: :data:`~harmonykit.app.page.INDEX_HTML` with the composite maker."""
    from harmonykit.app.page import INDEX_HTML

    anchors = ("</head>", '<div id="upload-row">', "</body>")
    if not all(INDEX_HTML.count(a) == 1 for a in anchors):
        raise RuntimeError("the editor page lacks the anchors of the composite maker")  # pragma: no cover
    html = INDEX_HTML.replace("</head>", CUTOUT_STYLE + "</head>")
    html = html.replace(anchors[1], CUTOUT_SECTION + anchors[1])
    return html.replace("</body>", CUTOUT_SCRIPT + "</body>")
