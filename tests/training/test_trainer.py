"""End-to-end tiny training runs with the real models and on-the-fly data."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from harmonykit.cli.main import main as cli
from harmonykit.errors import ConfigError, HarmonykitError, MissingDependencyError
from harmonykit.io import read_image
from harmonykit.models import load_model
from harmonykit.training import Trainer, TrainingDivergedError, load_train_config, train
from harmonykit.training.checkpoint import load_checkpoint
from harmonykit.training.samples import LABEL_STRIP


def _tensors(path):
    return load_file(str(path))


def _assert_same_run(a, b):
    for name in ("model.safetensors", "ema.safetensors", "state.safetensors", "discriminator.safetensors"):
        fa, fb = a / "checkpoints" / "last" / name, b / "checkpoints" / "last" / name
        assert fa.is_file() == fb.is_file()
        if not fa.is_file():
            continue
        ta, tb = _tensors(fa), _tensors(fb)
        assert ta.keys() == tb.keys() and len(ta) > 0
        for k in ta:
            assert torch.equal(ta[k], tb[k]), f"{name}:{k} differs"
    wa, wb = _tensors(a / "weights" / "model.safetensors"), _tensors(b / "weights" / "model.safetensors")
    assert all(torch.equal(wa[k], wb[k]) for k in wa)


def _kill_after(monkeypatch, n_steps):
    """Make the run die (like a kill) when it starts step ``n_steps``."""
    real_step = Trainer._step

    def step(self, s, batch):
        if s == n_steps:
            raise KeyboardInterrupt("simulated kill")
        return real_step(self, s, batch)

    monkeypatch.setattr(Trainer, "_step", step)


def test_run_dir_layout_and_weights(write_config, tmp_path):
    cfg = load_train_config(write_config(model="{name: om_unet_tiny, kwargs: {mask_use: optional}}"),
                            ["data.mask_dropout=0.5", "sample_every=3"])
    run = tmp_path / "run"
    res = train(cfg, run)
    assert res.step == 6 and res.status == "done" and res.samples_per_s > 0
    # config.yaml is the resolved config and reloads to the same object
    assert load_train_config(run / "config.yaml") == cfg
    # log: one row per step, the lr halves after the milestone (gamma 0.5 at 4)
    rows = list(csv.DictReader((run / "log.csv").open()))
    assert [int(r["step"]) for r in rows] == [1, 2, 3, 4, 5, 6]
    assert [float(r["lr"]) for r in rows] == [2e-4] * 4 + [1e-4] * 2
    assert list(rows[0]) == ["step", "lr", "samples_per_s", "elapsed_s", "total", "charbonnier"]
    assert all(float(r["total"]) == float(r["charbonnier"]) > 0 for r in rows)
    # samples at 3 and 6: 3 rows (3 photos; at most 4) x (comp, mask, out, real, 6 OM channels)
    grid = read_image(run / "samples" / "step_0000006.png")
    assert grid.shape == (LABEL_STRIP + 3 * 32 + 4 * 2, 10 * 32 + 11 * 2, 3)  # + the column labels
    assert (run / "samples" / "step_0000003.png").is_file()
    # weights/ = the EMA model, loadable and equal to the checkpoint's EMA
    model = load_model(run / "weights")
    assert model.config == {"name": "om_unet_tiny", "kwargs": {"mask_use": "optional"}}
    ck = load_checkpoint(run)
    assert ck is not None and ck.step == 6
    for k, v in model.state_dict().items():
        assert torch.equal(v, ck.ema[k])
    assert json.loads((run / "weights" / "config.json").read_text())["training"]["step"] == 6
    # EMA (decay 0.999, 6 steps) is much closer to the initial weights than the raw model
    assert any(not torch.equal(ck.model[k], ck.ema[k]) for k in ck.ema)


def test_resume_after_kill_reaches_the_same_weights(write_config, tmp_path, monkeypatch):
    # dropout in decoder blocks 1-2: the per-step torch seed must be reproduced too
    cfg_path = write_config(model="{name: om_unet_tiny, kwargs: {mask_use: optional, dropout_blocks: [1, 2]}}")
    overrides = ["data.mask_dropout=0.5"]
    full, killed = tmp_path / "full", tmp_path / "killed"
    assert cli(["train", str(cfg_path), "--out", str(full), *sum((["--set", o] for o in overrides), [])]) == 0

    _kill_after(monkeypatch, 4)  # checkpoint at 3 is written, dies during step 5
    with pytest.raises(KeyboardInterrupt):
        train(load_train_config(cfg_path, overrides), killed)
    monkeypatch.undo()
    assert load_checkpoint(killed).step == 3
    # a fresh start into the same folder is refused
    with pytest.raises(HarmonykitError, match="--resume"):
        train(load_train_config(cfg_path, overrides), killed)
    # resume from the run's own config.yaml (no CONFIG argument)
    assert cli(["train", "--resume", "--out", str(killed)]) == 0
    _assert_same_run(full, killed)
    rows = list(csv.DictReader((killed / "log.csv").open()))
    assert [int(r["step"]) for r in rows] == [1, 2, 3, 4, 5, 6]


def test_resume_refuses_a_changed_config(write_config, tmp_path, capsys):
    cfg_path = write_config()
    run = tmp_path / "run"
    train(load_train_config(cfg_path, ["optim.iterations=3", "optim.milestones=[2]"]), run)
    code = cli(["train", str(cfg_path), "--out", str(run), "--resume", "--set", "optim.lr=1e-3"])
    err = capsys.readouterr().err
    assert code == 2 and "differs from" in err and "optim.lr" in err and "optim.milestones" in err
    # refused before the checkpoint's tensors are read: a damaged model file is not even opened
    (run / "checkpoints" / "last" / "model.safetensors").write_bytes(b"damaged")
    code = cli(["train", str(cfg_path), "--out", str(run), "--resume", "--set", "optim.lr=1e-3"])
    err = capsys.readouterr().err
    assert code == 2 and "optim.lr" in err and "model.safetensors" not in err


def test_omgan_from_om_run_and_resume(write_config, tmp_path, monkeypatch):
    om = tmp_path / "om"
    train(load_train_config(write_config(), ["optim.iterations=2", "optim.milestones=[]"]), om)
    gan = (f"{{discriminator: patch_gan_tiny, init_from: {om}}}")
    cfg_path = write_config("gan.yaml", gan=gan, loss="{lpips: 0, gan: 0.005}")
    cfg = load_train_config(cfg_path)
    full, killed = tmp_path / "full", tmp_path / "killed"
    res = train(cfg, full)
    rows = list(csv.DictReader((full / "log.csv").open()))
    assert list(rows[0])[-2:] == ["gan_g", "gan_d"]
    # total = charbonnier + 0.005 * gan_g (up to the 6 significant digits of the log)
    for r in rows:
        assert float(r["total"]) == pytest.approx(float(r["charbonnier"]) + 0.005 * float(r["gan_g"]), rel=1e-4)
        assert 0 < float(r["gan_d"]) < 2
    assert res.step == 6 and (full / "checkpoints" / "last" / "discriminator.safetensors").is_file()
    _kill_after(monkeypatch, 4)
    with pytest.raises(KeyboardInterrupt):
        train(cfg, killed)
    monkeypatch.undo()
    train(cfg, killed, resume=True)
    _assert_same_run(full, killed)


def test_omgan_init_weights_are_loaded(write_config, tmp_path):
    om = tmp_path / "om"
    train(load_train_config(write_config(), ["optim.iterations=1", "optim.milestones=[]"]), om)
    cfg = load_train_config(write_config("gan.yaml", gan=f"{{discriminator: patch_gan_tiny, init_from: {om}}}",
                                         loss="{lpips: 0, gan: 0.005}"))
    t = Trainer(cfg, tmp_path / "g")
    from harmonykit.training.distributed import init_distributed

    t.ctx = init_distributed("cpu")
    t._setup()
    ref = load_model(om / "weights").state_dict()
    assert all(torch.equal(t.model.state_dict()[k], ref[k]) for k in ref)
    # wrong architecture is refused with the key named
    bad = load_train_config(write_config("bad.yaml", model="{name: om_unet_tiny, kwargs: {head: lab_add}}",
                                         gan=f"{{discriminator: patch_gan_tiny, init_from: {om}}}",
                                         loss="{lpips: 0, gan: 0.005}"))
    with pytest.raises(ConfigError, match="gan.init_from: .* holds om_unet_tiny"):
        train(bad, tmp_path / "bad")


def test_warm_start_init_from_loads_weights_then_resume_uses_checkpoint(write_config, tmp_path):
    src = tmp_path / "src"
    train(load_train_config(write_config(), ["optim.iterations=1", "optim.milestones=[]"]), src)
    ref = load_model(src / "weights").state_dict()
    cfg = load_train_config(write_config(), ["optim.iterations=2", "optim.milestones=[]", f"init_from={src}"])
    from harmonykit.training.distributed import init_distributed

    t = Trainer(cfg, tmp_path / "warm")
    t.ctx = init_distributed("cpu")
    t._setup()
    assert all(torch.equal(t.model.state_dict()[k], ref[k]) for k in ref)
    # without init_from the same seed starts elsewhere
    cold = Trainer(load_train_config(write_config(), ["optim.iterations=2", "optim.milestones=[]"]), tmp_path / "cold")
    cold.ctx = init_distributed("cpu")
    cold._setup()
    assert not all(torch.equal(cold.model.state_dict()[k], ref[k]) for k in ref)
    # a resumed warm run continues from its checkpoint, not from init_from again
    run = tmp_path / "run"
    train(cfg, run)
    trained = load_checkpoint(run).model
    again = Trainer(cfg, run, resume=True)
    again.ctx = init_distributed("cpu")
    again._setup()
    assert all(torch.equal(again.model.state_dict()[k], trained[k]) for k in trained)
    # a wrong architecture is refused with the key named
    bad = load_train_config(write_config("bad.yaml", model="{name: om_unet_tiny, kwargs: {head: lab_add}}"),
                            [f"init_from={src}"])
    with pytest.raises(ConfigError, match="^init_from: .* holds om_unet_tiny"):
        train(bad, tmp_path / "bad")


def test_warm_start_across_weight_neutral_kwargs(write_config, tmp_path):
    """A one-pass gated model warm-starts a two-stage one (mask_free changes no weight)."""
    gated = "{name: om_unet_tiny, kwargs: {mask_use: optional, gate: learned}}"
    src = tmp_path / "src"
    train(load_train_config(write_config("a.yaml", model=gated), ["optim.iterations=1", "optim.milestones=[]"]), src)
    two = "{name: om_unet_tiny, kwargs: {mask_use: optional, gate: learned, mask_free: two_stage, two_stage_power: 2.0}}"
    cfg = load_train_config(write_config("b.yaml", model=two), ["optim.iterations=1", "optim.milestones=[]",
                                                                f"init_from={src}"])
    from harmonykit.training.distributed import init_distributed

    t = Trainer(cfg, tmp_path / "warm")
    t.ctx = init_distributed("cpu")
    t._setup()
    ref = load_model(src / "weights").state_dict()
    assert all(torch.equal(t.model.state_dict()[k], ref[k]) for k in ref)
    assert t.model.mask_free == "two_stage"


def test_nan_loss_stops_and_keeps_last_good_checkpoint(write_config, tmp_path, monkeypatch):
    import harmonykit.training.losses as losses

    cfg = load_train_config(write_config())
    run = tmp_path / "run"
    calls = {"n": 0}
    real = losses.charbonnier

    def poisoned(pred, target, eps=1e-6):
        calls["n"] += 1
        out = real(pred, target, eps)
        return out * float("nan") if calls["n"] == 5 else out

    monkeypatch.setattr(losses, "charbonnier", poisoned)
    with pytest.raises(TrainingDivergedError) as e:
        train(cfg, run)
    msg = str(e.value)
    assert "step 5: the generator loss is not finite (total=nan, charbonnier=nan)" in msg
    assert "last good checkpoint (step 3)" in msg
    ck = load_checkpoint(run)
    assert ck.step == 3
    assert json.loads((run / "weights" / "config.json").read_text())["training"]["step"] == 3
    for v in ck.model.values():
        assert torch.isfinite(v).all()
    rows = list(csv.DictReader((run / "log.csv").open()))
    assert [int(r["step"]) for r in rows] == [1, 2, 3, 4]
    # the CLI reports it as an error (exit 2), not a traceback
    calls["n"] = 0
    assert cli(["train", str(write_config()), "--out", str(tmp_path / "run2")]) == 2


def test_missing_lpips_weights_stop_the_run(write_config, tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    cfg = load_train_config(write_config(loss="{lpips: 1.0}"))
    with pytest.raises(MissingDependencyError) as e:
        train(cfg, tmp_path / "run")
    msg = str(e.value)
    assert "vgg16-397923af.pth not found; looked in: " + str(tmp_path / "torch_home" / "hub" / "checkpoints") in msg
    assert "loss.lpips=0" in msg
    assert not (tmp_path / "run").exists()


def test_lpips_term_with_weights_in_the_hub_cache(write_config, tmp_path, monkeypatch):
    from harmonykit.perceptual import LPIPS_CHANNELS, VGG16_FILENAME, vgg16_features

    ckdir = tmp_path / "th" / "hub" / "checkpoints"
    ckdir.mkdir(parents=True)
    g = torch.Generator().manual_seed(0)
    torch.save({f"features.{k}": torch.randn(v.shape, generator=g) * 0.05 for k, v in vgg16_features().state_dict().items()},
               ckdir / VGG16_FILENAME)
    torch.save({f"lin{k}.model.1.weight": torch.rand(1, c, 1, 1, generator=g) for k, c in enumerate(LPIPS_CHANNELS)},
               tmp_path / "lins.pth")
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "th"))
    cfg = load_train_config(write_config(loss="{lpips: 1.0}"),
                            ["optim.iterations=1", "optim.milestones=[]", f"perceptual.lpips_weights={tmp_path / 'lins.pth'}"])
    train(cfg, tmp_path / "run")
    row = next(csv.DictReader((tmp_path / "run" / "log.csv").open()))
    assert float(row["lpips"]) > 0
    assert float(row["total"]) == pytest.approx(float(row["charbonnier"]) + float(row["lpips"]), rel=1e-4)


def test_samples_are_deterministic(write_config, tmp_path):
    cfg = load_train_config(write_config(), ["optim.iterations=1", "optim.milestones=[]"])
    train(cfg, tmp_path / "a")
    train(cfg, tmp_path / "b")
    a = read_image(tmp_path / "a" / "samples" / "step_0000001.png")
    b = read_image(tmp_path / "b" / "samples" / "step_0000001.png")
    assert np.array_equal(a, b)


def test_bf16_autocast_on_cpu_and_fp16_refused(write_config, tmp_path):
    cfg = load_train_config(write_config(), ["amp=bf16", "optim.iterations=2", "optim.milestones=[]"])
    train(cfg, tmp_path / "bf16")
    rows = list(csv.DictReader((tmp_path / "bf16" / "log.csv").open()))
    assert len(rows) == 2 and all(np.isfinite(float(r["total"])) for r in rows)
    # weights stay float32 (autocast only changes the compute dtype)
    state = load_model(tmp_path / "bf16" / "weights").state_dict()
    assert all(v.dtype == torch.float32 for v in state.values() if v.is_floating_point())
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="fp16 needs CUDA"):
            train(load_train_config(write_config(), ["amp=fp16"]), tmp_path / "fp16")


def test_time_budget_stops_with_a_checkpoint_and_resumes(write_config, tmp_path):
    cfg = load_train_config(write_config(), ["max_minutes=1e-6"])
    res = train(cfg, tmp_path / "run")
    assert (res.status, res.step) == ("time_budget", 1)
    assert load_checkpoint(tmp_path / "run").step == 1
    cfg2 = load_train_config(write_config(), ["max_minutes=null"])  # max_minutes may change on resume
    res = train(cfg2, tmp_path / "run", resume=True)
    assert (res.status, res.step) == ("done", 6)


def test_log_csv_is_written_between_checkpoints(write_config, tmp_path, monkeypatch):
    import harmonykit.training.trainer as trainer_mod

    rows_on_disk: list[int] = []
    real_flush = trainer_mod.CsvLog.flush

    def flush(self):
        real_flush(self)
        rows_on_disk.append(len(list(csv.DictReader(self.path.open()))))

    monkeypatch.setattr(trainer_mod.CsvLog, "flush", flush)
    cfg = load_train_config(write_config(), ["checkpoint_every=100"])
    monkeypatch.setattr(trainer_mod, "LOG_FLUSH_S", 0.0)  # flush at every log row
    train(cfg, tmp_path / "run")
    # rows 1..5 reached the disk before the only checkpoint (the end, step 6)
    assert rows_on_disk[:5] == [1, 2, 3, 4, 5] and rows_on_disk[-1] == 6
    monkeypatch.setattr(trainer_mod, "LOG_FLUSH_S", 1e9)  # only checkpoints and the end flush
    rows_on_disk.clear()
    train(cfg, tmp_path / "run2")
    assert set(rows_on_disk) == {6}


def test_snapshots_keep_the_ema_weights_of_every_nth_step(write_config, tmp_path):
    cfg = load_train_config(write_config(), ["checkpoint_every=2", "snapshot_every=4"])
    run = tmp_path / "run"
    train(cfg, run)
    snaps = sorted(p.name for p in (run / "snapshots").iterdir())
    assert snaps == ["step_0000004"]
    snap = load_model(run / "snapshots" / "step_0000004")
    assert json.loads((run / "snapshots" / "step_0000004" / "config.json").read_text())["training"]["step"] == 4
    final = load_model(run / "weights")
    # the snapshot is the EMA of step 4, not of the final step 6
    assert any(not torch.equal(a, b) for a, b in zip(snap.state_dict().values(), final.state_dict().values()))
    with pytest.raises(ConfigError, match="multiple of checkpoint_every"):
        load_train_config(write_config(), ["checkpoint_every=2", "snapshot_every=3"])


def test_warm_start_of_a_separate_localiser(write_config, tmp_path):
    """A shared model fills both networks; init_localiser_from then replaces the localiser."""
    from harmonykit.training.distributed import init_distributed

    gated = "{name: om_unet_tiny, kwargs: {mask_use: optional, gate: learned}}"
    a, b = tmp_path / "a", tmp_path / "b"
    train(load_train_config(write_config("a.yaml", model=gated), ["optim.iterations=1", "optim.milestones=[]"]), a)
    train(load_train_config(write_config("b.yaml", model=gated), ["optim.iterations=2", "optim.milestones=[]",
                                                                    "seed=1"]), b)
    sep = ("{name: om_unet_tiny, kwargs: {mask_use: optional, gate: learned, mask_free: two_stage, "
           "localiser: separate}}")
    ref_a, ref_b = load_model(a / "weights").state_dict(), load_model(b / "weights").state_dict()

    def setup(*overrides):
        t = Trainer(load_train_config(write_config("s.yaml", model=sep), ["optim.iterations=1",
                                                                         "optim.milestones=[]", *overrides]),
                    tmp_path / "s")
        t.ctx = init_distributed("cpu")
        t._setup()
        return t.model

    both = setup(f"init_from={a}")
    assert all(torch.equal(both.state_dict()[k], v) for k, v in ref_a.items())
    assert all(torch.equal(both.localiser.state_dict()[k], v) for k, v in ref_a.items())
    mixed = setup(f"init_from={a}", f"init_localiser_from={b}")
    assert all(torch.equal(mixed.state_dict()[k], v) for k, v in ref_a.items())
    assert all(torch.equal(mixed.localiser.state_dict()[k], v) for k, v in ref_b.items())
    assert not all(torch.equal(ref_a[k], ref_b[k]) for k in ref_a)
    # a model without a separate localiser refuses init_localiser_from, naming the key
    with pytest.raises(ConfigError, match="init_localiser_from needs a model with a separate localiser"):
        train(load_train_config(write_config("g.yaml", model=gated), [f"init_localiser_from={b}"]), tmp_path / "g")
    # and a localiser of another architecture is refused
    lab_add = "{name: om_unet_tiny, kwargs: {head: lab_add, mask_use: optional, gate: learned}}"
    c = tmp_path / "c"
    train(load_train_config(write_config("c.yaml", model=lab_add), ["optim.iterations=1", "optim.milestones=[]"]), c)
    with pytest.raises(ConfigError, match="^init_localiser_from: .* but the localiser is"):
        setup(f"init_localiser_from={c}")
