"""Metrics against hand computations and scikit-image."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from harmonykit.evaluation import metrics as M
from harmonykit.operators import OperatorMasks


def _pair(rng: np.random.Generator, h: int = 24, w: int = 20) -> tuple[np.ndarray, np.ndarray]:
    a = rng.integers(0, 256, (h, w, 3)).astype(np.uint8)
    b = np.clip(a.astype(int) + rng.integers(-40, 41, a.shape), 0, 255).astype(np.uint8)
    return a, b


def test_mse_and_fmse_by_hand() -> None:
    out = np.zeros((2, 3, 3), np.uint8)
    real = out.copy()
    real[0, 0] = (3, 0, 0)  # err^2 = 9
    real[1, 2] = (0, 6, 6)  # err^2 = 36 + 36
    assert M.mse(out, real) == pytest.approx(81 / 18)
    mask = np.zeros((2, 3), np.float32)
    mask[0, 0] = 1.0
    mask[0, 1] = 0.7  # binarised -> foreground
    mask[1, 2] = 0.3  # binarised -> background
    assert M.fmse(out, real, mask) == pytest.approx(9 / (3 * 2))
    assert M.foreground_ratio(mask) == pytest.approx(2 / 6)
    # PSNR from its definition
    assert M.psnr(out, real) == pytest.approx(10 * math.log10(255**2 / (81 / 18)))
    assert M.fpsnr(out, real, mask) == pytest.approx(10 * math.log10(255**2 / 1.5))


def test_empty_mask_is_nan_not_zero() -> None:
    a = np.zeros((16, 16, 3), np.uint8)
    b = a + 10
    empty = np.zeros((16, 16), np.float32)
    assert math.isnan(M.fmse(a, b, empty))
    assert math.isnan(M.fpsnr(a, b, empty))
    assert math.isnan(M.fssim(a, b, empty))
    vals = M.image_metrics(a, b, empty)
    assert math.isnan(vals["fmse"]) and math.isnan(vals["fssim"]) and vals["fg_ratio"] == 0.0
    assert vals["mse"] == 100.0


def test_psnr_matches_skimage_and_is_capped(rng: np.random.Generator) -> None:
    a, b = _pair(rng)
    assert M.psnr(a, b) == pytest.approx(peak_signal_noise_ratio(b, a, data_range=255))
    assert M.psnr(a, a) == M.PSNR_CAP_DB


def test_ssim_matches_skimage(rng: np.random.Generator, astronaut: np.ndarray) -> None:
    kw = dict(gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=255, channel_axis=2)
    a, b = _pair(rng, 31, 27)
    assert M.ssim(a, b) == pytest.approx(structural_similarity(a, b, **kw), abs=1e-12)
    img = astronaut[::8, ::8]  # 64x64 real photo
    dark = (img * 0.7).astype(np.uint8)
    assert M.ssim(dark, img) == pytest.approx(structural_similarity(dark, img, **kw), abs=1e-12)
    _, smap = structural_similarity(dark, img, full=True, **kw)
    np.testing.assert_allclose(M.ssim_map(dark, img), smap, atol=1e-12)


def test_fssim_is_masked_mean_of_skimage_map(astronaut: np.ndarray) -> None:
    kw = dict(gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=255, channel_axis=2)
    img = astronaut[::8, ::8]
    out = img.copy()
    out[10:30, 20:50] = np.clip(out[10:30, 20:50].astype(int) + 30, 0, 255)
    mask = np.zeros(img.shape[:2], np.float32)
    mask[10:30, 20:50] = 1.0
    _, smap = structural_similarity(out, img, full=True, **kw)
    expected = smap.mean(axis=2)[10:30, 20:50].mean()
    assert M.fssim(out, img, mask) == pytest.approx(expected, abs=1e-12)
    all_vals = M.image_metrics(out, img, mask)
    assert all_vals["fssim"] == pytest.approx(expected, abs=1e-12)
    assert all_vals["ssim"] == pytest.approx(structural_similarity(out, img, **kw), abs=1e-12)
    # the foreground is where the error is: fSSIM < SSIM, fMSE > MSE
    assert all_vals["fssim"] < all_vals["ssim"]
    assert all_vals["fmse"] > all_vals["mse"]


def test_image_metrics_consistent_with_single_functions(rng: np.random.Generator) -> None:
    a, b = _pair(rng, 20, 20)
    mask = (rng.random((20, 20)) > 0.6).astype(np.float32)
    vals = M.image_metrics(a, b, mask)
    assert vals["mse"] == pytest.approx(M.mse(a, b))
    assert vals["fmse"] == pytest.approx(M.fmse(a, b, mask))
    assert vals["psnr"] == pytest.approx(M.psnr(a, b))
    assert vals["fpsnr"] == pytest.approx(M.fpsnr(a, b, mask))
    assert vals["ssim"] == pytest.approx(M.ssim(a, b))
    assert vals["fssim"] == pytest.approx(M.fssim(a, b, mask))


def test_shape_errors() -> None:
    with pytest.raises(ValueError, match="differ in shape"):
        M.mse(np.zeros((4, 4, 3)), np.zeros((4, 5, 3)))
    with pytest.raises(ValueError, match="does not match"):
        M.fmse(np.zeros((4, 4, 3)), np.zeros((4, 4, 3)), np.zeros((3, 4)))
    with pytest.raises(ValueError, match="11x11"):
        M.ssim(np.zeros((8, 8, 3)), np.zeros((8, 8, 3)))


def test_buckets_boundaries() -> None:
    assert [M.bucket_of(r) for r in (0.0, 0.0499, 0.05, 0.1499, 0.15, 0.99, 1.0)] == [
        "0-5%", "0-5%", "5-15%", "5-15%", "15-100%", "15-100%", "15-100%"
    ]


def test_om_iou_thresholds_by_channel_unit() -> None:
    # 1x4x4 lab_add masks; gt = left half
    v = torch.zeros(1, 3, 4, 4)
    v[0, 0, 0, 0] = 1.5  # L: |1.5| > 1.0 -> changed (gt fg)
    v[0, 1, 1, 0] = 2.0  # a: |2.0| < 2.55 -> not changed (gt fg)
    v[0, 2, 2, 1] = -3.0  # b: |-3| > 2.55 -> changed (gt fg)
    v[0, 0, 3, 3] = -5.0  # L changed (gt bg) -> false positive
    om = OperatorMasks(v, ("l_add", "a_add", "b_add"), "lab")
    gt = np.zeros((4, 4), np.float32)
    gt[:, :2] = 1.0
    changed = M.om_change_mask(om)[0]
    assert changed.sum() == 3
    # intersection 2, union = 8 gt + 1 false positive = 9
    assert M.om_iou(om, gt) == pytest.approx(2 / 9)
    # hls: h unit 360 -> 3.6 degrees; l/s unit 1 -> 0.01
    vh = torch.zeros(1, 6, 2, 2)
    vh[0, 1, 0, 0] = 4.0  # h_add 4 deg > 3.6
    vh[0, 0, 0, 1] = 9.0  # h_mul is ignored
    vh[0, 5, 1, 1] = 0.02  # s_add
    omh = OperatorMasks(vh, ("h_mul", "h_add", "l_mul", "l_add", "s_mul", "s_add"), "hls")
    assert M.om_change_mask(omh)[0].tolist() == [[True, False], [False, True]]
    # no add channel -> not computed
    only_mul = OperatorMasks(torch.ones(1, 1, 2, 2), ("l_mul",), "lab")
    assert M.om_iou(only_mul, np.ones((2, 2))) is None


def test_om_iou_resizes_to_mask_and_empty_cases() -> None:
    v = torch.zeros(1, 3, 2, 2)
    om = OperatorMasks(v, ("l_add", "a_add", "b_add"), "lab")
    assert math.isnan(M.om_iou(om, np.zeros((8, 8))))  # nothing predicted, nothing to find
    assert M.om_iou(om, np.ones((8, 8))) == 0.0
    v2 = torch.full((1, 3, 2, 2), 10.0)
    om2 = OperatorMasks(v2, ("l_add", "a_add", "b_add"), "lab")
    assert M.om_change_mask(om2, size=(8, 6)).shape == (1, 8, 6)
    assert M.om_iou(om2, np.ones((8, 8))) == 1.0
