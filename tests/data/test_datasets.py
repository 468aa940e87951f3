"""Benchmark readers (iHarmony4, triptych, harmonykit) and the torch wrapper."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from harmonykit.data.datasets import (
    BenchmarkError,
    PairDataset,
    TorchPairs,
    collate_pairs,
    detect_layout,
    open_benchmark,
)
from harmonykit.errors import ConfigError, ImageReadError

H, W = 20, 30

# subset -> list of (composite file, mask stem, real stem, split)
IH4 = {
    "HCOCO": [
        ("c100_7_1.jpg", "c100_7", "c100", "test"),
        ("c100_8_2.jpg", "c100_8", "c100", "test"),
        ("c200_9_1.jpg", "c200_9", "c200", "train"),
    ],
    "HFlickr": [("f300_4_1.jpg", "f300_4", "f300", "test")],
    "Hday2night": [("d400_1_3.jpg", "d400_1", "d400", "test")],
}


def _photo(seed: int) -> np.ndarray:
    """A smooth colourful (H, W, 3) uint8 image (JPEG-friendly)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:H, 0:W]
    chans = [127 + 100 * np.sin(x / (3 + c + seed) + y / (5 + seed) + rng.uniform(0, 6)) for c in range(3)]
    return np.clip(np.stack(chans, axis=2), 0, 255).astype(np.uint8)


def _mask(seed: int) -> np.ndarray:
    m = np.zeros((H, W), np.uint8)
    m[2 + seed % 5 : 12 + seed % 5, 4 + seed % 7 : 20] = 255
    return m


def _decode(path: Path) -> np.ndarray:
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"))


def _build_iharmony4(root: Path, leading_folder: bool = False) -> None:
    for k, (subset, entries) in enumerate(IH4.items()):
        d = root / subset
        for sub in ("composite_images", "masks", "real_images"):
            (d / sub).mkdir(parents=True, exist_ok=True)
        lines: dict[str, list[str]] = {"train": [], "test": []}
        for i, (comp, mask_stem, real_stem, split) in enumerate(entries):
            seed = 10 * k + i
            real = _photo(seed)
            if not (d / "real_images" / f"{real_stem}.jpg").exists():
                Image.fromarray(real).save(d / "real_images" / f"{real_stem}.jpg", quality=90)
            real_dec = _decode(d / "real_images" / f"{real_stem}.jpg")
            m = _mask(seed)
            Image.fromarray(m).save(d / "masks" / f"{mask_stem}.png")
            comp_img = real_dec.copy()
            comp_img[m > 0] = (comp_img[m > 0] * 0.6 + 40).astype(np.uint8)
            Image.fromarray(comp_img).save(d / "composite_images" / comp, quality=90)
            lines[split].append(("composite_images/" if leading_folder and i % 2 else "") + comp)
        for split, names in lines.items():
            (d / f"{subset}_{split}.txt").write_text("\n".join(names) + "\n")


def _write_harmonykit(ds: PairDataset, out: Path, name: str | None = None) -> None:
    for sub in ("composite", "real", "mask"):
        (out / sub).mkdir(parents=True, exist_ok=True)
    manifest = []
    for s in ds:
        Image.fromarray(s.composite).save(out / "composite" / f"{s.id}.png")
        Image.fromarray(s.real).save(out / "real" / f"{s.id}.png")
        Image.fromarray(np.round(s.mask * 255).astype(np.uint8)).save(out / "mask" / f"{s.id}.png")
        manifest.append(json.dumps({"id": s.id}))
    (out / "manifest.jsonl").write_text("\n".join(manifest) + "\n")
    if name:
        (out / "benchmark.json").write_text(json.dumps({"name": name}))


