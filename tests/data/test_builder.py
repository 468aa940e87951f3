"""Benchmark builder: determinism across workers/shards, resume, bad inputs, layouts."""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from harmonykit.data.builder import (
    BuildError,
    BuildSettings,
    build_benchmark,
    fit_to_size,
    parse_shard,
)
from harmonykit.data.perturb import PerturbConfig, replay
from harmonykit.data.sources import SourceError
from harmonykit.errors import MissingDependencyError
from harmonykit.io import encode_png, read_image, read_label_map
from harmonykit.regionmaps import superpixel_labels

SIZE = 64


def make_source(root: Path, astronaut, chelsea, coffee) -> tuple[Path, Path]:
    """6 non-square JPEGs (96x72) + 8-bit L label maps (slic, 1..n) with the same stems."""
    imgs, labs = root / "imgs", root / "labels"
    imgs.mkdir(parents=True)
    labs.mkdir()
    for name, arr in (("astronaut", astronaut), ("chelsea", chelsea), ("coffee", coffee)):
        small = np.asarray(Image.fromarray(arr).resize((96, 72), Image.Resampling.BILINEAR))
        for variant, a in (("a", small), ("b", small[:, ::-1].copy())):
            stem = f"{name}_{variant}"
            Image.fromarray(a).save(imgs / f"{stem}.jpg", quality=92)
            lab = superpixel_labels(a, "slic", n_segments=8)
            Image.fromarray(lab.astype(np.uint8), "L").save(labs / f"{stem}.png")
    return imgs, labs


@pytest.fixture
def source(tmp_path, astronaut, chelsea, coffee) -> tuple[Path, Path]:
    return make_source(tmp_path / "src", astronaut, chelsea, coffee)


def settings_for(source: tuple[Path, Path], **kw) -> BuildSettings:
    imgs, labs = source
    kw.setdefault("perturb", PerturbConfig(degrade_prob=0.3))
    return BuildSettings(source=str(imgs), labels=str(labs), size=SIZE, seed=7, **kw)


def tree(out: Path) -> dict[str, bytes]:
    """All files of a build folder (relative path -> bytes), except the lock file."""
    return {
        p.relative_to(out).as_posix(): p.read_bytes()
        for p in sorted(out.rglob("*"))
        if p.is_file() and p.name != "lock"
    }


def manifest(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]


def test_parse_shard():
    assert parse_shard("0/1") == (0, 1) and parse_shard("3/4") == (3, 4)
    for bad in ("4/4", "-1/2", "1/0", "a/b", "1"):
        with pytest.raises(BuildError):
            parse_shard(bad)


def test_fit_to_size_is_crop_then_resize():
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (40, 60, 3), dtype=np.uint8)
    lab = rng.integers(0, 9, (40, 60)).astype(np.int32)
    out, lout = fit_to_size(img, 20, lab)
    crop = img[:, 10:50]
    ref = np.asarray(Image.fromarray(crop).resize((20, 20), Image.Resampling.BILINEAR))
    assert np.array_equal(out, ref)
    # nearest neighbour samples pixel centres: output pixel i <- input pixel floor((i + 0.5) * 2)
    assert np.array_equal(lout, lab[:, 10:50][1::2, 1::2])
    tall = rng.integers(0, 256, (60, 40, 3), dtype=np.uint8)
    assert np.array_equal(fit_to_size(tall, 40)[0], tall[10:50])
    same, lsame = fit_to_size(img[:20, :20], 20, lab[:20, :20])
    assert np.array_equal(same, img[:20, :20]) and np.array_equal(lsame, lab[:20, :20])


def test_build_workers_and_shards_are_byte_identical(tmp_path, source):
    s = settings_for(source)
    a, b, c = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    rep = build_benchmark(s, a, workers=1)
    assert rep.built == 6 and rep.complete and not rep.skipped and rep.finished == 6
    rep_b = build_benchmark(s, b, workers=2)
    assert rep_b.built == 6
    r1 = build_benchmark(s, c, shard=(1, 2))
    assert r1.built == 3 and not r1.complete
    bench = json.loads((c / "benchmark.json").read_text())
    assert bench["complete"] is False and bench["counts"]["pending"] == 3
    r0 = build_benchmark(s, c, shard=(0, 2))
    assert r0.built == 3 and r0.complete
    ta, tb, tc = tree(a), tree(b), tree(c)
    assert set(ta) == set(tb) == set(tc)
    assert any(k.startswith("composite/") for k in ta) and "manifest.jsonl" in ta
    for k in ta:
        assert ta[k] == tb[k], f"{k} differs between workers=1 and workers=2"
        assert ta[k] == tc[k], f"{k} differs between one run and two shards"
    ids = [r["id"] for r in manifest(a)]
    assert ids == sorted(ids) and len(ids) == 6
    # a different seed gives different composites
    d = tmp_path / "d"
    build_benchmark(replace(s, seed=8), d)
    assert tree(d)["composite/astronaut_a.png"] != ta["composite/astronaut_a.png"]


