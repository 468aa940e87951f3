"""Training runs SIGKILLed at chosen instants of the checkpoint / weights swaps, then resumed.

The runs are killed for real (``tests/kill_at.py`` patches ``os.replace`` / ``shutil.rmtree``
in a subprocess to ``SIGKILL`` itself at the named call); 6 steps, checkpoints at 3 and 6.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from harmonykit.cli.main import main as cli
from harmonykit.training import load_train_config, train
from harmonykit.training.checkpoint import has_checkpoint, load_checkpoint, weights_step

KILL_AT = Path(__file__).resolve().parents[1] / "kill_at.py"


def _killed_train(event: str, match: str, nth: int, *args: str) -> None:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HARMONYKIT_NO_PROGRESS": "1"}
    proc = subprocess.run([sys.executable, str(KILL_AT), event, match, str(nth), "--", "train", *args],
                          capture_output=True, text=True, timeout=240, env=env)
    assert proc.returncode == -9, proc.stdout + proc.stderr  # really killed at that call


def _weights(run: Path) -> dict[str, torch.Tensor]:
    return load_file(str(run / "weights" / "model.safetensors"))


def _same_weights(a: Path, b: Path) -> bool:
    wa, wb = _weights(a), _weights(b)
    return wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)


def _log_steps(run: Path) -> list[int]:
    return [int(r["step"]) for r in csv.DictReader((run / "log.csv").open())]


def test_kill_between_the_final_weights_renames_republishes_them(write_config, tmp_path):
    cfg_path = write_config()
    full, run = tmp_path / "full", tmp_path / "run"
    train(load_train_config(cfg_path), full)
    # the 2nd publish (final, step 6): weights -> .weights.old done, temporary -> weights not yet
    _killed_train("replace", "/weights", 2, str(cfg_path), "--out", str(run))
    assert not (run / "weights").exists() and (run / ".weights.old").is_dir()
    assert load_checkpoint(run).step == 6
    assert cli(["train", "--resume", "--out", str(run)]) == 0
    assert weights_step(run) == 6 and _same_weights(full, run)
    assert not (run / ".weights.old").exists()


def test_kill_after_a_checkpoint_keeps_its_log_rows_and_weights_follow(write_config, tmp_path):
    cfg_path = write_config()
    full, run = tmp_path / "full", tmp_path / "run"
    train(load_train_config(cfg_path), full)
    # just after the final checkpoint (step 6) is in place, before its weights are published
    _killed_train("replaced", "checkpoints/last", 2, str(cfg_path), "--out", str(run))
    assert load_checkpoint(run).step == 6 and weights_step(run) == 3
    assert _log_steps(run) == [1, 2, 3, 4, 5, 6]  # flushed with the checkpoint, not lost
    assert cli(["train", "--resume", "--out", str(run)]) == 0
    assert weights_step(run) == 6 and _same_weights(full, run)
    assert json.loads((run / "weights" / "config.json").read_text())["training"]["step"] == 6
    assert _log_steps(run) == [1, 2, 3, 4, 5, 6]


def test_two_kills_in_checkpoint_swaps_always_leave_a_complete_checkpoint(write_config, tmp_path):
    cfg_path = write_config()
    full, run = tmp_path / "full", tmp_path / "run"
    train(load_train_config(cfg_path), full)
    # 1st kill between the two renames of the step-6 checkpoint: only .last.old (step 3) is left
    _killed_train("replace", "checkpoints/last", 2, str(cfg_path), "--out", str(run))
    assert not (run / "checkpoints" / "last").exists()
    assert has_checkpoint(run) and load_checkpoint(run).step == 3
    # 2nd kill during the resumed run's step-6 swap, at the rename of the new checkpoint
    _killed_train("replace", "checkpoints/last", 1, "--resume", "--out", str(run))
    assert has_checkpoint(run) and load_checkpoint(run).step == 3  # .last.old was not deleted
    # and the run still resumes to the uninterrupted result
    assert cli(["train", "--resume", "--out", str(run)]) == 0
    assert load_checkpoint(run).step == 6 and weights_step(run) == 6 and _same_weights(full, run)
    ck_full, ck_run = load_checkpoint(full), load_checkpoint(run)
    assert all(torch.equal(ck_full.model[k], ck_run.model[k]) for k in ck_full.model)
    assert _log_steps(run) == [1, 2, 3, 4, 5, 6]


@pytest.mark.parametrize("target", ["process", "group"])
def test_sigterm_stops_after_the_step_with_a_checkpoint(write_config, photos, tmp_path, target):
    """A real SIGTERM mid-run, to the trainer (``kill PID``) or to every process of the run,
    its DataLoader worker included (a scheduler, ``kill -- -PGID``, ``pkill -f``): the run ends
    the step it is in with a checkpoint and weights at that step, says "stopped", and resumes
    from it."""
    import signal
    import time

    workers = 0 if target == "process" else 1
    cfg_path = write_config(optim="{iterations: 400, milestones: [], batch_size: 2}",
                            checkpoint_every="1000", sample_every="1",
                            data=f"{{kind: onthefly, images: {photos}, size: 32, workers: {workers}, "
                                 "regions: {n_segments: 4}}")
    run = tmp_path / "run"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HARMONYKIT_NO_PROGRESS": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "harmonykit", "train", str(cfg_path), "--out", str(run)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                            start_new_session=True)
    try:
        deadline = time.monotonic() + 180
        while not any((run / "samples").glob("step_*.png")):  # a sample grid after every step
            assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
            time.sleep(0.05)
        if target == "group":
            os.killpg(proc.pid, signal.SIGTERM)
        else:
            proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == 0, out + err
    step = load_checkpoint(run).step
    assert 1 <= step < 400 and f"stopped at step {step}" in out
    assert weights_step(run) == step and _log_steps(run) == list(range(1, step + 1))
    assert "Traceback" not in err
    ema = load_checkpoint(run).ema
    assert all(torch.equal(ema[k], v) for k, v in _weights(run).items())
    assert cli(["train", "--resume", "--out", str(run), "--set", f"optim.iterations={step + 2}"]) == 0
    assert load_checkpoint(run).step == weights_step(run) == step + 2
