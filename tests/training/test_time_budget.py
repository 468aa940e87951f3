"""A ``max_minutes`` stop writes the final sample grid and log row; the progress bar's total
follows the budget; sample grids carry column labels."""

from __future__ import annotations

import csv

import numpy as np
import torch

from harmonykit.training import load_train_config, train
from harmonykit.training.samples import LABEL_STRIP, sample_grid
from harmonykit.training.trainer import budget_total


def test_time_budget_stop_writes_final_grid_and_log_row(write_config, tmp_path):
    # log / sample / checkpoint intervals far beyond the stop: only the budget stop writes them
    cfg = load_train_config(write_config(), ["max_minutes=1e-9", "log_every=100", "sample_every=100",
                                             "checkpoint_every=100"])
    run = tmp_path / "run"
    res = train(cfg, run)
    assert res.status == "time_budget" and res.step == 1
    rows = list(csv.DictReader((run / "log.csv").open()))
    assert [int(r["step"]) for r in rows] == [1] and float(rows[0]["total"]) > 0
    assert res.last["step"] == 1.0
    assert [p.name for p in (run / "samples").iterdir()] == ["step_0000001.png"]


def test_budget_total_gives_the_expected_stop_step():
    # 2 steps/s, 100 s left: the bar's total is 200 steps ahead, so its ETA is the budget's
    assert budget_total(done=20, iterations=10_000, n_done=20, elapsed_s=10.0, budget_s=110.0) == 220
    # resumed at step 500: counts from there
    assert budget_total(done=520, iterations=10_000, n_done=20, elapsed_s=10.0, budget_s=110.0) == 720
    assert budget_total(done=20, iterations=100, n_done=20, elapsed_s=10.0, budget_s=110.0) == 100
    assert budget_total(done=20, iterations=100, n_done=20, elapsed_s=200.0, budget_s=110.0) == 20  # over


def test_sample_grid_has_column_labels():
    b = torch.zeros(2, 3, 40, 40)
    grid = sample_grid(b, b + 1, b, mask=torch.ones(2, 1, 40, 40))
    strip = grid[:LABEL_STRIP]
    # four columns (composite, mask, output, real), each with dark label text in its strip
    for c in range(4):
        x0 = 2 + c * 42
        assert (strip[:, x0 : x0 + 40] < 100).any(), c
    unlabeled = sample_grid(b, b + 1, b, mask=torch.ones(2, 1, 40, 40), labels=False)
    assert np.array_equal(grid[LABEL_STRIP:], unlabeled)