def _write_triptych(ds: PairDataset, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    for s in ds:
        m = np.round(s.mask * 255).astype(np.uint8)
        trip = np.concatenate([s.real, s.composite, np.repeat(m[..., None], 3, axis=2)], axis=1)
        Image.fromarray(trip).save(out / f"{s.id}.png")


@pytest.fixture(scope="module")
def ih4(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("ih4") / "iHarmony4"
    _build_iharmony4(root, leading_folder=True)
    return root


# ----------------------------------------------------------------------------- iHarmony4


def test_iharmony4_reads_pairs_with_official_naming(ih4):
    ds = open_benchmark(ih4)
    assert ds.layout == "iharmony4"
    # subsets in canonical order, split-file order inside each subset, train excluded
    assert ds.ids == ["c100_7_1", "c100_8_2", "f300_4_1", "d400_1_3"]
    assert [r.subset for r in ds.records] == ["HCOCO", "HCOCO", "HFlickr", "Hday2night"]
    assert len(ds) == 4
    s = ds[1]
    assert s.id == "c100_8_2" and s.subset == "HCOCO"
    # independent expectation: decode the files named by the iHarmony4 rule with Pillow
    np.testing.assert_array_equal(s.composite, _decode(ih4 / "HCOCO/composite_images/c100_8_2.jpg"))
    np.testing.assert_array_equal(s.real, _decode(ih4 / "HCOCO/real_images/c100.jpg"))
    expected_mask = np.asarray(Image.open(ih4 / "HCOCO/masks/c100_8.png")).astype(np.float32) / 255
    np.testing.assert_array_equal(s.mask, expected_mask)
    assert s.composite.dtype == np.uint8 and s.composite.shape == (H, W, 3)
    assert s.mask.dtype == np.float32 and s.mask.shape == (H, W) and set(np.unique(s.mask)) == {0.0, 1.0}


def test_iharmony4_split_subsets_and_single_subset_folder(ih4):
    train = open_benchmark(ih4, split="train")
    assert train.ids == ["c200_9_1"]
    sel = open_benchmark(ih4, subsets=["hflickr", "HCOCO"])  # case-insensitive, given order
    assert sel.subsets == ["HFlickr", "HCOCO"]
    assert open_benchmark(ih4, subsets="Hday2night").ids == ["d400_1_3"]
    single = open_benchmark(ih4 / "HCOCO")
    assert single.layout == "iharmony4" and single.ids == ["c100_7_1", "c100_8_2"]
    assert single.subsets == ["HCOCO"]
    with pytest.raises(BenchmarkError, match="no subset 'HAdobe5k'.*HCOCO, HFlickr, Hday2night"):
        open_benchmark(ih4, subsets=["HAdobe5k"])


def test_iharmony4_missing_split_file_and_bad_line(tmp_path, ih4):
    root = tmp_path / "r"
    shutil.copytree(ih4 / "HFlickr", root / "HFlickr")
    (root / "HFlickr" / "HFlickr_train.txt").unlink()
    with pytest.raises(BenchmarkError, match=r"HFlickr_train\.txt.*'train'.*HFlickr_test\.txt"):
        open_benchmark(root, split="train")
    (root / "HFlickr" / "HFlickr_test.txt").write_text("f300_4_1.jpg\nbadname.jpg\n")
    with pytest.raises(BenchmarkError, match=r"HFlickr_test\.txt:2: 'badname\.jpg' does not follow"):
        open_benchmark(root)


def test_item_errors_raise_from_getitem_only(tmp_path, ih4):
    root = tmp_path / "r"
    shutil.copytree(ih4, root)
    (root / "HCOCO/real_images/c100.jpg").unlink()
    (root / "HFlickr/masks/f300_4.png").write_bytes(b"not a png at all")
    ds = open_benchmark(root)  # listing does not decode anything
    assert len(ds) == 4
    with pytest.raises(ImageReadError, match=r"c100\.jpg: real image file does not exist"):
        ds[0]
    with pytest.raises(ImageReadError, match=r"f300_4\.png"):
        ds[2]
    assert ds[3].id == "d400_1_3"  # the others still read
    # a mask of the wrong size names the mask file
    Image.fromarray(np.zeros((H, W + 1), np.uint8)).save(root / "Hday2night/masks/d400_1.png")
    with pytest.raises(ImageReadError, match=r"d400_1\.png: mask is 31x20 but the composite is 30x20"):
        ds[3]


# ----------------------------------------------------------------------------- equivalence


def test_three_layouts_give_identical_samples(tmp_path, ih4):
    ref = open_benchmark(ih4, subsets=["HCOCO"])
    _write_harmonykit(ref, tmp_path / "hk" / "HCOCO")
    _write_triptych(ref, tmp_path / "tri" / "HCOCO")
    hk = open_benchmark(tmp_path / "hk" / "HCOCO")
    tri = open_benchmark(tmp_path / "tri" / "HCOCO")
    assert (hk.layout, tri.layout) == ("harmonykit", "triptych")
    for other in (hk, tri):
        assert other.ids == ref.ids
        for a, b in zip(ref, other):
            assert (a.id, a.subset) == (b.id, b.subset)
            np.testing.assert_array_equal(a.composite, b.composite)
            np.testing.assert_array_equal(a.real, b.real)
            np.testing.assert_array_equal(a.mask, b.mask)
            assert b.mask.dtype == np.float32 and b.composite.dtype == np.uint8


def test_harmonykit_layout_name_multi_subsets_and_manifest(tmp_path, ih4):
    ref = open_benchmark(ih4)
    _write_harmonykit(ref.select([0, 1]), tmp_path / "root" / "a", name="HScene")
    _write_harmonykit(ref.select([2]), tmp_path / "root" / "b")
    ds = open_benchmark(tmp_path / "root")
    assert ds.layout == "harmonykit"
    assert ds.subsets == ["HScene", "b"]
    assert open_benchmark(tmp_path / "root", subsets=["b"]).ids == ["f300_4_1"]
    # an id in the manifest whose composite is gone is listed and fails on access
    (tmp_path / "root/a/composite/c100_7_1.png").unlink()
    ds = open_benchmark(tmp_path / "root", subsets=["hscene"])
    assert ds.ids == ["c100_7_1", "c100_8_2"]
    with pytest.raises(ImageReadError, match="composite file does not exist"):
        ds[0]


def test_triptych_split_and_errors(tmp_path):
    d = tmp_path / "HScene_test"
    d.mkdir()
    real, comp = _photo(1), _photo(2)
    m3 = np.zeros((H, W, 3), np.uint8)
    m3[5:9, 3:8, 1] = 255  # mask stored in one colour channel only
    Image.fromarray(np.concatenate([real, comp, m3], axis=1)).save(d / "x1.png")
    Image.fromarray(np.zeros((H, 3 * W + 1, 3), np.uint8)).save(d / "x2.png")
    ds = open_benchmark(d)
    assert ds.layout == "triptych" and ds.subsets == ["HScene_test"] and ds.ids == ["x1", "x2"]
    s = ds[0]
    np.testing.assert_array_equal(s.real, real)
    np.testing.assert_array_equal(s.composite, comp)
    assert s.mask.sum() == 20 and s.mask[5:9, 3:8].min() == 1.0
    with pytest.raises(ImageReadError, match="x2.png: triptych width 91 is not a multiple of 3"):
        ds[1]


def test_detection_errors(tmp_path):
    with pytest.raises(BenchmarkError, match="does not exist"):
        open_benchmark(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(BenchmarkError, match=r"cannot detect.*composite_images/.*triptych"):
        open_benchmark(tmp_path / "empty")
    photos = tmp_path / "photos"
    photos.mkdir()
    Image.fromarray(np.zeros((10, 100, 3), np.uint8)).save(photos / "p.png")
    with pytest.raises(BenchmarkError, match="p.png is 100 px wide, not a"):
        detect_layout(photos)
    with pytest.raises(BenchmarkError, match="not a iharmony4 benchmark folder"):
        open_benchmark(photos, layout="iharmony4")
    with pytest.raises(ConfigError, match="unknown benchmark layout"):
        open_benchmark(photos, layout="coco")
    with pytest.raises(ConfigError, match="unknown split"):
        open_benchmark(photos, split="val")


# ----------------------------------------------------------------------------- torch


def test_torch_pairs_resize_rules_against_pillow(ih4):
    ds = open_benchmark(ih4)
    tp = TorchPairs(ds, size=(10, 15))
    item = tp[0]
    s = ds[0]
    assert item["composite"].shape == (3, 10, 15) and item["mask"].shape == (1, 10, 15)
    assert item["composite"].dtype == torch.float32
    assert (item["id"], item["subset"]) == ("c100_7_1", "HCOCO")
    # images: bilinear with antialias == Pillow's BILINEAR resize on float channels
    for c in range(3):
        ch = Image.fromarray(s.composite[..., c].astype(np.float32) / 255, mode="F")
        exp = np.asarray(ch.resize((15, 10), Image.Resampling.BILINEAR))
        np.testing.assert_allclose(item["composite"][c].numpy(), exp, atol=2e-3)
    # masks: nearest at pixel centres: exact 2x downscale picks the odd rows/columns
    np.testing.assert_array_equal(item["mask"][0].numpy(), s.mask[1::2, 1::2])
    full = TorchPairs(ds, size=None)[2]
    assert full["real"].shape == (3, H, W)
    np.testing.assert_allclose(full["real"].permute(1, 2, 0).numpy() * 255, ds[2].real, atol=1e-4)


def test_dataloader_workers_and_collate(tmp_path, ih4):
    root = tmp_path / "r"
    shutil.copytree(ih4, root)
    (root / "HFlickr/composite_images/f300_4_1.jpg").write_bytes(b"broken")
    ds = open_benchmark(root)
    tp = TorchPairs(ds, size=None, skip_errors=True)
    loader = torch.utils.data.DataLoader(tp, batch_size=1, num_workers=2, collate_fn=collate_pairs)
    batches = list(loader)
    assert [b.ids for b in batches] == [["c100_7_1"], ["c100_8_2"], [], ["d400_1_3"]]
    assert batches[2].errors[0].id == "f300_4_1" and "f300_4_1.jpg" in batches[2].errors[0].error
    assert batches[0].composite.shape == (1, 3, H, W) and batches[0].errors == []
    # default collate works for equal sizes; different sizes give a clear error
    big = TorchPairs(ds.select([0, 1]), size=8)
    b = next(iter(torch.utils.data.DataLoader(big, batch_size=2)))
    assert b["composite"].shape == (2, 3, 8, 8) and b["mask"].shape == (2, 1, 8, 8)
    one, two = TorchPairs(ds, size=8)[0], TorchPairs(ds, size=6)[1]
    with pytest.raises(ValueError, match="batch_size=1"):
        collate_pairs([one, two])
    with pytest.raises(ImageReadError):
        TorchPairs(ds, size=8)[2]


def test_torch_pairs_region_maps(ih4):
    from harmonykit.regionmaps import PALETTE, RegionMapProvider

    ds = open_benchmark(ih4)
    calls = []

    def provider(image):
        calls.append(image.shape)
        return RegionMapProvider("slic", n_segments=4)(image)

    item = TorchPairs(ds, size=10, regions=provider)[0]
    assert calls == [(H, W, 3)]  # computed on the original-resolution composite
    reg = item["regions"]
    assert reg.shape == (3, 10, 10)
    colours = {tuple(round(v * 255) for v in reg[:, i, j].tolist()) for i in range(10) for j in range(10)}
    assert colours <= {tuple(c) for c in PALETTE.tolist()}
