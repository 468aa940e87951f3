"""A trained SRIN run's region-map settings travel with its weights (issue 13, item 1).

``evaluate``, ``Harmonizer`` (``harmonize``, the app) must rebuild the maps the run was
trained with, not the SLIC defaults; command-line flags may override them.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from harmonykit.cli.main import main as cli
from harmonykit.evaluation.evaluator import EvalOptions, evaluate
from harmonykit.inference import Harmonizer
from harmonykit.regionmaps import region_provider_from_settings
from harmonykit.runners import saved_region_settings
from harmonykit.training import load_train_config, train
from harmonykit.training.data import build_region_provider

TRAIN_REGIONS = {"kind": "slic", "max_side": 64, "n_segments": 5, "compactness": 20.0}


def make_iharmony4(root: Path, n: int = 2) -> Path:
    sub = root / "HFlickr"
    for d in ("composite_images", "real_images", "masks"):
        (sub / d).mkdir(parents=True)
    rng = np.random.default_rng(0)
    names = []
    for i in range(n):
        real = np.zeros((40, 48, 3), np.uint8)
        real[:, :24], real[:, 24:] = rng.integers(40, 200, 3), rng.integers(40, 200, 3)
        real = np.clip(real + rng.integers(0, 30, real.shape), 0, 255).astype(np.uint8)
        mask = np.zeros((40, 48), np.uint8)
        mask[10:30, 12:24] = 255
        comp = real.copy()
        comp[mask > 0] = np.clip(comp[mask > 0].astype(int) + 40, 0, 255)
        name = f"f{i}_{100 + i}_1.jpg"
        Image.fromarray(comp).save(sub / "composite_images" / name, quality=95)
        Image.fromarray(real).save(sub / "real_images" / f"f{i}.jpg", quality=95)
        Image.fromarray(mask).save(sub / "masks" / f"f{i}_{100 + i}.png")
        names.append(name)
    for split in ("train", "test"):
        (sub / f"HFlickr_{split}.txt").write_text("\n".join(names) + "\n")
    return root


@pytest.fixture
def trained(tmp_path, write_config):
    root = make_iharmony4(tmp_path / "ih4")
    cfg = load_train_config(write_config(
        model="{name: srin_unet_tiny, kwargs: {norm: srin}}",
        data=f"{{kind: iharmony4, root: {root}, size: 32, workers: 0, "
             "regions: {kind: slic, n_segments: 5, compactness: 20, max_side: 64}}",
        optim="{iterations: 1, milestones: [], batch_size: 2}",
        loss="{charbonnier: 0, lpips: 0, l1: 1.0}",
    ))
    run = tmp_path / "run"
    train(cfg, run)
    return root, run, cfg


def test_region_settings_are_saved_and_used_by_evaluate_and_harmonizer(trained, tmp_path):
    root, run, cfg = trained
    train_settings = build_region_provider(cfg.data.regions).settings
    saved = json.loads((run / "weights" / "config.json").read_text())["regions"]
    assert saved == TRAIN_REGIONS
    assert region_provider_from_settings(saved).settings == train_settings
    # evaluate: the run's own maps by default (not SLIC 12 / max_side 512)
    res = evaluate(root, str(run), options=EvalOptions(size=32, lpips=False, show_progress=False))
    s = res.summary["settings"]
    assert s["region_settings"] == TRAIN_REGIONS and s["region_settings_source"] == "model"
    # harmonize / the app (Harmonizer.from_pretrained): the same provider as training
    h = Harmonizer.from_pretrained(str(run))
    assert h.region_provider().settings == train_settings
    img = np.asarray(Image.open(root / "HFlickr" / "composite_images" / "f0_100_1.jpg"))
    assert np.array_equal(h.region_provider()(img).labels, build_region_provider(cfg.data.regions)(img).labels)
    # the command line overrides them
    res = evaluate(root, str(run), options=EvalOptions(size=32, lpips=False, show_progress=False,
                                                       regions="felzenszwalb"))
    assert res.summary["settings"]["region_settings"] == {"kind": "felzenszwalb", "max_side": 64}
    assert Harmonizer.from_pretrained(str(run), regions="felzenszwalb").region_provider().kind == "felzenszwalb"
    # through the CLI, the report names the maps it used
    assert cli(["evaluate", str(root), "--model", str(run), "--size", "32", "--no-lpips",
                "--out", str(tmp_path / "rep")]) == 0
    report = json.loads(next((tmp_path / "rep").glob("*.json")).read_text())
    assert report["settings"]["region_settings"] == TRAIN_REGIONS


def test_runs_published_before_the_settings_were_saved_use_their_config_yaml(trained):
    _, run, cfg = trained
    cfg_file = run / "weights" / "config.json"
    meta = json.loads(cfg_file.read_text())
    del meta["regions"]
    cfg_file.write_text(json.dumps(meta))
    assert saved_region_settings(run / "weights").to_dict() == TRAIN_REGIONS
    assert Harmonizer.from_pretrained(str(run)).region_provider().settings == \
        build_region_provider(cfg.data.regions).settings


def test_evaluate_raw_or_ema_weights_of_a_run(trained, tmp_path):
    import torch

    from harmonykit.errors import HarmonykitError
    from harmonykit.evaluation.evaluator import resolve_method
    from harmonykit.training.checkpoint import load_checkpoint

    root, run, _ = trained
    ck = load_checkpoint(run)
    raw = resolve_method(str(run), weights="raw")
    ema = resolve_method(str(run))
    assert all(torch.equal(v, ck.model[k]) for k, v in raw.runner.model.state_dict().items())
    assert all(torch.equal(v, ck.ema[k]) for k, v in ema.runner.model.state_dict().items())
    assert any(not torch.equal(ck.model[k], ck.ema[k]) for k in ck.ema)  # they differ: the choice matters
    assert raw.label.endswith("(raw)") and "raw (non-EMA)" in raw.runner.description
    import shutil

    shutil.copytree(run / "weights", tmp_path / "model")
    with pytest.raises(HarmonykitError, match="--weights raw needs a training run"):
        resolve_method(str(tmp_path / "model"), weights="raw")  # a model folder has one set of weights
    assert cli(["evaluate", str(root), "--model", str(run), "--size", "32", "--no-lpips", "--weights", "raw",
                "--out", str(tmp_path / "raw")]) == 0
    report = json.loads(next((tmp_path / "raw").glob("*.json")).read_text())
    assert report["settings"]["weights"] == "raw"
