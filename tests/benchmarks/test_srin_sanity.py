"""benchmarks/results/srin_sanity.py: merging two single-split iHarmony4 builds into one root."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from harmonykit.data.datasets import open_benchmark
from harmonykit.io import write_image, write_mask


@pytest.fixture(scope="module")
def srin_sanity(benchmark_script):
    return benchmark_script("srin_sanity")


def _fake_build(folder: Path, split: str, reals: list[str], value: int = 0) -> None:
    """What ``build_benchmark(..., layout="iharmony4")`` writes for one split."""
    sub = folder / "HLalonde"
    names = []
    for i, real in enumerate(reals):
        img = np.full((8, 8, 3), value + i, np.uint8)
        mask = np.zeros((8, 8), bool)
        mask[2:5, 2:5] = True
        write_image(sub / "real_images" / f"{real}.png", img)
        write_image(sub / "composite_images" / f"{real}_1_1.png", 255 - img)
        write_mask(sub / "masks" / f"{real}_1.png", mask)
        names.append(f"{real}_1_1.png")
    (sub / f"HLalonde_{split}.txt").write_text("".join(n + "\n" for n in names))
    (folder / "manifest.jsonl").write_text("")  # beside the subset: not merged


def test_merge_two_splits_into_one_root(srin_sanity, tmp_path):
    _fake_build(tmp_path / "build_train", "train", ["image1", "image2", "image3"])
    _fake_build(tmp_path / "build_val", "test", ["image9"], value=100)
    root = tmp_path / "iharmony4"
    subsets = srin_sanity.merge_iharmony4([tmp_path / "build_train", tmp_path / "build_val"], root)
    assert subsets == [root / "HLalonde"]
    sub = subsets[0]
    assert sorted(p.name for p in sub.iterdir()) == [
        "HLalonde_test.txt", "HLalonde_train.txt", "composite_images", "masks", "real_images"]
    assert (sub / "HLalonde_train.txt").read_text().split() == ["image1_1_1.png", "image2_1_1.png", "image3_1_1.png"]
    assert (sub / "HLalonde_test.txt").read_text().split() == ["image9_1_1.png"]
    assert (sub / "real_images" / "image9.png").samefile(tmp_path / "build_val" / "HLalonde" / "real_images" / "image9.png")
    # the trainer's and the evaluator's reader see both splits of the merged root
    train, test = open_benchmark(sub, layout="iharmony4", split="train"), open_benchmark(sub, split="test")
    assert train.ids == ["image1_1_1", "image2_1_1", "image3_1_1"] and test.ids == ["image9_1_1"]
    sample = test[0]
    assert sample.real[0, 0, 0] == 100 and sample.mask.sum() == 9
    # a rerun (resume) leaves the root as it was
    before = {p.relative_to(root): p.read_bytes() for p in root.rglob("*") if p.is_file()}
    srin_sanity.merge_iharmony4([tmp_path / "build_train", tmp_path / "build_val"], root)
    assert {p.relative_to(root): p.read_bytes() for p in root.rglob("*") if p.is_file()} == before


def test_merge_refuses_a_name_clash(srin_sanity, tmp_path):
    _fake_build(tmp_path / "a", "train", ["image1"])
    _fake_build(tmp_path / "b", "test", ["image1"], value=50)  # same name, other pixels
    with pytest.raises(SystemExit, match="name clash"):
        srin_sanity.merge_iharmony4([tmp_path / "a", tmp_path / "b"], tmp_path / "root")


def test_merge_needs_a_subset(srin_sanity, tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(SystemExit, match="no iHarmony4 subset"):
        srin_sanity.merge_iharmony4([tmp_path / "empty"], tmp_path / "root")


def test_paired_bootstrap_interval(srin_sanity):
    rng = np.random.default_rng(1)
    b = rng.uniform(100, 200, 400)
    a = b - 5.0 + rng.normal(0, 1, 400)  # a is better by 5 on every item, give or take 1
    mean, low, high = srin_sanity.paired_bootstrap(a, b)
    assert low < mean < high and abs(mean + 5.0) < 0.2
    assert high < 0 and high - low < 0.5  # pairing removes the spread of the items themselves
    assert srin_sanity.paired_bootstrap(a, b) == (mean, low, high)  # seeded
    # no real difference: the interval spans zero
    mean0, low0, high0 = srin_sanity.paired_bootstrap(b + rng.normal(0, 1, 400), b)
    assert low0 < 0 < high0
    with pytest.raises(ValueError, match="one length"):
        srin_sanity.paired_bootstrap([1.0, 2.0], [1.0])


def test_norm_pairs_follow_the_papers_order(srin_sanity):
    assert srin_sanity.norm_pairs(["in", "rain", "bain", "srin"]) == [
        ("srin", "bain"), ("srin", "rain"), ("srin", "in"), ("bain", "rain"), ("bain", "in"), ("rain", "in")]
    assert srin_sanity.norm_pairs(["in"]) == []


def _per_image(folder: Path, mse: dict[str, float]) -> Path:
    folder.mkdir(parents=True)
    (folder / "per_image.csv").write_text("id,subset,mse,psnr\n" + "".join(f"{k},HX,{v},30\n" for k, v in mse.items()))
    return folder


def test_paired_table_from_reports(srin_sanity, tmp_path):
    ids = [f"c{i}" for i in range(50)]
    base = {i: 100.0 + 3 * k for k, i in enumerate(ids)}
    reps = {"in": _per_image(tmp_path / "in", base),
            "srin": _per_image(tmp_path / "srin", {i: v - 10 for i, v in reversed(list(base.items()))})}
    (row,) = srin_sanity.paired_table(reps)
    assert (row["a"], row["b"], row["n"]) == ("srin", "in", 50)
    assert row["mean"] == pytest.approx(-10) and row["low"] == pytest.approx(-10) and row["high"] == pytest.approx(-10)
    reps["rain"] = _per_image(tmp_path / "rain", {i: 1.0 for i in ids[:-1]})
    with pytest.raises(SystemExit, match="different composites"):
        srin_sanity.paired_table(reps)
