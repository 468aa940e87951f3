"""harmonykit.png: the multi-threaded PNG writer gives standard, lossless, deterministic files."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from harmonykit import png


@pytest.mark.parametrize("shape,with_alpha,mode", [((37, 53, 3), False, "RGB"), ((37, 53, 3), True, "RGBA"),
                                                  ((20, 31), False, "L"), ((5, 4), True, "LA"), ((1, 1, 3), False, "RGB")])
@pytest.mark.parametrize("filter_type", ["up", "sub", "none"])
def test_round_trip_through_pillow(shape, with_alpha, mode, filter_type, rng):
    arr = rng.integers(0, 256, shape, dtype=np.uint8)
    alpha = rng.integers(0, 256, shape[:2], dtype=np.uint8) if with_alpha else None
    im = Image.open(io.BytesIO(png.encode_png_fast(arr, alpha, filter_type=filter_type)))
    assert im.mode == mode and im.size == (shape[1], shape[0])
    want = arr if alpha is None else np.dstack([arr if arr.ndim == 3 else arr[:, :, None], alpha])
    assert np.array_equal(np.asarray(im), want)


def test_many_bands_threads_and_determinism(monkeypatch, astronaut):
    monkeypatch.setattr(png, "BAND_BYTES", 5000)  # many deflate bands joined by full flushes
    one = png.encode_png_fast(astronaut, threads=1)
    assert png.encode_png_fast(astronaut, threads=3) == one
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(one))), astronaut)
    assert len(one) < astronaut.nbytes  # it does compress


def test_rejects_bad_input():
    with pytest.raises(ValueError, match="uint8"):
        png.encode_png_fast(np.zeros((2, 2, 3), np.float32))
    with pytest.raises(ValueError, match="expected"):
        png.encode_png_fast(np.zeros((2, 2, 2), np.uint8))
    with pytest.raises(ValueError, match="alpha"):
        png.encode_png_fast(np.zeros((2, 2, 3), np.uint8), np.zeros((3, 2), np.uint8))
    with pytest.raises(ValueError, match="filter"):
        png.encode_png_fast(np.zeros((2, 2, 3), np.uint8), filter_type="paeth")
