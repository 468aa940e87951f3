"""Every shipped config loads and validates; the paper recipes hold their numbers; the CPU
recipe runs on a tiny photo folder."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from harmonykit.errors import ConfigError
from harmonykit.models import create_model, load_model
from harmonykit.models.base import CONFIG_NAME
from harmonykit.models.hub import resolve_model_dir
from harmonykit.training import load_train_config, train

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
SHIPPED = sorted(p.name for p in CONFIGS.glob("*.yaml"))


def test_all_expected_configs_are_shipped():
    assert set(SHIPPED) == {
        "om_hscene.yaml", "omgan_hscene.yaml", "rgb_hscene.yaml", "om_hlip.yaml", "omgan_hlip.yaml",
        "rgb_hlip.yaml", "small_photos.yaml", "default.yaml", "srin_iharmony4.yaml", "srin_in_iharmony4.yaml",
        "srin_rain_iharmony4.yaml", "srin_bain_iharmony4.yaml",
    }


@pytest.mark.parametrize("name", SHIPPED)
def test_config_loads_and_validates(name):
    cfg = load_train_config(CONFIGS / name)  # validates model/discriminator on the meta device
    assert cfg.ema_decay == 0.999
    with torch.device("meta"):
        model = create_model(cfg.model.name, **cfg.model.kwargs)
    if name.startswith("srin"):
        assert cfg.data.kind == "iharmony4" and cfg.data.size == 256 and cfg.optim.batch_size == 12
        assert (cfg.optim.lr, cfg.optim.betas, cfg.optim.gamma) == (1e-3, (0.9, 0.999), 0.1)
        # 120 epochs of 65,742 pairs at batch 12; milestones at epochs 100 and 110
        assert cfg.optim.iterations == 120 * 65742 // 12
        assert cfg.optim.milestones == [100 * 65742 // 12, 110 * 65742 // 12]
        assert (cfg.loss.l1, cfg.loss.charbonnier, cfg.loss.lpips, cfg.loss.gan) == (1.0, 0.0, 0.0, 0.0)
        assert model.mask_use == "required"
        assert model.uses_regions == (cfg.model.kwargs["norm"] == "srin")
    elif name == "default.yaml":
        assert cfg.data.kind == "onthefly" and cfg.model.name == "om_effunet"
        assert model.mask_use == "optional" and model.localiser is not None and cfg.model.kwargs["pretrained"]
        assert cfg.data.exclude == []
    elif name == "small_photos.yaml":
        assert cfg.data.kind == "onthefly" and cfg.model.name == "om_unet_small"
        assert model.mask_use == "optional" and cfg.data.mask_dropout == 0.2
        assert cfg.data.exclude == []  # runs on any folder (the held-out ids live in benchmarks/_common.py)
    else:
        hscene = "hscene" in name
        assert cfg.data.kind == "onthefly" and cfg.data.format == ("ade20k" if hscene else "lip")
        assert cfg.optim.batch_size == 64 and cfg.optim.betas == (0.9, 0.99) and cfg.data.size == 256
        assert (cfg.loss.charbonnier, cfg.loss.lpips) == (1.0, 1.0)
        assert model.mask_use == "never"
        if name.startswith("omgan"):
            assert cfg.optim.iterations == 10000 and cfg.loss.gan == 0.005
            assert cfg.gan is not None and cfg.gan.discriminator == "patch_gan"
            assert cfg.gan.init_from == Path(f"runs/om_{'hscene' if hscene else 'hlip'}")
        else:
            assert cfg.optim.lr == 2e-4 and cfg.optim.gamma == 0.5 and cfg.loss.gan == 0
            assert (cfg.optim.iterations, cfg.optim.milestones) == (
                (40000, [20000, 30000]) if hscene else (85000, [55000, 75000]))
            assert cfg.model.name == ("om_unet" if name.startswith("om") else "rgb_unet")


def test_validation_errors_name_the_key(tmp_path):
    with pytest.raises(ConfigError, match=r"model.name: unknown model 'om_unett'"):
        load_train_config(CONFIGS / "om_hscene.yaml", ["model.name=om_unett"])
    with pytest.raises(ConfigError, match=r"model.kwargs: om_unet rejects \{'ngff': 3\}"):
        load_train_config(CONFIGS / "om_hscene.yaml", ["model.kwargs.ngff=3"])
    with pytest.raises(ConfigError, match=r"data.mask_dropout=0.5 needs a mask-optional model"):
        load_train_config(CONFIGS / "om_hscene.yaml", ["data.mask_dropout=0.5"])
    with pytest.raises(ConfigError, match=r"data.mask_dropout_end=1.0 needs a mask-optional model"):
        load_train_config(CONFIGS / "om_hscene.yaml", ["data.mask_dropout_end=1.0"])
    with pytest.raises(ConfigError, match=r"data.mask_dropout_end must be in \[0, 1\], got 1.5"):
        load_train_config(CONFIGS / "small_photos.yaml", ["data.images=.", "data.mask_dropout_end=1.5"])
    with pytest.raises(ConfigError, match=r"gan.discriminator: unknown discriminator 'nope'"):
        load_train_config(CONFIGS / "omgan_hscene.yaml", ["gan.discriminator=nope"])
    with pytest.raises(ConfigError, match=r"loss.gan > 0 needs a gan: section"):
        load_train_config(CONFIGS / "om_hscene.yaml", ["loss.gan=0.005"])
    with pytest.raises(ConfigError, match=r"regions.sam_checkpoint is required"):
        load_train_config(CONFIGS / "srin_iharmony4.yaml", ["data.regions.kind=sam"])
    with pytest.raises(ConfigError, match=r"unknown key 'optim.epochs'"):
        load_train_config(CONFIGS / "om_hscene.yaml", ["optim.epochs=3"])
    with pytest.raises(ConfigError, match=r"amp: 'fp8' is not one of 'fp32', 'bf16', 'fp16'"):
        load_train_config(CONFIGS / "om_hscene.yaml", ["amp=fp8"])
    with pytest.raises(ConfigError, match=r"data.root is required for data.kind 'benchmark'"):
        load_train_config(CONFIGS / "om_hscene.yaml", ["data.kind=benchmark"])


def test_default_recipe_runs_on_any_folder_with_only_iterations_set(photos, tmp_path, caplog, reference_harmonize):
    # the documented command plus a short budget: no data.exclude, no milestones needed
    from harmonykit.training.config import scaled_milestones

    file_cfg = load_train_config(CONFIGS / "small_photos.yaml", validate=False)
    cfg = load_train_config(CONFIGS / "small_photos.yaml", [f"data.images={photos}", "optim.iterations=2"])
    assert file_cfg.optim.milestones and file_cfg.optim.milestones[-1] >= 2  # would be invalid unscaled
    assert cfg.optim.milestones == scaled_milestones(file_cfg.optim.milestones, file_cfg.optim.iterations, 2)
    assert all(m < 2 for m in cfg.optim.milestones)
    assert f"optim.milestones scaled from {file_cfg.optim.milestones}" in caplog.text
    assert cfg.model.name == "om_unet_small" and cfg.optim.batch_size == 8 and cfg.data.size <= 256
    res = train(cfg, tmp_path / "run")
    assert res.step == 2 and res.status == "done"
    model = load_model(tmp_path / "run" / "weights")
    assert model.mask_use == "optional"
    # trained with p ** 2, saved with the recipe's inference power
    assert cfg.model.kwargs["two_stage_power"] == 2.0
    assert model.two_stage_power == cfg.model.inference["two_stage_power"] != 2.0
    out = reference_harmonize(model, torch.rand(1, 3, 40, 56), work_size=32)
    assert out.image.shape == (1, 3, 40, 56) and out.operator_masks is not None


def test_iterations_override_scales_or_keeps_milestones(caplog):
    cfg = load_train_config(CONFIGS / "om_hscene.yaml", ["optim.iterations=400"])
    assert cfg.optim.milestones == [200, 300] and "same fractions" in caplog.text
    caplog.clear()
    # explicit milestones win, and no note
    cfg = load_train_config(CONFIGS / "om_hscene.yaml", ["optim.iterations=400", "optim.milestones=[50]"])
    assert cfg.optim.milestones == [50] and "scaled" not in caplog.text
    # extending a run (--resume with the run's config.yaml) keeps them
    cfg = load_train_config(CONFIGS / "om_hscene.yaml", ["optim.iterations=80000"], scale_milestones=False)
    assert cfg.optim.milestones == [20000, 30000]
    with pytest.raises(ConfigError, match="must be below optim.iterations"):
        load_train_config(CONFIGS / "om_hscene.yaml", ["optim.iterations=400"], scale_milestones=False)


@pytest.mark.parametrize("packaged, recipe", [("default", "default.yaml"), ("small", "small_photos.yaml")])
def test_packaged_models_are_their_recipes(packaged, recipe):
    # each shipped model is its config's architecture, saved with its inference kwargs; it
    # carries every weight, so it records pretrained: false (no ImageNet wheel to load it)
    cfg = load_train_config(CONFIGS / recipe, ["data.images=."])
    saved = json.loads((resolve_model_dir(packaged) / CONFIG_NAME).read_text())
    assert saved["name"] == cfg.model.name
    expected = dict(cfg.model.published_kwargs)
    if expected.get("pretrained"):
        expected["pretrained"] = False
    assert saved["kwargs"] == expected
    assert f"configs/{recipe}" in saved["trained"]["recipe"]
