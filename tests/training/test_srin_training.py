"""SRIN runs: iHarmony4 layout, mask + semantic region maps, L1 / fg-normalised MSE."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from harmonykit.io import read_image
from harmonykit.models import load_model
from harmonykit.training import load_train_config, train
from harmonykit.training.samples import LABEL_STRIP


def _pair(rng, h=40, w=48):
    real = np.zeros((h, w, 3), np.uint8)
    real[:, : w // 2] = rng.integers(40, 200, 3)
    real[:, w // 2 :] = rng.integers(40, 200, 3)
    mask = np.zeros((h, w), np.uint8)
    mask[h // 4 : 3 * h // 4, w // 4 : w // 2] = 255
    comp = real.copy()
    comp[mask > 0] = np.clip(comp[mask > 0].astype(int) + 40, 0, 255)
    return real, comp, mask


def make_iharmony4(root: Path, n: int = 3) -> Path:
    sub = root / "HFlickr"
    for d in ("composite_images", "real_images", "masks"):
        (sub / d).mkdir(parents=True)
    rng = np.random.default_rng(0)
    names = []
    for i in range(n):
        real, comp, mask = _pair(rng)
        name = f"f{i}_{100 + i}_1.jpg"
        Image.fromarray(comp).save(sub / "composite_images" / name, quality=95)
        Image.fromarray(real).save(sub / "real_images" / f"f{i}.jpg", quality=95)
        Image.fromarray(mask).save(sub / "masks" / f"f{i}_{100 + i}.png")
        names.append(name)
    (sub / "HFlickr_train.txt").write_text("\n".join(names) + "\n")
    return root


def make_benchmark(root: Path, n: int = 3) -> Path:
    rng = np.random.default_rng(1)
    for d in ("composite", "real", "mask"):
        (root / d).mkdir(parents=True)
    for i in range(n):
        real, comp, mask = _pair(rng)
        Image.fromarray(comp).save(root / "composite" / f"p{i}.png")
        Image.fromarray(real).save(root / "real" / f"p{i}.png")
        Image.fromarray(mask).save(root / "mask" / f"p{i}.png")
    return root


@pytest.mark.parametrize("loss", ["{charbonnier: 0, lpips: 0, l1: 1.0}", "{charbonnier: 0, lpips: 0, fg_mse: 1.0}"])
def test_srin_on_iharmony4_with_region_maps(write_config, tmp_path, loss):
    root = make_iharmony4(tmp_path / "ih4")
    cache = tmp_path / "regions_cache"
    cfg = load_train_config(write_config(
        model="{name: srin_unet_tiny, kwargs: {norm: srin}}",
        data=f"{{kind: iharmony4, root: {root}, size: 32, workers: 0, "
             f"regions: {{kind: slic, n_segments: 4, cache_dir: {cache}}}}}",
        optim="{iterations: 2, milestones: [1], gamma: 0.1, lr: 1.0e-3, betas: [0.9, 0.999], batch_size: 2}",
        loss=loss,
    ))
    res = train(cfg, tmp_path / "run")
    assert res.step == 2
    rows = list(csv.DictReader((tmp_path / "run" / "log.csv").open()))
    term = "l1" if "l1" in loss else "fg_mse"
    assert list(rows[0])[4:] == ["total", term]
    assert [float(r["lr"]) for r in rows] == [1e-3, 1e-4]
    assert all(float(r["total"]) == float(r[term]) > 0 for r in rows)
    # the region maps of the 3 fixed composites were computed once and cached
    assert len(list(cache.rglob("*.png"))) == 3
    model = load_model(tmp_path / "run" / "weights")
    assert model.uses_regions and model.mask_use == "required"
    # sample grid: composite | mask | regions | output | real for the 3 pairs
    grid = read_image(tmp_path / "run" / "samples" / "step_0000002.png")
    assert grid.shape == (LABEL_STRIP + 3 * 32 + 4 * 2, 5 * 32 + 6 * 2, 3)


def test_benchmark_folder_training(write_config, tmp_path):
    root = make_benchmark(tmp_path / "bench")
    cfg = load_train_config(write_config(
        model="{name: rgb_unet_tiny}",
        data=f"{{kind: benchmark, root: {root}, size: 32, workers: 0}}",
        optim="{iterations: 1, milestones: [], batch_size: 2}",
    ))
    assert train(cfg, tmp_path / "run").step == 1
    assert load_model(tmp_path / "run" / "weights").config["name"] == "rgb_unet_tiny"


def test_fixed_pair_augmentation_crops_and_flips_consistently(tmp_path):
    import torch

    from harmonykit.data.batch import PairItem
    from harmonykit.errors import ConfigError
    from harmonykit.regionmaps.settings import LabelerConfig
    from harmonykit.training.config import DataConfig
    from harmonykit.training.data import EpochIndexed, build_dataset

    root = make_iharmony4(tmp_path / "ih4", n=2)
    regions = LabelerConfig(kind="slic", n_segments=4)
    plain = build_dataset(DataConfig(kind="iharmony4", root=root, size=40, workers=0), seed=0, uses_regions=True)
    aug_cfg = DataConfig(kind="iharmony4", root=root, size=32, load_size=40, flip=True, workers=0, regions=regions)
    aug = build_dataset(aug_cfg, seed=0, uses_regions=True)
    assert isinstance(aug, EpochIndexed) and aug.size == 32 and aug.flip
    full = plain[(0, 0)]
    seen_flip = seen_plain = False
    crops = set()
    for epoch in range(12):
        item = aug[(epoch, 0)]
        for k in ("composite", "real", "mask", "regions"):
            assert item[k].shape[-2:] == (32, 32), k
        assert item["id"] == full["id"]
        # find the crop/flip: the composite is a window of the 40x40 (possibly flipped) one
        found = None
        for flipped in (False, True):
            src = {k: full[k].flip(-1) if flipped else full[k] for k in ("composite", "real", "mask")}
            for top in range(9):
                for left in range(9):
                    win = src["composite"][:, top:top + 32, left:left + 32]
                    if torch.equal(win, item["composite"]):
                        found = (flipped, top, left)
                        # real and mask went through the same crop and flip
                        assert torch.equal(src["real"][:, top:top + 32, left:left + 32], item["real"])
                        assert torch.equal(src["mask"][:, top:top + 32, left:left + 32], item["mask"])
        assert found is not None
        seen_flip |= found[0]
        seen_plain |= not found[0]
        crops.add(found[1:])
        # the same key gives the same sample (workers, resume), whatever was drawn before
        assert torch.equal(aug[(epoch, 0)]["composite"], item["composite"])
    assert seen_flip and seen_plain and len(crops) > 3  # it changes from epoch to epoch
    # no augmentation: the sample is the same in every epoch
    assert torch.equal(plain[(0, 1)]["composite"], plain[(5, 1)]["composite"])
    with pytest.raises(ConfigError, match="larger than the training images"):
        x = torch.zeros(3, 8, 8)
        EpochIndexed([PairItem(composite=x, real=x, mask=x[:1], id="x")], size=16)[(0, 0)]
