"""Real composites with their ground-truth photo (``X_real``): paired full-resolution figures."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from harmonykit.cli.main import main
from harmonykit.data.composites import is_composite_set, open_composites, read_composite, read_real
from harmonykit.errors import HarmonykitError
from harmonykit.evaluation import metrics as M
from harmonykit.evaluation.reference_free import (
    evaluate_real_composites,
    score_paired,
    write_reference_free_report,
)

SIZE = (30, 40)


def _real_and_composite(rng: np.random.Generator, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    real = rng.integers(40, 200, (*SIZE, 3), dtype=np.uint8)
    comp = real.copy()
    comp[mask] = np.clip(real[mask].astype(np.int16) + 30, 0, 255).astype(np.uint8)
    return real, comp


def _folder(root: Path, reals: bool, bad_real: bool = False) -> Path:
    """``c0`` (PNG mask), ``c1`` (JPEG mask), ``c2`` (PNG mask); with ``reals``: ``c0_real``
    and ``c1_real`` (lossless PNG), ``c2`` without; ``bad_real``: also a ``c2_real`` of
    another size."""
    root.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in range(3):
        mask = np.zeros(SIZE, bool)
        mask[5:20, 8 + 3 * i: 28 + 3 * i] = True
        real, comp = _real_and_composite(rng, mask)
        Image.fromarray(comp).save(root / f"c{i}.png")
        m8 = mask.astype(np.uint8) * 255
        if i == 1:
            Image.fromarray(np.dstack([m8] * 3)).save(root / f"c{i}_mask.jpg", quality=80)
        else:
            Image.fromarray(m8).save(root / f"c{i}_mask.png")
        if reals and i < 2:
            Image.fromarray(real).save(root / f"c{i}_real.png")
    if bad_real:
        Image.fromarray(np.zeros((SIZE[0] + 2, SIZE[1], 3), np.uint8)).save(root / "c2_real.png")
    return root


def _identity(image: np.ndarray, mask: np.ndarray | None) -> np.ndarray:
    return image


def _undo_inside(image: np.ndarray, mask: np.ndarray | None) -> np.ndarray:
    """Exactly undoes the synthetic +30 shift inside the mask (needs the mask)."""
    out = image.astype(np.int16)
    out[mask] -= 30
    return np.clip(out, 0, 255).astype(np.uint8)


def test_listing_pairs_real_photos_and_reads_them(tmp_path):
    root = _folder(tmp_path / "set", reals=True)
    assert is_composite_set(root)
    cs = open_composites(root)
    assert [it.id for it in cs.items] == ["c0", "c1", "c2"] and not cs.problems  # c*_real are no composites
    assert [it.real_path.name if it.real_path else None for it in cs.items] == ["c0_real.png", "c1_real.png", None]
    image, mask = read_composite(cs.items[1])  # JPEG mask: binarised, the intended rectangle
    assert mask.sum() == 15 * 20
    assert read_real(cs.items[0], image.shape[:2]).shape == image.shape
    with pytest.raises(HarmonykitError, match="no real photo"):
        read_real(cs.items[2], image.shape[:2])
    # an X_real without X is an ordinary image (here: a composite without a mask)
    lonely = tmp_path / "lonely"
    lonely.mkdir()
    Image.fromarray(np.zeros((*SIZE, 3), np.uint8)).save(lonely / "z_real.png")
    Image.fromarray(np.zeros((*SIZE, 3), np.uint8)).save(lonely / "y.png")
    Image.fromarray(np.zeros(SIZE, np.uint8)).save(lonely / "y_mask.png")
    assert [p.id for p in open_composites(lonely).problems] == ["z_real"]


def test_paired_figures_per_image_and_mean(tmp_path):
    cs = open_composites(_folder(tmp_path / "set", reals=True))
    ident = evaluate_real_composites(cs, _identity, label="identity", show_progress=False)
    assert len(ident.scores) == 3 and not ident.failures
    c0, c1, c2 = ident.scores
    assert c0.paired and c1.paired and not c2.paired and c2.mse is None
    image, mask = read_composite(cs.items[0])
    real = read_real(cs.items[0], image.shape[:2])
    assert c0.mse == pytest.approx(M.mse(image, real)) and c0.fmse == pytest.approx(M.fmse(image, real, mask))
    assert c0.psnr == pytest.approx(M.psnr(image, real)) and c0.fmse == pytest.approx(900.0, rel=0.05)
    paired = ident.summary["paired"]
    assert paired["n"] == 2 and [p["id"] for p in paired["per_image"]] == ["c0", "c1"]
    assert paired["mean"]["mse"] == pytest.approx((c0.mse + c1.mse) / 2)
    assert paired["mean"]["psnr"] == pytest.approx((c0.psnr + c1.psnr) / 2)  # mean of per-image PSNR
    fixed = evaluate_real_composites(cs, _undo_inside, with_mask=True, label="fix", show_progress=False)
    assert fixed.summary["paired"]["mean"]["mse"] < 1.0 and fixed.summary["paired"]["mean"]["psnr"] > 45
    paths = write_reference_free_report(tmp_path / "rep", fixed)
    data = json.loads(paths["metrics.json"].read_text())
    assert data["paired"]["n"] == 2 and len(data["paired"]["per_image"]) == 2
    rows = paths["per_image.csv"].read_text().splitlines()
    assert rows[0].endswith(",mse,fmse,psnr") and rows[3].endswith(",,,")  # c2: no real photo
    table = paths["table.md"].read_text()
    assert "Paired with the real photos" in table and "| c0 |" in table and "**mean (2 paired)**" in table


def test_folder_without_real_keeps_the_reference_free_report(tmp_path):
    cs = open_composites(_folder(tmp_path / "set", reals=False))
    res = evaluate_real_composites(cs, _identity, show_progress=False)
    assert all(not s.paired for s in res.scores) and "paired" not in res.summary
    paths = write_reference_free_report(tmp_path / "rep", res)
    assert paths["per_image.csv"].read_text().splitlines()[0] == "id,width,height,fg_ratio,de_in,de_out,ratio"
    assert "Paired" not in paths["table.md"].read_text()


def test_real_of_another_size_fails_that_composite_only(tmp_path):
    cs = open_composites(_folder(tmp_path / "set", reals=True, bad_real=True))
    res = evaluate_real_composites(cs, _identity, show_progress=False)
    assert [s.id for s in res.scores] == ["c0", "c1"]
    assert [(f.id, Path(f.file).name) for f in res.failures] == [("c2", "c2_real.png")]
    assert "real photo is 40x32, composite is 40x30" in res.failures[0].reason
    assert res.summary["paired"]["n"] == 2


def test_score_paired_empty_mask_gives_nan_fmse():
    a = np.zeros((4, 4, 3), np.uint8)
    s = score_paired(a, a, np.zeros((4, 4), bool))
    assert s["mse"] == 0.0 and s["psnr"] == M.PSNR_CAP_DB and math.isnan(s["fmse"])


def test_cli_evaluate_paired_and_size_mismatch(tmp_path, capsys):
    good = _folder(tmp_path / "good", reals=True)
    assert main(["evaluate", str(good), "--model", "reinhard", "--out", str(tmp_path / "r")]) == 0
    out = capsys.readouterr().out
    assert "ΔE outside" in out and "Paired with the real photos" in out and "mean (2 paired)" in out
    data = json.loads((tmp_path / "r" / "metrics.json").read_text())
    assert data["mask"] == "given" and data["paired"]["n"] == 2
    bad = _folder(tmp_path / "bad", reals=True, bad_real=True)
    assert main(["evaluate", str(bad), "--model", "identity", "--out", str(tmp_path / "b")]) == 2
    cap = capsys.readouterr()
    assert "c2_real.png: real photo is 40x32" in cap.err and "2 scored, 1 failed" in cap.out
    assert json.loads((tmp_path / "b" / "metrics.json").read_text())["paired"]["n"] == 2
