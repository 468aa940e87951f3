"""benchmarks/results/video_demo.py: the side-by-side before/after GIF of docs/inference.md."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parents[2]


def test_video_demo_writes_a_small_side_by_side_gif(benchmark_script, gated_dir, tmp_path, capsys):
    demo = benchmark_script("video_demo")
    boxes = demo.pan_boxes((300, 451), (106, 160), 5, 0.35, 0.1)
    assert len(boxes) == 5 and boxes[0][0] < boxes[-1][0]  # pans left to right
    assert all(0 <= x0 and 0 <= y0 and x1 <= 451 and y1 <= 300 for x0, y0, x1, y1 in boxes)
    out = tmp_path / "demo.gif"
    assert demo.main(["--model", str(gated_dir), "--frames", "6", "--width", "48", "--work-size", "32",
                      "--out", str(out)]) == 0
    assert "MSE vs real" in capsys.readouterr().out
    gif = Image.open(out)
    assert gif.n_frames == 6 and gif.size[0] == 2 * 48 + 4 and gif.size[1] == 14 + 32


def test_the_shipped_demo_gif_fits_the_docs():
    gif = REPO / "docs" / "figures" / "video_demo.gif"
    assert gif.stat().st_size < 1.5 * 1024 * 1024
    im = Image.open(gif)
    assert 32 <= im.n_frames <= 96 and 280 <= im.size[0] <= 400
    assert "figures/video_demo.gif" in (REPO / "docs" / "inference.md").read_text()
    assert np.asarray(im.convert("RGB")).std() > 10
