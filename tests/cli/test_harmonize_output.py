"""``harmonykit harmonize --format`` and the fast PNG path give the Harmonizer's pixels."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from harmonykit.cli.main import main
from harmonykit.inference import Harmonizer
from harmonykit.io import read_image_with_alpha


def test_formats_and_pixels(tmp_path, om_tiny_dir, astronaut, chelsea):
    src = tmp_path / "in"
    src.mkdir()
    Image.fromarray(astronaut).resize((64, 48)).save(src / "astro.jpg", quality=90)
    cat = np.asarray(Image.fromarray(chelsea).resize((50, 40)))
    alpha = np.full(cat.shape[:2], 255, np.uint8)
    alpha[:, :10] = 7
    Image.fromarray(np.dstack([cat, alpha]), "RGBA").save(src / "cat.png")
    common = ["--model", str(om_tiny_dir), "--work-size", "32"]

    assert main(["harmonize", str(src), "--out", str(tmp_path / "png"), *common]) == 0
    h = Harmonizer.from_pretrained(om_tiny_dir, work_size=32)
    for name in ("astro", "cat"):
        rgb, a = read_image_with_alpha(tmp_path / "png" / f"{name}.png")
        want = h(next(src.glob(name + ".*")))
        assert np.array_equal(rgb, want.rgb)  # lossless, same pixels as the API
        assert (a is None) == (want.alpha is None) and (a is None or np.array_equal(a, alpha))

    assert main(["harmonize", str(src), "--out", str(tmp_path / "same"), "--format", "same", *common]) == 0
    assert sorted(p.name for p in (tmp_path / "same").iterdir()) == ["astro.jpg", "cat.png"]
    assert Image.open(tmp_path / "same" / "astro.jpg").format == "JPEG"

    assert main(["harmonize", str(src / "astro.jpg"), "--out", str(tmp_path / "jpg"), "--format", "jpg", *common]) == 0
    out = np.asarray(Image.open(tmp_path / "jpg" / "astro.jpg"))
    buf = io.BytesIO()
    Image.fromarray(h(src / "astro.jpg").rgb).save(buf, format="JPEG", quality=95)
    assert np.array_equal(out, np.asarray(Image.open(buf)))  # the result, as a quality-95 JPEG
