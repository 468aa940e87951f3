"""Training a localisation-gated model with the localisation / outside loss terms."""

from __future__ import annotations

import csv
import json

import pytest
import torch

from harmonykit.errors import ConfigError
from harmonykit.models import load_model
from harmonykit.training import load_train_config, train

GATED = "{name: om_unet_tiny, kwargs: {mask_use: optional, gate: learned}}"


def test_two_steps_with_localisation_and_outside_terms(write_config, tmp_path):
    cfg = load_train_config(
        write_config(model=GATED, optim="{iterations: 2, milestones: [], batch_size: 2}",
                     loss="{lpips: 0, localisation: 0.5, outside: 2.0}", checkpoint_every="2"),
        ["data.mask_dropout=0.5"],
    )
    assert cfg.loss.localisation == 0.5 and cfg.loss.outside == 2.0
    run = tmp_path / "run"
    res = train(cfg, run)
    assert res.status == "done" and res.step == 2
    rows = list(csv.DictReader((run / "log.csv").open()))
    assert list(rows[0]) == ["step", "lr", "samples_per_s", "elapsed_s", "total", "charbonnier", "localisation", "outside"]
    for r in rows:
        char, loc, out = float(r["charbonnier"]), float(r["localisation"]), float(r["outside"])
        assert loc > 0 and out >= 0
        assert float(r["total"]) == pytest.approx(char + 0.5 * loc + 2.0 * out, rel=1e-4)
    # step 1: the zero-initialised gate gives p = 0.5 everywhere, so the BCE is ln 2 exactly
    assert float(rows[0]["localisation"]) == pytest.approx(0.693147, rel=1e-4)
    # the published weights rebuild the gated model, and the gate has moved
    model = load_model(run / "weights")
    assert model.config["kwargs"] == {"mask_use": "optional", "gate": "learned"} and model.has_localisation
    assert json.loads((run / "weights" / "config.json").read_text())["kwargs"]["gate"] == "learned"
    from harmonykit.training.checkpoint import load_checkpoint

    ck = load_checkpoint(run)
    assert ck is not None and any(ck.model[k].abs().sum() > 0 for k in ("head.gate_out.conv.weight",))
    out = model(torch.rand(1, 3, 32, 32))
    assert out.localisation.shape == (1, 1, 32, 32)


def test_two_stage_model_trains_end_to_end(write_config, tmp_path):
    """mask_free: two_stage; the dropped-mask samples go through both stages while training."""
    model = "{name: om_unet_tiny, kwargs: {mask_use: optional, gate: learned, mask_free: two_stage, two_stage_power: 2.0}}"
    cfg = load_train_config(
        write_config(model=model, optim="{iterations: 2, milestones: [], batch_size: 4}",
                     loss="{lpips: 0, localisation: 0.5, outside: 1.0}", checkpoint_every="2"),
        ["data.mask_dropout=0.5"],
    )
    res = train(cfg, tmp_path / "run")
    assert res.status == "done" and res.step == 2
    loaded = load_model(tmp_path / "run" / "weights")
    assert loaded.mask_free == "two_stage" and loaded.two_stage_power == 2.0
    rows = list(csv.DictReader((tmp_path / "run" / "log.csv").open()))
    assert all(float(r["localisation"]) > 0 for r in rows)


def test_localisation_loss_needs_a_gated_model(write_config):
    with pytest.raises(ConfigError, match="gate: learned"):
        load_train_config(write_config(loss="{lpips: 0, localisation: 1.0}"))


def test_outside_term_alone_on_an_ungated_model(write_config, tmp_path):
    cfg = load_train_config(write_config(optim="{iterations: 1, milestones: [], batch_size: 2}",
                                         loss="{lpips: 0, outside: 1.0}"))
    train(cfg, tmp_path / "run")
    rows = list(csv.DictReader((tmp_path / "run" / "log.csv").open()))
    assert list(rows[0])[-2:] == ["charbonnier", "outside"]


def test_inference_kwargs_are_published_not_trained(write_config, tmp_path):
    """model.inference: trained one pass, published (weights and snapshots) as two-stage."""
    cfg = load_train_config(
        write_config(model=GATED, optim="{iterations: 2, milestones: [], batch_size: 2}",
                     loss="{lpips: 0, localisation: 0.5}", checkpoint_every="1"),
        ["data.mask_dropout=0.5", "model.inference={mask_free: two_stage, two_stage_power: 2.0}", "snapshot_every=2"],
    )
    run = tmp_path / "run"
    train(cfg, run)
    for folder in (run / "weights", run / "snapshots" / "step_0000002"):
        saved = json.loads((folder / "config.json").read_text())["kwargs"]
        assert saved == {"mask_use": "optional", "gate": "learned", "mask_free": "two_stage", "two_stage_power": 2.0}
        assert load_model(folder).mask_free == "two_stage"
    from harmonykit.training.checkpoint import load_checkpoint

    ck = load_checkpoint(run)
    one = load_model(run / "weights")
    assert all(torch.equal(one.state_dict()[k].float(), ck.ema[k].float()) for k in ck.ema)  # the same weights
    # weight-neutral, so a resume may change it: the steps after publish the new setting
    more = load_train_config(run / "config.yaml", ["optim.iterations=3", "model.inference.two_stage_power=3.0"])
    train(more, run, resume=True)
    saved = json.loads((run / "weights" / "config.json").read_text())
    assert saved["kwargs"]["two_stage_power"] == 3.0 and saved["training"]["step"] == 3


def test_inference_kwargs_are_checked(write_config):
    with pytest.raises(ConfigError, match=r"model.inference: \['ngf'\] would change the weights"):
        load_train_config(write_config(model=GATED), ["model.inference={ngf: 4}"])
    with pytest.raises(ConfigError, match="model.inference: om_unet_tiny rejects"):
        load_train_config(write_config(model="{name: om_unet_tiny}"), ["model.inference={mask_free: two_stage}"])
