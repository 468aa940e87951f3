"""Checkpoint format: exact round trip of optimizer/scheduler state, atomic folder swap."""

from __future__ import annotations

import json
import os

import pytest
import torch

from harmonykit.errors import HarmonykitError
from harmonykit.training.checkpoint import (
    checkpoint_dir,
    checkpoint_step,
    decode_state,
    encode_state,
    load_checkpoint,
    replace_dir,
    save_checkpoint,
)


def _trained_optimizer():
    torch.manual_seed(0)
    lin = torch.nn.Linear(3, 2)
    opt = torch.optim.Adam(lin.parameters(), lr=1e-2, betas=(0.9, 0.99))
    sched = torch.optim.lr_scheduler.MultiStepLR(opt, milestones=[2, 4], gamma=0.5)
    for _ in range(3):
        opt.zero_grad()
        lin(torch.randn(4, 3)).pow(2).sum().backward()
        opt.step()
        sched.step()
    return lin, opt, sched


def test_state_round_trip_is_exact(tmp_path):
    lin, opt, sched = _trained_optimizer()
    state = {"optimizer_g": opt.state_dict(), "scheduler_g": sched.state_dict()}
    save_checkpoint(tmp_path, 3, lin.state_dict(), lin.state_dict(), state)
    meta = json.loads((checkpoint_dir(tmp_path) / "state.json").read_text())
    assert meta["step"] == 3 and meta["format"] == 1
    ck = load_checkpoint(tmp_path)
    assert ck is not None and ck.step == 3 and ck.discriminator is None
    # a fresh optimizer/scheduler loaded from the checkpoint continues identically
    lin2 = torch.nn.Linear(3, 2)
    lin2.load_state_dict(ck.model)
    opt2 = torch.optim.Adam(lin2.parameters(), lr=1e-2, betas=(0.9, 0.99))
    sched2 = torch.optim.lr_scheduler.MultiStepLR(opt2, milestones=[2, 4], gamma=0.5)
    opt2.load_state_dict(ck.state["optimizer_g"])
    sched2.load_state_dict(ck.state["scheduler_g"])
    assert sched2.milestones == sched.milestones and opt2.param_groups[0]["betas"] == (0.9, 0.99)
    x = torch.randn(4, 3)
    for m, o, s in ((lin, opt, sched), (lin2, opt2, sched2)):
        for _ in range(2):  # crosses milestone 4
            o.zero_grad()
            m(x).pow(2).sum().backward()
            o.step()
            s.step()
    assert opt.param_groups[0]["lr"] == opt2.param_groups[0]["lr"] == pytest.approx(1e-2 * 0.25)
    for a, b in zip(lin.parameters(), lin2.parameters()):
        assert torch.equal(a, b)


def test_encode_rejects_unknown_objects():
    with pytest.raises(TypeError, match="cannot store object"):
        encode_state({"x": object()}, {})
    t: dict = {}
    enc = encode_state({"a": [1, (2.5, None)], 3: "x"}, t)
    assert decode_state(json.loads(json.dumps(enc)), t) == {"a": [1, (2.5, None)], 3: "x"}


def test_replace_dir_is_atomic(tmp_path):
    target = tmp_path / "last"
    replace_dir(target, lambda d: (d / "a.txt").write_text("1"))
    assert (target / "a.txt").read_text() == "1"

    def failing(d):
        (d / "a.txt").write_text("2")
        raise RuntimeError("killed while writing")

    with pytest.raises(RuntimeError):
        replace_dir(target, failing)
    assert (target / "a.txt").read_text() == "1"  # untouched
    assert [p.name for p in tmp_path.iterdir()] == ["last"]  # temporary removed


def test_load_falls_back_to_previous_checkpoint(tmp_path):
    lin, opt, sched = _trained_optimizer()
    save_checkpoint(tmp_path, 5, lin.state_dict(), lin.state_dict(), {"x": 1})
    last = checkpoint_dir(tmp_path)
    # a kill between the two renames leaves only .last.old
    os.replace(last, last.parent / ".last.old")
    ck = load_checkpoint(tmp_path)
    assert ck is not None and ck.step == 5 and ck.state == {"x": 1}
    assert checkpoint_step(tmp_path) == 5  # from the metadata of the previous copy too
    assert load_checkpoint(tmp_path / "nothing") is None
    assert checkpoint_step(tmp_path / "nothing") is None
    os.replace(last.parent / ".last.old", last)
    (last / "state.json").write_text("{broken")
    with pytest.raises(HarmonykitError, match="state.json: cannot read checkpoint metadata"):
        load_checkpoint(tmp_path)
    with pytest.raises(HarmonykitError, match="state.json: cannot read checkpoint metadata"):
        checkpoint_step(tmp_path)
    (last / "state.json").write_text("[1, 2]")
    with pytest.raises(HarmonykitError, match="state.json: unsupported checkpoint format"):
        checkpoint_step(tmp_path)
