"""The editor's composites from a cut-out and a background (``POST /api/composites``,
:mod:`harmonykit.app.cutout`): paste, harmonize, edit, download; errors."""

from __future__ import annotations

import base64
import io

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("fastapi")
pytest.importorskip("python_multipart")
pytest.importorskip("httpx2")

from fastapi.testclient import TestClient  # noqa: E402

from harmonykit.app import create_app  # noqa: E402
from harmonykit.app.cutout import CutoutEditSession, blend_by_alpha  # noqa: E402
from harmonykit.composite import composite, paste_cutout  # noqa: E402
from harmonykit.inference import Harmonizer  # noqa: E402


def _bytes(arr: np.ndarray, fmt: str = "PNG", mode: str | None = None) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr, mode).save(buf, format=fmt)
    return buf.getvalue()


def _png(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)))


def _decode(url: str) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1]))).convert("RGB")).astype(int)


@pytest.fixture(scope="module")
def harmonizer(om_tiny_dir) -> Harmonizer:
    return Harmonizer.from_pretrained(om_tiny_dir, work_size=32)


@pytest.fixture(scope="module")
def client(harmonizer) -> TestClient:
    return TestClient(create_app(harmonizer, max_sessions=4, preview_side=64))


@pytest.fixture(scope="module")
def cutout(chelsea) -> np.ndarray:
    """A 30 x 24 RGBA cut-out: an ellipse with a soft edge."""
    cat = np.asarray(Image.fromarray(chelsea).resize((30, 24)))
    yy, xx = np.mgrid[:24, :30]
    r = np.hypot((yy - 12) / 12, (xx - 15) / 15)
    alpha = np.clip((1.0 - r) * 4 * 255, 0, 255).astype(np.uint8)
    return np.dstack([cat, alpha])


@pytest.fixture(scope="module")
def background(astronaut) -> np.ndarray:
    return np.asarray(Image.fromarray(astronaut).resize((96, 72)))


def _post(client, cutout_bytes, bg_bytes, names=("cat.png", "beach.png"), **form):
    data = {k: str(v) for k, v in {"x": 20, "y": 10, **form}.items()}
    return client.post("/api/composites", data=data,
                       files={"cutout": (names[0], cutout_bytes, "image/png"), "background": (names[1], bg_bytes, "image/png")})


def test_paste_harmonize_and_download_like_the_composite_api(client, harmonizer, cutout, background):
    r = _post(client, _bytes(cutout, mode="RGBA"), _bytes(background), scale=1.5)
    assert r.status_code == 200, r.text
    j = r.json()
    assert (j["width"], j["height"], j["filename"]) == (96, 72, "cat_on_beach.png")
    assert j["has_mask"] and j["limit_to_mask"] and j["editable"] and len(j["channels"]) == 6
    c = j["cutout"]
    assert (c["x"], c["y"], c["scale"], c["box"]) == (20, 10, 1.5, [20, 10, 65, 46])
    assert c["downloads"] == {"composite": "cat_on_beach.png", "mask": "cat_on_beach_mask.png",
                              "harmonized": "cat_on_beach_harmonized.png"}
    ref = composite(cutout, background, (20, 10), 1.5, harmonizer)
    sid = j["id"]
    comp = client.get(f"/api/sessions/{sid}/composite.png")
    mask = client.get(f"/api/sessions/{sid}/composite_mask.png")
    image = client.get(f"/api/sessions/{sid}/image.png")
    assert "cat_on_beach.png" in comp.headers["content-disposition"]
    assert "cat_on_beach_mask.png" in mask.headers["content-disposition"]
    assert "cat_on_beach_harmonized.png" in image.headers["content-disposition"]
    assert np.array_equal(_png(comp.content), ref.image) and np.array_equal(_png(mask.content), ref.mask)
    soft = _png(mask.content)
    assert ((soft > 0) & (soft < 255)).sum() > 20  # the soft edge is kept as a soft mask
    result = _png(image.content)
    assert np.array_equal(result, ref.harmonized)  # the same bytes as harmonykit.composite
    outside = soft == 0
    assert np.array_equal(result[outside], background[outside])  # the background's bytes
    assert np.abs(result[soft == 255].astype(int) - ref.image[soft == 255]).mean() > 0


def test_edits_on_a_composite_stay_on_the_cutout_until_widened(client, cutout, background):
    j = _post(client, _bytes(cutout, mode="RGBA"), _bytes(background), x=30, y=20).json()
    sid, base = j["id"], _decode(j["result"])
    r = client.post(f"/api/sessions/{sid}/render", json={"edits": {"l_add": {"offset": 30}}})
    assert r.status_code == 200
    edited = _decode(r.json()["result"])
    mask = _png(client.get(f"/api/sessions/{sid}/composite_mask.png").content)
    small = np.asarray(Image.fromarray(mask).resize((64, 48), Image.Resampling.BILINEAR))
    d = np.abs(edited - base).sum(-1)
    assert d[small > 250].mean() > 30 and d[small == 0].mean() < 2  # JPEG previews: about 0 outside
    full = _png(client.get(f"/api/sessions/{sid}/image.png").content)
    assert np.array_equal(full[mask == 0], background[mask == 0])  # full resolution: exact
    r = client.post(f"/api/sessions/{sid}/render", json={"edits": {"l_add": {"offset": 30}}, "limit_to_mask": False})
    whole = _decode(r.json()["result"])
    assert np.abs(whole - base).sum(-1)[small == 0].mean() > 30
    assert client.post(f"/api/sessions/{sid}/restore").status_code == 200


