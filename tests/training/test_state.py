"""The run state (built once, held by the trainer) and the trainer's messages (logged; the
CLI shows them as ``harmonykit train: ...`` on stdout)."""

from __future__ import annotations

import logging

import pytest
import torch

from harmonykit.cli.main import main as cli
from harmonykit.data.batch import PairBatch
from harmonykit.training import Trainer, load_train_config, train
from harmonykit.training.distributed import init_distributed
from harmonykit.training.state import RunState, build_run_state

SHORT = ["optim.iterations=2", "optim.milestones=[]"]


def test_build_run_state_holds_what_the_trainer_steps_with(write_config, tmp_path):
    cfg = load_train_config(write_config(), SHORT)
    ctx = init_distributed("cpu")
    st = build_run_state(cfg, tmp_path / "run", resume=False, ctx=ctx)
    assert isinstance(st, RunState) and st.start_step == 0 and st.last_ckpt_step is None
    assert st.device == torch.device("cpu") and st.amp_dtype is None and st.disc is None and st.opt_d is None
    assert st.model_ddp is st.model and len(st.sampler) == 2 and st.log.columns[:5] == [
        "step", "lr", "samples_per_s", "elapsed_s", "total"]
    assert (tmp_path / "run" / "config.yaml").is_file()
    batch = next(iter(st.loader))
    assert isinstance(batch, PairBatch) and batch.composite.shape == (2, 3, 32, 32) and len(batch) == 2
    # the checkpoint's "state" entry keeps its format (what --resume of older runs reads)
    assert set(st.optimiser_state()) == {"optimizer_g", "scheduler_g", "scaler_g", "world_size"}


def test_the_trainer_is_built_by_run_and_holds_the_state(write_config, tmp_path):
    cfg = load_train_config(write_config(), SHORT)
    t = Trainer(cfg, tmp_path / "run")
    with pytest.raises(RuntimeError, match="not set up"):
        t.model  # noqa: B018
    res = t.run()
    assert res.step == 2 and isinstance(t.state, RunState) and t.state.last_ckpt_step == 2
    assert t.model is t.state.model and t.ema is t.state.ema


def test_gan_runs_restore_both_optimisers(write_config, tmp_path):
    cfg = load_train_config(write_config("gan.yaml", gan="{discriminator: patch_gan_tiny}",
                                         loss="{lpips: 0, gan: 0.005}"), SHORT)
    run = tmp_path / "run"
    train(cfg, run)
    st = build_run_state(cfg, run, resume=True, ctx=init_distributed("cpu"))
    assert st.start_step == 2 and st.last_ckpt_step == 2 and st.opt_d is not None
    assert set(st.optimiser_state()) == {"optimizer_g", "scheduler_g", "scaler_g", "world_size",
                                         "optimizer_d", "scheduler_d", "scaler_d"}
    assert st.opt_d.optimizer.state_dict()["state"]  # Adam moments restored, not fresh
    assert st.log.columns[-2:] == ["gan_g", "gan_d"] and [r["step"] for r in st.log.rows] == ["1", "2"]


def test_trainer_notes_are_logged_not_printed(write_config, tmp_path, caplog, capsys):
    cfg = load_train_config(write_config(), SHORT)
    with caplog.at_level(logging.INFO, logger="harmonykit.training"):
        train(cfg, tmp_path / "run", resume=True)
    assert "has no checkpoint yet, starting from step 0" in caplog.text
    assert "has no checkpoint yet" not in capsys.readouterr().out
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="harmonykit.training"):
        res = train(load_train_config(write_config(), ["max_minutes=1e-6"]), tmp_path / "budget")
    assert res.status == "time_budget" and "max_minutes=1e-06 reached at step 1; continue with --resume" in caplog.text


def test_the_cli_shows_the_trainer_notes_on_stdout(write_config, tmp_path, capsys):
    cfg = str(write_config())
    run = tmp_path / "run"
    assert cli(["train", cfg, "--out", str(run), "--resume", *sum((["--set", o] for o in SHORT), [])]) == 0
    out = capsys.readouterr().out
    assert f"harmonykit train: {run} has no checkpoint yet, starting from step 0" in out
    assert "harmonykit train: done at step 2" in out
    # shown once, and the logger is as it was after the command
    assert out.count("has no checkpoint yet") == 1
    assert logging.getLogger("harmonykit.training").propagate
