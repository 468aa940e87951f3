"""Classical baselines: identity, Reinhard (CIELAB), histogram matching."""

from __future__ import annotations

import numpy as np
import pytest
from skimage.color import rgb2lab
from skimage.exposure import match_histograms

from harmonykit.baselines import (
    BASELINES,
    Baseline,
    get_baseline,
    histogram,
    identity,
    is_baseline,
    reinhard,
)
from harmonykit.errors import ConfigError, HarmonykitError


@pytest.fixture
def composite(astronaut: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """64x64 photo with a tinted, darkened square foreground."""
    img = astronaut[::8, ::8].copy()
    mask = np.zeros(img.shape[:2], np.float32)
    mask[16:48, 20:52] = 1.0
    fg = img[16:48, 20:52].astype(float)
    img[16:48, 20:52] = np.clip(fg * [0.8, 0.9, 1.1] + [0, 10, 0], 0, 255).astype(np.uint8)
    return img, mask


def test_registry_and_protocol() -> None:
    assert set(BASELINES) == {"identity", "reinhard", "histogram"}
    for name, b in BASELINES.items():
        assert isinstance(b, Baseline) and b.name == name
    assert not identity.needs_mask and reinhard.needs_mask and histogram.needs_mask
    assert get_baseline("reinhard") is reinhard
    with pytest.raises(ConfigError, match="unknown baseline 'nope'"):
        get_baseline("nope")


def test_registry_lookups() -> None:
    assert list(BASELINES) == ["identity", "reinhard", "histogram"]  # registration order
    assert [n for n, _ in BASELINES.items()] == list(BASELINES) and len(BASELINES) == 3
    assert BASELINES.names() == ["histogram", "identity", "reinhard"]
    assert is_baseline("identity") and not is_baseline("runs/om") and not is_baseline(None)
    assert "reinhard" in BASELINES and BASELINES["reinhard"] is reinhard
    with pytest.raises(ConfigError, match=r"unknown baseline 'nope'; expected one of: histogram, identity, reinhard"):
        get_baseline("nope")
    with pytest.raises(KeyError):  # also a failed lookup
        BASELINES["nope"]


def test_identity_is_exact(composite) -> None:
    img, mask = composite
    out = identity(img, mask)
    assert out.dtype == np.uint8 and np.array_equal(out, img) and out is not img
    assert np.array_equal(identity(img), img)


def test_input_checks(composite) -> None:
    img, mask = composite
    with pytest.raises(HarmonykitError, match="needs a foreground mask"):
        reinhard(img, None)
    with pytest.raises(ValueError, match="uint8"):
        reinhard(img.astype(np.float32), mask)
    with pytest.raises(ValueError, match="does not match"):
        histogram(img, mask[:10])


def test_reinhard_matches_background_statistics_in_lab(chelsea: np.ndarray) -> None:
    # chelsea's colours stay inside the sRGB gamut after the transfer, so only uint8
    # rounding separates the foreground statistics from the background's
    img = chelsea[::8, ::8].copy()  # 38x57
    mask = np.zeros(img.shape[:2], np.float32)
    mask[9:28, 14:42] = 1.0
    fg = mask >= 0.5
    img[fg] = np.clip(img[fg].astype(float) * [0.8, 0.9, 1.1] + [0, 10, 0], 0, 255).astype(np.uint8)
    out = reinhard(img, mask)
    assert np.array_equal(out[~fg], img[~fg])  # background untouched
    lab_out = rgb2lab(out)  # scikit-image CIELAB (same constants as harmonykit.color)
    lab_in = rgb2lab(img)
    for c in range(3):
        assert lab_out[fg, c].mean() == pytest.approx(lab_in[~fg, c].mean(), abs=0.1), c
        assert lab_out[fg, c].std() == pytest.approx(lab_in[~fg, c].std(), abs=0.1), c
    # the input foreground was clearly off
    assert abs(lab_in[fg, 0].mean() - lab_in[~fg, 0].mean()) > 2
    assert abs(lab_in[fg, 1].mean() - lab_in[~fg, 1].mean()) > 5


def test_reinhard_soft_mask_blends_and_empty_mask_is_identity(composite) -> None:
    img, mask = composite
    hard_out = reinhard(img, mask)
    moved = []
    for weight in (0.25, 0.45):  # background pixels (< 0.5) partly blended, same statistics
        soft = mask.copy()
        soft[10, 10] = weight
        soft_out = reinhard(img, soft)
        assert np.array_equal(soft_out[mask >= 0.5], hard_out[mask >= 0.5])
        moved.append(np.abs(soft_out[10, 10].astype(int) - img[10, 10]).sum())
    assert 0 < moved[0] < moved[1]
    assert np.array_equal(reinhard(img, np.zeros_like(mask)), img)
    assert np.array_equal(histogram(img, np.ones_like(mask)), img)


def test_histogram_matches_skimage_and_cdf(composite) -> None:
    img, mask = composite
    fg = mask >= 0.5
    out = histogram(img, mask)
    assert np.array_equal(out[~fg], img[~fg])
    gaps = []
    for c in range(3):
        src, ref = img[fg, c], img[~fg, c]
        expected = np.round(match_histograms(src.astype(float), ref.astype(float))).astype(np.uint8)
        np.testing.assert_array_equal(out[fg, c], expected)
        # empirical CDFs of the matched foreground and of the background agree
        grid = np.arange(256)
        cdf_out = np.searchsorted(np.sort(out[fg, c]), grid, side="right") / fg.sum()
        cdf_bg = np.searchsorted(np.sort(ref), grid, side="right") / ref.size
        cdf_in = np.searchsorted(np.sort(src), grid, side="right") / src.size
        # ... up to the largest atom of the foreground distribution (ties map together)
        atom = np.bincount(src, minlength=256).max() / src.size
        assert np.abs(cdf_out - cdf_bg).max() <= atom + 1e-12
        gaps.append(np.abs(cdf_in - cdf_bg).max())
    assert max(gaps) > 0.1  # the input foreground was clearly off


def test_histogram_hand_example() -> None:
    # foreground values {0, 0, 10, 10} -> background values {100, 200}: CDF 0.5 -> 100, 1 -> 200
    img = np.zeros((2, 4, 3), np.uint8)
    img[0, :2] = 0
    img[0, 2:] = 10
    img[1, :2] = 100
    img[1, 2:] = 200
    mask = np.zeros((2, 4), np.float32)
    mask[0] = 1.0
    out = histogram(img, mask)
    assert out[0, :, 0].tolist() == [100, 100, 200, 200]
    assert np.array_equal(out[1], img[1])
