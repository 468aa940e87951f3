"""The editor's composite maker in a real headless Chromium (Playwright): choose a cut-out
and a background, drag and scale the cut-out, harmonize, edit, download.

With ``HARMONYKIT_FIGURES=docs/figures`` set, :func:`test_screenshots_for_the_docs` also
runs the flow with the packaged ``default`` model on pictures made from ``examples/`` and
writes ``editor_cutout_{place,result,split}.png`` there (docs/inference.md shows them)."""

from __future__ import annotations

import io
import os
import re
import shutil
import socket
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

pytestmark = pytest.mark.browser

REPO = Path(__file__).resolve().parents[2]
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]


def _chromium() -> str | None:
    exe = Path("/usr/bin/chromium")
    return str(exe) if exe.is_file() else shutil.which("chromium") or shutil.which("chromium-browser")


def _serve(harmonizer, **kwargs):
    """Start the editor on a free port; ``(url, stop)``."""
    uvicorn = pytest.importorskip("uvicorn")
    from harmonykit.app import create_app

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    srv = uvicorn.Server(uvicorn.Config(create_app(harmonizer, **kwargs), host="127.0.0.1", port=port,
                                        log_level="warning"))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not srv.started:
        if time.monotonic() > deadline or not thread.is_alive():
            pytest.fail("the editor server did not start")
        time.sleep(0.05)

    def stop() -> None:
        srv.should_exit = True
        thread.join(timeout=10)

    return f"http://127.0.0.1:{port}", stop


@pytest.fixture(scope="module")
def harmonizer(om_tiny_dir):
    pytest.importorskip("fastapi")
    from harmonykit.inference import Harmonizer

    return Harmonizer.from_pretrained(om_tiny_dir, work_size=32)


@pytest.fixture(scope="module")
def server(harmonizer):
    url, stop = _serve(harmonizer, preview_side=256, max_sessions=4)
    yield url
    stop()


@pytest.fixture(scope="module")
def browser():
    exe = _chromium()
    if exe is None:
        pytest.skip("Chromium not found (/usr/bin/chromium); install it with: apt-get install -y chromium")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("Playwright is not installed (pip install playwright; uses the system Chromium)")
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=exe, headless=True, args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


def _open(browser, url: str, viewport=None):
    context = browser.new_context(accept_downloads=True, viewport=viewport or {"width": 1100, "height": 900})
    pg = context.new_page()
    errors: list[str] = []
    pg.on("pageerror", lambda exc: errors.append(str(exc)))
    pg.goto(url + "/")
    pg.wait_for_function("() => !document.getElementById('model').textContent.startsWith('loading')")
    return context, pg, errors


@pytest.fixture
def page(browser, server):
    context, pg, errors = _open(browser, server)
    yield pg
    context.close()
    assert not errors, errors


@pytest.fixture(scope="module")
def files(tmp_path_factory, astronaut, chelsea) -> Path:
    d = tmp_path_factory.mktemp("cutout")
    Image.fromarray(astronaut).resize((200, 150)).save(d / "beach.png")
    cat = np.asarray(Image.fromarray(chelsea).resize((60, 48)))
    yy, xx = np.mgrid[:48, :60]
    alpha = np.clip((1.0 - np.hypot((yy - 24) / 24, (xx - 30) / 30)) * 4 * 255, 0, 255).astype(np.uint8)
    Image.fromarray(np.dstack([cat, alpha]), "RGBA").save(d / "cat.png")
    Image.fromarray(cat).save(d / "flat.jpg")
    return d


def _png(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)))


def _placed(page) -> tuple[int, int, int, int]:
    """``(w, h, x, y)`` from the stage's info line."""
    m = re.search(r"cut-out (\d+)x(\d+) at (-?\d+),(-?\d+)", page.text_content("#cutout-info"))
    assert m, page.text_content("#cutout-info")
    return tuple(int(v) for v in m.groups())


def _choose(page, cutout: Path, background: Path) -> None:
    page.set_input_files("#cutout-file", str(cutout))
    page.set_input_files("#background-file", str(background))
    page.wait_for_function("() => !document.getElementById('stage-fg').hidden && "
                           "document.getElementById('stage-fg').getBoundingClientRect().width > 0")


def _drag(page, dx: float, dy: float) -> None:
    box = page.locator("#stage-fg").bounding_box()
    cx, cy = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    page.mouse.move(cx, cy)
    page.mouse.down()
    page.mouse.move(cx + dx / 2, cy + dy / 2, steps=4)
    page.mouse.move(cx + dx, cy + dy, steps=4)
    page.mouse.up()