def test_manifest_records_replay_exactly(tmp_path, source):
    s = settings_for(source, perturb=PerturbConfig(degrade_prob=0.5))
    out = tmp_path / "out"
    build_benchmark(s, out)
    recs = manifest(out)
    assert len(recs) == 6
    assert any(r["recipe"]["degradation"] for r in recs)
    imgs, labs = source
    for r in recs:
        files = {k: (out / v).read_bytes() for k, v in r["files"].items()}
        assert {k: hashlib.sha256(b).hexdigest() for k, b in files.items()} == r["sha256"]
        assert r["source"] == {"image": f"{r['id']}.jpg", "label": str((labs / f"{r['id']}.png").resolve())}
        assert r["source_size"] == [72, 96] and r["size"] == [SIZE, SIZE]
        img = read_image(imgs / r["source"]["image"])
        lab = read_label_map(r["source"]["label"])
        img, lab = fit_to_size(img, SIZE, lab)
        res = replay(img, lab, r["recipe"])
        assert encode_png(res.composite) == files["composite"]
        assert encode_png(res.real) == files["real"]
        assert encode_png(res.mask) == files["mask"]
        mask = np.asarray(Image.open(out / r["files"]["mask"]))
        assert np.array_equal(mask == 255, np.isin(lab, [g["label"] for g in r["recipe"]["regions"]]))
        assert len(r["recipe"]["regions"]) == int(0.2 * r["recipe"]["n_labels"]) + 1


def test_resume_keeps_finished_samples(tmp_path, source):
    s = settings_for(source)
    full = tmp_path / "full"
    build_benchmark(s, full)
    out = tmp_path / "out"
    rep = build_benchmark(s, out, limit=2)
    assert rep.built == 2 and rep.complete  # complete for the limited selection
    assert len(manifest(out)) == 2
    first = {p: (out / p).stat().st_mtime_ns for p in ("composite/astronaut_a.png", "mask/astronaut_b.png")}
    rep = build_benchmark(s, out)
    assert (rep.already_done, rep.built) == (2, 4)
    assert {p: (out / p).stat().st_mtime_ns for p in first} == first  # nothing rebuilt twice
    assert tree(out) == tree(full)
    rep = build_benchmark(s, out)
    assert (rep.already_done, rep.built) == (6, 0)
    # a sample missing one of its files, or its record, is rebuilt (identically)
    (out / "real" / "coffee_a.png").unlink()
    (out / ".build" / "records" / "chelsea_b.json").unlink()
    rep = build_benchmark(s, out)
    assert (rep.already_done, rep.built) == (4, 2)
    assert tree(out) == tree(full)


def test_settings_mismatch_and_foreign_folder(tmp_path, source):
    s = settings_for(source)
    out = tmp_path / "out"
    build_benchmark(s, out, limit=1)
    with pytest.raises(BuildError, match="different settings.*seed"):
        build_benchmark(replace(s, seed=1), out)
    with pytest.raises(BuildError, match="different settings.*size"):
        build_benchmark(replace(s, size=32), out)
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "holiday.jpg").write_bytes(b"x")
    with pytest.raises(BuildError, match="not a harmonykit benchmark"):
        build_benchmark(s, foreign)
    assert sorted(p.name for p in foreign.iterdir()) == ["holiday.jpg"]  # left untouched


