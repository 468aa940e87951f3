"""Web editor API (TestClient): unicode downloads, dropped-session notices, early upload
limit, packaged examples, mask-limited edits, reset to the model's output, heatmap scales."""

from __future__ import annotations

import asyncio
import base64
import io
from urllib.parse import unquote

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("fastapi")
pytest.importorskip("python_multipart")
pytest.importorskip("httpx2")

from fastapi.testclient import TestClient  # noqa: E402

from harmonykit.app import create_app  # noqa: E402
from harmonykit.app.gallery import list_examples  # noqa: E402
from harmonykit.inference import Harmonizer  # noqa: E402


def png_bytes(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="PNG")
    return buf.getvalue()


def decode(url: str) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1]))).convert("RGB")).astype(int)


@pytest.fixture(scope="module")
def composite(astronaut) -> np.ndarray:
    return np.asarray(Image.fromarray(astronaut).resize((80, 64), Image.Resampling.BILINEAR))


@pytest.fixture(scope="module")
def harmonizer(om_tiny_dir) -> Harmonizer:
    return Harmonizer.from_pretrained(om_tiny_dir, work_size=32)


@pytest.fixture(scope="module")
def client(harmonizer) -> TestClient:
    return TestClient(create_app(harmonizer, max_sessions=2, preview_side=64))


def upload(client, image, mask=None, name="photo.png"):
    files = {"image": (name, png_bytes(image), "image/png")}
    if mask is not None:
        files["mask"] = ("photo_mask.png", png_bytes(mask), "image/png")
    r = client.post("/api/sessions", files=files)
    assert r.status_code == 200, r.text
    return r.json()


def test_download_names_are_rfc5987_for_any_file_name(client, composite):
    from harmonykit.app.server import content_disposition

    cd = content_disposition('a "b"\\c.png')
    assert cd.startswith('attachment; filename="a _b__c.png"; ') and cd.endswith("a%20%22b%22%5Cc.png")
    sid = upload(client, composite, name="猫 cat.png")["id"]
    for path, suffix in (("image.png", "_harmonized.png"), ("masks.npz", ".masks.npz"), ("masks.png", ".masks.png")):
        r = client.get(f"/api/sessions/{sid}/{path}")
        assert r.status_code == 200, (path, r.text)
        cd = r.headers["content-disposition"]
        cd.encode("latin-1")  # a valid header value
        assert cd.startswith('attachment; filename="_ cat' + suffix + '"; ')
        assert unquote(cd.split("filename*=UTF-8''", 1)[1]) == "猫 cat" + suffix


def test_dropped_sessions_say_why(client, composite):
    ids = [upload(client, composite)["id"] for _ in range(3)]  # max_sessions=2: the first is dropped
    r = client.post(f"/api/sessions/{ids[0]}/render", json={})
    assert r.status_code == 404 and "closed to make room" in r.json()["detail"] and "at most 2" in r.json()["detail"]
    assert client.get(f"/api/sessions/{ids[0]}/image.png").status_code == 404
    client.delete(f"/api/sessions/{ids[2]}")
    assert "deleted" in client.post(f"/api/sessions/{ids[2]}/render", json={}).json()["detail"]
    assert "unknown" in client.post("/api/sessions/never-existed/render", json={}).json()["detail"]


def test_upload_limit_is_checked_before_the_body_is_read(harmonizer, composite):
    app = create_app(harmonizer, max_upload_mb=0.01)  # 10 KB per file
    big = (np.random.default_rng(0).integers(0, 256, (120, 120, 3))).astype(np.uint8)  # ~43 KB as PNG
    r = TestClient(app).post("/api/sessions", files={"image": ("big.png", png_bytes(big), "image/png")})
    assert r.status_code == 413 and "0.01 MB" in r.json()["detail"]

    # the ASGI app answers from Content-Length alone: receive() must never be called
    sent: list[dict] = []

    async def receive():
        raise AssertionError("the body was read")

    async def send(message):
        sent.append(message)

    scope = {"type": "http", "method": "POST", "path": "/api/sessions", "raw_path": b"/api/sessions",
             "query_string": b"", "headers": [(b"content-length", b"5000000"), (b"content-type", b"multipart/form-data")],
             "http_version": "1.1", "scheme": "http", "server": ("t", 80), "client": ("c", 1), "root_path": ""}
    asyncio.run(app(scope, receive, send))
    assert sent[0]["status"] == 413
    # a body sent without Content-Length is cut off once it exceeds the limit
    head = b'--zz\r\nContent-Disposition: form-data; name="image"; filename="a.png"\r\nContent-Type: image/png\r\n\r\n'
    chunks = [{"type": "http.request", "body": head, "more_body": True}]
    chunks += [{"type": "http.request", "body": b"x" * 8192, "more_body": True} for _ in range(20)]
    sent.clear()

    async def receive_chunks():
        return chunks.pop(0)

    scope["headers"] = [(b"content-type", b"multipart/form-data; boundary=zz")]
    asyncio.run(app(scope, receive_chunks, send))
    assert sent[0]["status"] == 413, sent
    assert len(chunks) > 8  # stopped early: 84 KB (2 files + form) read of 160 KB