def _harmonize(page) -> None:
    page.click("#cutout-run")
    page.wait_for_function("() => /^(Done|Error)/.test(document.getElementById('status').textContent)",
                           timeout=60000)
    assert page.text_content("#status").startswith("Done"), page.text_content("#status")


def _download(page, button: str) -> tuple[str, bytes]:
    with page.expect_download() as info:
        page.click(button)
    return info.value.suggested_filename, Path(info.value.path()).read_bytes()


def test_drag_scale_harmonize_edit_and_download(page, files, harmonizer):
    from harmonykit.composite import composite

    _choose(page, files / "cat.png", files / "beach.png")
    w, h, x0, y0 = _placed(page)
    assert (w, h, x0, y0) == (60, 48, 70, 51)  # centred, natural size (it fits)
    assert page.text_content("#cutout-info").endswith("on 200x150")
    k = page.locator("#stage-bg").bounding_box()["width"] / 200  # display pixels per background pixel

    # drag with the pointer: it follows in background pixels
    _drag(page, -40 * k, 25 * k)
    _, _, x1, y1 = _placed(page)
    assert abs(x1 - (x0 - 40)) <= 1 and abs(y1 - (y0 + 25)) <= 1
    # the scale slider scales about the centre; the wheel over the stage scales too
    page.fill("#cutout-scale", "1.5")
    w2, h2, x2, y2 = _placed(page)
    assert (w2, h2) == (90, 72) and abs(x2 - (x1 - 15)) <= 1 and page.text_content("#cutout-scale-value") == "1.50"
    box = page.locator("#stage").bounding_box()
    page.mouse.move(box["x"] + 10, box["y"] + 10)
    page.mouse.wheel(0, 200)  # down: smaller
    page.wait_for_function("() => Number(document.getElementById('cutout-scale').value) < 1.5")
    page.fill("#cutout-scale", "1.25")
    # arrow keys nudge the focused cut-out
    page.focus("#stage-fg")
    page.keyboard.press("ArrowRight")
    page.keyboard.press("Shift+ArrowDown")
    w3, h3, x3, y3 = _placed(page)
    assert (w3, h3) == (75, 60)

    _harmonize(page)
    status = page.text_content("#status")
    assert f"cat.png on beach.png at {x3},{y3} scale 1.25 (cat_on_beach.png)" in status and "200x150" in status
    assert page.evaluate("() => session.cutout.box") == [max(x3, 0), max(y3, 0), min(x3 + 75, 200), min(y3 + 60, 150)]
    assert page.is_visible("#editor") and page.is_visible("#cutout-downloads") and page.is_checked("#mask-scope")
    assert "on the cut-out" in page.text_content("#mask-scope-label")

    # the editing flow goes on: a slider re-renders the result
    before = page.get_attribute("#result", "src")
    page.fill("#offset-l_add", "30")
    page.wait_for_function("(b) => document.getElementById('result').src !== b", arg=before, timeout=20000)

    # downloads: the composite, its soft mask and the edited result, named as by `harmonykit composite`
    ref = composite(files / "cat.png", files / "beach.png", (x3, y3), 1.25, harmonizer)
    name, data = _download(page, "#download-composite")
    assert name == "cat_on_beach.png" and np.array_equal(_png(data), ref.image)
    name, data = _download(page, "#download-composite-mask")
    assert name == "cat_on_beach_mask.png" and np.array_equal(_png(data), ref.mask)
    name, data = _download(page, "#download-image")
    result = _png(data)
    assert name == "cat_on_beach_harmonized.png" and result.shape == (150, 200, 3)
    outside, inside = ref.mask == 0, ref.mask == 255
    assert np.array_equal(result[outside], ref.image[outside])  # the background's bytes
    assert result[inside].astype(int).mean() > ref.harmonized[inside].astype(int).mean() + 10  # the edit

    # a plain upload afterwards: the composite downloads go away
    page.set_input_files("#image", str(files / "beach.png"))
    page.click("#run")
    page.wait_for_function("() => document.getElementById('status').textContent.startsWith('Done')", timeout=30000)
    assert not page.is_visible("#cutout-downloads") and "uploaded mask" in page.text_content("#mask-scope-label")


