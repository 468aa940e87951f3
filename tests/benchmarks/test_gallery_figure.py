"""benchmarks/results/gallery_figure.py: the README gallery over a folder of X + X_mask (+ X_real)."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image


@pytest.fixture(scope="module")
def gallery(benchmark_script):
    return benchmark_script("gallery_figure")


@pytest.fixture(scope="module")
def folder(tmp_path_factory, astronaut):
    """Two composites of different aspect ratios, one with a noisy JPEG mask, and a real photo."""
    d = tmp_path_factory.mktemp("gallery")
    for name, (h, w) in (("wide", (60, 100)), ("tall", (90, 50))):
        img = np.asarray(Image.fromarray(astronaut).resize((w, h), Image.Resampling.BILINEAR))
        Image.fromarray(img).save(d / f"{name}.jpg", quality=90)
        m = np.zeros((h, w), np.uint8)
        m[h // 4: 3 * h // 4, w // 4: 3 * w // 4] = 255
        if name == "tall":
            Image.fromarray(np.dstack([m] * 3)).save(d / f"{name}_mask.jpg", quality=60)
        else:
            Image.fromarray(m).save(d / f"{name}_mask.png")
    Image.fromarray(np.asarray(Image.open(d / "wide.jpg"))).save(d / "wide_real.jpg")  # not a row
    return d


def test_gallery_with_a_gated_model(gallery, folder, gated_dir, tmp_path, capsys):
    out = tmp_path / "g.jpg"
    assert gallery.main(["--folder", str(folder), "--model", str(gated_dir), "--out", str(out), "--height", "40"]) == 0
    assert "tall: 50x90" in capsys.readouterr().out
    with Image.open(out) as im:
        assert im.format == "JPEG"
        fig = np.asarray(im.convert("RGB"))
    cw, gap = 60, 4
    assert fig.shape[1] == 4 * (cw + gap)
    assert fig.shape[0] == 34 + 2 * (40 + 14 + gap)  # two rows: wide_real.jpg is no composite
    loc = fig[34 + 14: 34 + 14 + 40, 3 * (cw + gap): 3 * (cw + gap) + cw].astype(int)
    assert loc.std() > 5  # a heatmap, not an n/a tile


def test_gallery_cells_of_a_model_without_gate(gallery, folder, tmp_path):
    from harmonykit.data.composites import open_composites, read_composite
    from harmonykit.inference import Harmonizer

    item = open_composites(folder).items[0]
    image, mask = read_composite(item)
    cells = gallery.gallery_row(Harmonizer.from_pretrained("reinhard"), image, mask, item.mask_path, 40)
    na = gallery.na_tile(40)
    assert [c.shape for c in cells] == [(40, 60, 3)] * 4
    assert np.array_equal(cells[3], na)  # no localisation gate: n/a
    assert np.array_equal(cells[2], gallery.na_tile(40, "needs a mask"))  # reinhard requires a mask
    assert not np.array_equal(cells[1], na)
