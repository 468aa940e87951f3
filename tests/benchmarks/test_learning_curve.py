"""benchmarks/results/learning_curve.py: several runs, the two-stage setting, reuse of stored scores."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from harmonykit.models import create_model


@pytest.fixture(scope="module")
def lc(benchmark_script):
    return benchmark_script("learning_curve")


def _bench(root: Path, astronaut, write_pair_benchmark) -> Path:
    reals = [astronaut[8 * k: 8 * k + 256: 8, 0:256:8].copy() for k in range(3)]
    mask = np.zeros((32, 32), np.uint8)
    mask[4:20, 6:22] = 255
    return write_pair_benchmark(root, reals, [mask] * 3, 0.7, 30)


def _run(folder: Path, seed: int, steps: list[int]) -> Path:
    """A run folder as the trainer leaves it: snapshots/step_N/ and weights/ (last step)."""
    for i, step in enumerate(steps):
        torch.manual_seed(seed + i)
        model = create_model("om_unet_tiny", mask_use="optional", gate="learned")
        g = torch.Generator().manual_seed(seed + i)
        with torch.no_grad():
            for p in model.head.parameters():
                p.copy_(0.3 * torch.randn(p.shape, generator=g))
        last = i == len(steps) - 1
        model.save_pretrained(folder / ("weights" if last else f"snapshots/step_{step:07d}"),
                              extra={"training": {"step": step}} if last else None)
    return folder


def test_two_runs_three_settings_and_reuse(tmp_path, lc, astronaut, write_pair_benchmark):
    bench = _bench(tmp_path / "bench", astronaut, write_pair_benchmark)
    a, b = _run(tmp_path / "run_a", 0, [2, 4]), _run(tmp_path / "run_b", 10, [3])
    out = tmp_path / "curve.png"
    argv = ["--run", f"A={a}", "--run", str(b), "--bench", f"toy={bench}", "--limit", "2",
            "--settings", "mask-free", "mask", "two-stage", "--out", str(out)]
    assert lc.main(argv) == 0
    data = json.loads(out.with_suffix(".json").read_text())
    assert set(data) == {"toy/identity"} | {f"{r}/toy/{s}" for r in ("A", "run_b") for s in ("mask-free", "mask", "two-stage")}
    assert sorted(data["A/toy/mask"]) == ["2", "4"] and list(data["run_b/toy/mask"]) == ["3"]
    # two-stage is a different model from one-pass mask-free (its second pass uses the localisation)
    assert data["A/toy/two-stage"]["4"] != pytest.approx(data["A/toy/mask-free"]["4"], rel=1e-6)
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # stored scores are reused: a rerun scores nothing again
    data["A/toy/mask"]["2"] = 12345.0
    out.with_suffix(".json").write_text(json.dumps(data))
    assert lc.main(argv) == 0
    assert json.loads(out.with_suffix(".json").read_text())["A/toy/mask"]["2"] == 12345.0


def test_one_run_format_is_read_as_the_first_runs(tmp_path, lc):
    store = tmp_path / "old.json"
    store.write_text(json.dumps({"ct/identity": {"0": 2.0}, "ct/mask": {"5": 1.0}}))
    assert lc.load_store(store, ["v2", "other"]) == {"ct/identity": {"0": 2.0}, "v2/ct/mask": {"5": 1.0}}
    assert lc.load_store(tmp_path / "none.json", ["x"]) == {}
