"""The web editor in a real headless Chromium (Playwright): upload, result, slider, region."""

from __future__ import annotations

import base64
import io
import shutil
import socket
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

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
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1]))).convert("RGB"))


@pytest.fixture
def server(om_tiny_dir):
    uvicorn = pytest.importorskip("uvicorn")
    pytest.importorskip("fastapi")
    from harmonykit.app import create_app
    from harmonykit.inference import Harmonizer

    app = create_app(Harmonizer.from_pretrained(om_tiny_dir, work_size=32), preview_side=256)
    port = _free_port()
    srv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not srv.started:
        if time.monotonic() > deadline or not thread.is_alive():
            pytest.fail("the editor server did not start")
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    srv.should_exit = True
    thread.join(timeout=10)


@pytest.mark.browser
def test_upload_result_slider_and_region_in_chromium(server, tmp_path, astronaut):
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

    photo = tmp_path / "photo.png"
    Image.fromarray(astronaut).resize((160, 120), Image.Resampling.BILINEAR).save(photo)

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=exe, headless=True, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.goto(server + "/")
            page.wait_for_function("() => document.getElementById('model').textContent.includes('om_unet_tiny')")
            page.set_input_files("#image", str(photo))
            page.click("#run")
            page.wait_for_function(
                "() => document.getElementById('result').src.startsWith('data:image')", timeout=30000
            )
            assert "Done: 160x120" in page.text_content("#status")
            before = page.get_attribute("#result", "src")
            assert _decode(before).shape == (120, 160, 3)
            assert page.locator("#channels .channel").count() == 6
            assert page.get_attribute("#heat-l_add", "src").startswith("data:image/png")

            # move a slider: the result is re-rendered from the edited masks
            page.fill("#offset-l_add", "30")
            page.wait_for_function(
                "(b) => document.getElementById('result').src !== b", arg=before, timeout=20000
            )
            after = page.get_attribute("#result", "src")
            assert _decode(after).mean() > _decode(before).mean() + 10
            assert page.text_content("#offset-l_add-value") == "30.0"

            # limit the edit to a clicked superpixel: the rest goes back to the model's result
            page.check("#region-mode")
            box = page.locator("#result").bounding_box()
            page.mouse.click(box["x"] + 5, box["y"] + 5)
            page.wait_for_function("() => document.getElementById('overlay').src.startsWith('data:image/png')")
            page.wait_for_function(
                "(a) => document.getElementById('result').src !== a", arg=after, timeout=20000
            )
            region = _decode(page.get_attribute("#result", "src")).astype(int)
            full, base = _decode(after).astype(int), _decode(before).astype(int)
            changed_full = np.abs(full - base).sum(-1) > 20
            changed_region = np.abs(region - base).sum(-1) > 20
            assert changed_region[:20, :20].mean() > 0.2  # around the clicked point: edited
            assert changed_region.mean() < changed_full.mean() / 3  # most of the image: not edited
            assert "superpixel" in page.text_content("#status")
            assert page.get_attribute("#download-image", "href").endswith("/image.png")
            assert not errors, errors
        finally:
            browser.close()
