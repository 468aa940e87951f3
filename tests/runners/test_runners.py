"""The runner protocol: models and baselines through one ``resolve``, one mask rule, one error."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import numpy as np
import pytest
import torch

from harmonykit.baselines import get_baseline
from harmonykit.errors import ConfigError, HarmonykitError
from harmonykit.models import create_model
from harmonykit.runners import (
    BaselineRunner,
    ModelRunner,
    Runner,
    RunOutput,
    locate,
    resolve,
)
from harmonykit.runners.spec import BaselineSpec, ModelDirSpec, packaged_models


def _batch(n: int = 2, size: int = 32) -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    return (torch.rand(n, 3, size, size, generator=g) * 255).round() / 255  # exact uint8 values


def _box_mask(n: int = 2, size: int = 32) -> torch.Tensor:
    m = torch.zeros(n, 1, size, size)
    m[:, :, 8:20, 6:24] = 1.0
    return m


def test_model_runner_through_resolve(om_tiny_dir):
    runner = resolve(om_tiny_dir)
    assert isinstance(runner, ModelRunner) and isinstance(runner, Runner)
    assert runner.kind == "model" and runner.name == "om_unet_tiny" and runner.spec == str(om_tiny_dir)
    assert runner.mask_use == "never" and not runner.uses_regions and runner.region_settings is None
    assert runner.channels == ("l_mul", "l_add", "a_mul", "a_add", "b_mul", "b_add") and runner.space == "lab"
    assert runner.source == om_tiny_dir and str(om_tiny_dir) in runner.description
    x = _batch()
    out = runner.run(x)  # at the input's size (the pipeline brings photos to the work size)
    assert isinstance(out, RunOutput) and out.image.shape == x.shape
    assert out.operator_masks is not None and out.operator_masks.values.shape[-2:] == (32, 32)
    assert out.finite() == [True, True]
    with torch.no_grad():  # the model's own forward
        ref = runner.model(x)
    torch.testing.assert_close(out.image, ref.image)
    images = out.to_uint8()
    assert len(images) == 2 and images[0].dtype == np.uint8 and images[0].shape == (32, 32, 3)
    assert images[0].flags["C_CONTIGUOUS"]


def test_rgb_model_has_no_channels(rgb_tiny_dir):
    runner = resolve(rgb_tiny_dir)
    assert runner.channels == () and runner.space is None and not runner.has_localisation
    assert runner.run(_batch(1)).operator_masks is None


def test_run_directory_and_in_memory_models(om_tiny_dir, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(om_tiny_dir, run / "weights")
    runner = resolve(run)
    assert runner.source == run / "weights" and runner.spec == str(run)
    model = create_model("om_unet_tiny", gate="learned")
    mem = resolve(model)
    assert isinstance(mem, ModelRunner) and mem.model is model and not model.training
    assert mem.spec == "<om_unet_tiny>" and "in memory" in mem.description and mem.has_localisation
    assert resolve(mem) is mem  # a runner is returned as is
    assert mem.run(_batch(1)).localisation is not None


def test_baseline_runner_through_resolve():
    identity, reinhard = resolve("identity"), resolve("reinhard")
    assert isinstance(reinhard, BaselineRunner) and isinstance(reinhard, Runner)
    assert (identity.kind, identity.mask_use, reinhard.mask_use) == ("baseline", "never", "required")
    assert reinhard.description.startswith("baseline reinhard: ")
    assert not reinhard.uses_regions and reinhard.channels == () and reinhard.region_settings is None
    x, m = _batch(), _box_mask()
    assert torch.equal(identity.run(x).image, x)  # exact on images that came from uint8
    out = reinhard.run(x, m)
    assert out.operator_masks is None and out.localisation is None
    direct = get_baseline("reinhard")(RunOutput(x).to_uint8()[1], m[1, 0].numpy())
    np.testing.assert_array_equal(out.to_uint8()[1], direct)
    assert isinstance(resolve(get_baseline("histogram")), BaselineRunner)  # a Baseline object


def test_mask_use_rules(srin_tiny_dir):
    from harmonykit.maskuse import decide_mask_use, require_mask

    assert decide_mask_use("never", np.ones(2), "model 'x'").mask is None
    assert decide_mask_use("never", np.ones(2), "model 'x'").status == "ignored"
    assert decide_mask_use("optional", None, "model 'x'").status == "absent"
    m = np.array([0.0, 1.0])
    assert decide_mask_use("optional", m, "model 'x'").mask is m and decide_mask_use("required", m, "model 'x'").mask is m
    with pytest.raises(HarmonykitError, match="model 'x' needs a foreground mask; pass one"):
        decide_mask_use("required", None, "model 'x'", hint="; pass one").checked()
    with pytest.raises(HarmonykitError, match="model 'x' needs a foreground mask"):
        require_mask("required", False, "model 'x'")
    with pytest.raises(ValueError, match="mask_use"):
        decide_mask_use("sometimes", m, "x")
    x, mask = _batch(1), _box_mask(1)
    with pytest.raises(HarmonykitError, match="baseline 'reinhard' needs a foreground mask"):
        resolve("reinhard").run(x)
    # a mask-free runner ignores a given mask
    assert torch.equal(resolve("identity").run(x, mask).image, x)
    never = resolve(create_model("om_unet_tiny"))
    torch.testing.assert_close(never.run(x, mask).image, never.run(x).image)
    srin = resolve(srin_tiny_dir)
    assert srin.mask_use == "required" and srin.uses_regions and srin.composites_with_mask
    regions = torch.rand(1, 3, 32, 32)
    with pytest.raises(HarmonykitError, match="needs a foreground mask"):
        srin.run(x, None, regions)
    with pytest.raises(HarmonykitError, match="needs a semantic region map"):
        srin.run(x, mask)
    out = srin.run(x, mask, regions)
    outside = mask.expand_as(x) == 0  # composites with the mask: the background is the input
    torch.testing.assert_close(out.image[outside], x[outside])


def test_unknown_spec_names_packaged_models_and_baselines(tmp_path):
    names = packaged_models()
    with pytest.raises(HarmonykitError) as err:
        resolve("no-such-model")
    msg = str(err.value)
    assert "model 'no-such-model' not found" in msg and "baselines: identity, reinhard, histogram" in msg
    assert all(n in msg for n in names)
    (tmp_path / "empty").mkdir()
    with pytest.raises(HarmonykitError, match="not a model directory.*baselines: identity"):
        resolve(tmp_path / "empty")
    with pytest.raises(HarmonykitError, match="packaged 'default' model is not installed"):
        locate("default", tmp_path / "no_packages")
    with pytest.raises(HarmonykitError, match=r"packaged: none\); .*no packaged models are installed"):
        locate("nothing", tmp_path / "no_packages")
    with pytest.raises(ConfigError, match="--weights"):
        resolve("identity", weights="best")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="cannot make a runner"):
        resolve(42)  # type: ignore[arg-type]


def test_locate_order(om_tiny_dir, tmp_path):
    assert locate("histogram") == BaselineSpec("histogram")
    assert locate(om_tiny_dir) == ModelDirSpec(om_tiny_dir)
    packaged = tmp_path / "pretrained" / "reinhard"  # a packaged model wins over a baseline name
    shutil.copytree(om_tiny_dir, packaged)
    assert locate("reinhard", tmp_path / "pretrained") == ModelDirSpec(packaged, packaged=True)
    assert packaged_models(tmp_path / "pretrained") == ["reinhard"]


def test_raw_weights_need_a_run_with_a_checkpoint(om_tiny_dir):
    with pytest.raises(HarmonykitError, match="--weights raw needs a training run"):
        resolve(om_tiny_dir, weights="raw")
    assert resolve("identity", weights="raw").kind == "baseline"  # baselines have one set of weights


def test_saved_region_settings_travel_with_the_runner(srin_tiny_dir, tmp_path):
    model_dir = tmp_path / "srin"
    shutil.copytree(srin_tiny_dir, model_dir)
    assert resolve(model_dir).region_settings is None  # saved without them
    cfg = json.loads((model_dir / "config.json").read_text())
    cfg["regions"] = {"kind": "felzenszwalb", "max_side": 64}
    (model_dir / "config.json").write_text(json.dumps(cfg))
    assert resolve(model_dir).region_settings.to_dict() == {"kind": "felzenszwalb", "max_side": 64}


def test_importing_runners_and_locating_specs_does_not_import_torch():
    code = ("import sys; from harmonykit.runners import locate; locate('identity'); "
            "import harmonykit.regionmaps; print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert out.stdout.strip() == "False"


def test_loading_models_and_runs_does_not_import_training(srin_tiny_dir, tmp_path):
    """Issue 28: the runners read the saved-model format, a run's checkpoint and its
    ``config.yaml`` region settings without the training code."""
    from harmonykit.training.checkpoint import save_checkpoint

    run = tmp_path / "run"
    shutil.copytree(srin_tiny_dir, run / "weights")  # weights published without "regions"
    (run / "config.yaml").write_text("data:\n  regions:\n    kind: felzenszwalb\n    scale: 50.0\n    max_side: 64\n")
    state = resolve(run / "weights").model.state_dict()
    save_checkpoint(run, 3, state, state, {"world_size": 1})
    code = (
        "import sys, json; from harmonykit.runners import resolve\n"
        f"ema = resolve({str(run)!r}); raw = resolve({str(run)!r}, weights='raw')\n"
        "print(json.dumps([ema.region_settings.to_dict(), 'step 3' in raw.description,\n"
        "                  sorted(m for m in sys.modules if m.startswith('harmonykit.training'))]))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == [{"kind": "felzenszwalb", "max_side": 64, "scale": 50.0}, True, []]
