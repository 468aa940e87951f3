"""Reference-free evaluation on real composites (no ground truth)."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from harmonykit.data.composites import is_composite_set, open_composites, read_composite
from harmonykit.errors import HarmonykitError, ImageReadError
from harmonykit.evaluation.reference_free import (
    delta_e,
    evaluate_real_composites,
    score_change,
    write_reference_free_report,
)


def _write_folder(root, n=3, size=(24, 32), bad_size=False, orphan=False):
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for i in range(n):
        img = rng.integers(0, 256, (*size, 3), dtype=np.uint8)
        Image.fromarray(img).save(root / f"c{i}.png")
        m = np.zeros(size, np.uint8)
        m[4:14, 6 + i : 20 + i] = 255
        if bad_size and i == 0:
            m = m[:-2]
        Image.fromarray(m).save(root / f"c{i}_mask.png")
    if orphan:
        Image.fromarray(rng.integers(0, 256, (*size, 3), dtype=np.uint8)).save(root / "lonely.png")
    return root


def _shift_inside(image, mask):
    """A method that brightens the masked pixels only (needs the mask)."""
    out = image.astype(np.int16)
    out[mask] += 40
    return np.clip(out, 0, 255).astype(np.uint8)


def test_delta_e_reference_values():
    a = np.zeros((1, 3, 3), np.uint8)
    b = a.copy()
    b[0, 1] = 255
    b[0, 2] = (255, 0, 0)
    de = delta_e(a, b)
    assert de[0, 0] == 0.0
    assert de[0, 1] == pytest.approx(100.0, abs=1e-3)
    # CIELAB of sRGB red: L 53.24, a 80.09, b 67.20
    assert de[0, 2] == pytest.approx(math.sqrt(53.24**2 + 80.09**2 + 67.20**2), abs=0.05)
    with pytest.raises(ValueError):
        delta_e(a, b[:, :2])


def test_score_change_inside_outside_and_ratio():
    img = np.full((10, 10, 3), 100, np.uint8)
    mask = np.zeros((10, 10), bool)
    mask[:5] = True
    out = img.copy()
    out[mask] = 150
    s, de = score_change("x", img, out, mask)
    assert s.de_out == 0.0 and s.de_in > 10 and s.ratio == math.inf and s.fg_ratio == 0.5
    assert de.shape == (10, 10)
    out[~mask] = 101  # a little change outside
    s2, _ = score_change("x", img, out, mask)
    assert 0 < s2.de_out < 1 and s2.ratio == pytest.approx(s2.de_in / s2.de_out)
    s3, _ = score_change("x", img, img.copy(), mask)
    assert math.isnan(s3.ratio)  # nothing changed at all
    with pytest.raises(ValueError, match="empty or full"):
        score_change("x", img, img, np.zeros((10, 10), bool))


def test_folder_layout_listing_problems_and_read(tmp_path):
    root = _write_folder(tmp_path / "set", orphan=True)
    assert is_composite_set(root)
    cs = open_composites(root)
    assert cs.layout == "folder" and [it.id for it in cs.items] == ["c0", "c1", "c2"]
    assert [p.id for p in cs.problems] == ["lonely"]
    image, mask = read_composite(cs.items[1])
    assert image.shape == (24, 32, 3) and mask.dtype == bool and mask.sum() == 10 * 14
    bad = _write_folder(tmp_path / "bad", bad_size=True)
    with pytest.raises(ImageReadError, match="c0_mask"):
        read_composite(open_composites(bad).items[0])
    plain = tmp_path / "plain"
    plain.mkdir()
    Image.new("RGB", (4, 4)).save(plain / "a.png")
    assert not is_composite_set(plain)
    with pytest.raises(HarmonykitError, match="not a set of composites"):
        open_composites(plain)


def test_evaluate_with_mask_has_no_outside_change_and_reports(tmp_path):
    cs = open_composites(_write_folder(tmp_path / "set", bad_size=True))
    res = evaluate_real_composites(cs, _shift_inside, with_mask=True, label="shift", show_progress=False)
    assert [f.id for f in res.failures] == ["c0"] and "c0_mask" in res.failures[0].file
    assert len(res.scores) == 2
    o = res.summary["overall"]
    assert o["de_out"] == 0.0 and o["de_in"] > 10 and o["ratio_of_means"] == math.inf
    assert o["share_ratio_at_least_4"] == 1.0 and res.summary["mask"] == "given"
    paths = write_reference_free_report(tmp_path / "rep", res)
    data = json.loads(paths["metrics.json"].read_text())
    assert data["overall"]["ratio_of_means"] == "inf" and data["counts"] == {"scored": 2, "failed": 1}
    rows = paths["per_image.csv"].read_text().splitlines()
    assert rows[0].startswith("id,") and len(rows) == 3
    assert "| shift | given |" in paths["table.md"].read_text()
    fig = Image.open(paths["figure.png"])
    assert fig.size[0] > 3 * 160


def test_evaluate_mask_free_method_that_changes_everything(tmp_path):
    cs = open_composites(_write_folder(tmp_path / "set"))
    seen = []

    def brighten_all(image, mask):
        seen.append(mask)
        return np.clip(image.astype(np.int16) + 30, 0, 255).astype(np.uint8)

    res = evaluate_real_composites(cs, brighten_all, with_mask=False, show_progress=False)
    assert seen == [None, None, None]  # mask-free: the method never sees the mask
    o = res.summary["overall"]
    assert o["de_out"] > 5 and 0.5 < o["ratio_of_means"] < 2 and o["share_ratio_at_least_4"] == 0.0


def test_lalonde_composites_by_split(lalonde_db, lalonde_spec):
    cs = open_composites(lalonde_db)
    assert cs.layout == "lalonde" and len(cs.items) == len(lalonde_spec.composites)
    train = open_composites(lalonde_db, split="train", val_fraction=0.0)
    val = open_composites(lalonde_db, split="val", val_fraction=0.0)
    assert len(train.items) == len(cs.items) and not val.items
    image, mask = read_composite(cs.items[0])
    assert mask.shape == image.shape[:2] and mask.any()


def test_cli_evaluate_real_composites(tmp_path, lalonde_db):
    out = tmp_path / "rep"
    cmd = [sys.executable, "-m", "harmonykit", "evaluate", str(lalonde_db), "--model", "reinhard", "--out", str(out)]
    p = subprocess.run(cmd, capture_output=True, text=True, env={"HARMONYKIT_NO_PROGRESS": "1", "PATH": ""})
    assert p.returncode == 0, p.stderr
    assert "requires a mask" in p.stderr and "ΔE outside" in p.stdout
    data = json.loads((out / "metrics.json").read_text())
    assert data["mask"] == "given" and data["overall"]["de_out"] < 0.5
    assert (out / "figure.png").is_file()