def test_bad_inputs_are_reported_and_skipped(tmp_path, source):
    imgs, labs = source
    (imgs / "corrupt.jpg").write_bytes(b"this is not a jpeg at all" * 10)
    good = (imgs / "coffee_a.jpg").read_bytes()
    (imgs / "truncated.jpg").write_bytes(good[: len(good) // 3])
    for stem in ("corrupt", "truncated"):
        (labs / f"{stem}.png").write_bytes((labs / "coffee_a.png").read_bytes())
    (imgs / "wrongsize.jpg").write_bytes(good)
    Image.fromarray(np.ones((10, 10), np.uint8), "L").save(labs / "wrongsize.png")
    (imgs / "zeros.jpg").write_bytes(good)
    Image.fromarray(np.zeros((72, 96), np.uint8), "L").save(labs / "zeros.png")
    (imgs / "nolabel.jpg").write_bytes(good)
    seen = []
    out = tmp_path / "out"
    rep = build_benchmark(settings_for(source), out, on_skip=seen.append)
    assert rep.built == 6 and rep.complete
    reasons = {s.id: (Path(s.file).name, s.reason) for s in rep.skipped}
    assert set(reasons) == {"corrupt", "truncated", "wrongsize", "zeros", "nolabel"}
    assert [s.id for s in seen] and {s.id for s in seen} == set(reasons)
    assert reasons["corrupt"][0] == "corrupt.jpg" and "not a recognised image" in reasons["corrupt"][1]
    assert reasons["truncated"][0] == "truncated.jpg" and "truncated" in reasons["truncated"][1]
    assert reasons["wrongsize"][0] == "wrongsize.png" and "10x10" in reasons["wrongsize"][1]
    assert reasons["zeros"][0] == "zeros.png" and "no usable region" in reasons["zeros"][1]
    assert reasons["nolabel"][0] == "nolabel.jpg" and "no label map" in reasons["nolabel"][1]
    bench = json.loads((out / "benchmark.json").read_text())
    assert bench["counts"] == {"selected": 11, "samples": 6, "skipped": 5, "pending": 0}
    assert [s["id"] for s in bench["skipped"]] == sorted(reasons)
    assert all(s["file"] and s["reason"] for s in bench["skipped"])
    # a fixed file is retried on the next run, and leaves the skipped list
    Image.fromarray(np.full((72, 96), 3, np.uint8), "L").save(labs / "zeros.png")
    rep = build_benchmark(settings_for(source), out)
    assert rep.built == 1 and "zeros" not in {s.id for s in rep.skipped}
    bench = json.loads((out / "benchmark.json").read_text())
    assert bench["counts"]["samples"] == 7 and "zeros" not in [s["id"] for s in bench["skipped"]]


def test_triptych_layout(tmp_path, source):
    s = settings_for(source)
    build_benchmark(s, tmp_path / "hk")
    out = tmp_path / "tri"
    build_benchmark(replace(s, layout="triptych"), out)
    files = sorted(p.name for p in out.iterdir() if p.suffix == ".png")
    assert len(files) == 6 and not (out / "composite").exists()
    rec = manifest(out)[0]
    assert rec["files"] == {"triptych": f"{rec['id']}.png"}
    tri = np.asarray(Image.open(out / rec["files"]["triptych"]))
    assert tri.shape == (SIZE, 3 * SIZE, 3)
    real = np.asarray(Image.open(tmp_path / "hk" / "real" / f"{rec['id']}.png"))
    comp = np.asarray(Image.open(tmp_path / "hk" / "composite" / f"{rec['id']}.png"))
    mask = np.asarray(Image.open(tmp_path / "hk" / "mask" / f"{rec['id']}.png"))
    assert np.array_equal(tri[:, :SIZE], real)
    assert np.array_equal(tri[:, SIZE : 2 * SIZE], comp)
    assert all(np.array_equal(tri[:, 2 * SIZE :, c], mask) for c in range(3))
    assert json.loads((out / "benchmark.json").read_text())["layout"] == "triptych"


def test_superpixel_regions_and_label_requirements(tmp_path, source):
    imgs, _ = source
    rep = build_benchmark(BuildSettings(source=str(imgs), regions="slic", size=32), tmp_path / "slic", limit=2)
    assert rep.built == 2
    rec = manifest(tmp_path / "slic")[0]
    assert rec["region_source"] == "slic" and rec["source"]["label"] is None
    # replay: slic on the resized image is deterministic
    img, _ = fit_to_size(read_image(imgs / rec["source"]["image"]), 32)
    lab = superpixel_labels(img, "slic")
    res = replay(img, lab, rec["recipe"])
    assert encode_png(res.composite) == (tmp_path / "slic" / rec["files"]["composite"]).read_bytes()
    rep = build_benchmark(BuildSettings(source=str(imgs), regions="felzenszwalb", size=32), tmp_path / "fz", limit=1)
    assert rep.built == 1
    with pytest.raises(SourceError, match="no label maps"):
        build_benchmark(BuildSettings(source=str(imgs), size=32), tmp_path / "nolab")
    with pytest.raises(BuildError, match="sam-checkpoint"):
        build_benchmark(BuildSettings(source=str(imgs), regions="sam", size=32), tmp_path / "sam")


def test_nothing_built(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    (src / "a.jpg").write_bytes(b"garbage")
    (src / "b.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    rep = build_benchmark(BuildSettings(source=str(src), regions="slic", size=32), tmp_path / "out")
    assert rep.built == 0 and rep.finished == 0 and len(rep.skipped) == 2


def test_ade20k_source_end_to_end(tmp_path, astronaut):
    ade = tmp_path / "ADEChallengeData2016"
    for split, tag in (("training", "train"), ("validation", "val")):
        for i in (1, 2):
            stem = f"ADE_{tag}_{i:08d}"
            (ade / "images" / split).mkdir(parents=True, exist_ok=True)
            (ade / "annotations" / split).mkdir(parents=True, exist_ok=True)
            img = np.asarray(Image.fromarray(astronaut).resize((48, 40)))
            Image.fromarray(img if i == 1 else img[::-1].copy()).save(ade / "images" / split / f"{stem}.jpg")
            lab = np.zeros((40, 48), np.uint8)
            lab[:20, :24], lab[20:, 24:], lab[:20, 24:] = 150, 12, 1
            Image.fromarray(lab, "L").save(ade / "annotations" / split / f"{stem}.png")
    out = tmp_path / "hscene"
    rep = build_benchmark(BuildSettings(source=str(tmp_path), split="train", size=32), out)
    assert rep.built == 2
    recs = manifest(out)
    assert [r["id"] for r in recs] == ["ADE_train_00000001", "ADE_train_00000002"]
    assert recs[0]["source"] == {"image": "ADEChallengeData2016/images/training/ADE_train_00000001.jpg",
                                 "label": "ADEChallengeData2016/annotations/training/ADE_train_00000001.png"}
    for r in recs:
        assert r["recipe"]["n_labels"] == 3 and len(r["recipe"]["regions"]) == 1
        assert r["recipe"]["regions"][0]["label"] in (1, 12, 150)
    bench = json.loads((out / "benchmark.json").read_text())
    assert bench["settings"]["format"] == "ade20k" and bench["settings"]["split"] == "train"


def test_worker_start_failure_is_reported(tmp_path, source, monkeypatch):
    imgs, _ = source
    s = BuildSettings(source=str(imgs), regions="sam", sam_checkpoint=str(tmp_path / "missing.pth"), size=32)
    with pytest.raises(BuildError, match="checkpoint file does not exist"):
        build_benchmark(s, tmp_path / "o1")
    # a worker whose set-up fails must not raise in the pool initializer (Pool would restart
    # it forever): the error is kept and raised for the first item, in the parent process
    import harmonykit.data.build_worker as builder

    def boom(*args, **kwargs):
        raise MissingDependencyError("segment-anything is not installed")

    monkeypatch.setattr(builder, "Worker", boom)
    monkeypatch.setattr(builder, "_WORKER", None)
    monkeypatch.setattr(builder, "_INIT_ERROR", None)
    builder.init_worker(settings_for(source), str(tmp_path / "o2"), str(imgs))
    with pytest.raises(BuildError, match="could not start: segment-anything is not installed"):
        builder.run_item(builder.SourceItem("x", imgs / "x.jpg", None))


def test_samples_per_image_gives_distinct_recipes(tmp_path):
    import json

    import numpy as np
    from skimage import data

    from harmonykit.data.builder import BuildSettings, build_benchmark
    from harmonykit.io import read_image, write_image

    src = tmp_path / "src"
    write_image(src / "cat.png", data.chelsea()[::4, ::4])
    settings = BuildSettings(source=str(src), format="generic", regions="slic", size=48, samples_per_image=3)
    report = build_benchmark(settings, tmp_path / "out", show_progress=False)
    assert report.selected == 3
    lines = [json.loads(x) for x in (tmp_path / "out" / "manifest.jsonl").read_text().splitlines()]
    assert [r["id"] for r in lines] == ["cat_0", "cat_1", "cat_2"]
    assert len({json.dumps(r["recipe"], sort_keys=True) for r in lines}) == 3
    reals = [read_image(tmp_path / "out" / "real" / f"cat_{k}.png") for k in range(3)]
    comps = [read_image(tmp_path / "out" / "composite" / f"cat_{k}.png") for k in range(3)]
    assert not np.array_equal(comps[0], comps[1])
    assert reals[0].shape == (48, 48, 3)
