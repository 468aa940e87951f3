"""Issue 30 (5, 6): every numeric option and API field has a documented range, enforced by
one validator (:mod:`harmonykit.limits`) for the CLI, the Python API and the web editor."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from harmonykit.cli.main import main
from harmonykit.inference import EditSession, Harmonizer
from harmonykit.limits import RANGES, OutOfRangeError, check
from harmonykit.operators import OperatorMasks


@pytest.fixture
def photo(tmp_path, astronaut) -> Path:
    p = tmp_path / "photo.png"
    Image.fromarray(astronaut).resize((40, 32)).save(p)
    return p


def test_work_size_has_an_upper_bound_checked_before_the_model_loads(photo, tmp_path, capsys, monkeypatch):
    def no_model(*args, **kwargs):
        raise AssertionError("the model must not be loaded for an out-of-range --work-size")

    monkeypatch.setattr(Harmonizer, "from_pretrained", no_model)
    for value in ("100000", "2049", "8"):
        code = main(["harmonize", str(photo), "--work-size", value, "--out", str(tmp_path / "o")])
        err = capsys.readouterr().err
        assert code == 2 and err.strip() == (f"harmonykit harmonize: error: --work-size {value} is out of range: "
                                             "must be within 16..2048 (pixels per side of the network input)")
    assert not (tmp_path / "o").exists()


def test_the_python_api_uses_the_same_ranges():
    with pytest.raises(OutOfRangeError, match=r"work_size 100000 is out of range: must be within 16\.\.2048"):
        Harmonizer.from_pretrained("identity", work_size=100000)
    with pytest.raises(OutOfRangeError, match="work_size 8 is out of range"):
        Harmonizer.from_pretrained("identity", work_size=(8, 64))
    with pytest.raises(OutOfRangeError, match="network_threads 0 is out of range"):
        Harmonizer.from_pretrained("identity", network_threads=0)
    assert Harmonizer.from_pretrained("identity", work_size=2048).work_size == (2048, 2048)


def test_one_validator_for_gains_cli_api_and_session(photo, tmp_path, capsys):
    s = EditSession(np.zeros((16, 16, 3), np.uint8), OperatorMasks.identity("lab_add", 1, 8, 8))
    with pytest.raises(OutOfRangeError) as api:
        s.set_edits({"l_add": {"gain": 1e308}})
    assert str(api.value) == ("gain l_add=1e+308 is out of range: gains must be within -10..10 "
                              "(a factor on the model's change; 1 keeps it)")
    with pytest.raises(OutOfRangeError, match="offsets of b_add must be within -128..128"):
        s.set_edits({"b_add": {"offset": -500}})
    assert s.edits == {}  # a refused edit changes nothing
    masks = OperatorMasks.identity("lab_add", 1, 8, 8).save(tmp_path / "m.npz")
    assert main(["edit", str(photo), "--masks", str(masks), "--gain", "l_add=1e308", "--out",
                 str(tmp_path / "e.png")]) == 2
    assert "--" + str(api.value) in capsys.readouterr().err


@pytest.mark.parametrize("argv,message", [
    (["--batch-size", "0"], "--batch-size 0 is out of range: must be within 1..256"),
    (["--workers", "1000"], "--workers 1000 is out of range: must be within 0..64"),
    (["--size", "5"], "--size 5 is out of range: must be within 0 or 11..4096"),
    (["--om-threshold", "nan"], "--om-threshold nan is out of range"),
])
def test_evaluate_options(tmp_path, capsys, argv, message):
    bench = tmp_path / "bench"
    bench.mkdir()
    assert main(["evaluate", str(bench), "--model", "identity", "--out", str(tmp_path / "r"), *argv]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("argv,message", [
    (["build-benchmark", "SRC", "--size", "5"], "--size 5 is out of range: must be within 16..4096"),
    (["build-benchmark", "SRC", "--degrade-prob", "1.5"], "--degrade-prob 1.5 is out of range"),
    (["build-benchmark", "SRC", "--samples-per-image", "0"], "--samples-per-image 0 is out of range"),
    (["build-benchmark", "SRC", "--video", "--fps", "0"], "--fps 0 is out of range"),
    (["regions", "SRC", "--n-segments", "0"], "--n-segments 0 is out of range"),
    (["harmonize", "CLIP.mp4", "--smoothing", "1"], "--smoothing 1 is out of range: must be within 0..0.999"),
    (["harmonize", "CLIP.mp4", "--crf", "60"], "--crf 60 is out of range: must be within 0..51"),
])
def test_more_commands_use_the_one_validator(tmp_path, capsys, monkeypatch, argv, message):
    src = tmp_path / "src"
    src.mkdir()
    clip = tmp_path / "CLIP.mp4"
    clip.write_bytes(b"")  # never opened: the range check comes first
    argv = [str(src) if a == "SRC" else str(clip) if a == "CLIP.mp4" else a for a in argv]
    assert main([*argv, "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "o").exists()


def test_ranges_are_inclusive_and_whole_numbers_where_said():
    assert check("work_size", 16) == 16 and check("work_size", 2048.0) == 2048
    assert check("eval_size", 0) == 0 and check("point", 1.0) == 1.0
    with pytest.raises(OutOfRangeError, match="whole number"):
        check("work_size", 256.5)
    with pytest.raises(OutOfRangeError, match="inf is out of range"):
        check("gain", float("inf"))
    assert all(r.lo <= r.hi for r in RANGES.values())


# ------------------------------------------------------------------ the web editor's fields
fastapi = pytest.importorskip("fastapi")
pytest.importorskip("python_multipart")
pytest.importorskip("httpx2")


@pytest.fixture(scope="module")
def client(om_tiny_dir):
    from fastapi.testclient import TestClient

    from harmonykit.app import create_app

    return TestClient(create_app(Harmonizer.from_pretrained(om_tiny_dir, work_size=32), preview_side=64),
                      raise_server_exceptions=False)


def test_editor_answers_422_for_out_of_range_fields_and_keeps_the_session(client, astronaut):
    buf = io.BytesIO()
    Image.fromarray(astronaut).resize((64, 48)).save(buf, format="PNG")
    r = client.post("/api/sessions", files={"image": ("photo.png", buf.getvalue(), "image/png")})
    assert r.status_code == 200
    sid, first = r.json()["id"], r.json()["result"]
    for edit, words in (({"gain": 1e308}, "gain l_add=1e+308 is out of range: gains must be within -10..10"),
                        ({"gain": -11}, "gains must be within -10..10"),
                        ({"offset": 1e9}, "offsets of l_add must be within -100..100")):
        r = client.post(f"/api/sessions/{sid}/render", json={"edits": {"l_add": edit}})
        assert r.status_code == 422 and words in r.json()["detail"], r.text
    r = client.post(f"/api/sessions/{sid}/render", json={"edits": {}})
    assert r.status_code == 200 and r.json()["result"] == first  # the session still serves the model's result
    r = client.post("/api/sessions", files={"image": ("photo.png", buf.getvalue(), "image/png")},
                    data={"preview": "10"})
    assert r.status_code == 422 and "preview 10 is out of range: must be within 64..4096" in r.json()["detail"]