def test_packaged_examples_open_with_their_masks(client):
    examples = client.get("/api/examples").json()
    assert [e["name"] for e in examples] == ["cat", "coffee", "rocket"]
    assert all(e["has_mask"] and e["thumbnail"].startswith("data:image/jpeg") for e in examples)
    j = client.post("/api/examples/cat").json()
    assert (j["width"], j["height"]) == (451, 300) and j["filename"] == "cat.jpg"
    assert j["has_mask"] and j["limit_to_mask"]
    assert client.post("/api/examples/nope").status_code == 404
    # the packaged copies are the repository's examples (JPEG copies of the composites, same masks)
    from pathlib import Path

    repo = Path(__file__).resolve().parents[2] / "examples"
    for ex in list_examples():
        img = np.asarray(Image.open(io.BytesIO(ex.image.read_bytes())).convert("RGB")).astype(int)
        ref = np.asarray(Image.open(repo / f"{ex.name}.png").convert("RGB")).astype(int)
        assert img.shape == ref.shape and np.abs(img - ref).mean() < 3.0
        assert ex.mask.read_bytes() == (repo / f"{ex.name}_mask.png").read_bytes()


def test_offsets_stay_inside_an_uploaded_mask_unless_widened(client, composite):
    mask = np.zeros(composite.shape[:2], np.uint8)
    mask[:, :40] = 255  # left half
    j = upload(client, composite, mask)
    assert j["has_mask"] and j["limit_to_mask"]
    sid, base = j["id"], decode(j["result"])
    inside = decode(client.post(f"/api/sessions/{sid}/render",
                                json={"edits": {"l_add": {"offset": 30}}}).json()["result"])
    d = np.abs(inside - base).sum(-1)
    assert d[:, :24].mean() > 20 and d[:, 40:].mean() < 3  # preview is 64 px wide: mask = left 32 px
    whole = client.post(f"/api/sessions/{sid}/render",
                        json={"edits": {"l_add": {"offset": 30}}, "limit_to_mask": False}).json()
    assert not whole["limit_to_mask"]
    assert np.abs(decode(whole["result"]) - base).sum(-1)[:, 40:].mean() > 20
    # without a mask there is nothing to limit to
    k = upload(client, composite)
    assert not k["has_mask"] and not k["limit_to_mask"]


def test_restore_undoes_committed_edits_and_heatmap_scales_widen(client, composite):
    j = upload(client, composite)
    sid, base = j["id"], j["result"]
    scale0 = j["heatmaps"]["l_add"]["scale"]
    e = client.post(f"/api/sessions/{sid}/render", json={"edits": {"l_add": {"offset": 40}}}).json()
    assert e["heatmaps"]["l_add"]["scale"] >= 40 > scale0  # the map's scale follows the edit: no saturation
    assert e["heatmaps"]["a_add"]["scale"] == j["heatmaps"]["a_add"]["scale"]  # untouched channels keep theirs
    client.post(f"/api/sessions/{sid}/commit")
    assert client.post(f"/api/sessions/{sid}/reset").json()["result"] != base  # reset keeps committed edits
    restored = client.post(f"/api/sessions/{sid}/restore").json()
    assert restored["result"] == base and restored["edits"] == {} and restored["region"] == []
    assert restored["heatmaps"]["l_add"]["scale"] == scale0
    # plain-language names and their directions come with the channels
    ch = {c["name"]: c for c in j["channels"]}
    assert ch["l_add"]["label"] == "Brightness" and (ch["l_add"]["low"], ch["l_add"]["high"]) == ("darker", "brighter")
    assert ch["b_add"]["label"] == "Blue-yellow shift" and ch["a_add"]["high"] == "redder"
