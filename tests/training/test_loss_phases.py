"""Loss phases (``loss_phases``): weights that change after a number of steps, and the
``--resume`` rule that lets a phase be added where the steps already done are untouched."""

from __future__ import annotations

import csv

import pytest
import torch
from safetensors.torch import load_file

from harmonykit.cli.main import main as cli
from harmonykit.errors import ConfigError
from harmonykit.training import load_train_config, train
from harmonykit.training.config import LossPhase, same_loss_until
from harmonykit.training.losses import LossWeights

PHASE = "[{start: 3, loss: {fg_mse: 1.0, charbonnier: 0.5}}]"
SHORT = ["optim.milestones=[2]"]


def test_loss_at_follows_the_phases(write_config):
    cfg = load_train_config(write_config(loss_phases="[{start: 2, loss: {fg_mse: 1.0}}, {start: 4, loss: {l1: 2.0}}]"))
    assert cfg.loss_changes() == [0, 2, 4]
    assert cfg.loss_at(0) == cfg.loss_at(1) == cfg.loss
    assert cfg.loss_at(2).fg_mse == cfg.loss_at(3).fg_mse == 1.0 and cfg.loss_at(2).l1 == 0.0
    # each phase replaces the previous one's changes (relative to loss:, not cumulative)
    assert cfg.loss_at(4).l1 == 2.0 and cfg.loss_at(4).fg_mse == 0.0
    assert cfg.loss_at(4).charbonnier == cfg.loss.charbonnier == 1.0


@pytest.mark.parametrize(
    ("phases", "match"),
    [
        ("[{start: 2, loss: {fgmse: 1.0}}]", "unknown loss weight 'fgmse'"),
        ("[{start: 2, loss: {}}]", "changes no weight"),
        ("[{start: 0, loss: {l1: 1.0}}]", "start must be >= 1"),
        ("[{start: 3, loss: {l1: 1.0}}, {start: 2, loss: {l1: 2.0}}]", "strictly increasing"),
        ("[{start: 6, loss: {l1: 1.0}}]", "below optim.iterations"),
        ("[{start: 2, loss: {l1: -1.0}}]", "loss.l1 must be >= 0"),
        ("[{start: 2, loss: {gan: 0.005}}]", "gan: section"),
        ("[{start: 2, loss: {localisation: 1.0}}]", "step 2.*localisation gate"),
    ],
)
def test_bad_phases_are_refused(write_config, phases, match):
    with pytest.raises(ConfigError, match=match):
        load_train_config(write_config(loss_phases=phases))


def test_same_loss_until():
    base = dict(data={"kind": "onthefly", "images": "x"})
    from harmonykit.config import from_dict
    from harmonykit.training.config import TrainConfig

    plain = from_dict(TrainConfig, {**base, "loss": {"lpips": 0}})
    phased = from_dict(TrainConfig, {**base, "loss": {"lpips": 0}, "loss_phases": [{"start": 5, "loss": {"l1": 1}}]})
    # a phase starting at 5 leaves steps 0-4 alone: equal for a checkpoint after 5 steps, not after 6
    assert same_loss_until(plain, phased, 5) and not same_loss_until(plain, phased, 6)
    assert same_loss_until(phased, phased, 100)
    # a phase that sets what loss: already has changes nothing
    noop = from_dict(TrainConfig, {**base, "loss": {"lpips": 0}, "loss_phases": [{"start": 1, "loss": {"l1": 0}}]})
    assert same_loss_until(plain, noop, 100)
    assert LossPhase(start=1, loss={"l1": 0.0}).weights(LossWeights(lpips=0.0)) == LossWeights(lpips=0.0)


def test_a_run_logs_the_terms_of_each_phase(write_config, tmp_path):
    run = tmp_path / "run"
    train(load_train_config(write_config(loss_phases=PHASE)), run)
    rows = list(csv.DictReader((run / "log.csv").open()))
    assert [int(r["step"]) for r in rows] == [1, 2, 3, 4, 5, 6]
    assert list(rows[0])[-2:] == ["charbonnier", "fg_mse"]
    # steps 1-3 (the first 3) use loss:, steps 4-6 the phase
    assert [r["fg_mse"] == "" for r in rows] == [True] * 3 + [False] * 3
    for r in rows[3:]:
        assert float(r["total"]) == pytest.approx(0.5 * float(r["charbonnier"]) + float(r["fg_mse"]), rel=1e-5)
    for r in rows[:3]:
        assert float(r["total"]) == pytest.approx(float(r["charbonnier"]), rel=1e-6)


def test_resume_may_add_a_phase_that_starts_later(write_config, tmp_path, capsys):
    """A run of 3 steps without phases, resumed with a phase at 3, ends where a run with the
    phase from the start ends, byte for byte: the phase changes none of the steps done."""
    full, grown = tmp_path / "full", tmp_path / "grown"
    phased_cfg = write_config("phased.yaml", loss_phases=PHASE)
    train(load_train_config(phased_cfg, SHORT), full)
    train(load_train_config(write_config(), [*SHORT, "optim.iterations=3"]), grown)
    assert cli(["train", str(phased_cfg), "--out", str(grown), "--resume", "--set", "optim.milestones=[2]"]) == 0
    for name in ("checkpoints/last/model.safetensors", "checkpoints/last/ema.safetensors", "weights/model.safetensors"):
        a, b = load_file(str(full / name)), load_file(str(grown / name))
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), name
    # the run's config.yaml now holds the phase
    assert load_train_config(grown / "config.yaml").loss_phases == load_train_config(phased_cfg).loss_phases

    # a phase that would change a step already done is refused, naming the key
    early = write_config("early.yaml", loss_phases="[{start: 2, loss: {fg_mse: 1.0}}]")
    code = cli(["train", str(early), "--out", str(grown), "--resume", "--set", "optim.milestones=[2]"])
    err = capsys.readouterr().err
    assert code == 2 and "loss_phases" in err and "differs from" in err
