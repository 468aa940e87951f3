"""The web editor in a real headless Chromium (Playwright): upload, result, sliders, regions,
examples gallery, before/after, downloads, mask-limited edits, progress, drag and drop,
plain-language labels, error handling. One server and one browser for the module."""

from __future__ import annotations

import base64
import io
import re
import shutil
import socket
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

pytestmark = pytest.mark.browser

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
]


def _chromium() -> str | None:
    if CHROMIUM.is_file():
        return str(CHROMIUM)
    return shutil.which("chromium") or shutil.which("chromium-browser")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _decode(url: str) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1]))).convert("RGB")).astype(int)


def _png(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB")).astype(int)


class SlowHarmonizer:
    """The real harmonizer, optionally ``delay`` seconds slower (for the progress display)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.delay = 0.0

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        time.sleep(self.delay)
        return self.inner(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


@pytest.fixture(scope="module")
def server(om_tiny_dir):
    uvicorn = pytest.importorskip("uvicorn")
    pytest.importorskip("fastapi")
    from harmonykit.app import create_app
    from harmonykit.inference import Harmonizer

    slow = SlowHarmonizer(Harmonizer.from_pretrained(om_tiny_dir, work_size=32))
    app = create_app(slow, preview_side=256, max_sessions=4)
    port = _free_port()
    srv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not srv.started:
        if time.monotonic() > deadline or not thread.is_alive():
            pytest.fail("the editor server did not start")
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}", slow
    srv.should_exit = True
    thread.join(timeout=10)


@pytest.fixture(scope="module")
def browser():
    exe = _chromium()
    if exe is None:
        reason = "Chromium not found (/usr/bin/chromium); install it with: apt-get install -y chromium"
        print(f"SKIP: {reason}")
        pytest.skip(reason)
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        reason = "Playwright is not installed (pip install playwright; uses the system Chromium)"
        print(f"SKIP: {reason}")
        pytest.skip(reason)
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=exe, headless=True, args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture
def page(browser, server):
    url, slow = server
    slow.delay = 0.0
    context = browser.new_context(accept_downloads=True)
    pg = context.new_page()
    errors: list[str] = []
    pg.on("pageerror", lambda exc: errors.append(str(exc)))
    pg.goto(url + "/")
    pg.wait_for_function("() => document.getElementById('model').textContent.includes('om_unet_tiny')")
    yield pg
    context.close()
    assert not errors, errors


@pytest.fixture(scope="module")
def photo(tmp_path_factory, astronaut) -> Path:
    p = tmp_path_factory.mktemp("browser") / "photo.png"
    Image.fromarray(astronaut).resize((160, 120), Image.Resampling.BILINEAR).save(p)
    return p


def _upload(page, image: Path, mask: Path | None = None) -> str:
    page.set_input_files("#image", str(image))
    if mask is not None:
        page.set_input_files("#mask", str(mask))
    page.click("#run")
    page.wait_for_function("() => document.getElementById('status').textContent.startsWith('Done')",
                           timeout=30000)
    return page.get_attribute("#result", "src")


def _wait_change(page, selector_id: str, old: str) -> str:
    page.wait_for_function(f"(b) => document.getElementById('{selector_id}').src !== b", arg=old, timeout=20000)
    return page.get_attribute(f"#{selector_id}", "src")


def _shot(page) -> np.ndarray:
    return _png(page.locator("#stack").screenshot())


def test_upload_result_slider_and_region_in_chromium(page, photo):
    before = _upload(page, photo)
    assert "160x120" in page.text_content("#status")
    assert _decode(before).shape == (120, 160, 3)
    assert page.locator("#channels .channel").count() == 6
    assert page.get_attribute("#heat-l_add", "src").startswith("data:image/png")

    # move a slider: the result is re-rendered from the edited masks
    page.fill("#offset-l_add", "30")
    after = _wait_change(page, "result", before)
    assert _decode(after).mean() > _decode(before).mean() + 10
    assert page.text_content("#offset-l_add-value") == "30.0"

    # limit the edit to a clicked superpixel: the rest goes back to the model's result
    page.check("#region-mode")
    box = page.locator("#stack").bounding_box()
    page.mouse.click(box["x"] + 5, box["y"] + 5)
    page.wait_for_function("() => (document.getElementById('overlay').src || '').startsWith('data:image/png')")
    region_src = _wait_change(page, "result", after)
    region = _decode(region_src)
    full, base = _decode(after), _decode(before)
    changed_full = np.abs(full - base).sum(-1) > 20
    changed_region = np.abs(region - base).sum(-1) > 20
    assert changed_region[:20, :20].mean() > 0.2  # around the clicked point: edited
    assert changed_region.mean() < changed_full.mean() / 3  # most of the image: not edited
    assert "superpixel" in page.text_content("#status")

    # unticking the box turns the limit off: the whole image is edited again, overlay gone
    page.uncheck("#region-mode")
    whole = _decode(_wait_change(page, "result", region_src))
    assert (np.abs(whole - base).sum(-1) > 20).mean() > changed_full.mean() * 0.9
    assert page.get_attribute("#overlay", "src") is None
    assert "Region limit off" in page.text_content("#status")


def test_examples_gallery_opens_an_example_with_its_mask(page):
    page.wait_for_selector("#gallery .example[data-name=cat]")
    assert page.locator("#gallery .example").count() == 3
    assert page.get_attribute("#gallery .example[data-name=cat] img", "src").startswith("data:image/jpeg")
    page.click("#gallery .example[data-name=cat]")
    page.wait_for_function("() => document.getElementById('status').textContent.startsWith('Done')", timeout=30000)
    status = page.text_content("#status")
    assert "cat.jpg" in status and "451x300" in status and "inside the mask" in status
    assert page.is_visible("#mask-scope-label") and page.is_checked("#mask-scope")
    assert _decode(page.get_attribute("#before", "src")).shape == (170, 256, 3)  # preview side 256


def test_before_after_split_and_show_original(page, photo):
    base = _upload(page, photo)
    page.fill("#offset-l_add", "40")  # make the result clearly brighter than the original
    _wait_change(page, "result", base)
    page.fill("#split", "0")  # (the split starts in the middle) all result
    page.wait_for_timeout(100)
    full = _shot(page)
    page.fill("#split", "50")
    split = _shot(page)
    h, w = split.shape[:2]
    left, right = split[:, : w // 2 - 3].mean(), split[:, w // 2 + 3 :].mean()
    assert right > left + 15  # left of the split: the original, right: the (brighter) result
    assert abs(split[:, w // 2 + 3 :].mean() - full[:, w // 2 + 3 :].mean()) < 2
    page.check("#show-before")
    original = _shot(page)
    assert original.mean() < full.mean() - 15
    assert abs(original[:, w // 2 + 3 :].mean() - split[:, : w // 2 - 3].mean()) < 30  # same image, other half
    page.uncheck("#show-before")
    page.fill("#split", "0")
    assert abs(_shot(page).mean() - full.mean()) < 2


def test_unicode_download_and_failed_download_shows_an_error(page, photo, tmp_path):
    named = tmp_path / "猫 cat.png"
    shutil.copyfile(photo, named)
    _upload(page, named)
    with page.expect_download() as info:
        page.click("#download-image")
    dl = info.value
    assert dl.suggested_filename == "猫 cat_harmonized.png"
    assert _png(Path(dl.path()).read_bytes()).shape == (120, 160, 3)
    with page.expect_download() as info:
        page.click("#download-masks")
    assert info.value.suggested_filename == "猫 cat.masks.npz"
    # the server drops the session (here: deleted): the click says so instead of doing nothing
    page.evaluate("() => fetch(`/api/sessions/${session.id}`, {method: 'DELETE'})")
    page.click("#download-image")
    page.wait_for_function("() => document.getElementById('status').className === 'error'")
    assert "Download failed" in page.text_content("#status") and "no longer open" in page.text_content("#status")


def test_offsets_stay_inside_the_uploaded_mask_until_widened(page, photo, tmp_path):
    mask = np.zeros((120, 160), np.uint8)
    mask[:, :80] = 255  # the left half is the "pasted" region
    mp = tmp_path / "photo_mask.png"
    Image.fromarray(mask).save(mp)
    base_src = _upload(page, photo, mp)
    assert page.is_checked("#mask-scope")
    page.fill("#offset-l_add", "30")
    inside_src = _wait_change(page, "result", base_src)
    base, inside = _decode(base_src), _decode(inside_src)
    d = np.abs(inside - base).sum(-1)
    assert d[:, :70].mean() > 30 and d[:, 90:].mean() < 3
    page.uncheck("#mask-scope")
    whole = _decode(_wait_change(page, "result", inside_src))
    assert np.abs(whole - base).sum(-1)[:, 90:].mean() > 30


def test_failed_upload_clears_the_previous_result(page, photo, tmp_path):
    _upload(page, photo)
    assert page.is_visible("#editor")
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"not an image")
    page.set_input_files("#image", str(bad))
    page.click("#run")
    page.wait_for_function("() => document.getElementById('status').className === 'error'", timeout=30000)
    assert "broken.png" in page.text_content("#status")
    assert not page.is_visible("#views") and not page.is_visible("#editor")
    assert page.get_attribute("#result", "src") is None and page.locator("#channels .channel").count() == 0
    assert page.evaluate("() => session") is None


def test_progress_with_elapsed_time_and_drag_and_drop_preview(page, photo, server):
    _, slow = server
    slow.delay = 1.5
    b64 = base64.b64encode(photo.read_bytes()).decode()
    dt = page.evaluate_handle(
        """(b64) => {
            const bin = atob(b64); const bytes = new Uint8Array(bin.length);
            for (let i = 0; i < bin.length; i++) { bytes[i] = bin.charCodeAt(i); }
            const dt = new DataTransfer();
            dt.items.add(new File([bytes], "dropped.png", { type: "image/png" }));
            return dt;
        }""", b64)
    page.dispatch_event("#drop", "drop", {"dataTransfer": dt})
    # the dropped file shows at once, before the server answers
    assert page.get_attribute("#preview", "src").startswith("blob:") and page.is_visible("#preview")
    page.wait_for_function(
        "() => /Harmonizing\\.\\.\\. [0-9.]+ s/.test(document.getElementById('elapsed').textContent) && "
        "parseFloat(document.getElementById('elapsed').textContent.split('... ')[1]) >= 0.5", timeout=10000)
    assert page.is_visible("#progress")
    page.wait_for_function("() => document.getElementById('status').textContent.startsWith('Done')", timeout=30000)
    assert not page.is_visible("#progress")
    secs = float(re.search(r"Done in ([0-9.]+) s", page.text_content("#status")).group(1))
    assert secs >= 1.5 and "dropped.png" in page.text_content("#status")


def test_plain_language_names_legend_numbers_and_reset_to_model(page, photo):
    base = _upload(page, photo)
    label = page.text_content("#label-l_add")
    assert "Brightness" in label and "l_add" in label
    assert "Blue-yellow shift" in page.text_content("#label-b_add")
    ticks = page.locator("#legend-l_add span").all_text_contents()
    assert len(ticks) == 3 and ticks[0].endswith("darker") and ticks[1] == "0 no change" and ticks[2].endswith("brighter")
    assert float(ticks[2].split()[0]) > 0 > float(ticks[0].split()[0])
    mul = page.locator("#legend-l_mul span").all_text_contents()  # factors read as x0.9 .. x1 .. x1.1
    assert mul[1] == "\u00d71 no change" and mul[0].startswith("\u00d7") and "Contrast" in page.text_content("#label-l_mul")
    page.fill("#offset-l_add", "40")
    edited = _wait_change(page, "result", base)
    page.wait_for_function("() => parseFloat(document.querySelectorAll('#legend-l_add span')[2].textContent) >= 40")
    # "Apply & new edit" bakes the edit in; "Reset to model output" undoes it too
    page.click("#commit")
    page.wait_for_function("() => document.getElementById('status').textContent.startsWith('Edits applied')")
    assert page.get_attribute("#result", "src") == edited
    page.click("#restore")
    page.wait_for_function("() => document.getElementById('status').textContent.startsWith('Back to')")
    assert page.get_attribute("#result", "src") == base


def test_no_broken_image_placeholders_before_the_first_result(page):
    assert not page.is_visible("#views") and not page.is_visible("#editor")
    broken = page.evaluate(
        "() => [...document.images].filter((i) => i.checkVisibility() && !i.getAttribute('src')).map((i) => i.id)")
    assert broken == []
    assert page.is_visible("#drop") and page.is_visible("#run")


# ------------------------------------------------------------------ issue 30: editor fixes
def test_a_new_composite_clears_the_chosen_mask(page, photo, tmp_path, astronaut):
    mask = np.zeros((120, 160), np.uint8)
    mask[:, :80] = 255
    mp = tmp_path / "photo_mask.png"
    Image.fromarray(mask).save(mp)
    _upload(page, photo, mp)
    assert "inside the mask" in page.text_content("#status") and page.is_visible("#clear-mask")
    other = tmp_path / "other.png"  # another size: the old mask would not fit it
    Image.fromarray(astronaut).resize((100, 80)).save(other)
    page.set_input_files("#image", str(other))
    assert page.evaluate("() => document.getElementById('mask').files.length") == 0
    assert not page.is_visible("#mask-preview") and not page.is_visible("#clear-mask")
    page.click("#run")
    page.wait_for_function("() => /^(Done|Error)/.test(document.getElementById('status').textContent)",
                           timeout=30000)
    status = page.text_content("#status")
    assert status.startswith("Done") and "100x80" in status and "inside the mask" not in status
    # the "No mask" button removes a chosen mask
    page.set_input_files("#mask", str(mp))
    assert page.is_visible("#clear-mask")
    page.click("#clear-mask")
    assert page.evaluate("() => document.getElementById('mask').files.length") == 0
    assert "mask-free" in page.text_content("#status")


def test_out_of_range_gain_is_a_422_and_the_session_keeps_working(page, photo):
    base = _upload(page, photo)
    status = page.evaluate("""async () => {
        const r = await fetch(`/api/sessions/${session.id}/render`, {method: "POST",
            headers: {"Content-Type": "application/json"},
            body: JSON.stringify({edits: {l_add: {gain: 1e308, offset: 0}}})});
        return [r.status, (await r.json()).detail];
    }""")
    assert status[0] == 422 and "gains must be within -10..10" in status[1]
    page.fill("#offset-l_add", "20")  # the session was not broken by the refused request
    after = _wait_change(page, "result", base)
    assert _decode(after).mean() > _decode(base).mean() + 5 and page.get_attribute("#status", "class") != "error"


def test_before_after_split_starts_in_the_middle(page, photo):
    _upload(page, photo)
    assert page.input_value("#split") == "50"
    assert page.evaluate("() => document.getElementById('result').style.clipPath") == "inset(0px 0px 0px 50%)"
    assert page.is_visible("#split-line")
    page.fill("#split", "10")
    _upload(page, photo)  # a new result starts in the middle again
    assert page.input_value("#split") == "50"


def test_status_line_stays_in_view_while_the_sliders_are_used(page, photo):
    page.set_viewport_size({"width": 900, "height": 480})
    _upload(page, photo)
    slider = page.locator("#offset-b_add")
    slider.scroll_into_view_if_needed()
    old = page.get_attribute("#result", "src")
    slider.fill("-30")
    _wait_change(page, "result", old)
    top, bottom, height, scrolled = page.evaluate("""() => {
        const r = document.getElementById('status').getBoundingClientRect();
        return [r.top, r.bottom, window.innerHeight, window.scrollY]; }""")
    assert scrolled > 100  # the page did scroll to reach the slider
    assert 0 <= top and bottom <= height and page.is_visible("#status")


def test_favicon_and_no_failed_request_on_load(browser, server):
    url, _ = server
    context = browser.new_context()
    pg = context.new_page()
    failed: list[tuple[str, int]] = []
    pg.on("response", lambda r: failed.append((r.url, r.status)) if r.status >= 400 else None)
    pg.goto(url + "/")
    pg.wait_for_function("() => document.getElementById('model').textContent.includes('om_unet_tiny')")
    href = pg.get_attribute("link[rel=icon]", "href")
    assert href == "/favicon.svg"
    for path in (href, "/favicon.ico"):
        status, kind = pg.evaluate("async (p) => { const r = await fetch(p); "
                                   "return [r.status, r.headers.get('content-type')]; }", path)
        assert status == 200 and kind.startswith("image/svg+xml")
    pg.wait_for_timeout(300)
    assert failed == []
    context.close()
