"""Dataset layouts: ADE20K, LIP, generic folders, auto detection, item problems."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from harmonykit.data.sources import SourceError, detect_format, open_source, scan_source
from harmonykit.io import read_label_map


def _jpg(path: Path, seed: int, size: tuple[int, int] = (12, 10)) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    arr = np.random.default_rng(seed).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    Image.fromarray(arr).save(path, quality=90)


def _label(path: Path, seed: int, max_label: int, size: tuple[int, int] = (12, 10)) -> np.ndarray:
    """8-bit single-channel (L) PNG, as ADE20K annotations / LIP segmentations are stored."""
    path.parent.mkdir(parents=True, exist_ok=True)
    arr = np.random.default_rng(seed).integers(0, max_label + 1, (size[1], size[0]), dtype=np.uint8)
    Image.fromarray(arr, mode="L").save(path)
    return arr


def make_ade(root: Path, missing_label: str | None = None) -> Path:
    ade = root / "ADEChallengeData2016"
    for split, tag, n in (("training", "train", 3), ("validation", "val", 2)):
        for i in range(1, n + 1):
            stem = f"ADE_{tag}_{i:08d}"
            _jpg(ade / "images" / split / f"{stem}.jpg", i)
            if stem != missing_label:
                _label(ade / "annotations" / split / f"{stem}.png", i, 150)
    return ade


def make_lip(root: Path) -> Path:
    for split, n in (("train", 2), ("val", 3)):
        for i in range(n):
            stem = f"{100000 + i}_{500 + i}"
            _jpg(root / "TrainVal_images" / f"{split}_images" / f"{stem}.jpg", i)
            _label(root / "TrainVal_parsing_annotations" / f"{split}_segmentations" / f"{stem}.png", i, 19)
    return root


def test_ade20k_layout_splits_and_detection(tmp_path):
    ade = make_ade(tmp_path)
    assert detect_format(ade) == "ade20k"
    assert detect_format(tmp_path) == "ade20k"  # the folder containing ADEChallengeData2016
    val = open_source(ade)  # default split: val -> validation
    assert [it.id for it in val] == ["ADE_val_00000001", "ADE_val_00000002"]
    assert all(it.image_path.parent.name == "validation" for it in val)
    assert all(it.label_path == ade / "annotations" / "validation" / f"{it.id}.png" for it in val)
    train = open_source(tmp_path, format="ade20k", split="train")
    assert [it.id for it in train] == [f"ADE_train_{i:08d}" for i in (1, 2, 3)]
    lab = read_label_map(train[0].label_path)
    assert lab.dtype == np.int32 and lab.max() <= 150 and lab.shape == (10, 12)


def test_ade20k_missing_label_is_an_item_problem(tmp_path):
    ade = make_ade(tmp_path, missing_label="ADE_train_00000002")
    listing = scan_source(ade, split="train")
    assert [it.id for it in listing.items] == ["ADE_train_00000001", "ADE_train_00000003"]
    assert len(listing.problems) == 1
    prob = listing.problems[0]
    assert prob.id == "ADE_train_00000002" and prob.path.name == "ADE_train_00000002.jpg"
    assert "no label map" in prob.reason
    # labels not required (e.g. superpixel regions): the image is an item without label
    listing = scan_source(ade, split="train", require_labels=False)
    assert [it.label_path is None for it in listing.items] == [False, True, False]
    assert not listing.problems


def test_lip_layout(tmp_path):
    lip = make_lip(tmp_path / "LIP")
    assert detect_format(lip) == "lip"
    val = scan_source(lip)
    assert val.format == "lip" and val.split == "val"
    assert [it.id for it in val.items] == ["100000_500", "100001_501", "100002_502"]
    assert all(it.label_path.parent.name == "val_segmentations" for it in val.items)
    train = open_source(lip, format="lip", split="train")
    assert len(train) == 2 and read_label_map(train[1].label_path).max() <= 19


def test_lip_doubled_folders(tmp_path):
    root = tmp_path / "LIP"
    _jpg(root / "TrainVal_images" / "TrainVal_images" / "val_images" / "1_2.jpg", 0)
    _label(root / "TrainVal_parsing_annotations" / "TrainVal_parsing_annotations" / "val_segmentations" / "1_2.png", 0, 19)
    items = open_source(root)
    assert len(items) == 1 and items[0].label_path is not None


def test_generic_with_and_without_labels(tmp_path):
    imgs, labs = tmp_path / "imgs", tmp_path / "labs"
    _jpg(imgs / "b.jpg", 0)
    _jpg(imgs / "c.JPG", 1)
    Image.new("RGB", (5, 4)).save(imgs / "a.png")
    (imgs / "notes.txt").write_text("not an image")
    (imgs / ".hidden.jpg").write_bytes(b"")
    assert detect_format(imgs) == "generic"
    items = open_source(imgs)
    assert [it.id for it in items] == ["a", "b", "c"] and all(it.label_path is None for it in items)
    _label(labs / "a.png", 0, 5)
    _label(labs / "c.png", 1, 5)
    listing = scan_source(imgs, labels=labs)
    assert [it.id for it in listing.items] == ["a", "c"]
    assert [p.id for p in listing.problems] == ["b"] and "no label map" in listing.problems[0].reason
    assert listing.items[1].label_path == labs / "c.png"


def test_generic_duplicate_stems_are_problems(tmp_path):
    _jpg(tmp_path / "x.jpg", 0)
    Image.new("RGB", (4, 4)).save(tmp_path / "x.png")
    _jpg(tmp_path / "y.jpg", 1)
    listing = scan_source(tmp_path)
    assert [it.id for it in listing.items] == ["y"]
    assert {p.path.name for p in listing.problems} == {"x.jpg", "x.png"}
    assert all("duplicate" in p.reason for p in listing.problems)


def test_source_errors(tmp_path):
    with pytest.raises(SourceError, match="does not exist"):
        scan_source(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(SourceError, match="cannot detect"):
        scan_source(tmp_path / "empty")
    with pytest.raises(SourceError, match="no image files"):
        scan_source(tmp_path / "empty", format="generic")
    _jpg(tmp_path / "g" / "a.jpg", 0)
    with pytest.raises(SourceError, match="only meaningful"):
        scan_source(tmp_path / "g", split="train")
    with pytest.raises(SourceError, match="unknown source format"):
        scan_source(tmp_path / "g", format="coco")
    with pytest.raises(SourceError, match="label folder does not exist"):
        scan_source(tmp_path / "g", labels=tmp_path / "nolabels")
    with pytest.raises(SourceError, match="not an ADE20K"):
        scan_source(tmp_path / "g", format="ade20k")
    ade = make_ade(tmp_path / "ade")
    with pytest.raises(SourceError, match="unknown split"):
        scan_source(ade, split="test")
