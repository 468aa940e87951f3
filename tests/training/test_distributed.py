"""Two CPU processes (gloo, env:// from torchrun) train in lock step; rank 0 alone writes."""

from __future__ import annotations

import csv
import os
import socket
import subprocess
import sys
from pathlib import Path

import torch
from safetensors.torch import load_file

from harmonykit.models import create_model
from harmonykit.training import load_train_config, train
from harmonykit.training.checkpoint import load_checkpoint
from harmonykit.utils.seeding import derive_seed


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_processes_gloo(write_config, tmp_path):
    cfg_path = write_config(optim="{iterations: 3, milestones: [2], batch_size: 1}", checkpoint_every="2")
    run, out = tmp_path / "ddp_run", tmp_path / "ranks"
    out.mkdir()
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HARMONYKIT_NO_PROGRESS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_addr", "127.0.0.1",
           "--master_port", str(_free_port()), str(Path(__file__).with_name("ddp_worker.py")),
           str(cfg_path), str(run), str(out)]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]
    r0, r1 = load_file(str(out / "rank0.safetensors")), load_file(str(out / "rank1.safetensors"))
    assert r0.keys() == r1.keys()
    for k in r0:
        assert torch.equal(r0[k], r1[k]), k
    # the run directory was written once, by rank 0: one log row per step, its weights
    rows = list(csv.DictReader((run / "log.csv").open()))
    assert [int(r["step"]) for r in rows] == [1, 2, 3]
    assert float(rows[0]["samples_per_s"]) > 0
    ck = load_checkpoint(run)
    assert ck.step == 3 and ck.state["world_size"] == 2
    assert all(torch.equal(ck.model[k], r0[k]) for k in r0)
    assert sorted(p.name for p in run.iterdir()) == ["checkpoints", "config.yaml", "log.csv", "samples", "weights"]
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["last"]
    # 2 processes x batch 1 see exactly the samples of 1 process x batch 2, and DDP averages
    # their gradients, so a single process with batch 2 makes the same updates up to
    # rounding (Adam turns rounding noise of ~0 gradients, e.g. conv biases before instance
    # norm, into +-lr steps, so compare the update as a whole, not element-wise)
    single = tmp_path / "single"
    train(load_train_config(cfg_path, ["optim.batch_size=2"]), single)
    ref = load_checkpoint(single).model
    torch.manual_seed(derive_seed(0, "init"))
    init = create_model("om_unet_tiny").state_dict()
    d_ddp = torch.cat([(r0[k] - init[k]).flatten() for k in r0])
    d_single = torch.cat([(ref[k] - init[k]).flatten() for k in r0])
    assert d_single.norm() > 0
    assert (d_ddp - d_single).norm() < 0.01 * d_single.norm()