def test_a_cutout_without_transparency_is_refused_clearly(page, files):
    _choose(page, files / "flat.jpg", files / "beach.png")
    assert page.get_attribute("#cutout-info", "class") == "warn"
    assert "no transparent pixels" in page.text_content("#status")
    page.click("#cutout-run")
    page.wait_for_function("() => document.getElementById('status').textContent.startsWith('Error')", timeout=30000)
    status = page.text_content("#status")
    assert "the cut-out flat.jpg has no alpha channel" in status and page.get_attribute("#status", "class") == "error"
    assert not page.is_visible("#views")
    # dragged wholly off the background: the server's clear 400
    page.set_input_files("#cutout-file", str(files / "cat.png"))
    page.wait_for_function("() => document.getElementById('cutout-info').className === ''")
    k = page.locator("#stage-bg").bounding_box()["width"] / 200
    _drag(page, 150 * k, 0)
    _drag(page, 60 * k, 0)  # the pointer is captured: the drag goes on past the stage's edge
    assert _placed(page)[2] >= 200
    page.click("#cutout-run")
    page.wait_for_function("() => document.getElementById('status').textContent.startsWith('Error')", timeout=30000)
    assert "wholly outside" in page.text_content("#status")


def _docs_pictures(folder: Path) -> tuple[Path, Path]:
    """A cut-out (the cat of examples/cat_real.png in a feathered ellipse, graded cold and
    dark: it does not fit) and a warm background (examples/coffee_real.png)."""
    from harmonykit.data.perturb.ops import LabScale

    cat = np.asarray(Image.open(REPO / "examples" / "cat_real.png").convert("RGB"))[20:290, 70:390]
    cat = LabScale(0.8, 0.6, 0.3).apply(cat)
    h, w = cat.shape[:2]
    yy, xx = np.mgrid[:h, :w]
    r = np.hypot((yy - h / 2) / (h / 2), (xx - w / 2) / (w / 2))
    alpha = np.clip((1.0 - r) * 6 * 255, 0, 255).astype(np.uint8)
    Image.fromarray(np.dstack([cat, alpha]), "RGBA").save(folder / "cat_cutout.png")
    shutil.copyfile(REPO / "examples" / "coffee_real.png", folder / "table.png")
    return folder / "cat_cutout.png", folder / "table.png"


def _save_small(png: bytes, path: Path) -> None:
    """A screenshot as a 256-colour PNG (a third of the bytes; the page is mostly flat)."""
    Image.open(io.BytesIO(png)).convert("RGB").quantize(256).save(path, optimize=True)


@pytest.mark.skipif(not os.environ.get("HARMONYKIT_FIGURES"), reason="set HARMONYKIT_FIGURES=docs/figures")
def test_screenshots_for_the_docs(browser, tmp_path):
    from harmonykit.inference import Harmonizer

    out = Path(os.environ["HARMONYKIT_FIGURES"])
    out.mkdir(parents=True, exist_ok=True)
    url, stop = _serve(Harmonizer.from_pretrained("default"), preview_side=600)
    context, page, errors = _open(browser, url, {"width": 1000, "height": 900})
    try:
        cutout, table = _docs_pictures(tmp_path)
        _choose(page, cutout, table)
        page.fill("#cutout-scale", "0.7")
        k = page.locator("#stage-bg").bounding_box()["width"] / 600
        _drag(page, 130 * k, 60 * k)
        _save_small(page.locator("#cutout").screenshot(), out / "editor_cutout_place.png")
        _harmonize(page)
        page.fill("#split", "0")
        page.evaluate("() => window.scrollTo(0, document.getElementById('views').offsetTop - 90)")
        page.wait_for_timeout(300)
        _save_small(page.screenshot(), out / "editor_cutout_result.png")
        x0, _, x1, _ = page.evaluate("() => session.cutout.box")
        page.fill("#split", str(round(100 * (x0 + x1) / 2 / 600)))  # the split crosses the cut-out
        page.fill("#offset-b_add", "6")  # a little warmer than the model's result
        page.wait_for_timeout(1500)
        page.evaluate("() => { document.getElementById('upload-row').style.position = 'static'; }")  # not over it
        _save_small(page.locator("#views").screenshot(), out / "editor_cutout_split.png")
    finally:
        context.close()
        stop()
    assert not errors, errors
    for name in ("place", "result", "split"):
        assert (out / f"editor_cutout_{name}.png").stat().st_size < 300 * 1024
