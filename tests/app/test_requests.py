"""The editor's request models (bodies that do not fit get a 422 with a one-line detail)
and its service (the harmonizer and the session store injected, no HTTP)."""

from __future__ import annotations

import io

import pytest
from PIL import Image

pytest.importorskip("fastapi")
pytest.importorskip("python_multipart")
pytest.importorskip("httpx2")

from fastapi.testclient import TestClient  # noqa: E402
from pydantic import ValidationError  # noqa: E402

from harmonykit.app import create_app  # noqa: E402
from harmonykit.app.schemas import RegionRequest, RenderRequest, validation_detail  # noqa: E402
from harmonykit.app.service import EditorError, EditorService  # noqa: E402
from harmonykit.app.sessions import SessionStore  # noqa: E402
from harmonykit.inference import Harmonizer  # noqa: E402


@pytest.fixture(scope="module")
def harmonizer(om_tiny_dir) -> Harmonizer:
    return Harmonizer.from_pretrained(om_tiny_dir, work_size=32)


@pytest.fixture(scope="module")
def client(harmonizer) -> TestClient:
    return TestClient(create_app(harmonizer, max_sessions=2, preview_side=64))


@pytest.fixture(scope="module")
def png(astronaut) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(astronaut).resize((64, 48)).save(buf, format="PNG")
    return buf.getvalue()


@pytest.fixture
def sid(client, png) -> str:
    r = client.post("/api/sessions", files={"image": ("photo.png", png, "image/png")})
    assert r.status_code == 200, r.text
    return r.json()["id"]


def test_models_parse_what_the_page_sends():
    body = RenderRequest.model_validate({"edits": {"l_add": {"gain": 1.5}, "a_add": {"offset": "-3"}},
                                         "limit_to_mask": False})
    assert (body.edits["l_add"].gain, body.edits["l_add"].offset, body.edits["a_add"].offset) == (1.5, 0.0, -3.0)
    assert body.limit_to_mask is False and RenderRequest().limit_to_mask is None and RenderRequest().edits == {}
    region = RegionRequest.model_validate({"x": 0.25, "y": "0.5"})
    assert (region.x, region.y, region.mode, region.clear) == (0.25, 0.5, "toggle", False)
    with pytest.raises(ValidationError, match="region needs numbers x and y"):
        RegionRequest.model_validate({"x": 0.25})
    with pytest.raises(ValidationError):
        RegionRequest.model_validate({"x": 0.1, "y": 0.1, "mode": "invert"})


@pytest.mark.parametrize(
    "route, body, expected",
    [
        ("region", {"x": "left", "y": 0.5}, "invalid request: x: Input should be a valid number"),
        ("region", {"y": 0.5}, "region needs numbers x and y (fractions of the image)"),
        ("region", {"x": 0.1, "y": 0.1, "mode": "invert"}, "mode: Input should be 'toggle', 'add' or 'replace'"),
        ("render", {"edits": {"l_add": 5}}, "edits.l_add: Input should be a valid dictionary"),
        ("render", {"edits": {"l_add": {"gain": "lots"}}}, "edits.l_add.gain: Input should be a valid number"),
        ("render", {"edits": ["l_add"]}, "edits: Input should be a valid dictionary"),
    ],
)
def test_invalid_bodies_get_a_clear_422(client, sid, route, body, expected):
    r = client.post(f"/api/sessions/{sid}/{route}", json=body)
    assert r.status_code == 422, r.text
    detail = r.json()["detail"]
    assert isinstance(detail, str) and detail.startswith("invalid request: ") and expected in detail


def test_malformed_json_and_forms_get_a_clear_422(client, sid, png):
    r = client.post(f"/api/sessions/{sid}/region", content=b"{x: 1", headers={"content-type": "application/json"})
    assert r.status_code == 422 and "JSON" in r.json()["detail"]
    r = client.post(f"/api/sessions/{sid}/region")  # no body at all
    assert r.status_code == 422 and r.json()["detail"] == "invalid request: body: Field required"
    r = client.post("/api/sessions", files={"image": ("p.png", png, "image/png")}, data={"preview": "big"})
    assert r.status_code == 422 and "preview: Input should be a valid integer" in r.json()["detail"]
    r = client.post("/api/sessions", data={"preview": "64"})
    assert r.status_code == 422 and "image: Field required" in r.json()["detail"]


def test_valid_bodies_still_reach_the_session(client, sid):
    r = client.post(f"/api/sessions/{sid}/render", json={"edits": {"l_add": {"offset": 10}}})
    assert r.status_code == 200 and r.json()["edits"] == {"l_add": {"gain": 1.0, "offset": 10.0}}
    assert client.post(f"/api/sessions/{sid}/render").status_code == 200  # no body: no edits
    r = client.post(f"/api/sessions/{sid}/region", json={"x": 0.5, "y": 0.5, "mode": "replace"})
    assert r.status_code == 200 and len(r.json()["region"]) == 1
    # a number outside its documented range: 422 with the range (the shared validator, harmonykit.limits)
    r = client.post(f"/api/sessions/{sid}/region", json={"x": 1.5, "y": 0.5})
    assert r.status_code == 422 and "x 1.5 is out of range: must be within 0..1" in r.json()["detail"]


def test_validation_detail_is_one_line():
    errors = [{"loc": ("body", "edits", "l_add", "gain"), "msg": "Input should be a valid number"},
              {"loc": ("query", "preview"), "msg": "Input should be a valid integer"}]
    assert validation_detail(errors) == ("invalid request: edits.l_add.gain: Input should be a valid number; "
                                         "preview: Input should be a valid integer")
    assert validation_detail([]) == "invalid request: the request does not fit the route"


def test_the_service_works_without_http(harmonizer, png, tmp_path):
    store = SessionStore(max_sessions=1)
    service = EditorService(harmonizer, store, preview_side=64, max_upload_mb=0.001)
    assert service.sessions is store and service.info()["max_sessions"] == 1
    with pytest.raises(EditorError) as big:
        service.save_upload(png, "p.png", tmp_path, "image")
    assert big.value.status_code == 413 and "0.001 MB" in str(big.value)
    with pytest.raises(EditorError) as empty:
        service.save_upload(b"", "p.png", tmp_path, "image")
    assert empty.value.status_code == 400
    (tmp_path / "image.png").write_bytes(png)
    state = service.open_session(tmp_path / "image.png", None, "photo.png", "mask")
    session = service.get(state["id"])
    assert session.filename == "photo.png" and state["editable"] and len(store) == 1
    assert service.render(session, {"l_add": (1.0, 5.0)})["edits"] == {"l_add": {"gain": 1.0, "offset": 5.0}}
    data, name = service.masks_npz(session)
    assert name == "photo.masks.npz" and data[:2] == b"PK"
    assert service.restore(session)["edits"] == {}
    assert service.delete(state["id"]) == {"deleted": True}
    with pytest.raises(EditorError) as gone:
        service.get(state["id"])
    assert gone.value.status_code == 404 and "deleted" in str(gone.value)
    with pytest.raises(EditorError, match="no example 'nope'") as missing:
        service.open_example("nope")
    assert missing.value.status_code == 404
