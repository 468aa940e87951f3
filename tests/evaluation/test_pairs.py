"""Pair preparation: each benchmark item is a typed ``Prepared`` pair or a ``Failure``."""

from __future__ import annotations

import pickle
from dataclasses import dataclass

import numpy as np
import pytest

from harmonykit.errors import ImageReadError
from harmonykit.evaluation.pairs import (
    Prepared,
    PreparedPairs,
    describe_error,
    prepare_item,
    prepare_pair,
    same_size_groups,
)
from harmonykit.evaluation.report import Failure
from harmonykit.regionmaps import RegionMapProvider


@dataclass
class Sample:
    id: str
    subset: str
    composite: np.ndarray
    real: np.ndarray
    mask: np.ndarray


@dataclass
class Record:
    id: str
    subset: str


class Bench:
    """A dataset whose item 1 cannot be read and item 2 has mismatched sizes."""

    def __init__(self, h: int = 40, w: int = 30) -> None:
        rng = np.random.default_rng(0)
        self.images = [rng.integers(0, 256, (h, w, 3), dtype=np.uint8) for _ in range(4)]
        self.records = [Record(f"p{i}", "s") for i in range(4)]

    def __len__(self) -> int:
        return 4

    def __getitem__(self, i: int) -> Sample:
        if i == 1:
            raise ImageReadError("p1.png", "file does not exist")
        img = self.images[i]
        mask = np.zeros(img.shape[:2] if i != 2 else (5, 5), np.float32)
        return Sample(f"p{i}", "s", img, img.copy(), mask)


def test_prepared_or_failure():
    bench = Bench()
    items = [prepare_item(bench, i, 16) for i in range(4)]
    assert [type(x) for x in items] == [Prepared, Failure, Failure, Prepared]
    ok = items[0]
    assert isinstance(ok, Prepared)
    assert (ok.id, ok.subset, ok.composite.shape, ok.real.shape, ok.mask.shape) == ("p0", "s", (16, 16, 3),
                                                                                  (16, 16, 3), (16, 16))
    assert ok.composite.dtype == np.uint8 and ok.mask.dtype == np.float32 and ok.regions is None
    read, prep = items[1], items[2]
    assert (read.id, read.stage) == ("p1", "read") and "does not exist" in read.reason  # id from records
    assert (prep.id, prep.stage) == ("p2", "prepare") and prep.reason.startswith("ValueError: sizes differ")
    assert prepare_item([], 0, 16).id == "#0"  # no records: the index stands in


def test_original_size_and_region_maps():
    bench = Bench()
    same = prepare_item(bench, 0, 0)
    assert isinstance(same, Prepared) and same.composite is bench.images[0]
    provider = RegionMapProvider("slic", n_segments=4, max_side=32)
    with_maps = prepare_pair(bench[0], 16, provider)
    assert with_maps.regions is not None and tuple(with_maps.regions.shape) == (3, 16, 16)
    assert float(with_maps.regions.min()) >= 0 and float(with_maps.regions.max()) <= 1
    with pytest.raises(ValueError, match="smaller than the 11x11 SSIM window"):
        prepare_pair(Sample("t", "s", np.zeros((8, 8, 3), np.uint8), np.zeros((8, 8, 3), np.uint8),
                            np.zeros((8, 8), np.float32)), 0)


def test_prepared_pairs_cross_processes_and_group_by_size():
    pairs = PreparedPairs(Bench(), [0, 1, 3], 16)
    batches = list(pairs.loader(batch_size=2, workers=0))
    assert [[type(x).__name__ for x in b] for b in batches] == [["Prepared", "Failure"], ["Prepared"]]
    back = pickle.loads(pickle.dumps(batches[0]))  # what DataLoader workers send back
    assert isinstance(back[0], Prepared) and np.array_equal(back[0].composite, batches[0][0].composite)
    a, b = Bench(40, 30), Bench(20, 30)
    mixed = [prepare_item(a, 0, 0), prepare_item(b, 0, 0), prepare_item(a, 3, 0)]
    groups = same_size_groups([p for p in mixed if isinstance(p, Prepared)])
    assert [[p.composite.shape for p in g] for g in groups] == [[(40, 30, 3)] * 2, [(20, 30, 3)]]


def test_describe_error():
    assert describe_error(ImageReadError("x.png", "corrupt")) == str(ImageReadError("x.png", "corrupt"))
    assert describe_error(RuntimeError("boom")) == "RuntimeError: boom"
