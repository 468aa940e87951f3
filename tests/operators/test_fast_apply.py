"""The uint8 CIELAB kernel (lab_apply_uint8) against a float64 reference; the output table."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from harmonykit.color import linear_to_srgb
from harmonykit.operators import CHANNEL_SETS, OperatorMasks, apply_operator_values
from harmonykit.operators.fast_apply import (
    lab_apply_uint8,
    lab_coefficients,
    native_kernel,
    native_kernel_problem,
    srgb_encode_table,
)


@pytest.fixture(params=["compiled", "torch"], autouse=True)
def kernel(request, monkeypatch):
    """Every test runs with both kernels of lab_apply_uint8 (compiled: harmonykit.operators.labkernel)."""
    if request.param == "torch":
        monkeypatch.setenv("HARMONYKIT_NATIVE", "0")
        assert native_kernel() is None
    elif native_kernel() is None:
        pytest.skip(f"compiled kernel not built here: {native_kernel_problem()}")
    return request.param


def _masks(channels: tuple[str, ...], size=(9, 11), seed: int = 0, scale: float = 1.0) -> OperatorMasks:
    g = torch.Generator().manual_seed(seed)
    v = torch.randn(1, len(channels), *size, generator=g, dtype=torch.float64)
    for i, name in enumerate(channels):
        v[:, i] = 1 + 0.2 * scale * v[:, i] if name.endswith("_mul") else 15 * scale * v[:, i]
    return OperatorMasks(v.float(), channels, "lab")


def _image(h: int, w: int, seed: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    img = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    img[: h // 4] = rng.integers(0, 24, (h // 4, w, 3))  # dark: the linear branches of sRGB and CIELAB
    img[-2:, :, :] = 255
    img[-4:-2, :, :] = 0
    return img


def _reference_uint8(masks: OperatorMasks, img: np.ndarray) -> np.ndarray:
    """float64 maths of apply_operator_values, masks resized by a whole-image bilinear resize."""
    x = torch.from_numpy(img).permute(2, 0, 1)[None].double() / 255.0
    vals = masks.to(torch.float64).resized(img.shape[0], img.shape[1])
    out = apply_operator_values(x, vals, masks.channels, "lab")[0].permute(1, 2, 0).numpy()
    return np.clip(np.floor(out * 255.0 + 0.5), 0, 255).astype(np.uint8)


@pytest.mark.parametrize("channels", [CHANNEL_SETS["lab"], CHANNEL_SETS["lab_add"], ("l_mul", "b_add"), ("a_mul",)])
def test_uint8_kernel_within_one_level_of_float64_reference(channels):
    img = _image(61, 83)
    masks = _masks(channels)
    ref = _reference_uint8(masks, img)
    out = masks.apply_uint8(img, tile_rows=7)
    assert out.dtype == np.uint8 and out.shape == img.shape
    diff = np.abs(out.astype(int) - ref)
    assert diff.max() <= 1
    assert (diff == 0).mean() > 0.997  # off by one only next to a rounding boundary
    assert not np.array_equal(out, img)  # the masks do something
    # and within one level of the previous float32 path (OperatorMasks.apply with tiles, rounded)
    x = torch.from_numpy(img).permute(2, 0, 1)[None].float() / 255.0
    before = masks.apply(x, tile_rows=7)[0].permute(1, 2, 0).numpy()
    before8 = np.clip(np.floor(before * 255.0 + 0.5), 0, 255).astype(int)
    assert np.abs(out.astype(int) - before8).max() <= 1


def test_uint8_kernel_identity_and_extreme_values():
    img = _image(20, 30, seed=3)
    for cs in ("lab", "lab_add"):
        assert np.abs(OperatorMasks.identity(cs, 1, 4, 4).apply_uint8(img).astype(int) - img).max() <= 1
    # far out of gamut: clamped like the reference, no wrap-around or NaN garbage
    masks = _masks(CHANNEL_SETS["lab"], seed=5, scale=8.0)
    out = masks.apply_uint8(img)
    assert np.abs(out.astype(int) - _reference_uint8(masks, img)).max() <= 1


def test_uint8_kernel_tiles_threads_and_in_place_give_identical_bytes():
    img = _image(45, 37, seed=4)
    masks = _masks(CHANNEL_SETS["lab"], size=(6, 5))
    values = masks.values[0]
    base = lab_apply_uint8(values, masks.channels, img, np.empty_like(img), tile_rows=45, workers=1)
    for rows, workers in ((1, 2), (4, 2), (7, 1), (None, 2)):
        out = lab_apply_uint8(values, masks.channels, img, np.empty_like(img), tile_rows=rows, workers=workers)
        assert np.array_equal(out, base), (rows, workers)
    buf = img.copy()
    lab_apply_uint8(values, masks.channels, buf, buf, tile_rows=4, workers=2)
    assert np.array_equal(buf, base)
    strided = np.zeros((45, 37, 4), np.uint8)[:, :, :3]  # non-contiguous out
    assert np.array_equal(masks.apply_uint8(img, out=strided), base)


def test_encode_table_rounds_like_the_reference():
    rng = np.random.default_rng(0)
    c = np.concatenate([rng.uniform(-0.1, 1.2, 200_000), rng.uniform(0, 0.004, 50_000)]).astype(np.float32)
    c = np.concatenate([c, np.array([0.0, -0.0, 1e-40, 1.0, 0.0031308, np.inf, -np.inf, np.nan], np.float32)])
    bits = torch.from_numpy(c).view(torch.int32)
    got = srgb_encode_table()[(bits >> 11) & 0x1FFFFF].numpy().astype(int)
    assert got[-1] in (0, 255)  # NaN
    c, got = c[:-1], got[:-1]
    exact = linear_to_srgb(torch.from_numpy(np.nan_to_num(c, nan=0.0)).double().clamp(0, 1)).numpy() * 255.0
    want = np.floor(exact + 0.5).astype(int)
    assert np.abs(got - want).max() <= 1
    off = got != want
    assert np.all(np.abs(exact[off] - np.floor(exact[off]) - 0.5) < 0.01)  # only next to a boundary
    assert got[-2] == 255 and got[-1] == 0 and got[-6] == 0 and got[-4] == 255  # +inf, -inf, -0.0, 1.0


def test_compiled_and_torch_kernels_agree_and_native_flag(kernel):
    img = _image(33, 70, seed=7)
    for channels in (CHANNEL_SETS["lab"], CHANNEL_SETS["lab_add"]):
        masks = _masks(channels, size=(5, 8), seed=2)
        values = masks.values[0]
        torch_out = lab_apply_uint8(values, channels, img, np.empty_like(img), tile_rows=5, native=False)
        default = lab_apply_uint8(values, channels, img, np.empty_like(img), tile_rows=5)
        assert np.abs(default.astype(int) - torch_out).max() <= 1
        if kernel == "compiled":
            compiled = lab_apply_uint8(values, channels, img, np.empty_like(img), tile_rows=5, native=True)
            assert np.array_equal(compiled, default)
            d = np.abs(compiled.astype(int) - torch_out)
            assert d.max() <= 1 and (d == 0).mean() > 0.999
        else:
            assert np.array_equal(default, torch_out)
            with pytest.raises(RuntimeError, match="HARMONYKIT_NATIVE=0"):
                lab_apply_uint8(values, channels, img, np.empty_like(img), native=True)


@pytest.mark.parametrize("kernel", ["compiled"], indirect=True)
def test_compiled_kernel_checks_its_buffers(kernel):
    k = native_kernel()
    img = np.zeros((4, 5, 3), np.uint8)
    with pytest.raises(ValueError, match="src has"):
        k.apply_rows(img[:2], img, 4, 5, 0, 4, np.zeros(3 * 4, np.float32), 3, 2, 2, np.zeros(4, np.int64),
                     np.zeros(4, np.int64), np.zeros(4, np.float32), np.zeros(5, np.int64), np.zeros(5, np.float32),
                     np.zeros(256, np.float32), np.zeros(9, np.float32), np.zeros(9, np.float32),
                     np.zeros(3, np.float32), np.zeros(1 << 21, np.uint8), 11, 0.008856, 903.3, 0.2069)
    with pytest.raises(ValueError, match="bad sizes"):
        k.apply_rows(img, img, 4, 5, 0, 9, np.zeros(3 * 4, np.float32), 3, 2, 2, np.zeros(4, np.int64),
                     np.zeros(4, np.int64), np.zeros(4, np.float32), np.zeros(5, np.int64), np.zeros(5, np.float32),
                     np.zeros(256, np.float32), np.zeros(9, np.float32), np.zeros(9, np.float32),
                     np.zeros(3, np.float32), np.zeros(1 << 21, np.uint8), 11, 0.008856, 903.3, 0.2069)
    with pytest.raises(TypeError):  # a read-only destination
        ro = np.zeros((4, 5, 3), np.uint8)
        ro.flags.writeable = False
        k.apply_rows(img, ro, 4, 5, 0, 4, np.zeros(3 * 4, np.float32), 3, 2, 2, np.zeros(4, np.int64),
                     np.zeros(4, np.int64), np.zeros(4, np.float32), np.zeros(5, np.int64), np.zeros(5, np.float32),
                     np.zeros(256, np.float32), np.zeros(9, np.float32), np.zeros(9, np.float32),
                     np.zeros(3, np.float32), np.zeros(1 << 21, np.uint8), 11, 0.008856, 903.3, 0.2069)


def test_coefficients_need_lab_channels():
    with pytest.raises(ValueError, match="not CIELAB"):
        lab_coefficients(torch.zeros(1, 2, 2), ("h_add",))
    assert lab_coefficients(torch.zeros(3, 2, 2), CHANNEL_SETS["lab_add"]).shape == (3, 2, 2)
    assert lab_coefficients(torch.ones(2, 2, 2), ("l_mul", "l_add")).shape == (6, 2, 2)