def test_partly_outside_is_clipped_with_a_note(client, cutout, background):
    r = _post(client, _bytes(cutout, mode="RGBA"), _bytes(background), x=-10, y=60)
    assert r.status_code == 200, r.text
    j = r.json()
    assert j["cutout"]["box"] == [0, 60, 20, 72] and any("clipped" in n for n in j["notes"])


@pytest.mark.parametrize(
    "form, expected",
    [
        ({"x": 100000}, "x 100000 is out of range: must be within -16384..16384"),
        ({"y": "1.5"}, "y 1.5 must be a whole number"),
        ({"scale": 0}, "scale 0 is out of range: must be within 0.01..20"),
        ({"scale": "nan"}, "scale nan is out of range"),
        ({"scale": "big"}, "invalid request: scale: Input should be a valid number"),
        ({"preview": 10}, "preview 10 is out of range"),
    ],
)
def test_numbers_out_of_range_are_a_422(client, cutout, background, form, expected):
    r = _post(client, _bytes(cutout, mode="RGBA"), _bytes(background), **form)
    assert r.status_code == 422, r.text
    assert expected in r.json()["detail"]


def test_file_errors_are_a_clear_400(client, cutout, background):
    rgb = _bytes(cutout[..., :3])
    r = _post(client, rgb, _bytes(background), names=("photo.jpg", "beach.png"))
    assert r.status_code == 400 and "the cut-out photo.jpg has no alpha channel" in r.json()["detail"]
    opaque = cutout.copy()
    opaque[..., 3] = 255
    r = _post(client, _bytes(opaque, mode="RGBA"), _bytes(background), names=("solid.png", "beach.png"))
    assert r.status_code == 400 and "the cut-out solid.png has no transparent pixels" in r.json()["detail"]
    r = _post(client, _bytes(cutout, mode="RGBA"), b"not an image", names=("cat.png", "broken.jpg"))
    detail = r.json()["detail"]
    assert r.status_code == 400 and "background could not be read" in detail and "broken.jpg" in detail
    assert "harmonykit-upload" not in detail  # no temporary paths
    r = _post(client, b"", _bytes(background))
    assert r.status_code == 400 and "cutout upload is empty" in r.json()["detail"]
    r = _post(client, _bytes(cutout, mode="RGBA"), _bytes(background), x=500, y=0)
    assert r.status_code == 400 and "wholly outside" in r.json()["detail"]
    r = client.post("/api/composites", data={"x": "1", "y": "1"},
                    files={"cutout": ("cat.png", _bytes(cutout, mode="RGBA"), "image/png")})
    assert r.status_code == 422 and "background: Field required" in r.json()["detail"]


def test_composite_downloads_need_a_composite_session(client, background):
    sid = client.post("/api/sessions", files={"image": ("p.png", _bytes(background), "image/png")}).json()["id"]
    r = client.get(f"/api/sessions/{sid}/composite.png")
    assert r.status_code == 404 and "not made from a cut-out" in r.json()["detail"]
    assert client.get("/api/sessions/nope/composite_mask.png").status_code == 404


def test_large_composite_uploads_get_a_413(harmonizer, cutout, background):
    small = TestClient(create_app(harmonizer, max_upload_mb=0.001))
    noise = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    r = _post(small, _bytes(cutout, mode="RGBA"), _bytes(noise))
    assert r.status_code == 413 and "0.001 MB" in r.json()["detail"]


def test_cutout_session_without_http(harmonizer, cutout, background):
    c = composite(cutout, background, (5, 5), 1.0, harmonizer)
    names = {"composite": "a.png", "mask": "a_mask.png", "harmonized": "a_harmonized.png"}
    edit = CutoutEditSession(c, names, preview_side=48)
    assert np.array_equal(edit.render_full(), c.harmonized) and edit.has_mask and edit.limit_to_mask
    assert edit.render_preview().shape == (36, 48, 3)
    plain = paste_cutout(cutout, background, (5, 5))  # no harmonizer: no masks, the composite is shown
    assert np.array_equal(CutoutEditSession(plain, names).render_full(), plain.image)
    a = np.array([[0, 255]], np.uint8)
    assert blend_by_alpha(np.zeros((1, 2, 3), np.uint8), np.full((1, 2, 3), 9, np.uint8), a)[0, :, 1].tolist() == [0, 9]
