"""Web editor API (FastAPI TestClient): upload, render edits, regions, downloads."""

from __future__ import annotations

import base64
import io

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("fastapi")
pytest.importorskip("python_multipart")
pytest.importorskip("httpx2")  # Starlette's TestClient transport (httpx is deprecated there)

from fastapi.testclient import TestClient  # noqa: E402

from harmonykit.app import create_app  # noqa: E402
from harmonykit.inference import Harmonizer  # noqa: E402
from harmonykit.operators import OperatorMasks  # noqa: E402


def png_bytes(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="PNG")
    return buf.getvalue()


def decode(url: str) -> np.ndarray:
    header, data = url.split(",", 1)
    assert header.startswith("data:image/")
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(data))))


@pytest.fixture(scope="module")
def composite(astronaut) -> np.ndarray:
    return np.asarray(Image.fromarray(astronaut).resize((80, 64), Image.Resampling.BILINEAR))


@pytest.fixture(scope="module")
def client(om_tiny_dir) -> TestClient:
    app = create_app(Harmonizer.from_pretrained(om_tiny_dir, work_size=32), max_sessions=2, preview_side=64)
    return TestClient(app)


def upload(client, image: np.ndarray, mask: np.ndarray | None = None):
    files = {"image": ("photo.png", png_bytes(image), "image/png")}
    if mask is not None:
        files["mask"] = ("photo_mask.png", png_bytes(mask), "image/png")
    return client.post("/api/sessions", files=files)


def test_page_and_info(client):
    page = client.get("/")
    assert page.status_code == 200 and "<script>" in page.text
    assert "http://" not in page.text and "https://" not in page.text  # self-contained, no CDN
    info = client.get("/api/info").json()
    assert info["model"]["kind"] == "operator" and len(info["model"]["channels"]) == 6


def test_upload_render_region_download(client, composite, tmp_path):
    r = upload(client, composite)
    assert r.status_code == 200, r.text
    j = r.json()
    assert (j["width"], j["height"]) == (80, 64) and (j["preview_width"], j["preview_height"]) == (64, 51)
    assert j["editable"] and [c["name"] for c in j["channels"]][:2] == ["l_mul", "l_add"]
    assert decode(j["result"]).shape == (51, 64, 3) and decode(j["composite"]).shape == (51, 64, 3)
    assert set(j["heatmaps"]) == {c["name"] for c in j["channels"]}
    assert j["timings"]["network"] > 0
    sid = j["id"]

    edited = client.post(f"/api/sessions/{sid}/render", json={"edits": {"l_add": {"gain": 1.0, "offset": 25.0}}})
    assert edited.status_code == 200
    e = edited.json()
    assert e["edits"] == {"l_add": {"gain": 1.0, "offset": 25.0}}
    assert decode(e["result"]).mean() > decode(j["result"]).mean() + 8
    assert e["heatmaps"]["l_add"]["image"] != j["heatmaps"]["l_add"]["image"]

    reg = client.post(f"/api/sessions/{sid}/region", json={"x": 0.1, "y": 0.1})
    assert reg.status_code == 200 and len(reg.json()["region"]) == 1
    assert decode(reg.json()["overlay"]).shape == (51, 64, 4)
    assert reg.json()["result"] != e["result"]  # the edit now applies to one superpixel only

    img = client.get(f"/api/sessions/{sid}/image.png")
    assert img.status_code == 200 and img.headers["content-type"] == "image/png"
    full = np.asarray(Image.open(io.BytesIO(img.content)))
    assert full.shape == (64, 80, 3)
    masks = client.get(f"/api/sessions/{sid}/masks.npz")
    assert masks.status_code == 200
    (tmp_path / "m.npz").write_bytes(masks.content)
    loaded = OperatorMasks.load(tmp_path / "m.npz")
    assert loaded.size == (32, 32) and loaded.channels[1] == "l_add"
    assert float(loaded["l_add"].max()) > 20  # the edit (offset 25 in one superpixel) is in the file
    assert OperatorMasks.load_metadata(tmp_path / "m.npz")["image_size"] == [64, 80]
    assert client.get(f"/api/sessions/{sid}/masks.png").status_code == 200

    cleared = client.post(f"/api/sessions/{sid}/region", json={"clear": True}).json()
    assert cleared["region"] == []
    committed = client.post(f"/api/sessions/{sid}/commit").json()
    assert committed["edits"] == {}
    assert client.delete(f"/api/sessions/{sid}").json() == {"deleted": True}
    assert client.get(f"/api/sessions/{sid}/image.png").status_code == 404


def test_errors_are_reported_not_crashes(client, composite):
    bad = client.post("/api/sessions", files={"image": ("x.png", b"not an image", "image/png")})
    assert bad.status_code == 400 and "x.png" in bad.json()["detail"]
    assert "harmonykit-upload" not in bad.json()["detail"]  # no server temp paths leak
    sid = upload(client, composite).json()["id"]
    r = client.post(f"/api/sessions/{sid}/render", json={"edits": {"h_add": {"offset": 3}}})
    assert r.status_code == 400 and "unknown operator channel" in r.json()["detail"]
    r = client.post(f"/api/sessions/{sid}/region", json={"x": "left"})
    assert r.status_code == 422
    assert client.post("/api/sessions/nope/render", json={}).status_code == 404


def test_sessions_are_bounded(client, composite):
    ids = [upload(client, composite).json()["id"] for _ in range(3)]
    assert client.post(f"/api/sessions/{ids[0]}/render", json={}).status_code == 404  # evicted (max 2)
    assert client.post(f"/api/sessions/{ids[2]}/render", json={}).status_code == 200


def test_mask_models_and_baselines(composite):
    app = create_app(Harmonizer.from_pretrained("reinhard"))
    c = TestClient(app)
    r = upload(c, composite)
    assert r.status_code == 400 and "needs a foreground mask" in r.json()["detail"]
    mask = np.zeros(composite.shape[:2], np.uint8)
    mask[10:40, 20:60] = 255
    r = upload(c, composite, mask)
    assert r.status_code == 200 and not r.json()["editable"] and r.json()["channels"] == []
    wrong = upload(c, composite, mask[:10])
    assert wrong.status_code == 400 and "photo_mask.png" in wrong.json()["detail"]


def test_missing_fastapi_gives_missing_dependency_error(monkeypatch):
    import builtins

    from harmonykit.errors import MissingDependencyError

    real_import = builtins.__import__

    def fake_import(name, *args, **kwargs):
        if name == "fastapi" or name.startswith("fastapi."):
            raise ImportError("No module named 'fastapi'", name="fastapi")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", fake_import)
    with pytest.raises(MissingDependencyError, match=r'pip install "harmonykit\[app\]"'):
        create_app(Harmonizer.from_pretrained("identity"))
