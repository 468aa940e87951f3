"""Data phases (``data_phases``): a perturbation mix that changes after a number of steps,
and the ``--resume`` rule that lets a phase be added where the steps already done are
untouched."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import load_file

from harmonykit.cli.main import main as cli
from harmonykit.config import from_dict
from harmonykit.data.perturb.families import FamilyMix
from harmonykit.errors import ConfigError
from harmonykit.training import load_train_config, train
from harmonykit.training.config import TrainConfig, same_data_until
from harmonykit.training.data import PhasedLoader, StepBatchSampler, build_dataset

NONE_AFTER_3 = "[{start: 3, mix: {sgmmh: 0, none: 1}}]"
SHORT = ["optim.milestones=[2]"]


def test_mix_at_follows_the_phases(write_config):
    cfg = load_train_config(write_config(data_phases="[{start: 2, mix: {sgmmh: 0, none: 1}}, "
                                                      "{start: 4, mix: {sgmmh: 1, none: 1}}]"))
    assert [s for s, _ in cfg.mix_schedule()] == [0, 2, 4]
    assert cfg.mix_at(0) == cfg.mix_at(1) == cfg.data.mix == FamilyMix()
    assert cfg.mix_at(2) == cfg.mix_at(3) == FamilyMix(sgmmh=0, none=1)
    assert cfg.mix_at(5) == FamilyMix(sgmmh=1, none=1)


@pytest.mark.parametrize(
    ("phases", "match"),
    [
        ("[{start: 0, mix: {none: 1}}]", "start must be >= 1"),
        ("[{start: 3, mix: {none: 1}}, {start: 2, mix: {none: 1}}]", "strictly increasing"),
        ("[{start: 6, mix: {none: 1}}]", "below optim.iterations"),
        ("[{start: 2, mix: {sgmmh: 0}}]", "every family weight is 0"),
        ("[{start: 2, mix: {lut: 1}}]", "lut family needs a weight in data.mix"),
    ],
)
def test_bad_phases_are_refused(write_config, phases, match):
    with pytest.raises(ConfigError, match=match):
        load_train_config(write_config(data_phases=phases))


def test_phases_need_on_the_fly_data(write_config, tmp_path):
    bench = tmp_path / "bench"
    bench.mkdir()
    cfg = write_config(data=f"{{kind: benchmark, root: {bench}}}", data_phases="[{start: 2, mix: {none: 1}}]")
    with pytest.raises(ConfigError, match="on-the-fly pairs only"):
        load_train_config(cfg)


def test_same_data_until():
    base = {"data": {"kind": "onthefly", "images": "x"}, "loss": {"lpips": 0}}
    plain = from_dict(TrainConfig, base)
    phased = from_dict(TrainConfig, {**base, "data_phases": [{"start": 5, "mix": {"none": 1}}]})
    assert same_data_until(plain, phased, 5) and not same_data_until(plain, phased, 6)
    # a phase with data.mix's own weights changes nothing
    noop = from_dict(TrainConfig, {**base, "data_phases": [{"start": 1, "mix": {"sgmmh": 1}}]})
    assert same_data_until(plain, noop, 100)


def test_the_batches_follow_the_phase_and_keep_their_sources(write_config):
    """Steps from the phase on are drawn with its mix (``none``: nothing perturbed, so the
    composite is the real photo); the samples of earlier steps are unchanged, and a sample's
    source crop is the same with or without the phase."""
    cfg = load_train_config(write_config(data_phases=NONE_AFTER_3, optim="{iterations: 6, milestones: [4], "
                                                                          "batch_size: 2}"))

    def batches(schedule, workers=0):
        dataset = build_dataset(cfg.data, cfg.seed, uses_regions=False)
        sampler = StepBatchSampler(len(dataset), 2, cfg.seed, 0, 6)
        return list(PhasedLoader(dataset, sampler, schedule, workers, cfg.seed))

    phased, plain = batches(cfg.mix_schedule()), batches([(0, cfg.data.mix)])
    assert len(phased) == len(plain) == 6
    for step, (a, b) in enumerate(zip(phased, plain)):
        if step < 3:
            assert torch.equal(a.composite, b.composite) and torch.equal(a.real, b.real)
        else:
            assert torch.equal(a.composite, a.real) and float(a.mask.sum()) == 0.0
            assert torch.equal(a.real, b.real)  # the same source crop, unperturbed
            assert not torch.equal(b.composite, b.real)
    # a worker process sees the phase's mix too
    with_worker = batches(cfg.mix_schedule(), workers=1)
    assert all(torch.equal(a.composite, b.composite) for a, b in zip(phased, with_worker))


def test_resume_may_add_a_phase_that_starts_later(write_config, tmp_path, capsys):
    """A run of 3 steps, resumed with a data phase at 3, ends where a run with the phase from
    the start ends, byte for byte; a phase before the checkpoint is refused."""
    full, grown = tmp_path / "full", tmp_path / "grown"
    phased_cfg = write_config("phased.yaml", data_phases=NONE_AFTER_3)
    train(load_train_config(phased_cfg, SHORT), full)
    train(load_train_config(write_config(), [*SHORT, "optim.iterations=3"]), grown)
    assert cli(["train", str(phased_cfg), "--out", str(grown), "--resume", "--set", "optim.milestones=[2]"]) == 0
    for name in ("checkpoints/last/model.safetensors", "weights/model.safetensors"):
        a, b = load_file(str(full / name)), load_file(str(grown / name))
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), name
    # and the phase changed the training: a run without it ends elsewhere
    plain = tmp_path / "plain"
    train(load_train_config(write_config(), SHORT), plain)
    a, b = load_file(str(full / "weights/model.safetensors")), load_file(str(plain / "weights/model.safetensors"))
    assert any(not torch.equal(a[k], b[k]) for k in a)
    assert load_train_config(grown / "config.yaml").data_phases == load_train_config(phased_cfg).data_phases

    early = write_config("early.yaml", data_phases="[{start: 2, mix: {sgmmh: 0, none: 1}}]")
    code = cli(["train", str(early), "--out", str(grown), "--resume", "--set", "optim.milestones=[2]"])
    err = capsys.readouterr().err
    assert code == 2 and "data_phases" in err and "differs from" in err
