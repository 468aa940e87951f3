"""``harmonykit build-benchmark`` command: exit codes, messages, layouts, determinism."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from harmonykit.cli.main import main


@pytest.fixture
def photos(tmp_path, astronaut, chelsea, coffee) -> Path:
    """Three small JPEGs (80x64) plus label maps with the same stems in ``labels/``."""
    src = tmp_path / "photos"
    labs = tmp_path / "labels"
    src.mkdir()
    labs.mkdir()
    for name, arr in (("astronaut", astronaut), ("chelsea", chelsea), ("coffee", coffee)):
        Image.fromarray(arr).resize((80, 64), Image.Resampling.BILINEAR).save(src / f"{name}.jpg", quality=90)
        lab = np.kron(np.arange(1, 17, dtype=np.uint8).reshape(4, 4), np.ones((16, 20), np.uint8))
        Image.fromarray(lab, "L").save(labs / f"{name}.png")
    return src


def _run(capsys, *args: str) -> tuple[int, str, str]:
    code = main(["build-benchmark", *args])
    cap = capsys.readouterr()
    return code, cap.out, cap.err


def test_build_with_labels_and_bad_item(tmp_path, photos, capsys):
    (photos / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    (photos.parent / "labels" / "broken.png").write_bytes((photos.parent / "labels" / "coffee.png").read_bytes())
    out = tmp_path / "bench"
    code, _, err = _run(capsys, str(photos), "--out", str(out), "--labels", str(photos.parent / "labels"),
                        "--size", "64", "--seed", "3")
    assert code == 2  # a bad source file is a user mistake: reported, the rest built, exit 2
    assert "skipped broken:" in err and "broken.jpg" in err
    assert "3 built" in err and "Traceback" not in err
    for sub in ("composite", "real", "mask"):
        assert sorted(p.name for p in (out / sub).iterdir()) == ["astronaut.png", "chelsea.png", "coffee.png"]
    bench = json.loads((out / "benchmark.json").read_text())
    assert bench["counts"]["samples"] == 3 and bench["skipped"][0]["id"] == "broken"
    assert bench["settings"]["seed"] == 3 and bench["settings"]["size"] == 64
    lines = (out / "manifest.jsonl").read_text().splitlines()
    assert [json.loads(x)["id"] for x in lines] == ["astronaut", "chelsea", "coffee"]
    # rerun resumes (nothing rebuilt), a different seed is refused with exit 2 and no traceback
    code, _, err = _run(capsys, str(photos), "--out", str(out), "--labels", str(photos.parent / "labels"),
                        "--size", "64", "--seed", "3")
    assert code == 2 and "0 built, 3 already done" in err  # broken.jpg is retried, still bad
    code, _, err = _run(capsys, str(photos), "--out", str(out), "--labels", str(photos.parent / "labels"),
                        "--size", "64", "--seed", "4")
    assert code == 2 and "different settings" in err and "seed" in err and "Traceback" not in err


def test_workers_and_shards_identical_via_cli(tmp_path, photos, capsys):
    common = [str(photos), "--regions", "slic", "--size", "32", "--quiet"]
    assert _run(capsys, *common, "--out", str(tmp_path / "one"))[0] == 0
    assert _run(capsys, *common, "--out", str(tmp_path / "sh"), "--shard", "1/2")[0] == 0
    assert _run(capsys, *common, "--out", str(tmp_path / "sh"), "--shard", "0/2")[0] == 0
    for rel in ("manifest.jsonl", "benchmark.json", "composite/chelsea.png", "real/coffee.png", "mask/astronaut.png"):
        assert (tmp_path / "one" / rel).read_bytes() == (tmp_path / "sh" / rel).read_bytes(), rel


def test_triptych_via_cli(tmp_path, photos, capsys):
    out = tmp_path / "tri"
    code, _, _ = _run(capsys, str(photos), "--out", str(out), "--regions", "felzenszwalb", "--size", "32",
                      "--layout", "triptych", "--limit", "2")
    assert code == 0
    pngs = sorted(p.name for p in out.glob("*.png"))
    assert pngs == ["astronaut.png", "chelsea.png"]
    tri = np.asarray(Image.open(out / "astronaut.png"))
    assert tri.shape == (32, 96, 3)
    assert set(np.unique(tri[:, 64:]).tolist()) <= {0, 255}


def test_nothing_built_exits_2(tmp_path, capsys):
    src = tmp_path / "bad"
    src.mkdir()
    (src / "x.jpg").write_bytes(b"nope")
    code, _, err = _run(capsys, str(src), "--out", str(tmp_path / "o"), "--regions", "slic", "--size", "32")
    assert code == 2  # the only source file is unreadable: a user mistake
    assert "nothing could be built" in err and "x.jpg" in err and "Traceback" not in err


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--shard", "2/2"], "shard"),
        (["--regions", "sam"], "sam-checkpoint"),
        (["--size", "2"], "--size"),
        (["--workers", "0"], "--workers"),
        ([], "no label maps"),  # generic folder, --regions labels, no --labels
    ],
)
def test_user_mistakes_exit_2(tmp_path, photos, capsys, extra, message):
    code, _, err = _run(capsys, str(photos), "--out", str(tmp_path / "o"), *extra)
    assert code == 2 and message in err and "Traceback" not in err


def test_missing_source_exit_2_in_subprocess(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "harmonykit", "build-benchmark", str(tmp_path / "nope"), "--out", str(tmp_path / "o")],
        capture_output=True, text=True, timeout=60,
    )
    assert proc.returncode == 2
    assert "does not exist" in proc.stderr and "Traceback" not in proc.stderr


KILL_AT = Path(__file__).resolve().parents[1] / "kill_at.py"


def _tree(out: Path) -> dict[str, bytes]:
    return {p.relative_to(out).as_posix(): p.read_bytes() for p in sorted(out.rglob("*"))
            if p.is_file() and p.name != "lock"}


@pytest.mark.parametrize(
    "event,match",
    [("mkstemp", ".build/skipped"),  # killed while the skip record is being written (empty temp)
     ("replace", ".build/skipped/broken.json"),  # killed at its rename (complete temp)
     ("mkstemp", "composite")],  # killed while a sample's image is being written
)
def test_kill_during_build_then_resume_is_byte_identical(tmp_path, photos, capsys, event, match):
    (photos / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    args = [str(photos), "--labels", str(photos.parent / "labels"), "--size", "32", "--quiet"]
    assert _run(capsys, *args, "--out", str(tmp_path / "full"))[0] == 2  # broken.jpg: skipped, exit 2
    out = tmp_path / "out"
    proc = subprocess.run([sys.executable, str(KILL_AT), event, match, "1", "--", "build-benchmark", *args,
                           "--out", str(out)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == -9, proc.stderr  # really SIGKILLed at that moment
    assert [p for p in out.rglob(".*") if p.is_file() and p.name != "lock"]  # it left a temporary
    code, _, err = _run(capsys, *args, "--out", str(out))
    assert code == 2 and "Traceback" not in err, err
    bench = json.loads((out / "benchmark.json").read_text())
    assert [s["id"] for s in bench["skipped"]] == ["broken"]
    assert bench["counts"]["skipped"] == 1
    assert _tree(out) == _tree(tmp_path / "full")  # no stale temporary, same bytes
    assert _run(capsys, *args, "--out", str(out))[0] == 2  # and a further resume is fine too
    assert _tree(out) == _tree(tmp_path / "full")


def test_workers_beyond_the_cores_are_capped_with_a_note(tmp_path, photos, capsys, monkeypatch):
    import harmonykit.data.builder as builder
    import harmonykit.utils.cpus as cpus

    monkeypatch.setattr(cpus, "available_cpus", lambda: 1)
    seen: list[int] = []
    real = builder.build_benchmark

    def spy(*a, **kw):
        seen.append(kw["workers"])
        return real(*a, **kw)

    monkeypatch.setattr(builder, "build_benchmark", spy)
    code, _, err = _run(capsys, str(photos), "--regions", "slic", "--size", "32", "--quiet", "--workers", "64",
                        "--out", str(tmp_path / "b"))
    assert code == 0 and seen == [1]
    assert "--workers 64 is more than the 1 CPU core(s) available; using 1" in err
