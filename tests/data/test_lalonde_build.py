"""``harmonykit build-benchmark`` on a Lalonde-Efros source: families, iHarmony4 layout,
determinism (workers, shards, resume), skips and exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from harmonykit.cli.main import main
from harmonykit.data.builder import BuildSettings, build_benchmark
from harmonykit.data.datasets import open_benchmark
from harmonykit.data.lalonde import split_of
from harmonykit.data.perturb.families import FamilyMix

COMMON = ["--size", "32", "--quiet"]


def _run(capsys, *args: str) -> tuple[int, str]:
    code = main(["build-benchmark", *args])
    return code, capsys.readouterr().err


def _tree(out: Path) -> dict[str, bytes]:
    return {p.relative_to(out).as_posix(): p.read_bytes() for p in sorted(out.rglob("*"))
            if p.is_file() and p.name != "lock"}


def _manifest(out: Path) -> list[dict]:
    return [json.loads(x) for x in (out / "manifest.jsonl").read_text().splitlines()]


def test_colour_transfer_iharmony4_layout_reads_back(tmp_path, lalonde_db, lalonde_spec, capsys):
    out = tmp_path / "ih"
    code, err = _run(capsys, str(lalonde_db.parent), "--out", str(out), "--split", "train", "--val-fraction", "0",
                     "--perturb", "colour-transfer", "--layout", "iharmony4", *COMMON)
    assert code == 0, err
    sub = out / "HLalonde"
    photos = sorted(lalonde_spec.photos)
    assert (sub / "HLalonde_train.txt").read_text().splitlines() == [f"{p.replace('_', '')}_1_1.png" for p in photos]
    assert sorted(p.name for p in (sub / "real_images").iterdir()) == [f"{p.replace('_', '')}.png" for p in photos]
    ds = open_benchmark(out, split="train")
    assert len(ds) == len(photos) and ds.layout == "iharmony4"
    for sample in ds:
        comp, real, mask = (np.asarray(getattr(sample, k)) for k in ("composite", "real", "mask"))
        m = mask.reshape(mask.shape[0], mask.shape[1], -1)[..., 0] > 0 if mask.ndim > 2 else mask > 0
        assert comp.shape[:2] == (32, 32) and m.any()
        assert np.array_equal(comp[~m], real[~m])  # PNG: exact outside the mask
        assert not np.array_equal(comp[m], real[m])
    recs = _manifest(out)
    assert [r["id"] for r in recs] == photos
    for r in recs:
        rec = r["recipe"]
        assert rec["family"] == "colour_transfer" and [g["label"] for g in rec["regions"]] == [1]
        assert rec["reference"]["id"] != r["id"] and rec["reference"]["id"] in lalonde_spec.photos
        assert r["source"]["label"] == f"Annotation/masks/{r['id']}.mat"
    by_id = {r["id"]: r["recipe"]["reference"] for r in recs}
    assert by_id["image_100001"] == {"id": "image_100002", "category": "tree"}  # same category, other photo
    assert by_id["image_100005"]["id"] != "image_100006"  # same source photo: never a reference
    bench = json.loads((out / "benchmark.json").read_text())
    assert bench["settings"]["subset"] == "HLalonde" and bench["settings"]["val_fraction"] == 0.0
    assert bench["settings"]["mix"] == {"sgmmh": 0.0, "colour_transfer": 1.0, "none": 0.0}
    with pytest.raises(Exception, match="split"):
        open_benchmark(out, split="test")  # a train build writes only the train split file


def test_sgmmh_slic_and_mix(tmp_path, lalonde_db, lalonde_spec, capsys):
    src = str(lalonde_db)
    code, err = _run(capsys, src, "--out", str(tmp_path / "s"), "--split", "train", "--val-fraction", "0",
                     "--perturb", "sgmmh", "--regions", "slic", *COMMON)
    assert code == 0, err
    recs = _manifest(tmp_path / "s")
    assert len(recs) == len(lalonde_spec.photos)
    for r in recs:
        assert "family" not in r["recipe"] and r["recipe"]["n_labels"] > 1 and r["region_source"] == "slic"
    code, err = _run(capsys, src, "--out", str(tmp_path / "m"), "--split", "train", "--val-fraction", "0",
                     "--perturb", "mix", "--seed", "1", *COMMON)
    assert code == 0, err
    fams = [r["recipe"].get("family", "sgmmh") for r in _manifest(tmp_path / "m")]
    assert set(fams) == {"sgmmh", "colour_transfer"}
    for r in _manifest(tmp_path / "m"):  # with --regions labels only the object is ever perturbed
        assert {g["label"] for g in r["recipe"]["regions"]} == {1}


def _settings(src: Path, **kw) -> BuildSettings:
    base = dict(source=str(src), split="train", val_fraction=0.0, size=32, layout="iharmony4",
                mix=FamilyMix(0.5, 0.5, 0.0), seed=2)
    base.update(kw)
    return BuildSettings(**base)


def test_workers_shards_and_resume_are_byte_identical(tmp_path, lalonde_db):
    s = _settings(lalonde_db)
    one = build_benchmark(s, tmp_path / "one", show_progress=False)
    assert one.complete and one.built == 10 and not one.skipped
    ref = _tree(tmp_path / "one")
    build_benchmark(s, tmp_path / "w2", workers=2, show_progress=False)
    assert _tree(tmp_path / "w2") == ref
    for i in (1, 0):
        build_benchmark(s, tmp_path / "sh", shard=(i, 2), show_progress=False)
    assert _tree(tmp_path / "sh") == ref
    # resume after losing some outputs: only those are rebuilt, the result is the same
    (tmp_path / "one" / "HLalonde" / "composite_images" / "image100003_1_1.png").unlink()
    (tmp_path / "one" / "HLalonde" / "real_images" / "image100008.png").unlink()
    (tmp_path / "one" / ".build" / "records" / "image_100010.json").unlink()
    (tmp_path / "one" / "manifest.jsonl").unlink()
    again = build_benchmark(s, tmp_path / "one", show_progress=False)
    assert (again.built, again.already_done) == (3, 7)
    assert _tree(tmp_path / "one") == ref


def test_wrong_size_mask_is_skipped_naming_the_file(make_lalonde_db, tmp_path, capsys):
    db = make_lalonde_db(wrong_size_mask=True, missing_mask=True, malformed_xml=True)
    out = tmp_path / "o"
    code, err = _run(capsys, str(db), "--out", str(out), "--split", "train", "--val-fraction", "0",
                     "--perturb", "colour-transfer", *COMMON)
    assert code == 2  # skipped source items are the user's to fix
    assert "skipped image_100013:" in err and "image_100013.mat" in err and "objMask is 40x32" in err
    assert "image_100012.mat" in err and "image_100011.xml" in err and "Traceback" not in err
    assert sorted(p.stem for p in (out / "composite").iterdir()) == [f"image_1000{i:02d}" for i in range(1, 11)]
    bench = json.loads((out / "benchmark.json").read_text())
    skipped = {s["id"]: s for s in bench["skipped"]}
    assert sorted(skipped) == ["image_100011", "image_100012", "image_100013"]
    assert skipped["image_100013"]["file"].endswith("Annotation/masks/image_100013.mat")
    assert bench["counts"]["samples"] == 10 and bench["complete"]
    # the bad photo is never used as a colour-transfer reference either
    assert all(r["recipe"]["reference"]["id"] != "image_100013" for r in _manifest(out))


def test_exit_codes(tmp_path, lalonde_db, lalonde_spec, capsys):
    src = str(lalonde_db)
    code, err = _run(capsys, src, "--out", str(tmp_path / "ok"), "--split", "val", "--layout", "iharmony4", *COMMON)
    assert code == 0, err
    val = sorted(i for i, p in lalonde_spec.photos.items() if split_of(p[1], 0.1) == "val")
    assert len(open_benchmark(tmp_path / "ok", split="test")) == len(val) > 0  # any other split: _test.txt
    for extra, message in (
        (["--val-fraction", "1.5"], "--val-fraction"),
        (["--split", "val", "--val-fraction", "0"], "no natural photo in the val split"),
        (["--labels", src], "--labels is not used with lalonde"),
        (["--perturb", "colour-transfer", "--split", "val", "--seed", "5"], "different settings"),
    ):
        out = tmp_path / "ok" if "different settings" == message else tmp_path / "bad"
        code, err = _run(capsys, src, "--out", str(out), *extra, *COMMON)
        assert code == 2 and message in err and "Traceback" not in err, (extra, err)
    code, err = _run(capsys, str(tmp_path / "missing"), "--out", str(tmp_path / "o2"), "--format", "lalonde", *COMMON)
    assert code == 2 and "does not exist" in err
    with pytest.raises(SystemExit) as exc:  # argparse: an unknown family
        main(["build-benchmark", src, "--out", str(tmp_path / "o3"), "--perturb", "iharmony4"])
    assert exc.value.code == 2
