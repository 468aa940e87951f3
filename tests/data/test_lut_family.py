"""The ``lut`` perturbation family: op, LUT folders, pairs, replay, builder / CLI determinism,
on-the-fly pairs and training config."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import numpy as np
import pytest
import torch

from harmonykit.cli.main import main
from harmonykit.data.builder import BuildError, BuildSettings, build_benchmark
from harmonykit.data.datasets import open_benchmark
from harmonykit.data.onthefly import EpochSampler, OnTheFlyPairs
from harmonykit.data.perturb import LutConfig, LutGrade, NoUsableRegionError, lut_library, replay
from harmonykit.data.perturb.families import FamilyMix, PairContext, make_lut_pair, make_pair
from harmonykit.data.sources import open_source
from harmonykit.errors import ConfigError
from harmonykit.lut import CubeFormatError, CubeLut, identity_lut, write_cube
from harmonykit.training.config import DataConfig

COMMON = ["--size", "32", "--quiet"]


def _inversion(n: int = 3) -> CubeLut:
    return CubeLut(1.0 - identity_lut(n).table)


def _warm(n: int = 4) -> CubeLut:
    t = identity_lut(n).table.copy()
    t[..., 0] = np.sqrt(t[..., 0])  # brighter red
    t[..., 2] *= 0.6  # less blue
    return CubeLut(t, title="warm")


@pytest.fixture
def luts(tmp_path) -> Path:
    """A folder of three tiny LUTs: inversion, a warm grade, a channel swap."""
    d = tmp_path / "luts"
    d.mkdir()
    write_cube(d / "invert.cube", _inversion())
    write_cube(d / "warm.cube", _warm())
    write_cube(d / "swap.cube", CubeLut(identity_lut(2).table[..., ::-1]))
    (d / "README.txt").write_text("not a LUT")
    return d


@pytest.fixture
def scene():
    """A 24x24 photo: a textured green object (label 1) on a grey background (label 2)."""
    rng = np.random.default_rng(1)
    img = np.clip(rng.normal(110, 10, (24, 24, 3)), 0, 255).astype(np.uint8)
    lm = np.zeros((24, 24), np.int32)
    lm[:, 12:] = 2
    lm[6:18, 4:14] = 1
    img[lm == 1] = np.clip(rng.normal((40, 140, 50), 10, (24, 24, 3)), 0, 255).astype(np.uint8)[lm == 1]
    return img, lm


# ----------------------------------------------------------------------------- op and folders


def test_grade_op_blends_a_lut_with_the_original(luts):
    lib = lut_library(luts)
    img = np.random.default_rng(0).integers(0, 256, (6, 7, 3), dtype=np.uint8)
    sha = lib.get("invert.cube", _inversion().sha256).sha256
    assert np.array_equal(LutGrade("invert.cube", sha, 1.0).bind(luts).apply(img), 255 - img)
    half = LutGrade("invert.cube", sha, 0.3).bind(lib).apply(img)
    assert np.array_equal(half, np.clip(np.rint(0.7 * img + 0.3 * (255.0 - img)), 0, 255).astype(np.uint8))
    assert LutGrade("invert.cube", sha, 0.0).bind(lib).apply(img).tobytes() == img.tobytes()
    with pytest.raises(ConfigError, match="needs the LUT folder"):
        LutGrade("invert.cube", sha, 1.0).bind(None)
    with pytest.raises(ConfigError, match="call bind"):
        LutGrade("invert.cube", sha, 1.0).apply(img)
    with pytest.raises(ConfigError, match="differs from the recipe"):
        LutGrade("invert.cube", "0" * 64, 1.0).bind(lib)
    with pytest.raises(ConfigError, match="no LUT file 'gone.cube'"):
        LutGrade("gone.cube", sha, 1.0).bind(lib)
    for bad in ({"file": "a/b.cube"}, {"sha256": "xyz"}, {"strength": 1.5}):
        with pytest.raises(ConfigError):
            LutGrade(**{"file": "a.cube", "sha256": sha, "strength": 0.5, **bad})


def test_library_reads_a_folder_once_and_rereads_a_changed_one(luts, tmp_path):
    lib = lut_library(luts)
    assert lib.names == ("invert.cube", "swap.cube", "warm.cube") and lut_library(str(luts)) is lib
    assert lut_library(lib) is lib and lib.to_dict()["count"] == 3 and len(lib.digest()) == 64
    write_cube(luts / "warm.cube", _inversion(5))
    os.utime(luts / "warm.cube", ns=(1, 1))
    again = lut_library(luts)
    assert again is not lib and again.digest() != lib.digest()
    with pytest.raises(ConfigError, match="does not exist"):
        lut_library(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError, match=r"no \.cube file"):
        lut_library(tmp_path / "empty")
    (luts / "broken.cube").write_text("LUT_3D_SIZE 2\n0 0 0\n")
    with pytest.raises(CubeFormatError, match=r"broken\.cube, line 2: LUT_3D_SIZE 2 needs 8"):
        lut_library(luts)


# ----------------------------------------------------------------------------- pairs


def _ctx(luts, **kw) -> PairContext:
    return PairContext(luts=lut_library(luts), **kw)


def test_lut_pair_grades_only_the_object_and_replays_from_the_folder(scene, luts):
    img, lm = scene
    res = make_pair(img, lm, np.random.default_rng(0), mix=FamilyMix.only("lut"), context=_ctx(luts, object_label=1))
    obj = lm == 1
    assert np.array_equal(res.composite[~obj], img[~obj]) and np.array_equal(res.real, img)
    assert np.array_equal(res.mask, obj.astype(np.uint8) * 255)
    rec = res.recipe
    assert rec["family"] == "lut" and [r["label"] for r in rec["regions"]] == [1] and rec["draws"] >= 1
    (op,) = rec["regions"][0]["ops"]
    assert op["op"] == "lut" and op["file"] in lut_library(luts).names and 0.5 <= op["strength"] <= 1.0
    assert op["sha256"] == lut_library(luts).get(op["file"], op["sha256"]).sha256
    stored = json.loads(json.dumps(rec))
    again = replay(img, lm, stored, luts=luts)
    for k in ("composite", "real", "mask"):
        assert getattr(again, k).tobytes() == getattr(res, k).tobytes()
    with pytest.raises(ConfigError, match="needs the LUT folder"):
        replay(img, lm, stored)
    write_cube(luts / op["file"], _warm(3) if op["file"] != "warm.cube" else _inversion(4))
    os.utime(luts / op["file"], ns=(2, 2))
    with pytest.raises(ConfigError, match="differs from the recipe"):
        replay(img, lm, stored, luts=luts)
    # without an annotated object one candidate region is drawn
    res2 = make_lut_pair(img, lm, np.random.default_rng(0), _ctx(luts))
    assert res2.recipe["regions"][0]["label"] in (1, 2)


def test_near_identical_draws_are_redrawn(scene, tmp_path):
    img, lm = scene
    d = tmp_path / "ident"
    d.mkdir()
    write_cube(d / "a.cube", identity_lut(2))
    with pytest.raises(NoUsableRegionError, match="4 LUT draws stayed below fMSE 50"):
        make_lut_pair(img, lm, np.random.default_rng(0), _ctx(d, object_label=1), LutConfig(max_draws=4))
    write_cube(d / "b.cube", _inversion())
    draws = [make_lut_pair(img, lm, np.random.default_rng(s), _ctx(d, object_label=1)).recipe for s in range(12)]
    assert all(r["regions"][0]["ops"][0]["file"] == "b.cube" for r in draws)  # the identity is never kept
    assert max(r["draws"] for r in draws) > 1
    with pytest.raises(ConfigError, match="LUT folder"):
        make_pair(img, lm, np.random.default_rng(0), mix=FamilyMix.only("lut"))


def test_family_mix_with_lut(scene, luts):
    img, lm = scene
    assert FamilyMix().to_dict() == {"sgmmh": 1.0, "colour_transfer": 0.0, "none": 0.0}
    assert FamilyMix.only("lut").to_dict()["lut"] == 1.0
    mix = FamilyMix(sgmmh=0.4, none=0.2, lut=0.4)
    seen = set()
    for seed in range(12):
        expected = mix.choose(np.random.default_rng(seed))
        res = make_pair(img, lm, np.random.default_rng(seed), mix=mix, context=_ctx(luts, object_label=1))
        assert res.recipe.get("family", "sgmmh") == expected
        assert replay(img, lm, res.recipe, luts=luts).composite.tobytes() == res.composite.tobytes()
        seen.add(expected)
    assert seen == {"sgmmh", "lut", "none"}
    with pytest.raises(ConfigError):
        LutConfig(strength=(0.8, 0.2))


# ----------------------------------------------------------------------------- builder and CLI


def _tree(out: Path) -> dict[str, bytes]:
    return {p.relative_to(out).as_posix(): p.read_bytes() for p in sorted(out.rglob("*"))
            if p.is_file() and p.name != "lock"}


def _settings(db: Path, luts: Path, **kw) -> BuildSettings:
    base = dict(source=str(db), split="train", val_fraction=0.0, size=32, seed=3, layout="iharmony4",
                mix=FamilyMix(sgmmh=0.0, colour_transfer=0.0, none=0.0, lut=1.0), luts=str(luts))
    base.update(kw)
    return BuildSettings(**base)


def test_lut_build_workers_shards_and_resume_are_byte_identical(tmp_path, lalonde_db, luts):
    s = _settings(lalonde_db, luts)
    one = build_benchmark(s, tmp_path / "one", show_progress=False)
    assert one.complete and one.built == 10 and not one.skipped
    ref = _tree(tmp_path / "one")
    build_benchmark(s, tmp_path / "w2", workers=2, show_progress=False)
    assert _tree(tmp_path / "w2") == ref
    for i in (1, 0):
        build_benchmark(s, tmp_path / "sh", shard=(i, 2), show_progress=False)
    assert _tree(tmp_path / "sh") == ref
    (tmp_path / "one" / "HLalonde" / "composite_images" / "image100003_1_1.png").unlink()
    (tmp_path / "one" / ".build" / "records" / "image_100010.json").unlink()
    again = build_benchmark(s, tmp_path / "one", show_progress=False)
    assert (again.built, again.already_done) == (2, 8) and _tree(tmp_path / "one") == ref
    bench = json.loads((tmp_path / "one" / "benchmark.json").read_text())
    assert bench["settings"]["luts"] == lut_library(luts).to_dict()
    assert bench["settings"]["lut"] == LutConfig().to_dict() and bench["settings"]["mix"]["lut"] == 1.0
    recs = [json.loads(x) for x in (tmp_path / "one" / "manifest.jsonl").read_text().splitlines()]
    assert {r["recipe"]["family"] for r in recs} == {"lut"}
    assert all(r["recipe"]["regions"][0]["label"] == 1 for r in recs)  # the annotated object
    # a changed LUT folder is a different setting
    write_cube(luts / "extra.cube", _warm(2))
    with pytest.raises(BuildError, match="different settings"):
        build_benchmark(s, tmp_path / "one", show_progress=False)


def test_build_benchmark_cli_lut_iharmony4_and_mix(tmp_path, lalonde_db, luts, capsys):
    out = tmp_path / "ih"
    code = main(["build-benchmark", str(lalonde_db), "--out", str(out), "--perturb", "lut", "--luts", str(luts),
                 "--layout", "iharmony4", "--split", "train", "--val-fraction", "0", *COMMON])
    assert code == 0, capsys.readouterr().err
    bench = open_benchmark(out, layout="iharmony4", split="train")
    assert len(bench) == 10
    code = main(["build-benchmark", str(lalonde_db), "--out", str(tmp_path / "mix"), "--perturb", "mix",
                 "--luts", str(luts), "--split", "train", "--val-fraction", "0", "--samples-per-image", "2", *COMMON])
    assert code == 0
    fams = {json.loads(x)["recipe"].get("family", "sgmmh")
            for x in (tmp_path / "mix" / "manifest.jsonl").read_text().splitlines()}
    assert fams == {"sgmmh", "colour_transfer", "lut"}
    capsys.readouterr()


@pytest.mark.parametrize("extra,message", [
    (["--perturb", "lut"], "needs --luts DIR"),
    (["--luts", "LUTS"], "only used by the lut family"),
    (["--perturb", "lut", "--luts", "BROKEN"], r"bad\.cube, line 3: table row: not a number"),
    (["--perturb", "lut", "--luts", "NOWHERE"], "does not exist"),
])
def test_cli_lut_mistakes_exit_2(tmp_path, lalonde_db, luts, capsys, extra, message):
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "bad.cube").write_text("LUT_3D_SIZE 2\n0 0 0\n0 x 0\n" + "0 0 0\n" * 6)
    paths = {"LUTS": str(luts), "BROKEN": str(broken), "NOWHERE": str(tmp_path / "nowhere")}
    extra = [paths.get(a, a) for a in extra]
    code = main(["build-benchmark", str(lalonde_db), "--out", str(tmp_path / "o"), *extra, *COMMON])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err
    assert re.search(message, err), err


# ----------------------------------------------------------------------------- on the fly, config


def test_onthefly_lut_pairs_are_deterministic_across_workers(lalonde_db, luts):
    items = open_source(lalonde_db, split="val", val_fraction=0.5)
    ds = OnTheFlyPairs(items, size=32, mix=FamilyMix(sgmmh=0.0, lut=0.7, none=0.3), luts=luts, seed=2)
    a = ds[(0, 1)]
    assert torch.equal(a.composite, ds[(0, 1)].composite)
    assert torch.equal(ds[(1, 1)].composite, OnTheFlyPairs(items, size=32, mix=ds.mix, luts=luts, seed=2)[(1, 1)].composite)
    sampler = EpochSampler(len(ds), seed=0, shuffle=False)
    loader = torch.utils.data.DataLoader(ds, batch_size=2, sampler=sampler, num_workers=2,
                                         collate_fn=lambda b: [x.composite for x in b])
    got = [c for batch in loader for c in batch]
    assert all(torch.equal(g, ds[(0, i)].composite) for i, g in enumerate(got))
    with pytest.raises(ConfigError, match="LUT folder"):
        OnTheFlyPairs(items, size=32, mix=FamilyMix.only("lut"))


def test_data_config_checks_luts_before_any_torch_work(tmp_path, lalonde_db, luts):
    base = {"images": lalonde_db, "mix": FamilyMix(sgmmh=0.5, colour_transfer=0.2, lut=0.2, none=0.1)}
    cfg = DataConfig(**base, luts=luts)
    assert cfg.luts == luts and cfg.lut == LutConfig()
    with pytest.raises(ConfigError, match="set data.luts"):
        DataConfig(**base)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError, match=r"data\.luts: .*no \.cube file"):
        DataConfig(**base, luts=tmp_path / "empty")
    (luts / "bad.cube").write_text("LUT_1D_SIZE 4\n")
    with pytest.raises(ConfigError, match=r"data\.luts: .*bad\.cube, line 1: LUT_1D_SIZE: 1D LUTs are not supported"):
        DataConfig(**base, luts=luts)
    with pytest.raises(ConfigError, match="no weight"):
        DataConfig(images=lalonde_db, luts=luts)


def test_train_config_yaml_with_lut_mix(tmp_path, lalonde_db, luts):
    from harmonykit.training.config import load_train_config
    from harmonykit.training.data import build_dataset

    p = tmp_path / "c.yaml"
    p.write_text(f"data:\n  images: {lalonde_db}\n  format: lalonde\n  size: 32\n"
                 f"  mix: {{sgmmh: 0.5, colour_transfer: 0.2, lut: 0.2, none: 0.1}}\n  luts: {luts}\n"
                 "  lut: {strength: [0.6, 0.9]}\n")
    cfg = load_train_config(p, validate=False)
    assert cfg.data.mix.lut == 0.2 and cfg.data.lut.strength == (0.6, 0.9)
    ds = build_dataset(cfg.data, seed=0, uses_regions=False)
    assert ds.luts is lut_library(luts) and ds.lut == cfg.data.lut
    p.write_text(f"data:\n  images: {lalonde_db}\n  mix: {{sgmmh: 0.5, lut: 0.5}}\n")
    with pytest.raises(ConfigError, match="set data.luts"):
        load_train_config(p, validate=False)
