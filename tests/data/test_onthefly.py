"""On-the-fly training pairs: determinism, epochs, workers, skipping bad sources, cache."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from harmonykit.data.datasets import collate_pairs
from harmonykit.data.onthefly import EpochSampler, OnTheFlyPairs
from harmonykit.data.perturb import PerturbConfig, make_composite
from harmonykit.data.sources import SourceItem
from harmonykit.errors import ConfigError, HarmonykitError
from harmonykit.utils.seeding import derive_seed, rng_for

SIZE = 24
CFG = PerturbConfig(degrade_prob=0.0)


def _photo(seed: int, h: int = 40, w: int = 52) -> np.ndarray:
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 256, (4, 5, 3), dtype=np.uint8)
    return np.asarray(Image.fromarray(base).resize((w, h), Image.Resampling.BILINEAR))


def _labels(h: int = 40, w: int = 52) -> np.ndarray:
    lab = np.zeros((h, w), np.uint8)
    lab[:, : w // 3] = 1
    lab[:, w // 3 : 2 * w // 3] = 2
    lab[h // 2 :, 2 * w // 3 :] = 3
    return lab


@pytest.fixture(scope="module")
def sources(tmp_path_factory) -> list[SourceItem]:
    d = tmp_path_factory.mktemp("src")
    items = []
    for k in range(3):
        Image.fromarray(_photo(k)).save(d / f"img{k}.png")
        Image.fromarray(_labels()).save(d / f"img{k}_lab.png")
        items.append(SourceItem(f"img{k}", d / f"img{k}.png", d / f"img{k}_lab.png"))
    return items


@pytest.fixture(scope="module")
def with_bad(sources, tmp_path_factory) -> list[SourceItem]:
    d = tmp_path_factory.mktemp("bad")
    Image.fromarray(_photo(7)).save(d / "empty.png")
    Image.fromarray(np.zeros((40, 52), np.uint8)).save(d / "empty_lab.png")  # only label 0
    (d / "broken.png").write_bytes(b"\x89PNG broken")
    Image.fromarray(_labels()).save(d / "broken_lab.png")
    return [
        SourceItem("empty", d / "empty.png", d / "empty_lab.png"),
        sources[0],
        SourceItem("broken", d / "broken.png", d / "broken_lab.png"),
        sources[1],
    ]


def _same(a: dict, b: dict) -> bool:
    return a["id"] == b["id"] and all(torch.equal(a[k], b[k]) for k in ("composite", "real", "mask"))


def test_sample_follows_the_documented_pipeline(sources):
    ds = OnTheFlyPairs(sources, size=SIZE, load_size=30, perturb=CFG, seed=5)
    item = ds[1]
    # rebuild sample 1 of epoch 0 by hand: resize shorter side to 30, crop, flip, perturb
    rng = rng_for(5, 0, 1)
    img = np.asarray(Image.fromarray(_photo(1)).resize((39, 30), Image.Resampling.BILINEAR))
    lab = np.asarray(Image.fromarray(_labels()).resize((39, 30), Image.Resampling.NEAREST)).astype(np.int32)
    top, left = int(rng.integers(0, 30 - SIZE + 1)), int(rng.integers(0, 39 - SIZE + 1))
    flip = bool(rng.random() < 0.5)
    img, lab = img[top : top + SIZE, left : left + SIZE], lab[top : top + SIZE, left : left + SIZE]
    if flip:
        img, lab = img[:, ::-1], lab[:, ::-1]
    res = make_composite(np.ascontiguousarray(img), np.ascontiguousarray(lab), rng, CFG)
    assert item["id"] == "img1" and item["skipped"] == 0 and item["index"] == 1
    np.testing.assert_array_equal((item["composite"].permute(1, 2, 0).numpy() * 255).round(), res.composite)
    np.testing.assert_array_equal((item["real"].permute(1, 2, 0).numpy() * 255).round(), res.real)
    np.testing.assert_array_equal(item["mask"][0].numpy() * 255, res.mask)
    assert item["composite"].shape == (3, SIZE, SIZE) and item["mask"].shape == (1, SIZE, SIZE)
    assert set(torch.unique(item["mask"]).tolist()) <= {0.0, 1.0} and item["mask"].sum() > 0


def test_epochs_give_fresh_but_reproducible_pairs(sources):
    a = OnTheFlyPairs(sources, size=SIZE, perturb=CFG, seed=1)
    b = OnTheFlyPairs(sources, size=SIZE, perturb=CFG, seed=1, cache=False)
    e0 = [a[i] for i in range(3)]
    assert all(_same(x, b[i]) for i, x in enumerate(e0))  # cache does not change samples
    a.set_epoch(1)
    e1 = [a[i] for i in range(3)]
    assert not any(_same(x, y) for x, y in zip(e0, e1))
    assert all(_same(x, b[(1, i)]) for i, x in enumerate(e1))  # (epoch, index) addressing
    assert not _same(e0[0], OnTheFlyPairs(sources, size=SIZE, perturb=CFG, seed=2)[0])
    longer = OnTheFlyPairs(sources, size=SIZE, perturb=CFG, seed=1, length=7)
    assert len(longer) == 7 and longer[4]["id"] == "img1"


def test_dataloader_workers_match_single_process(sources):
    ds = OnTheFlyPairs(sources, size=SIZE, perturb=CFG, seed=3, length=4)
    ds.warm_cache(show_progress=False)
    sampler = EpochSampler(len(ds), seed=3, epoch=2)
    loader = torch.utils.data.DataLoader(ds, batch_size=2, sampler=sampler, num_workers=2,
                                         collate_fn=collate_pairs)
    batches = list(loader)
    order = list(sampler)
    assert len(order) == 4 and {i for _, i in order} == set(range(4)) and order[0][0] == 2
    flat = [(b.index[k].item(), b.composite[k]) for b in batches for k in range(2)]
    assert [i for i, _ in flat] == [i for _, i in order]
    for i, comp in flat:
        assert torch.equal(comp, ds.sample(2, i)["composite"])
    # resuming mid-epoch: same order from the given position
    assert list(EpochSampler(4, seed=3, epoch=2, start=2)) == order[2:]
    assert list(EpochSampler(4, seed=3, epoch=2, rank=1, world_size=2)) == order[1::2]


def test_bad_sources_are_skipped_deterministically(with_bad):
    ds = OnTheFlyPairs(with_bad, size=SIZE, perturb=CFG, seed=0)
    out = [ds[i] for i in range(4)]
    for i in (0, 2):  # "empty" has no usable region, "broken" is unreadable
        assert out[i]["skipped"] >= 1 and out[i]["id"] in ("img0", "img1")
        # the replacement is the first usable item drawn by derive_seed(seed, epoch, index, "retry", k)
        k = 1
        while with_bad[derive_seed(0, 0, i, "retry", k) % 4].id in ("empty", "broken"):
            k += 1
        assert out[i]["skipped"] == k and out[i]["id"] == with_bad[derive_seed(0, 0, i, "retry", k) % 4].id
    assert (out[1]["id"], out[1]["skipped"]) == ("img0", 0)
    assert ds.failures["no usable region"] >= 1 and ds.failures["unreadable"] >= 1
    assert set(ds.failed_items) == {"empty", "broken"}
    again = OnTheFlyPairs(with_bad, size=SIZE, perturb=CFG, seed=0)
    assert all(_same(out[i], again[i]) for i in range(4))
    only_bad = OnTheFlyPairs([with_bad[0], with_bad[2]], size=SIZE, perturb=CFG, max_attempts=4)
    with pytest.raises(HarmonykitError, match="4 source items in a row were unusable"):
        only_bad[0]


def test_computed_regions_are_cached(sources):
    calls: list[tuple[int, ...]] = []

    def labeler(image: np.ndarray) -> np.ndarray:
        calls.append(image.shape)
        lab = np.ones(image.shape[:2], np.int32)
        lab[:, image.shape[1] // 2 :] = 2
        return lab

    ds = OnTheFlyPairs(sources, size=SIZE, perturb=CFG, regions="slic", labeler=labeler, load_size=32)
    for epoch in range(2):
        ds.set_epoch(epoch)
        for i in range(3):
            ds[i]
    assert calls == [(32, 42, 3)] * 3  # once per source, on the resized image
    slic = OnTheFlyPairs(sources, size=SIZE, perturb=CFG, regions="slic", labeler_kwargs={"n_segments": 4})
    assert slic[0]["mask"].sum() > 0


def test_configuration_errors(sources):
    no_labels = [SourceItem("x", sources[0].image_path, None)]
    with pytest.raises(ConfigError, match="1 of 1 source items have no label map"):
        OnTheFlyPairs(no_labels)
    with pytest.raises(ConfigError, match="unknown region source 'grid'"):
        OnTheFlyPairs(sources, regions="grid")
    with pytest.raises(ConfigError, match="size <= load_size"):
        OnTheFlyPairs(sources, size=64, load_size=32)
    with pytest.raises(ConfigError, match="warm_cache"):
        OnTheFlyPairs(sources, cache=False).warm_cache()
    assert isinstance(sources[0].image_path, Path)
