"""Issue 30 (8): the smaller items (the other ones are in test_outputs_guard.py and
tests/models/test_load_validation.py)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import torch

from harmonykit.evaluation.evaluator import EvalOptions, evaluate
from harmonykit.io import write_image, write_mask
from harmonykit.models import create_model

README = Path(__file__).resolve().parents[2] / "README.md"


def test_evaluate_checks_the_benchmark_before_importing_torch(tmp_path):
    script = textwrap.dedent("""
        import contextlib, io, json, sys
        from harmonykit.cli.main import main
        err = io.StringIO()
        with contextlib.redirect_stderr(err):
            code = main(["evaluate", sys.argv[1], "--model", "identity", "--out", sys.argv[2]])
        print(json.dumps({"code": code, "err": err.getvalue(), "torch": "torch" in sys.modules}))
    """)
    proc = subprocess.run([sys.executable, "-c", script, str(tmp_path / "missing"), str(tmp_path / "r")],
                          capture_output=True, text=True, timeout=120)
    res = json.loads(proc.stdout.strip().splitlines()[-1])
    assert res["code"] == 2 and "missing: benchmark folder does not exist" in res["err"]
    assert not res["torch"], "the missing benchmark must be reported before PyTorch is imported"


def test_om_iou_with_the_mask_says_it_scores_the_localisation(tmp_path, astronaut):
    root = tmp_path / "bench"
    for k in range(2):
        real = astronaut[8 * k: 8 * k + 256: 8, 0:256:8].copy()
        mask = np.zeros((32, 32), np.uint8)
        mask[4:16, 6:20] = 255
        comp = real.copy()
        comp[mask > 0] = np.clip(comp[mask > 0] * 0.8 + 20, 0, 255).astype(np.uint8)
        write_image(root / "composite" / f"p{k}.png", comp)
        write_image(root / "real" / f"p{k}.png", real)
        write_mask(root / "mask" / f"p{k}.png", mask)
    torch.manual_seed(0)
    model = create_model("om_unet_tiny", mask_use="optional", gate="learned")
    opts = {"size": 32, "batch_size": 2, "show_progress": False, "lpips": False, "figure_rows": 0}
    free = evaluate(root, model, None, EvalOptions(**opts))
    given = evaluate(root, model, None, EvalOptions(with_mask=True, **opts))
    iou = [sorted((r.id, r.model["om_iou"]) for r in res.results) for res in (free, given)]
    assert iou[0] == iou[1]  # the same numbers with and without the mask ...
    notes = " ".join(given.summary["notes"])
    assert "equals the mask-free run's OM IoU" in notes  # ... and the report says why
    assert "equals the mask-free" not in " ".join(free.summary["notes"])


def test_readme_says_how_to_get_the_cpu_build_of_torch():
    text = README.read_text(encoding="utf-8")
    assert "--index-url https://download.pytorch.org/whl/cpu" in text
    # the plain pip line is not presented as installing a CPU build: on Linux, PyPI's is CUDA
    assert "installs the CPU build of torch" not in text
    assert re.search(r"From PyPI on Linux\s+that is the CUDA build", text)
