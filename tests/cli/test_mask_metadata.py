"""One metadata helper for every operator-mask file: ``harmonize --save-masks``,
``edit --save-masks`` and the web editor's ``masks.npz`` write what ``mask_metadata``
builds."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from harmonykit.cli.main import main
from harmonykit.inference.editing import ChannelEdit
from harmonykit.mask_metadata import MASK_METADATA_KEYS, mask_metadata
from harmonykit.operators import OperatorMasks


@pytest.fixture(scope="module")
def photo(tmp_path_factory, astronaut):
    d = tmp_path_factory.mktemp("meta")
    Image.fromarray(astronaut).resize((64, 48)).save(d / "astro.png")
    region = np.zeros((48, 64), np.uint8)
    region[:, :32] = 255
    Image.fromarray(region).save(d / "left.png")
    return d


def test_the_helper_keeps_the_common_keys_and_adds_edits():
    meta = mask_metadata(image_size=np.array([48, 64]), source=None, model="m", work_size=None)
    assert meta == {"image_size": [48, 64], "source": None, "model": "m", "work_size": None}
    edited = mask_metadata(base={**meta, "source": "a.png", "extra": 1}, edits={
        "l_add": ChannelEdit(1.5, 2.0), "a_add": {"offset": -3}, "b_add": (0, 0)}, region="r.png")
    assert edited["source"] == "a.png" and edited["extra"] == 1 and edited["region"] == "r.png"
    assert edited["edits"] == {"l_add": {"gain": 1.5, "offset": 2.0}, "a_add": {"gain": 1.0, "offset": -3.0},
                               "b_add": {"gain": 0.0, "offset": 0.0}}
    assert mask_metadata(base=edited, model="other")["model"] == "other"  # given values win over the base


def test_harmonize_and_edit_write_the_helpers_metadata(om_tiny_dir, photo, tmp_path):
    out = tmp_path / "out"
    assert main(["harmonize", str(photo / "astro.png"), "--model", str(om_tiny_dir), "--out", str(out),
                 "--work-size", "32", "--save-masks"]) == 0
    from harmonykit.inference import Harmonizer

    saved = OperatorMasks.load_metadata(out / "astro.masks.npz")
    name = Harmonizer.from_pretrained(om_tiny_dir, work_size=32).name
    assert saved == mask_metadata(image_size=(48, 64), source=photo / "astro.png", model=name, work_size=(32, 32))
    assert set(MASK_METADATA_KEYS) <= set(saved) and saved["work_size"] == [32, 32]
    edited_npz = tmp_path / "e.npz"
    assert main(["edit", str(photo / "astro.png"), "--masks", str(out / "astro.masks.npz"), "--out",
                 str(tmp_path / "e.png"), "--gain", "l_add=1.5", "--offset", "a_add=-5", "l_add=2",
                 "--region", str(photo / "left.png"), "--save-masks", str(edited_npz)]) == 0
    edited = OperatorMasks.load_metadata(edited_npz)
    assert edited == mask_metadata(base=saved, edits={"l_add": (1.5, 2.0), "a_add": (1.0, -5.0)},
                                   region=str(photo / "left.png"))


def test_the_editor_download_writes_the_helpers_metadata(om_tiny_dir, astronaut, tmp_path):
    pytest.importorskip("fastapi")
    pytest.importorskip("python_multipart")
    pytest.importorskip("httpx2")
    from fastapi.testclient import TestClient

    from harmonykit.app import create_app
    from harmonykit.inference import Harmonizer

    h = Harmonizer.from_pretrained(om_tiny_dir, work_size=32)
    client = TestClient(create_app(h, preview_side=64))
    buf = io.BytesIO()
    Image.fromarray(astronaut).resize((64, 48)).save(buf, format="PNG")
    sid = client.post("/api/sessions", files={"image": ("astro.png", buf.getvalue(), "image/png")}).json()["id"]
    assert client.post(f"/api/sessions/{sid}/render", json={"edits": {"l_add": {"offset": 10}}}).status_code == 200
    r = client.get(f"/api/sessions/{sid}/masks.npz")
    assert r.status_code == 200
    (tmp_path / "m.npz").write_bytes(r.content)
    meta = OperatorMasks.load_metadata(tmp_path / "m.npz")
    assert meta == mask_metadata(image_size=(48, 64), source="astro.png", model=h.name, work_size=h.work_size,
                                 edits={"l_add": ChannelEdit(1.0, 10.0)})
