"""``harmonykit evaluate`` and ``harmonykit compare`` through the CLI entry point."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from harmonykit.cli.main import main
from harmonykit.models import create_model


@pytest.fixture(scope="module")
def bench(tmp_path_factory, coffee, write_pair_benchmark) -> Path:
    """A 3-pair harmonykit-layout benchmark (32x32, lossless PNG)."""
    reals = [coffee[20 * k: 20 * k + 256: 8, 100: 356: 8].copy() for k in range(3)]
    masks = [np.zeros((32, 32), np.uint8) for _ in range(3)]
    for k, mask in enumerate(masks):
        mask[4 + 4 * k: 16 + 4 * k, 8:24] = 255
    return write_pair_benchmark(tmp_path_factory.mktemp("cli") / "bench", reals, masks, 0.6, 40)


def _run(capsys, *argv: str) -> tuple[int, str, str]:
    rc = main(list(argv))
    cap = capsys.readouterr()
    return rc, cap.out, cap.err


def test_evaluate_baseline_and_model_then_compare(tmp_path, bench, capsys) -> None:
    rc, out, _ = _run(capsys, "evaluate", str(bench), "--model", "identity", "--size", "32",
                      "--out", str(tmp_path / "id"), "--no-lpips")
    assert rc == 0, out
    assert "| Composite |" in out and "| identity |" in out and "3 scored, 0 failed" in out
    for name in ("metrics.json", "per_image.csv", "table.md", "best_worst.png"):
        assert (tmp_path / "id" / name).is_file()
    m = json.loads((tmp_path / "id" / "metrics.json").read_text())
    assert m["overall"]["model"]["mse"] == m["overall"]["composite"]["mse"] > 0

    torch.manual_seed(0)
    run_dir = tmp_path / "run"
    create_model("om_unet_tiny").save_pretrained(run_dir / "weights")
    (run_dir / "config.yaml").write_text("model: om_unet_tiny\n")
    rc, out, _ = _run(capsys, "evaluate", str(bench), "--model", str(run_dir), "--size", "32",
                      "--out", str(tmp_path / "om"), "--batch-size", "2", "--workers", "1")
    assert rc == 0, out
    m = json.loads((tmp_path / "om" / "metrics.json").read_text())
    assert m["settings"]["model"]["label"] == "run" and m["settings"]["mask_short"] == "mask-free"
    assert m["overall"]["model"]["om_iou"] is not None

    rc, out, _ = _run(capsys, "compare", str(tmp_path / "id"), str(tmp_path / "om"),
                      "--out", str(tmp_path / "cmp.md"))
    assert rc == 0
    rows = [ln.split("|")[1].strip() for ln in out.strip().splitlines()[2:]]
    assert rows == ["Composite", "identity", "run"]
    assert (tmp_path / "cmp.md").read_text() == out


def test_evaluate_exit_codes(tmp_path, bench, capsys) -> None:
    # unknown model / missing benchmark: usage errors, exit 2, no report
    rc, _, err = _run(capsys, "evaluate", str(bench), "--model", "no_such_model", "--out", str(tmp_path / "x"))
    assert rc == 2 and "no_such_model" in err and "identity" in err
    assert not (tmp_path / "x").exists()
    rc, _, err = _run(capsys, "evaluate", str(tmp_path / "missing"), "--model", "identity", "--out", str(tmp_path / "x"))
    assert rc == 2 and "does not exist" in err
    rc, _, err = _run(capsys, "evaluate", str(bench), "--model", "identity", "--size", "5")
    assert rc == 2 and "--size" in err
    # a corrupt image: a user mistake, exit 2, the others scored and the report written
    import shutil

    broken = tmp_path / "broken"
    shutil.copytree(bench, broken)
    (broken / "composite" / "p1.png").write_bytes(b"\x89PNG\r\n\x1a\ntruncated")
    rc, out, err = _run(capsys, "evaluate", str(broken), "--model", "reinhard", "--size", "32",
                        "--out", str(tmp_path / "b"), "--no-lpips")
    assert rc == 2 and "1 image(s) failed" in err
    m = json.loads((tmp_path / "b" / "metrics.json").read_text())
    assert m["counts"]["scored"] == 2 and m["failures"][0]["id"] == "p1"
    assert "oracle mask" in m["settings"]["mask_setting"]


def test_compare_rejects_non_reports(tmp_path, capsys) -> None:
    rc, _, err = _run(capsys, "compare", str(tmp_path))
    assert rc == 2 and "metrics.json" in err
    rc, _, err = _run(capsys, "compare", str(tmp_path / "nothing"))
    assert rc == 2 and "no such file or folder" in err
    # damaged metrics.json files: one line naming the file, no traceback (found by fault injection)
    for i, text in enumerate(['{"overall": {}, "settings": {}}', '{"overall": "x", "settings": 1}', "[1]"]):
        d = tmp_path / f"damaged{i}"
        d.mkdir()
        (d / "metrics.json").write_text(text)
        rc, _, err = _run(capsys, "compare", str(d))
        assert rc == 2 and "not an evaluation report" in err and "Traceback" not in err, err


def test_compare_out_never_replaces_a_report_and_bad_outs_are_one_error(tmp_path, bench, capsys) -> None:
    rc, _, _ = _run(capsys, "evaluate", str(bench), "--model", "identity", "--size", "32", "--out",
                    str(tmp_path / "id"))
    assert rc == 0
    metrics = tmp_path / "id" / "metrics.json"
    before = metrics.read_bytes()
    (tmp_path / "afile").write_text("x")
    for out in (metrics, tmp_path / "id" / "table2.md", tmp_path / "id", tmp_path / "afile" / "c.md"):
        rc, printed, err = _run(capsys, "compare", str(tmp_path / "id"), "--out", str(out))
        assert rc == 2 and "--out" in err and "Traceback" not in err and printed == "", (out, err)
    assert metrics.read_bytes() == before and not (tmp_path / "id" / "table2.md").exists()
    rc, printed, _ = _run(capsys, "compare", str(tmp_path / "id"), "--out", str(tmp_path / "c.md"))
    assert rc == 0 and (tmp_path / "c.md").read_text() == printed
